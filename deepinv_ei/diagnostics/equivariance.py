r"""How far a reconstructor is from equivariance: :math:`\|f(A T_g x) - T_g f(A x)\| / \|T_g f(A x)\|`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def equivariance_error(
    model: Callable[[torch.Tensor, Any], torch.Tensor],
    physics: Any,
    transform: Any,
    x: torch.Tensor,
) -> float:
    r"""Mean relative equivariance error of :math:`f(y) = \text{model}(y, \text{physics})`.

    .. math::

        \frac{1}{N B}\sum_{i} \frac{\|f(A T_{g_i} x_i) - T_{g_i} f(A x_i)\|}{\|T_{g_i} f(A x_i)\|},

    over the ``n_trans * B`` group elements the transform draws (noiseless :math:`A`). EI trains
    :math:`f \circ A` to be equivariant; an error near 0 means the reconstructor commutes with the
    group on these signals.

    :param model: reconstructor called as ``model(y, physics)`` (deepinv convention).
    :param physics: physics with ``A``.
    :param transform: a :class:`deepinv.transform.Transform` with ``get_params`` and
        ``transform`` (ours or deepinv's).
    :param torch.Tensor x: ground-truth images ``(B, C, H, W)``.
    :return: the mean relative error (float).

    :Examples:

    >>> import torch, deepinv as dinv
    >>> from deepinv_ei.diagnostics import equivariance_error
    >>> from deepinv_ei.transforms import Shift
    >>> physics = dinv.physics.BlurFFT((1, 8, 8), filter=dinv.physics.blur.gaussian_blur(1.0))
    >>> f = lambda y, physics: physics.A_dagger(y)
    >>> equivariance_error(f, physics, Shift(n_trans=2), torch.rand(2, 1, 8, 8)) < 1e-4
    True
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(y, physics), got {type(model).__name__}")
    if not callable(getattr(physics, "A", None)):
        raise TypeError(f"physics must have a callable A, got {type(physics).__name__}")
    if not (
        callable(getattr(transform, "get_params", None))
        and callable(getattr(transform, "transform", None))
    ):
        raise TypeError(
            f"transform must be a deepinv Transform (get_params, transform), got {type(transform).__name__}"
        )
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(
            f"x must be a 4D tensor (B, C, H, W), got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    with torch.no_grad():
        params = transform.get_params(x)
        reference = transform.transform(model(physics.A(x), physics), **params)
        moved = model(physics.A(transform.transform(x, **params)), physics)
        if moved.shape != reference.shape:
            raise ValueError(
                f"model output shapes differ: f(A T x) {tuple(moved.shape)} vs "
                f"T f(A x) {tuple(reference.shape)}"
            )
        num = (moved - reference).flatten(1).norm(dim=1)
        den = reference.flatten(1).norm(dim=1).clamp_min(torch.finfo(reference.dtype).tiny)
    return float((num / den).mean())

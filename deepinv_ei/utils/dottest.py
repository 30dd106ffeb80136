r"""The dot-product test for a claimed adjoint (PyLops' ``dottest``, for torch).

For a linear map :math:`A` and its claimed transpose :math:`A^\top`, draws random
:math:`x, y` and compares

.. math::

    \langle A x, y \rangle \quad\text{and}\quad \langle x, A^\top y \rangle,

which agree for every :math:`x, y` exactly when :math:`A^\top` is the adjoint of :math:`A`
for the plain (unweighted) dot product that torch's autograd assumes. The inner products are
accumulated in float64 whatever the operator's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def dottest(
    forward: Callable[[torch.Tensor], torch.Tensor],
    adjoint: Callable[[torch.Tensor], torch.Tensor],
    domain_shape: Sequence[int],
    range_shape: Sequence[int] | None = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    rtol: float | None = None,
    seed: int = 0,
    raise_error: bool = True,
) -> float:
    r"""Relative dot-product error :math:`|\langle Ax,y\rangle-\langle x,A^\top y\rangle| / \max(|\cdot|)`.

    :param forward: the linear map :math:`A`.
    :param adjoint: its claimed transpose :math:`A^\top`.
    :param domain_shape: shape of an input of ``forward`` (batch dimensions included).
    :param range_shape: shape of an input of ``adjoint``; found by applying ``forward`` if ``None``.
    :param dtype: floating dtype of the random test vectors (default ``torch.float32``).
    :param device: device of the test vectors.
    :param rtol: tolerance; defaults to ``1e-6`` for float32 and ``1e-10`` for float64.
    :param seed: seed of the random vectors.
    :param raise_error: raise :class:`AssertionError` when the error exceeds ``rtol``.
    :return: the relative error.

    :Examples:

    >>> import torch
    >>> from deepinv_ei.utils import dottest
    >>> M = torch.randn(5, 3, dtype=torch.float64)
    >>> err = dottest(lambda x: x @ M.T, lambda y: y @ M, (2, 3), dtype=torch.float64)
    >>> err < 1e-12
    True
    """
    import torch  # here: the package's file helpers must not load torch

    dtype = torch.float32 if dtype is None else dtype
    if rtol is None:
        rtol = 1e-10 if dtype == torch.float64 else 1e-6
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(tuple(domain_shape), generator=gen, dtype=dtype).to(device)
    ax = forward(x)
    if range_shape is None:
        range_shape = ax.shape
    if tuple(ax.shape) != tuple(range_shape):
        raise ValueError(f"forward returned shape {tuple(ax.shape)}, expected {tuple(range_shape)}")
    y = torch.randn(tuple(range_shape), generator=gen, dtype=dtype).to(device)
    aty = adjoint(y)
    if tuple(aty.shape) != tuple(x.shape):
        raise ValueError(f"adjoint returned shape {tuple(aty.shape)}, expected {tuple(x.shape)}")
    lhs = torch.sum(ax.double() * y.double()).item()
    rhs = torch.sum(x.double() * aty.double()).item()
    err = abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-300)
    if raise_error and err > rtol:
        raise AssertionError(
            f"dot test failed: <Ax,y>={lhs:.10g}, <x,A^T y>={rhs:.10g}, relative error {err:.3e} > {rtol:.1e}"
        )
    return err

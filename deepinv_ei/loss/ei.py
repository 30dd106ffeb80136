r"""The equivariant imaging (EI) loss of Chen, Tachella & Davies (ICCV 2021)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from deepinv.loss import Loss

from .base import as_physics, check_metric, check_weight, has_per_sample_params
from .mc import MCLoss

__all__ = ["EILoss", "equivariant_imaging"]


class EILoss(Loss):
    r"""Equivariant imaging loss; a drop-in for :class:`deepinv.loss.EILoss`.

    With the reconstruction :math:`x_1 = f(y)` (``x_net``) and a random group element
    :math:`g`, the loss is

    .. math::

        \mathcal{L}_{EI} = w \, \ell\big(f(A T_g x_1 + \epsilon),\; T_g x_1\big),

    i.e. :math:`x_2 = T_g x_1` (``n_trans`` copies stacked on the batch, as deepinv
    transforms do), :math:`x_3 = f(A x_2 (+\text{noise}))` and the metric
    :math:`\ell(x_3, x_2)`, :class:`torch.nn.MSELoss` by default. As in the paper, gradients
    flow through both :math:`x_3` and :math:`x_2` unless ``no_grad=True``. The value is
    ``weight * metric(x3, x2)``, whatever the metric returns (a scalar for the default), as
    in deepinv. Combined with the measurement consistency loss :math:`\|A f(y) - y\|^2` it gives
    the EI objective, see :func:`equivariant_imaging`.

    Additions to deepinv's loss (keyword-only): the physics may be a linear ODL operator; if
    it carries per-sample parameters (a mask or a noise level per image), the copies are
    measured and reconstructed one group of ``B`` at a time, each copy with the parameters of
    its own image; and the fresh noise may be given. :class:`deepinv.Trainer` logs it as
    ``EILoss``; wrap a second EI loss in :class:`~deepinv_ei.loss.NamedLoss` to log it apart.

    :param transform: the group action :math:`T_g`, a :class:`deepinv.transform.Transform`
        (or any callable mapping ``(B, ...)`` to ``(n*B, ...)`` copy-major).
    :param metric: ``metric(x3, x2)``; ``None`` for :class:`torch.nn.MSELoss`.
    :param bool apply_noise: measure :math:`x_2` with the physics' noise (``physics(x2)``)
        instead of the clean :math:`A x_2`.
    :param float weight: the weight :math:`w \ge 0` (the paper's :math:`\alpha`).
    :param bool no_grad: detach :math:`x_2` (a variant; the paper keeps the gradient).
    :param noise_model: if given, the noise applied to :math:`A x_2` instead of the
        physics' own (only with ``apply_noise``).
    :param bool per_sample_physics: process the copies one group at a time; ``None``
        detects per-sample physics parameters (see :func:`has_per_sample_params`).

    :Example:

    >>> import torch, deepinv as dinv
    >>> from deepinv_ei.loss import EILoss
    >>> physics = dinv.physics.Inpainting(img_size=(1, 8, 8), mask=0.5,
    ...                                   rng=torch.Generator().manual_seed(0))
    >>> model = lambda y, physics: physics.A_adjoint(y)
    >>> loss = EILoss(dinv.transform.Shift(n_trans=2), dinv.metric.MSE(), weight=10.0)
    >>> y = physics(torch.rand(3, 1, 8, 8))
    >>> loss(x_net=model(y, physics), physics=physics, model=model).shape  # metric per row
    torch.Size([6])
    >>> EILoss(dinv.transform.Shift())(x_net=model(y, physics), physics=physics, model=model).shape
    torch.Size([])
    """

    def __init__(
        self,
        transform: Callable[[torch.Tensor], torch.Tensor],
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        apply_noise: bool = True,
        weight: float = 1.0,
        no_grad: bool = False,
        *,
        noise_model: Callable[[torch.Tensor], torch.Tensor] | None = None,
        per_sample_physics: bool | None = None,
    ):
        super().__init__()
        if not callable(transform):
            raise TypeError(
                f"EILoss: transform must be a callable such as a deepinv.transform.Transform, "
                f"got {type(transform).__name__}"
            )
        n_trans = getattr(transform, "n_trans", 1)
        if isinstance(n_trans, int) and n_trans < 1:
            raise ValueError(f"EILoss: transform.n_trans must be >= 1, got {n_trans}")
        for key, flag in (("apply_noise", apply_noise), ("no_grad", no_grad)):
            if not isinstance(flag, bool):
                raise TypeError(f"EILoss: {key} must be a bool, got {flag!r}")
        if per_sample_physics is not None and not isinstance(per_sample_physics, bool):
            raise TypeError(
                f"EILoss: per_sample_physics must be a bool or None, got {per_sample_physics!r}"
            )
        if noise_model is not None and not callable(noise_model):
            raise TypeError(
                f"EILoss: noise_model must be callable (e.g. a deepinv NoiseModel) or None, "
                f"got {type(noise_model).__name__}"
            )
        self._name = "ei"
        self.T = transform
        self.metric = check_metric("EILoss", metric)
        self.weight = check_weight("EILoss", weight)
        self.noise = apply_noise
        self.no_grad = no_grad
        self.noise_model = noise_model
        self.per_sample_physics = per_sample_physics

    @property
    def transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The group action (deepinv's attribute is ``T``)."""
        return self.T

    @property
    def apply_noise(self) -> bool:
        """Whether the copies are measured with noise (deepinv's attribute is ``noise``)."""
        return self.noise

    def _measure(self, x: torch.Tensor, physics: Any) -> torch.Tensor:
        """Measurements of ``x`` (hook): clean, with the physics' noise, or a given noise."""
        if not self.noise:
            return physics.A(x)
        if self.noise_model is not None:
            return self.noise_model(physics.A(x))
        return physics(x)

    def _reconstruct_copies(
        self, x2: torch.Tensor, batch_size: int, physics: Any, model: Callable
    ) -> torch.Tensor:
        per_sample_physics = self.per_sample_physics
        if per_sample_physics is None:
            per_sample_physics = has_per_sample_params(physics, batch_size)
        if not per_sample_physics or x2.shape[0] == batch_size:
            return model(self._measure(x2, physics), physics)
        # Copy k of every image is x2[k*B:(k+1)*B]: each group matches the physics' batch.
        groups = x2.split(batch_size)
        return torch.cat([model(self._measure(g, physics), physics) for g in groups])

    def forward(
        self, x_net: torch.Tensor, physics: Any, model: Callable, **kwargs: Any
    ) -> torch.Tensor:
        r"""Compute the EI loss.

        :param torch.Tensor x_net: reconstruction :math:`x_1 = f(y)`, shape ``(B, ...)``.
        :param physics: the forward model (a deepinv physics or a linear ODL operator,
            wrapped once with :class:`deepinv_ei.odl.OdlPhysics`; the model then receives
            the wrapper).
        :param model: the reconstructor, called as ``model(y, physics)``.
        :return: ``weight * metric(x3, x2)``.
        """
        physics = as_physics(physics)
        if not callable(model):
            raise TypeError(f"model must be callable as model(y, physics), got {type(model)}")
        batch_size = x_net.shape[0]
        if self.no_grad:
            with torch.no_grad():
                x2 = self.T(x_net).detach()
        else:
            x2 = self.T(x_net)
        if x2.shape[0] % batch_size != 0 or x2.shape[1:] != x_net.shape[1:]:
            raise ValueError(
                f"transform must map shape {tuple(x_net.shape)} to (n*{batch_size}, "
                f"{', '.join(map(str, x_net.shape[1:]))}), got {tuple(x2.shape)}"
            )
        x3 = self._reconstruct_copies(x2, batch_size, physics, model)
        return self.weight * self.metric(x3, x2)


def equivariant_imaging(
    transform: Callable[[torch.Tensor], torch.Tensor],
    alpha: float,
    mc_metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    **ei_kwargs: Any,
) -> list[Loss]:
    r"""The EI objective of the ICCV paper as a pair of losses.

    .. math::

        \frac1m\|A f(y) - y\|^2 + \alpha\,\frac1n\|f(A T_g f(y)) - T_g f(y)\|^2

    :param transform: the group action.
    :param float alpha: weight of the equivariance term (10 for the CS toy, 100 for CT,
        1 for inpainting in the paper).
    :param mc_metric: metric of the measurement consistency term.
    :param ei_kwargs: further arguments of :class:`EILoss` (``metric``, ``apply_noise``...).
    :return: ``[MCLoss(), EILoss(transform, weight=alpha)]``, for a Trainer's ``losses=``.

    >>> import deepinv as dinv
    >>> from deepinv_ei.loss import equivariant_imaging
    >>> [type(loss).__name__ for loss in equivariant_imaging(dinv.transform.Shift(), 10)]
    ['MCLoss', 'EILoss']
    """
    return [MCLoss(metric=mc_metric), EILoss(transform, weight=alpha, **ei_kwargs)]

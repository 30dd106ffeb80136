r"""Robust equivariant imaging (REI) of Chen, Tachella & Davies (CVPR 2022)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from deepinv.loss import Loss

from .ei import EILoss
from .sure import SureLoss, sure_class, sure_loss

__all__ = ["REILoss", "robust_equivariant_imaging"]


class REILoss(Loss):
    r"""Robust EI: SURE on the noisy measurements plus EI on re-noised measurements.

    .. math::

        \mathcal{L}_{REI} = \widehat{\mathrm{SURE}}(f; y)
        + \alpha\, \frac{1}{n}\big\|f(A T_g f(y) + \tilde\epsilon) - T_g f(y)\big\|^2,

    where :math:`\widehat{\mathrm{SURE}}` estimates :math:`\frac1m\|Af(y)-Ax\|^2` (see
    :mod:`deepinv_ei.loss.sure`) and :math:`\tilde\epsilon` is fresh noise of the same
    model. It replaces the measurement consistency term, which with noisy data would
    teach :math:`f` to reproduce the noise.

    :meth:`losses` returns the two terms as separate losses, so that
    :class:`deepinv.Trainer` logs them separately; the instance itself returns their sum.

    :param transform: the group action, as for :class:`~deepinv_ei.loss.EILoss`.
    :param noise: ``"gaussian"``, ``"poisson"``, ``"poisson_gaussian"`` (levels and fresh
        noise from the physics' noise model) or a deepinv noise model instance (levels
        read from it, fresh noise drawn from it).
    :param float alpha: weight :math:`\alpha` of the EI term.
    :param float tau: finite-difference step of the SURE divergence (``tau1`` for the
        mixed noise).
    :param metric: EI metric, :class:`torch.nn.MSELoss` by default (as deepinv's EI loss).
    :param torch.Generator rng: generator of the SURE probes.
    :param sure_kwargs: further arguments of the SURE loss (e.g. ``tau2``, ``sigma``).

    :Example:

    >>> import torch, deepinv as dinv
    >>> from deepinv_ei.loss import REILoss
    >>> physics = dinv.physics.Inpainting(img_size=(1, 8, 8), mask=0.7,
    ...                                   noise_model=dinv.physics.GaussianNoise(0.05))
    >>> loss = REILoss(dinv.transform.Shift(), noise="gaussian", alpha=2.0)
    >>> [type(term).__name__ for term in loss.losses()]
    ['SureGaussian', 'EILoss']
    >>> model = lambda y, physics: physics.A_adjoint(y)
    >>> y = physics(torch.rand(2, 1, 8, 8))
    >>> loss(y=y, x_net=model(y, physics), physics=physics, model=model).shape
    torch.Size([2])
    """

    def __init__(
        self,
        transform: Callable[[torch.Tensor], torch.Tensor],
        noise: str | torch.nn.Module,
        alpha: float = 1.0,
        tau: float = 1e-2,
        metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        rng: torch.Generator | None = None,
        **sure_kwargs: Any,
    ):
        super().__init__()
        step = sure_class(noise).step  # tau is the first-order step: tau1 for mixed noise
        self.sure: SureLoss = sure_loss(noise, rng=rng, **{step: tau, **sure_kwargs})
        fresh_noise = None if isinstance(noise, str) else noise
        self.ei = EILoss(transform, metric, True, alpha, noise_model=fresh_noise)

    def losses(self) -> list[Loss]:
        """The two terms ``[SURE, alpha * EI]``, for a Trainer's ``losses=`` list."""
        return [self.sure, self.ei]

    def forward(
        self, y: torch.Tensor, x_net: torch.Tensor, physics: Any, model: Callable, **kwargs: Any
    ) -> torch.Tensor:
        r"""SURE + :math:`\alpha` EI, shape ``(B,)``.

        The SURE term is per sample; the EI term is what its metric returns: a scalar (the
        default, added to every sample) or one value per row of the ``n * B`` copies (averaged
        over the copies of each sample).
        """
        sure = self.sure(y=y, x_net=x_net, physics=physics, model=model, **kwargs)
        ei = self.ei(x_net=x_net, physics=physics, model=model, **kwargs)
        batch = sure.shape[0]
        if ei.ndim >= 1 and ei.numel() % batch == 0:
            ei = ei.reshape(-1, batch).mean(0)
        elif ei.numel() != 1:
            raise ValueError(
                f"the EI metric must return a scalar or one value per copy, got shape "
                f"{tuple(ei.shape)} for a batch of {batch}"
            )
        return sure + ei


def robust_equivariant_imaging(
    transform: Callable[[torch.Tensor], torch.Tensor],
    noise: str | torch.nn.Module,
    alpha: float,
    **kwargs: Any,
) -> list[Loss]:
    r"""The REI objective as a pair ``[SURE, EILoss(weight=alpha)]`` (see :class:`REILoss`)."""
    return REILoss(transform, noise, alpha=alpha, **kwargs).losses()

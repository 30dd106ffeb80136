r"""The compared methods as lists of :class:`deepinv.loss.Loss` (``pinv`` trains nothing).

- ``mc``: measurement consistency only, :math:`\|A f(y) - y\|^2`.
- ``ei``: :math:`\|A x_1 - y\|^2 + \alpha \|x_3 - x_2\|^2` (this project's EI losses).
- ``sup``: :math:`\|f(y) - x\|^2`.
- ``sup_ei``: supervised plus the EI term.
- ``rei``: Robust EI, SURE in place of MC, from noisy measurements.
"""

from __future__ import annotations

import deepinv as dinv
import torch

from .profiles import METHODS, TaskProfile

TRAINED = tuple(m for m in METHODS if m != "pinv")
#: The name of each method in tables and figures.
LABELS = {
    "pinv": "A†y",
    "mc": "MC",
    "ei": "EI",
    "sup": "supervised",
    "rei": "REI",
    "sup_ei": "sup+EI",
}


def parse_methods(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"pinv,mc,ei"`` -> ``("pinv", "mc", "ei")``; unknown names raise :class:`ValueError`."""
    items = text.split(",") if isinstance(text, str) else list(text)
    items = [m.strip() for m in items if m.strip()]
    if not items:
        raise ValueError(f"--methods needs at least one of {METHODS}, got {text!r}")
    bad = [m for m in items if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; expected a comma list from {METHODS}")
    return tuple(dict.fromkeys(items))  # de-duplicated, order kept


def make_model(p: TaskProfile) -> torch.nn.Module:
    r"""The reconstructor :math:`f = G(A^\dagger y)` with the profile's residual UNet :math:`G`,
    compiled in place with :meth:`torch.nn.Module.compile` when ``p.compile`` (its
    ``state_dict`` keys, hence checkpoints, are unchanged)."""
    from deepinv_ei.models import EIUNet, ei_reconstructor

    backbone = EIUNet(p.channels, p.width, p.scales, p.batch_norm, p.zero_init)
    if p.compile:
        backbone.compile()
    return ei_reconstructor(backbone)


def make_losses(method: str, p: TaskProfile, transform) -> list[dinv.loss.Loss]:
    """Training losses of ``method`` under profile ``p`` with group action ``transform``."""
    from deepinv_ei import loss as ei_loss

    if method == "mc":
        return [ei_loss.MCLoss()]
    if method == "ei":
        return list(ei_loss.equivariant_imaging(transform, alpha=p.alpha))
    if method == "sup":
        return [dinv.loss.SupLoss()]
    if method == "sup_ei":
        return [dinv.loss.SupLoss(), ei_loss.EILoss(transform, weight=p.alpha)]
    if method == "rei":
        return list(
            ei_loss.robust_equivariant_imaging(
                transform, noise_model(p), alpha=p.alpha, tau=p.rei_tau
            )
        )
    raise ValueError(f"method {method!r} has no training losses; expected one of {TRAINED}")


def noise_model(p: TaskProfile):
    """The measurement noise of the ``rei`` experiment."""
    if p.rei_noise == "gaussian":
        return dinv.physics.GaussianNoise(sigma=p.rei_noise_level)
    if p.rei_noise == "poisson":
        # the EI term re-noises A T_g x1, which may dip below 0 early in training
        return dinv.physics.PoissonNoise(gain=p.rei_noise_level, clip_positive=True)
    raise ValueError(f"rei_noise must be 'gaussian' or 'poisson', got {p.rei_noise!r}")

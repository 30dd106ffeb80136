r"""Unit-free EI training: a data scale for the network and both loss terms normalised.

With raw terms, the EI objective :math:`\frac1m\|Af(y)-y\|^2 + \alpha\frac1n\|x_3-x_2\|^2`
changes meaning with the user's description of the scanner: describing the same scan in mm
instead of pixels multiplies :math:`A` by the pixel size :math:`c` (in mm), which leaves the
measured :math:`y` unchanged but divides the reconstruction (an attenuation per unit length) by
:math:`c`, so the EI term is multiplied by :math:`1/c^2` and the MC term is not.

This module removes every such factor. From the training measurements it measures

.. math::

    s = \Big(\frac{1}{N n}\sum_{i=1}^N \|A^\dagger y_i\|^2\Big)^{1/2}, \qquad
    E_y = \frac{1}{N m}\sum_{i=1}^N \|y_i\|^2,

the RMS of the linear reconstruction (image units) and the mean energy of a measurement entry,
reconstructs with

.. math::

    f(y) = s\, G\big(A^\dagger y / s\big)

(the network :math:`G` always sees an input of unit RMS; its output is rescaled to physical
units), and trains on

.. math::

    \mathcal{L} = \frac{1}{E_y}\,\frac1m\|Af(y) - y\|^2
    + \alpha\,\frac{1}{s^2}\,\frac1n\|f(A T_g f(y)) - T_g f(y)\|^2 ,

with the SURE estimate in place of the first mean for noisy data (also divided by :math:`E_y`).
Both terms are relative squared errors, so :math:`\alpha` weighs one against the other whatever
the units. Invariance, as functions of the network's weights :math:`\theta` (hence the loss,
its gradients and the whole training trajectory):

- *Operator scale and units* (:math:`A \to cA`, :math:`y` fixed; e.g. px :math:`\to` mm with
  pixel size :math:`c`, or any detector pitch): :math:`A^\dagger \to A^\dagger/c`, so
  :math:`s \to s/c`, :math:`G`'s input is unchanged, :math:`f \to f/c` and
  :math:`Af(y)` is unchanged; both MC terms and :math:`E_y` are unchanged;
  :math:`T_g f \to T_g f / c` and :math:`f(AT_gf) \to f(AT_gf)/c` (the input of :math:`G` there
  is again unchanged), so the EI mean scales by :math:`1/c^2`, exactly as :math:`s^2`.
- *Data scale* (:math:`y \to cy`, :math:`A` fixed, e.g. another attenuation unit):
  :math:`s \to cs`, :math:`E_y \to c^2E_y`, :math:`f \to cf`, and both terms are unchanged.
- *Scaled operator and data* (:math:`A \to cA`, :math:`y \to cy`): the composition of the two.
- *Number of views*: both terms are per-entry means divided by per-entry energies, so
  repeating every view (:math:`A \to [A; A]`, :math:`y \to [y; y]`, for which
  :math:`A^\dagger y` is unchanged when :math:`A^\dagger` is the pseudo-inverse or an FBP
  normalised by the number of views) leaves the loss unchanged; a denser set of distinct views
  changes it only through what the views see.

For comparison, the paper's loss in pixel units is :math:`E_y` times ours with
:math:`\alpha_\text{ours} = \alpha_\text{paper}\, s^2 / E_y`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from deepinv.loss import Loss

from deepinv_ei.loss import NamedLoss

__all__ = [
    "DataScaling",
    "ScaledLoss",
    "ScaledReconstructor",
    "estimate_scaling",
    "paper_alpha_in_normalised_units",
    "normalised_ei_losses",
]


@dataclass(frozen=True)
class DataScaling:
    r"""The constants of the unit-free loss, measured once on the training measurements.

    :param float scale: :math:`s`, the RMS of :math:`A^\dagger y` (image units).
    :param float measurement_energy: :math:`E_y`, the mean of :math:`y^2` over all entries.
    """

    scale: float
    measurement_energy: float

    def __post_init__(self):
        for name in ("scale", "measurement_energy"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"DataScaling.{name} must be a float, got {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"DataScaling.{name} must be finite and > 0, got {value!r}; are the "
                    "measurements all zero?"
                )

    @property
    def image_energy(self) -> float:
        r""":math:`s^2`, the mean energy of an image pixel, the EI term's normaliser."""
        return self.scale**2

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataScaling:
        expected = {"scale", "measurement_energy"}
        if not isinstance(d, dict) or set(d) != expected:
            found = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"data scaling: expected keys {sorted(expected)}, found {found}")
        return cls(float(d["scale"]), float(d["measurement_energy"]))


@torch.no_grad()
def estimate_scaling(y: torch.Tensor, physics: Any, batch: int = 32) -> DataScaling:
    r""":math:`s` and :math:`E_y` of the measurements ``y`` (``(N, C, ...)``), see :class:`DataScaling`.

    Computed in float64 accumulators, in batches of ``batch`` measurements.
    """
    if not isinstance(y, torch.Tensor) or y.ndim < 2 or len(y) == 0:
        raise ValueError(f"expected a non-empty (N, C, ...) tensor of measurements, got {y!r}")
    x_sq = y_sq = 0.0
    x_count = y_count = 0
    for start in range(0, len(y), batch):
        yb = y[start : start + batch]
        xb = physics.A_dagger(yb)
        x_sq += float(xb.double().pow(2).sum())
        y_sq += float(yb.double().pow(2).sum())
        x_count += xb.numel()
        y_count += yb.numel()
    return DataScaling(scale=math.sqrt(x_sq / x_count), measurement_energy=y_sq / y_count)


class ScaledReconstructor(torch.nn.Module):
    r"""The reconstructor :math:`f(y) = s\,G(A^\dagger y / s)`, called as ``f(y, physics)``.

    :param torch.nn.Module backbone: the network :math:`G` (e.g. :class:`~deepinv_ei.models.EIUNet`).
    :param float scale: :math:`s` (:attr:`DataScaling.scale`).

    :Example:

    >>> import torch, deepinv as dinv
    >>> from deepinv_ei.models import EIUNet
    >>> from deepinv_ei.training import ScaledReconstructor
    >>> physics = dinv.physics.Inpainting(img_size=(1, 8, 8), mask=0.5)
    >>> f = ScaledReconstructor(EIUNet(width=4, zero_init=True), scale=20.0).eval()
    >>> y = physics(torch.rand(1, 1, 8, 8))
    >>> bool(torch.allclose(f(y, physics), physics.A_dagger(y)))
    True
    """

    def __init__(self, backbone: torch.nn.Module, scale: float):
        super().__init__()
        if not isinstance(backbone, torch.nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
        DataScaling(scale, 1.0)  # validates the scale
        self.backbone = backbone
        self.scale = float(scale)

    def forward(self, y: torch.Tensor, physics: Any, **kwargs: Any) -> torch.Tensor:
        return self.backbone(physics.A_dagger(y) / self.scale) * self.scale


class ScaledLoss(Loss):
    r"""``factor * loss(...)``: a loss divided by its normaliser.

    :param deepinv.loss.Loss loss: the wrapped loss (its model adaptation is kept).
    :param float factor: the constant factor (:math:`1/E_y`, :math:`\alpha/s^2`).
    """

    def __init__(self, loss: Loss, factor: float):
        super().__init__()
        if not isinstance(loss, Loss):
            raise TypeError(f"ScaledLoss: loss must be a deepinv.loss.Loss, got {type(loss)}")
        if isinstance(factor, bool) or not math.isfinite(factor) or factor < 0:
            raise ValueError(f"ScaledLoss: factor must be finite and >= 0, got {factor!r}")
        self.loss = loss
        self.factor = float(factor)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.factor * self.loss(*args, **kwargs)

    def adapt_model(self, model: torch.nn.Module, **kwargs: Any) -> torch.nn.Module:
        return self.loss.adapt_model(model, **kwargs)


def normalised_ei_losses(
    scaling: DataScaling,
    alpha: float,
    transform: Callable[[torch.Tensor], torch.Tensor] | None,
    data_term: Loss | None = None,
    ei_term: Loss | None = None,
) -> list[Loss]:
    r"""The unit-free objective as losses for a trainer: the data term :math:`/E_y`, logged as
    ``"MC/Ey"`` (``"SURE/Ey"`` for a SURE loss), and :math:`\alpha` EI :math:`/s^2`, logged as
    ``"<alpha>*EI/s2"`` (omitted for :math:`\alpha = 0`).

    :param DataScaling scaling: the constants.
    :param float alpha: weight of the EI term in normalised units.
    :param transform: the group action (unused when ``ei_term`` is given or ``alpha == 0``).
    :param data_term: a per-entry mean data loss (:class:`~deepinv_ei.loss.MCLoss`, or a SURE
        loss for noisy data); ``None`` for :class:`~deepinv_ei.loss.MCLoss`.
    :param ei_term: a per-pixel mean EI loss of weight 1 (e.g. the EI term of
        :func:`~deepinv_ei.loss.robust_equivariant_imaging`); ``None`` for
        :class:`~deepinv_ei.loss.EILoss` of ``transform``.
    """
    from deepinv_ei.loss import EILoss, MCLoss, SureLoss

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
        raise ValueError(f"alpha must be a number >= 0, got {alpha!r}")
    data_term = MCLoss() if data_term is None else data_term
    data_name = "SURE/Ey" if isinstance(data_term, SureLoss) else "MC/Ey"
    losses: list[Loss] = [
        NamedLoss(ScaledLoss(data_term, 1.0 / scaling.measurement_energy), data_name)
    ]
    if alpha > 0:
        if ei_term is None:
            if transform is None:
                raise ValueError("alpha > 0 needs a transform (or an ei_term)")
            ei_term = EILoss(transform, apply_noise=False)
        scaled = ScaledLoss(ei_term, alpha / scaling.image_energy)
        losses.append(NamedLoss(scaled, f"{alpha:g}*EI/s2"))
    return losses


def paper_alpha_in_normalised_units(alpha_paper: float, scaling: DataScaling) -> float:
    r"""The normalised :math:`\alpha` equal to the paper's raw ``alpha_paper`` for data with
    ``scaling``: :math:`\alpha_\text{paper}\,s^2/E_y` (see the module documentation)."""
    return alpha_paper * scaling.image_energy / scaling.measurement_energy

r"""Validation scores that need no ground truth, comparable across :math:`\alpha` and epochs.

Measurement consistency on the training measurements cannot choose a model (FBP already fits
them), and the training loss cannot compare different :math:`\alpha`. These scores can; each is
a relative error, so they do not depend on units or data scale:

- **held-out views** (``heldout_view_error``): with the views :math:`y_h = A_h x + \epsilon_h` that
  training never saw (left out at ingest),

  .. math::

      \mathrm{HV}(f) = \frac{\big(\sum_i \|A_h f(y_i) - y_{h,i}\|^2\big)^{1/2}}
                           {\big(\sum_i \|y_{h,i}\|^2\big)^{1/2}},

  summed over the validation slices :math:`i`. A reconstruction that is right off the measured
  views predicts them; one that only fits :math:`y` (FBP, MC) does not. Noise in :math:`y_h`
  adds the same constant to every model's squared numerator, so the ranking is kept;
- **ramp-weighted held-out views** (``heldout_view_error_ramp``, the primary score): the same
  ratio with every view's residual and data weighted by :math:`|\omega|` along the detector,
  :math:`\|R^{1/2}(A_h f(y) - y_h)\| / \|R^{1/2} y_h\|` with :math:`R` the ramp filter. Since
  :math:`A_h^\top R A_h` is close to a multiple of the identity for dense views (the FBP
  identity), its numerator approximates the image error :math:`\|f(y) - x\|` with all spatial
  frequencies weighed alike, as PSNR does; the plain score weighs low frequencies more
  (:math:`A_h^\top A_h` acts as :math:`1/|\omega|`) and can prefer a smoother model;
- **equivariance error** on the validation slices,
  :math:`\|f(A T_g f(y)) - T_g f(y)\| / \|T_g f(y)\|` with group elements drawn from a fixed
  seed (the same at every evaluation);
- **MC residual** :math:`\|A f(y) - y\| / \|y\|`;
- for noisy sets, **SURE** of the data term, :math:`\widehat{\mathrm{SURE}} / E_y`, an
  unbiased estimate of :math:`\frac1m\|Af(y) - Ax\|^2 / E_y`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "ValidationScores",
    "PRIMARY_SCORE",
    "HELDOUT_SCORE",
    "linear_reconstructor",
    "ramp_energy",
]

#: The score that selects checkpoints, models and :math:`\alpha` (lower is better): the
#: ramp-weighted held-out-view error (see the module documentation).
PRIMARY_SCORE = "heldout_view_error_ramp"
#: The plain held-out-view error, reported beside it.
HELDOUT_SCORE = "heldout_view_error"


def ramp_energy(sinogram: torch.Tensor) -> float:
    r""":math:`\sum |\omega|\,|\hat r(\omega)|^2` over every view of ``sinogram``
    ``(..., views, detectors)``, the FFT along the detector zero-padded to twice its length."""
    n = sinogram.shape[-1]
    spectrum = torch.fft.rfft(sinogram.double(), n=2 * n, dim=-1)
    weight = torch.arange(spectrum.shape[-1], dtype=torch.float64, device=sinogram.device)
    return float((spectrum.abs().pow(2) * weight).sum())


def linear_reconstructor(y: torch.Tensor, physics: Any) -> torch.Tensor:
    r""":math:`A^\dagger y` (FBP for CT), a reconstructor to score as the reference."""
    return physics.A_dagger(y)


class ValidationScores:
    r"""The scores of a reconstructor on validation slices, called as ``scores(model)``.

    :param physics: the training views' physics :math:`A`.
    :param torch.Tensor y: the validation slices' measurements, ``(N, 1, views, detectors)``.
    :param heldout_physics: the held-out views' physics :math:`A_h`, or ``None``.
    :param torch.Tensor y_heldout: the held-out views of the same slices, or ``None``.
    :param transform_factory: ``rng -> transform``, the group action of the equivariance error
        built around a generator seeded with ``seed`` at every call; ``None`` skips that score.
    :param sure: a SURE loss (``loss(y=, x_net=, physics=, model=)``, per sample) for noisy
        data, or ``None``.
    :param int batch: slices per forward pass.
    :param int seed: seed of the group elements and SURE probes.
    """

    def __init__(
        self,
        physics: Any,
        y: torch.Tensor,
        heldout_physics: Any = None,
        y_heldout: torch.Tensor | None = None,
        transform_factory: Callable[[torch.Generator], Callable] | None = None,
        sure: Any = None,
        batch: int = 8,
        seed: int = 0,
    ):
        if not isinstance(y, torch.Tensor) or y.ndim != 4 or len(y) == 0:
            raise ValueError(
                f"validation measurements must be a non-empty (N, 1, views, detectors) tensor, "
                f"got {getattr(y, 'shape', type(y).__name__)}"
            )
        if (heldout_physics is None) != (y_heldout is None):
            raise ValueError("give both heldout_physics and y_heldout, or neither")
        if y_heldout is not None and len(y_heldout) != len(y):
            raise ValueError(
                f"y_heldout has {len(y_heldout)} slices but y has {len(y)}; expected the same"
            )
        self.physics = physics
        self.y = y
        self.heldout_physics = heldout_physics
        self.y_heldout = y_heldout
        self.transform_factory = transform_factory
        self.sure = sure
        self.batch = int(batch)
        self.seed = int(seed)
        self.names = tuple(
            name
            for name, present in (
                (PRIMARY_SCORE, y_heldout is not None),
                (HELDOUT_SCORE, y_heldout is not None),
                ("equivariance_error", transform_factory is not None),
                ("mc_residual", True),
                ("sure", sure is not None),
            )
            if present
        )

    def _batches(self):
        for start in range(0, len(self.y), self.batch):
            stop = start + self.batch
            held = None if self.y_heldout is None else self.y_heldout[start:stop]
            yield self.y[start:stop], held

    def __call__(self, model: Callable) -> dict[str, float]:
        """The scores of ``model`` (called as ``model(y, physics)``), in :attr:`names`."""
        device = _device_of(model, self.y)
        keys = ("hv", "hv_ref", "hr", "hr_ref", "eq", "eq_ref", "mc", "mc_ref", "sure")
        sums = dict.fromkeys(keys, 0.0)
        rng = torch.Generator(device="cpu").manual_seed(self.seed)
        transform = None if self.transform_factory is None else self.transform_factory(rng)
        sure_rng = getattr(self.sure, "rng", None)
        if sure_rng is not None:
            sure_rng.manual_seed(self.seed)
        for y, held in self._batches():
            y = y.to(device)
            with torch.no_grad():
                x = model(y, self.physics)
                residual = self.physics.A(x) - y
                sums["mc"] += _sq(residual)
                sums["mc_ref"] += _sq(y)
                if held is not None:
                    held = held.to(device)
                    residual_h = self.heldout_physics.A(x) - held
                    sums["hv"] += _sq(residual_h)
                    sums["hv_ref"] += _sq(held)
                    sums["hr"] += ramp_energy(residual_h)
                    sums["hr_ref"] += ramp_energy(held)
                if transform is not None:
                    x2 = transform(x)
                    x3 = model(self.physics.A(x2), self.physics)
                    sums["eq"] += _sq(x3 - x2)
                    sums["eq_ref"] += _sq(x2)
            if self.sure is not None:
                # SURE probes the model by finite differences: no gradients needed either
                with torch.no_grad():
                    est = self.sure(y=y, x_net=x, physics=self.physics, model=model)
                sums["sure"] += float(est.double().sum()) * y[0].numel()
        out = {"mc_residual": (sums["mc"] / sums["mc_ref"]) ** 0.5}
        if self.y_heldout is not None:
            out[HELDOUT_SCORE] = (sums["hv"] / sums["hv_ref"]) ** 0.5
            out[PRIMARY_SCORE] = (sums["hr"] / sums["hr_ref"]) ** 0.5
        if transform is not None:
            out["equivariance_error"] = (sums["eq"] / sums["eq_ref"]) ** 0.5
        if self.sure is not None:
            out["sure"] = sums["sure"] / sums["mc_ref"]
        return {name: float(out[name]) for name in self.names}


def _sq(t: torch.Tensor) -> float:
    return float(t.double().pow(2).sum())


def _device_of(model: Any, like: torch.Tensor) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
    return like.device

r"""Image-quality metrics, per image.

Two PSNR conventions are reported, both from deepinv's :func:`deepinv.loss.metric.cal_psnr`
(computed in float64):

- standard, data range 1: :math:`10\log_{10}(1/\mathrm{MSE}(x, \hat x))`;
- the EI seed code's: :math:`20\log_{10}\big(\sqrt{HW}\,\max|x| / \|x - \hat x\|_2\big)` with the
  norm and the max over the whole :math:`C\times H\times W` tensor, which is the standard PSNR
  at peak :math:`\max|x|` minus :math:`10\log_{10} C` (4.77 dB for RGB).

deepinv adds :math:`10^{-8}` to :math:`\mathrm{MSE}/\text{peak}^2`, so values are at most 80 dB
and lie :math:`10\log_{10}(1 + 10^{\mathrm{PSNR}/10 - 8})` dB below the closed forms above:
below :math:`5\cdot 10^{-4}` dB up to 40 dB.
"""

from __future__ import annotations

import math

import deepinv as dinv
import torch
from deepinv.loss.metric import cal_psnr


def _check(x: torch.Tensor, x_hat: torch.Tensor) -> None:
    if x.shape != x_hat.shape or x.ndim != 4:
        raise ValueError(
            f"expected two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}"
        )


def psnr(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Standard PSNR (data range 1) of each image of the batch, in dB."""
    _check(x, x_hat)
    return cal_psnr(x_hat.double(), x.double(), max_pixel=1.0).float()


def psnr_seed_convention(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    r""":math:`20\log_{10}(\sqrt{HW}\max|x| / \|x-\hat x\|)` per image (the EI code's PSNR)."""
    _check(x, x_hat)
    peak = x.double().abs().flatten(1).amax(1)
    standard_at_peak = cal_psnr(x_hat.double(), x.double(), max_pixel=peak)
    return (standard_at_peak - 10 * math.log10(x.shape[1])).float()


_SSIM = dinv.loss.metric.SSIM(max_pixel=1.0)


def ssim(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """SSIM (data range 1) of each image (deepinv's, Gaussian window)."""
    _check(x, x_hat)
    return _SSIM(x_hat, x)


def summarise(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation (0 for one value)."""
    v = values.double()
    return float(v.mean()), float(v.std()) if v.numel() > 1 else 0.0


def image_metrics(x: torch.Tensor, x_hat: torch.Tensor, physics=None) -> dict:
    r"""Mean and standard deviation of PSNR (both conventions) and SSIM over the images, and,
    with ``physics``, the range / nullspace split of the error
    (:func:`~deepinv_ei.experiments.reproduce.error_split.error_split`) under ``"split"``."""
    entry: dict = {}
    for name, fn in (("psnr", psnr), ("psnr_seed", psnr_seed_convention), ("ssim", ssim)):
        mean, std = summarise(fn(x, x_hat).cpu())
        entry[name], entry[f"{name}_std"] = round(mean, 4), round(std, 4)
    if physics is not None:
        from .error_split import error_split

        entry["split"] = error_split(physics, x, x_hat)
    return entry

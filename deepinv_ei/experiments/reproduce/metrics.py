r"""Image-quality metrics, per image.

Two PSNR conventions are reported:

- standard, data range 1: :math:`10\log_{10}(1/\mathrm{MSE}(x, \hat x))`;
- the EI seed code's: :math:`20\log_{10}\big(\sqrt{HW}\,\max|x| / \|x - \hat x\|_2\big)` with the
  norm and the max over the whole :math:`C\times H\times W` tensor. For RGB this is the standard
  PSNR minus :math:`10\log_{10} 3 \approx 4.77` dB (times the peak :math:`\max|x|` instead of 1).
"""

from __future__ import annotations

import math

import deepinv as dinv
import torch


def _check(x: torch.Tensor, x_hat: torch.Tensor) -> None:
    if x.shape != x_hat.shape or x.ndim != 4:
        raise ValueError(
            f"expected two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}"
        )


def psnr(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Standard PSNR (data range 1) of each image of the batch, in dB."""
    _check(x, x_hat)
    mse = (x - x_hat).double().pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse)).float()


def psnr_seed_convention(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    r""":math:`20\log_{10}(\sqrt{HW}\max|x| / \|x-\hat x\|)` per image (the EI code's PSNR)."""
    _check(x, x_hat)
    h, w = x.shape[-2:]
    peak = x.double().abs().flatten(1).amax(1)
    err = (x - x_hat).double().flatten(1).norm(dim=1)
    return (20 * torch.log10(math.sqrt(h * w) * peak / err)).float()


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

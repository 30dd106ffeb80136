"""The reproduction's PSNRs (deepinv's ``cal_psnr``) against their closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import seeded

from deepinv_ei.experiments.reproduce.metrics import psnr, psnr_seed_convention


def _closed_forms(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard PSNR at data range 1, and the seed code's 20 log10(sqrt(HW) max|x| / ||e||)."""
    x, x_hat = x.double(), x_hat.double()
    err = (x - x_hat).flatten(1)
    standard = 10 * torch.log10(1 / err.pow(2).mean(1))
    h, w = x.shape[-2:]
    peak = x.abs().flatten(1).amax(1)
    seed = 20 * torch.log10(math.sqrt(h * w) * peak / err.norm(dim=1))
    return standard, seed


def _epsilon_gap(value: torch.Tensor) -> torch.Tensor:
    """How far below the closed form deepinv's 1e-8 in MSE / peak^2 puts a PSNR."""
    return 10 * torch.log10(1 + 10 ** (value / 10 - 8))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("noise", [0.3, 0.05, 0.01])
def test_psnrs_agree_with_their_closed_forms(channels, noise):
    gen = seeded(channels)
    x = 2 * torch.rand(4, channels, 12, 10, generator=gen) - 0.5  # negative values: |x| counts
    x_hat = x + noise * torch.randn(x.shape, generator=gen)
    standard, seed = _closed_forms(x, x_hat)
    assert bool((standard < 41).all())
    ours, ours_seed = psnr(x, x_hat).double(), psnr_seed_convention(x, x_hat).double()
    # float32 results: a few 1e-6 dB of rounding besides deepinv's epsilon
    torch.testing.assert_close(ours, standard - _epsilon_gap(standard), rtol=0, atol=1e-5)
    seed_peak = seed + 10 * math.log10(channels)  # the standard PSNR at peak max|x|
    torch.testing.assert_close(ours_seed, seed - _epsilon_gap(seed_peak), rtol=0, atol=1e-5)
    assert float((ours - standard).abs().max()) < 5e-4  # below 40 dB


def test_identical_images_give_deepinvs_80_db():
    x = torch.rand(2, 3, 8, 8)
    x[:, :, 0, 0] = 1.0
    torch.testing.assert_close(psnr(x, x.clone()), torch.full((2,), 80.0))
    torch.testing.assert_close(
        psnr_seed_convention(x, x.clone()), torch.full((2,), 80.0 - 10 * math.log10(3))
    )

"""The paper's residual UNet and the reconstructor f = G(A^dagger y)."""

from __future__ import annotations

import deepinv as dinv
import pytest
import torch
from conftest import seeded

from deepinv_ei.models import EIUNet, ei_reconstructor


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_size_is_about_8_6_million_parameters():
    # The reference counts ~8.6 M parameters in the public code's UNet (1 channel, width 64).
    assert 8.5e6 < n_params(EIUNet(in_channels=1, width=64)) < 8.7e6


def test_width_scales_parameters_quadratically():
    # Conv weights dominate: halving every width divides the count by about 4.
    ratio = n_params(EIUNet(width=32)) / n_params(EIUNet(width=16))
    assert 3.8 < ratio < 4.1


def test_zero_init_makes_g_the_identity_and_still_trains():
    torch.manual_seed(0)
    g = EIUNet(in_channels=3, width=4, zero_init=True)
    u = torch.rand(2, 3, 24, 24)
    assert torch.equal(g(u), u)
    loss = (g(u) - u.flip(-1)).pow(2).mean()
    loss.backward()
    assert g.Conv_1x1.weight.grad.abs().sum() > 0  # the zeroed layer receives gradient


def test_random_init_is_residual_but_not_identity():
    torch.manual_seed(0)
    g = EIUNet(width=4)
    u = torch.rand(1, 1, 16, 16)
    assert not torch.allclose(g(u), u)


@pytest.mark.parametrize("size", [(16, 16), (20, 28)])
def test_output_shape_matches_input_even_when_not_divisible_by_8(size):
    g = EIUNet(width=4).eval()
    u = torch.rand(1, 1, *size)
    assert g(u).shape == u.shape


def test_reconstructor_with_zero_init_is_the_pseudo_inverse():
    physics = dinv.physics.CompressedSensing(m=20, img_size=(1, 8, 8), rng=seeded(0))
    f = ei_reconstructor(EIUNet(width=4, zero_init=True)).eval()
    y = physics(torch.rand(3, 1, 8, 8))
    assert torch.allclose(f(y, physics), physics.A_dagger(y), atol=1e-6)


@pytest.mark.parametrize("kw", [{"width": 0}, {"scales": 1}, {"in_channels": 1.5}])
def test_bad_hyperparameters_raise_value_error(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        EIUNet(**kw)


def test_wrong_channel_count_raises_value_error():
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        EIUNet(in_channels=1, width=4)(torch.rand(1, 3, 16, 16))


def test_reconstructor_rejects_a_non_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        ei_reconstructor(lambda u: u)

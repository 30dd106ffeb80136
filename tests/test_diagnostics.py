"""Known answers of deepinv_ei.diagnostics: identifiability and equivariance_error."""

from __future__ import annotations

import deepinv as dinv
import numpy as np
import pytest
import torch
from conftest import seeded
from odl_cases import parallel_setup

from deepinv_ei.diagnostics import IdentifiabilityReport, equivariance_error, identifiability
from deepinv_ei.odl import ray_transform_physics
from deepinv_ei.transforms import Dihedral, Reflect, Rotate, Shift

IDENTITY_SHIFT = {"y_shift": [0], "x_shift": [0]}


@pytest.fixture(scope="module")
def inpainting():
    return dinv.physics.Inpainting((1, 10, 10), mask=0.6, rng=seeded(0))


def test_inpainting_alone_has_rank_m_and_is_not_identifiable(inpainting):
    kept = int(inpainting.mask.sum())
    r = identifiability(inpainting, Shift(), (1, 10, 10), group_elements=IDENTITY_SHIFT)
    assert isinstance(r, IdentifiabilityReport)
    assert r.method == "dense" and r.group_size == 1
    assert r.rank == kept == r.rank_A and r.nullity == 100 - kept
    assert not r.identifiable
    np.testing.assert_allclose(r.eigenvalues, 0.0, atol=1e-12)


def test_inpainting_with_all_shifts_is_identifiable(inpainting):
    r = identifiability(inpainting, Shift(), (1, 10, 10))
    assert r.group_size == 100 and r.rank == 100 and r.identifiable
    assert not r.operator_is_equivariant
    # Averaging a diagonal mask over all shifts gives (kept fraction) * identity.
    frac = int(inpainting.mask.sum()) / 100
    np.testing.assert_allclose(r.eigenvalues, frac, rtol=1e-10)
    np.testing.assert_allclose(r.largest_eigenvalue, frac, rtol=1e-10)
    text = str(r)
    assert "IDENTIFIABLE" in text and "rank [A T_g]_g = 100 / 100" in text


def test_compressed_sensing_with_shifts():
    cs = dinv.physics.CompressedSensing(m=30, img_size=(1, 8, 8), rng=seeded(0))
    alone = identifiability(cs, Shift(), (1, 8, 8), group_elements=IDENTITY_SHIFT)
    assert alone.rank == 30 and not alone.identifiable
    # m * G = 30 * 3 >= 64: a few shifts suffice for a generic Gaussian A.
    few = {"y_shift": [0, 1, 3], "x_shift": [0, 2, 5]}
    r = identifiability(cs, Shift(), (1, 8, 8), group_elements=few)
    assert r.group_size == 3 and r.identifiable and r.rank == 64
    # Two elements (m * G = 60 < 64) cannot be enough.
    two = {"y_shift": [0, 1], "x_shift": [0, 2]}
    assert identifiability(cs, Shift(), (1, 8, 8), group_elements=two).rank == 60


def test_identity_is_added_when_missing():
    cs = dinv.physics.CompressedSensing(m=20, img_size=(1, 6, 6), rng=seeded(1))
    one = {"y_shift": [2], "x_shift": [1]}
    with_id = identifiability(cs, Shift(), (1, 6, 6), group_elements=one)
    without = identifiability(cs, Shift(), (1, 6, 6), group_elements=one, include_identity=False)
    assert with_id.group_size == 2 and with_id.rank == 36
    assert without.group_size == 1 and without.rank == 20


def test_circular_blur_with_shifts_is_equivariant_and_not_identifiable():
    # [0.5, 0.5] along the columns: its transfer function vanishes at Nyquist (even width).
    kernel = torch.zeros(1, 1, 1, 2)
    kernel[..., 0, :] = 0.5
    blur = dinv.physics.BlurFFT((1, 8, 8), filter=kernel)
    r = identifiability(blur, Shift(), (1, 8, 8))
    assert r.operator_is_equivariant and r.equivariance_defect < 1e-10
    assert r.rank == r.rank_A == 56 and not r.identifiable  # one zero per row frequency
    assert "WARNING" in str(r)
    # It is not equivariant to quarter turns, which fill its nullspace except for the
    # checkerboard (Nyquist in both axes), killed by the blur in both orientations.
    r = identifiability(blur, Rotate(multiples=90), (1, 8, 8))
    assert not r.operator_is_equivariant and r.rank == 63
    checker = (-1.0) ** (torch.arange(8)[:, None] + torch.arange(8)[None, :])
    assert blur.A(checker[None, None]).abs().max() < 1e-6


def _ct_physics(n, views):
    return ray_transform_physics(parallel_setup(n, views))


def test_ct_with_rotations():
    # 4 views at 22.5 + 45 k degrees: a quarter turn maps the view set onto itself.
    sym = identifiability(_ct_physics(16, 4), Rotate(multiples=90), (1, 16, 16), method="dense")
    assert sym.operator_is_equivariant and not sym.identifiable and sym.rank == sym.rank_A
    # 9 views (odd): quarter turns add 9 new directions, 18 x 25 rays > 256 pixels.
    r = identifiability(_ct_physics(16, 9), Rotate(multiples=90), (1, 16, 16), method="dense")
    assert r.rank_A < 256 and r.identifiable and not r.operator_is_equivariant


def test_dense_and_iterative_agree():
    cs = dinv.physics.CompressedSensing(m=150, img_size=(1, 20, 20), rng=seeded(0))
    T = Shift(shift_max=0.05)  # offsets {-1, 0} per axis on 20 x 20
    dense = identifiability(cs, T, (1, 20, 20), method="dense")
    it = identifiability(cs, T, (1, 20, 20), method="iterative")
    assert it.method == "iterative" and it.rank_is_estimate and it.converged
    assert dense.identifiable and it.identifiable
    np.testing.assert_allclose(it.eigenvalues[:3], dense.eigenvalues[:3], rtol=1e-3)
    np.testing.assert_allclose(it.largest_eigenvalue, dense.largest_eigenvalue, rtol=1e-2)
    # ... and on a singular case the iterative method finds the nullspace.
    inp = dinv.physics.Inpainting((1, 12, 12), mask=0.6, rng=seeded(2))
    singular = identifiability(inp, Reflect(), (1, 12, 12), method="iterative", k=4)
    dense = identifiability(inp, Reflect(), (1, 12, 12), method="dense")
    assert not dense.identifiable
    assert not singular.identifiable and singular.nullity >= 1


def test_equivariance_error_known_answers():
    x = torch.rand(3, 1, 8, 8, generator=seeded(0))
    blur = dinv.physics.BlurFFT((1, 8, 8), filter=dinv.physics.blur.gaussian_blur(0.8))

    def pinv(y, physics):
        return physics.A_dagger(y)

    T = Shift(n_trans=2, rng=seeded(1))
    assert equivariance_error(pinv, blur, T, x) < 1e-4
    assert equivariance_error(pinv, blur, Dihedral(rng=seeded(1)), x) < 1e-4  # symmetric kernel
    inp = dinv.physics.Inpainting((1, 8, 8), mask=0.5, rng=seeded(3))
    assert equivariance_error(pinv, inp, Shift(nonzero=True, rng=seeded(1)), x) > 0.3


def test_bad_inputs(inpainting):
    with pytest.raises(TypeError, match="callable A"):
        identifiability(object(), Shift(), (1, 10, 10))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        identifiability(inpainting, Shift(), (10, 10))
    with pytest.raises(ValueError, match="positive integers"):
        identifiability(inpainting, Shift(), (1, 0, 10))
    with pytest.raises(TypeError, match=r"\(C, H, W\)"):
        identifiability(inpainting, Shift(), 10)
    with pytest.raises(ValueError, match="method"):
        identifiability(inpainting, Shift(), (1, 10, 10), method="svd")
    with pytest.raises(TypeError, match="GroupTransform"):
        identifiability(inpainting, dinv.transform.Shift(), (1, 10, 10))
    with pytest.raises(ValueError, match="expects parameters"):
        identifiability(inpainting, Shift(), (1, 10, 10), group_elements={"theta": [0.0]})
    with pytest.raises(ValueError, match="square"):
        identifiability(inpainting, Rotate(multiples=90), (1, 10, 12))

    class NoAdjoint:
        def A(self, x):
            return x

    with pytest.raises(TypeError, match="A_adjoint"):
        identifiability(NoAdjoint(), Shift(), (1, 4, 4), method="iterative")
    with pytest.raises(TypeError, match="callable A"):
        equivariance_error(lambda y, p: y, object(), Shift(), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="4D"):
        equivariance_error(lambda y, p: y, inpainting, Shift(), torch.zeros(4, 4))


@pytest.mark.parametrize("method", ["dense", "iterative"])
def test_identifiability_of_a_nan_physics_is_a_clear_error(method):
    physics = dinv.physics.CompressedSensing(m=20, img_size=(1, 8, 8), rng=seeded(0))
    physics._A.data[3, 7] = float("nan")
    with pytest.raises(ValueError, match="physics.A returned 1 NaN or infinite values"):
        identifiability(physics, Shift(), (1, 8, 8), method=method, k=3)


def test_dense_identifiability_estimates_its_memory_first():
    physics = dinv.physics.Inpainting((1, 128, 128), mask=0.5, rng=seeded(0))
    with pytest.raises(ValueError, match=r"needs about 16\.0 GiB.*method='iterative'"):
        identifiability(physics, Shift(), (1, 128, 128), method="dense")
    small = dinv.physics.Inpainting((1, 8, 8), mask=0.5, rng=seeded(0))
    with pytest.raises(ValueError, match="max_dense_bytes"):
        identifiability(small, Shift(), (1, 8, 8), method="dense", max_dense_bytes=10_000)
    assert identifiability(small, Shift(), (1, 8, 8), method="dense").identifiable

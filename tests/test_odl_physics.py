"""OdlPhysics and ray_transform_physics: deepinv compatibility, FBP against ODL, bad input."""

from __future__ import annotations

import deepinv as dinv
import numpy as np
import odl
import pytest
import torch
from conftest import seeded
from odl.applications.tomo import RayTransform, fbp_op, parallel_beam_geometry
from odl_cases import parallel_setup, ray_transform

from deepinv_ei.odl import FilteredBackProjection, OdlPhysics, OperatorModule, ray_transform_physics
from deepinv_ei.odl.backends import system_matrix


def _psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(ref.max() ** 2 / np.mean((x - ref) ** 2)))


def test_physics_works_with_deepinv_tools():
    ray = ray_transform("parallel_cells")
    physics = OdlPhysics(ray, noise_model=dinv.physics.GaussianNoise(sigma=0.1))
    x = torch.rand(2, 3, *ray.domain.shape)
    assert physics.A(x).shape == (2, 3, *ray.range.shape)
    # deepinv's estimate is random and in the input's dtype: exact to rounding in float64, and
    # at float32's level (a few 1e-6, a noisy estimate) in float32.
    torch.manual_seed(0)
    assert abs(float(physics.adjointness_test(x.double()))) < 1e-10
    assert abs(float(physics.adjointness_test(x))) < 1e-4
    # noise is added by physics(x), not by physics.A(x)
    assert not torch.allclose(physics(x), physics.A(x))
    # ||A||^2 by deepinv's power method = largest eigenvalue of the system matrix's Gram matrix
    mat = system_matrix(ray)
    from scipy.sparse.linalg import svds

    sigma_max = svds(mat, k=1, return_singular_vectors=False)[0]
    norm = float(
        physics.compute_norm(
            torch.rand(1, 1, *ray.domain.shape), max_iter=200, tol=1e-7, verbose=False
        )
    )
    assert norm == pytest.approx(sigma_max**2, rel=1e-3)


def test_least_squares_solver_recovers_image_of_overdetermined_problem():
    space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
    physics = OdlPhysics(
        RayTransform(space, parallel_beam_geometry(space, num_angles=40), impl="astra_cpu")
    )
    x = torch.rand(1, 1, 16, 16, generator=seeded(0), dtype=torch.float64)
    x_ls = physics.A_dagger(physics.A(x), solver="CG", max_iter=500, tol=1e-10)
    assert float((x_ls - x).norm() / x.norm()) < 1e-3


@pytest.mark.parametrize("kind", ["parallel", "parallel_cells", "fan"])
@pytest.mark.parametrize("filter_type", ["Ram-Lak", "Hann"])
def test_fbp_with_odl_design_reproduces_odl_fbp_op(kind, filter_type):
    ray = ray_transform(kind)
    physics = ray_transform_physics(
        ray, filter_type=filter_type, frequency_scaling=0.9, filter_design="odl"
    )
    y = np.random.default_rng(0).random(ray.range.shape, dtype=np.float32)
    ref = np.asarray(fbp_op(ray, filter_type=filter_type, frequency_scaling=0.9)(y).asarray())
    ours = physics.A_dagger(torch.from_numpy(y)[None, None])[0, 0].numpy()
    assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) < 1e-4


@pytest.fixture(scope="module")
def shepp_logan_128():
    space = odl.uniform_discr([-1, -1], [1, 1], (128, 128), dtype="float32")
    x = np.asarray(odl.core.phantom.shepp_logan(space, modified=True).asarray())
    return space, x


@pytest.mark.parametrize("design", ["kak-slaney", "odl"])
def test_fbp_of_phantom_reaches_stated_psnr(shepp_logan_128, design):
    """Modified Shepp-Logan, 128^2, 180 views, Ram-Lak: >= 25 dB (ODL's own fbp_op: 25.5 dB)."""
    space, x = shepp_logan_128
    physics = ray_transform_physics(
        (space, parallel_beam_geometry(space, num_angles=180)), filter_design=design
    )
    xt = torch.from_numpy(x)[None, None]
    x_fbp = physics.A_dagger(physics.A(xt))[0, 0].numpy()
    assert _psnr(x_fbp, x) >= 25.0


def test_kak_slaney_design_is_at_least_as_good_as_odl_design(shepp_logan_128):
    space, x = shepp_logan_128
    ray = RayTransform(space, parallel_beam_geometry(space, num_angles=60), impl="astra_cpu")
    xt = torch.from_numpy(x)[None, None]
    y = OperatorModule(ray)(xt)
    psnrs = {
        d: _psnr(ray_transform_physics(ray, filter_design=d).A_dagger(y)[0, 0].numpy(), x)
        for d in ("kak-slaney", "odl")
    }
    assert psnrs["kak-slaney"] >= psnrs["odl"] - 0.05


def test_fbp_is_linear_differentiable_and_batched():
    ray = ray_transform("fan")
    fbp = ray_transform_physics(ray).fbp
    y = torch.rand(3, 2, *ray.range.shape, dtype=torch.float64, requires_grad=True)
    out = fbp(y)
    assert out.shape == (3, 2, *ray.domain.shape)
    torch.testing.assert_close(out[1, 0], fbp(y[1, 0].detach()))
    tiny_fbp = ray_transform_physics(parallel_setup(6, 4)).fbp
    y_tiny = torch.rand(1, *tiny_fbp.ray.out_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tiny_fbp, (y_tiny,), eps=1e-6, atol=1e-6)


def test_physics_from_space_geometry_pair_and_backend_choice():
    space, geometry = parallel_setup(16, 10)
    physics = ray_transform_physics((space, geometry), backend="astra")
    assert physics.operator.backend_name() == "astra"
    assert physics.geometry is geometry


def test_bad_ray_transform_inputs_are_named():
    space, geometry = parallel_setup(16, 10)
    with pytest.raises(TypeError, match="RayTransform or a \\(space, geometry\\) tuple, got str"):
        ray_transform_physics("ct")
    with pytest.raises(TypeError, match="got geometry of type int"):
        ray_transform_physics((space, 3))
    space3d = odl.uniform_discr([-1] * 3, [1] * 3, (4, 4, 4))
    with pytest.raises(ValueError, match="space is 3D .* geometry is 2D"):
        ray_transform_physics((space3d, geometry))
    physics = ray_transform_physics((space, geometry))
    with pytest.raises(ValueError, match=r"sinogram of shape \(\*batch, 10, 25\)"):
        physics.A_dagger(torch.zeros(1, 1, 10, 22))
    with pytest.raises(ValueError, match="unknown filter_type 'box'"):
        ray_transform_physics((space, geometry), filter_type="box")
    with pytest.raises(ValueError, match="frequency_scaling <= 1, got 1.5"):
        ray_transform_physics((space, geometry), frequency_scaling=1.5)
    with pytest.raises(TypeError, match="not of its transpose"):
        FilteredBackProjection(OperatorModule(physics.odl_op).T)

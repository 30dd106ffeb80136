"""The range / nullspace split of reconstruction errors, against dense pseudo-inverses."""

from __future__ import annotations

import deepinv as dinv
import numpy as np
import pytest
import torch
from conftest import seeded

from deepinv_ei.experiments.reproduce.error_split import (
    error_split,
    range_projection,
    range_projection_cg,
)
from deepinv_ei.experiments.reproduce.tasks import cs_physics, ct_physics, inpainting_physics


def dense_matrix(physics, shape: tuple[int, ...]) -> np.ndarray:
    """The matrix of ``physics.A`` on ``shape`` images, column by column."""
    n = int(np.prod(shape))
    basis = torch.eye(n, dtype=torch.float32).reshape(n, *shape)
    return physics.A(basis).reshape(n, -1).T.double().numpy()


def dense_projector(a: np.ndarray) -> np.ndarray:
    return np.linalg.pinv(a, rcond=1e-10) @ a


@pytest.mark.parametrize(("size", "views"), [(16, 6), (20, 9)])
def test_ct_range_projection_matches_dense_pinv(size, views):
    physics = ct_physics(size, views)
    p_dense = dense_projector(dense_matrix(physics, (1, size, size)))
    rank = np.linalg.matrix_rank(p_dense, tol=1e-6)
    assert 0 < rank < size * size  # under-determined: a nontrivial nullspace
    e = torch.randn(3, 1, size, size, generator=seeded(1), dtype=torch.float64)
    # singular values down to ~2e-4 sigma_max: the residual must be tight to resolve them
    z, info = range_projection_cg(physics, e, tol=1e-11, max_iter=3000)
    ref = e.reshape(3, -1).numpy() @ p_dense.T
    err = np.linalg.norm(z.reshape(3, -1).numpy() - ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert info.relative_residual <= 1e-11
    assert err.max() < 1e-6, err
    # the float32 entry point (CG in float64 inside) agrees to float32 accuracy
    z32, _ = range_projection(physics, e.float(), tol=1e-11, max_iter=3000)
    assert np.abs(z32.double().reshape(3, -1).numpy() - ref).max() < 1e-4 * np.abs(ref).max()


def test_ct_split_is_orthogonal_and_invisible_to_a():
    physics = ct_physics(16, 6)
    e = torch.randn(2, 1, 16, 16, generator=seeded(2), dtype=torch.float64)
    pr, _ = range_projection_cg(physics, e, tol=1e-10, max_iter=3000)
    pn = e - pr
    assert abs(float((pr * pn).sum())) < 1e-4 * float((e * e).sum())
    a_pn = physics.A(pn.float()).norm() / physics.A(e.float()).norm()
    assert a_pn < 1e-3  # the nullspace part is (numerically) not measured
    pr2, _ = range_projection_cg(physics, pr, tol=1e-10, max_iter=3000)
    assert (pr2 - pr).norm() < 1e-3 * pr.norm()  # a projector


def test_inpainting_projection_is_the_mask_and_exact():
    physics = inpainting_physics(3, 8, 0.3, seed=0)
    e = torch.randn(2, 3, 8, 8, generator=seeded(3))
    pr, info = range_projection(physics, e)
    assert info is None
    p_dense = dense_projector(dense_matrix(physics, (3, 8, 8)))
    ref = e.reshape(2, -1).double().numpy() @ p_dense.T
    assert np.abs(pr.reshape(2, -1).double().numpy() - ref).max() < 1e-6


def test_cs_projection_matches_dense_pinv():
    physics = cs_physics(8, 20, seed=0)
    e = torch.randn(4, 1, 8, 8, generator=seeded(4))
    pr, info = range_projection(physics, e)
    assert info is None
    p_dense = dense_projector(dense_matrix(physics, (1, 8, 8)))
    assert np.linalg.matrix_rank(p_dense, tol=1e-6) == 20
    ref = e.reshape(4, -1).double().numpy() @ p_dense.T
    assert np.abs(pr.reshape(4, -1).double().numpy() - ref).max() < 1e-4


def test_error_split_parts_add_up_to_the_psnr():
    physics = ct_physics(16, 6)
    x = torch.rand(1, 1, 16, 16, generator=seeded(5))
    x_hat = physics.A_dagger(physics(x))
    s = error_split(physics, x, x_hat, tol=1e-9, max_iter=3000)
    mse = float((x - x_hat).double().pow(2).mean())
    total = 10 ** (-s["range_psnr"] / 10) + 10 ** (-s["null_psnr"] / 10)
    assert total == pytest.approx(mse, rel=1e-3)
    assert s["range_fraction"] + s["null_fraction"] == pytest.approx(1.0, abs=1e-3)
    assert s["cg_iterations"] > 0
    # MC's blind spot: adding a nullspace vector changes only the nullspace part
    null_vec = torch.randn(x.shape, generator=seeded(6))
    null_vec = null_vec - range_projection(physics, null_vec, tol=1e-9, max_iter=3000)[0]
    s2 = error_split(
        physics, x, x_hat + 0.1 * null_vec / null_vec.norm() * x.norm(), tol=1e-9, max_iter=3000
    )
    assert s2["range_norm"] == pytest.approx(s["range_norm"], rel=1e-2)
    assert s2["null_norm"] != pytest.approx(s["null_norm"], rel=1e-2)


def test_inpainting_mc_error_is_all_nullspace():
    physics = dinv.physics.Inpainting(img_size=(1, 8, 8), mask=0.5, rng=seeded(0))
    x = torch.rand(3, 1, 8, 8)
    s = error_split(physics, x, physics.A_dagger(physics(x)))
    assert s["range_norm"] == 0.0 and s["null_fraction"] == 1.0
    assert s["cg_iterations"] is None


def test_error_split_rejects_mismatched_shapes():
    physics = ct_physics(16, 6)
    with pytest.raises(ValueError, match="one shape"):
        error_split(physics, torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 15))
    with pytest.raises(ValueError, match="tol"):
        range_projection_cg(physics, torch.rand(2, 1, 16, 16), tol=0)


class _Diagonal:
    """A = diag(d) on (B, n) tensors: A^T A has the distinct eigenvalues of d**2."""

    def __init__(self, d: torch.Tensor):
        self.d = d

    def A(self, x):
        return x * self.d

    def A_adjoint(self, y):
        return y * self.d


def test_cg_iterations_are_counted_exactly():
    # CG needs as many iterations as A^T A has distinct eigenvalues (here 3) on the support of e.
    d = torch.tensor([1.0, 1.0, 2.0, 3.0, 0.0], dtype=torch.float64).repeat(2, 1)
    e = torch.randn(2, 5, generator=seeded(7), dtype=torch.float64)
    z, info = range_projection_cg(_Diagonal(d), e, tol=1e-10, max_iter=50)
    assert info.iterations == 3 and info.relative_residual <= 1e-10
    torch.testing.assert_close(z, e * (d != 0))  # the nullspace coordinate is left out
    # An ill-conditioned system at an unreachable tolerance runs to the cap, across the residual
    # refreshes after the 101st and 201st iterations.
    wide = torch.logspace(0, -3, 400, dtype=torch.float64).repeat(2, 1)
    e = torch.randn(2, 400, generator=seeded(8), dtype=torch.float64)
    for cap in (101, 150, 201, 250):
        assert (
            range_projection_cg(_Diagonal(wide), e, tol=1e-300, max_iter=cap)[1].iterations == cap
        )

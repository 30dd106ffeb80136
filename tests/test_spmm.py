"""The CPU sparse-times-dense kernels of the matrix backend: every kernel against float64 SciPy."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from odl_cases import ray_transform

from deepinv_ei.odl import OperatorModule
from deepinv_ei.odl.backends import spmm
from deepinv_ei.odl.backends.spmm import CsrMatrix, available_kernels, resolve_kernel

KERNELS = available_kernels()
# Widths around every vector width, chunk edge and the one-column path.
WIDTHS = (1, 2, 3, 4, 5, 8, 9, 16, 17, 31, 32, 33, 48, 64, 65, 100)
RTOL = {np.float32: 2e-6, np.float64: 1e-13}


def random_csr(m: int, n: int, density: float, dtype, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    mat = sp.random(m, n, density=density, format="csr", dtype=np.float64, random_state=rng)
    mat = mat.tolil()
    mat[m // 3, :] = 0  # an empty row
    mat[m // 2, : min(n, 50)] = rng.standard_normal(min(n, 50))  # a long, odd-length row
    return mat.tocsr().astype(dtype)


def test_native_extension_is_built_where_required():
    """CI sets DEEPINV_EI_REQUIRE_NATIVE=1: there the install must have compiled the kernels."""
    if os.environ.get("DEEPINV_EI_REQUIRE_NATIVE") != "1":
        pytest.skip("set DEEPINV_EI_REQUIRE_NATIVE=1 to require the compiled kernel")
    assert spmm._spmm is not None, "deepinv_ei.odl.backends._spmm was not built by the install"
    assert "portable" in KERNELS


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_matches_float64_reference(kernel, dtype):
    mat = random_csr(157, 203, 0.08, dtype)
    csr = CsrMatrix(mat)
    rng = np.random.default_rng(1)
    for k in WIDTHS:
        x = rng.standard_normal((203, k)).astype(dtype)
        ref = mat.astype(np.float64) @ x.astype(np.float64)
        out = csr.matmul(x, kernel=kernel)
        assert out.dtype == dtype and out.shape == (157, k)
        err = np.abs(out - ref).max() / np.abs(ref).max()
        assert err <= RTOL[dtype], (kernel, k, err)
        assert not out[157 // 3].any()  # the empty row is exactly zero


@pytest.mark.parametrize("kernel", KERNELS)
def test_row_blocks_on_threads_equal_one_block(kernel):
    mat = random_csr(3001, 1000, 0.02, np.float32, seed=2)
    x = np.random.default_rng(3).standard_normal((1000, 40)).astype(np.float32)
    one = CsrMatrix(mat).matmul(x, kernel=kernel)
    blocked = CsrMatrix(mat, n_blocks=3)
    assert len(blocked.row_blocks) == 3
    assert sum(b - a for a, b in blocked.row_blocks) == 3001
    with ThreadPoolExecutor(2) as pool:
        # 3001 x 40 x 60k nnz is above the threshold at which the blocks go to the pool.
        assert 40 * blocked.nnz >= spmm._PARALLEL_WORK
        out = blocked.matmul(x, kernel=kernel, pool=pool)
    np.testing.assert_array_equal(out, one)  # same rows, same order of summation


@pytest.mark.parametrize("kernel", KERNELS)
def test_matrix_backend_kernels_agree_on_a_ray_transform(kernel):
    ray = ray_transform("fan")
    x = torch.rand(5, *ray.domain.shape, generator=torch.Generator().manual_seed(0))
    ref = OperatorModule(ray, backend="matrix", kernel="scipy")
    ours = OperatorModule(ray, backend="matrix", kernel=kernel)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5 * ref(x).abs().max())
    y = ref(x)
    torch.testing.assert_close(ours.T(y), ref.T(y), rtol=1e-5, atol=1e-5 * ref.T(y).abs().max())


def test_kernel_choice_from_environment(monkeypatch):
    monkeypatch.setenv("DEEPINV_EI_SPMM_KERNEL", "scipy")
    assert resolve_kernel() == "scipy"
    assert resolve_kernel("auto") == KERNELS[0]
    monkeypatch.delenv("DEEPINV_EI_SPMM_KERNEL")
    assert resolve_kernel() == KERNELS[0]


def test_bad_input_is_refused_with_what_was_expected():
    mat = random_csr(20, 30, 0.2, np.float32)
    csr = CsrMatrix(mat)
    with pytest.raises(ValueError, match="unknown sparse kernel 'sse9'"):
        resolve_kernel("sse9")
    with pytest.raises(ValueError, match=r"shape \(30, k\), got float32 \(31, 2\)"):
        csr.matmul(np.zeros((31, 2), np.float32))
    with pytest.raises(ValueError, match="float32 array .* got float64"):
        csr.matmul(np.zeros((30, 2), np.float64))
    with pytest.raises(ValueError, match="not contiguous"):
        csr.matmul(np.zeros((2, 30), np.float32).T)
    with pytest.raises(ValueError, match="out must be"):
        csr.matmul(np.zeros((30, 2), np.float32), out=np.zeros((20, 3), np.float32))
    bad = sp.csr_matrix((np.ones(1, np.float32), np.array([5]), np.array([0, 1])), shape=(1, 5))
    with pytest.raises(ValueError, match=r"column indices outside \[0, 5\)"):
        CsrMatrix(bad)


@pytest.mark.skipif(spmm._spmm is None, reason="compiled kernel not built")
def test_compiled_kernel_checks_its_buffers():
    csr = CsrMatrix(random_csr(20, 30, 0.2, np.float32))
    args = (csr.indptr, csr.indices, csr.data)
    x, y = np.zeros((30, 4), np.float32), np.zeros((20, 4), np.float32)
    native = spmm._spmm

    def bounds(*b):
        return np.array(b, dtype=np.int64)

    native.spmm(*args, x, y, bounds(0, 7, 20), 4, 4, 0)  # valid: two blocks
    with pytest.raises(ValueError, match="bounds must increase"):
        native.spmm(*args, x, y, bounds(0, 21), 4, 4, 0)
    with pytest.raises(ValueError, match="bounds must increase"):
        native.spmm(*args, x, y, bounds(0, 12, 7), 4, 4, 0)
    with pytest.raises(ValueError, match="needs 2 to 65537"):
        native.spmm(*args, x, y, bounds(0), 4, 4, 0)
    with pytest.raises(ValueError, match="y has fewer"):
        native.spmm(*args, x, y[:10], bounds(0, 20), 4, 4, 0)
    with pytest.raises(ValueError, match="whole number of rows"):
        native.spmm(*args, x, y, bounds(0, 20), 7, 4, 0)
    with pytest.raises(ValueError, match="data and indices"):
        native.spmm(*args, x.astype(np.float64), y, bounds(0, 20), 4, 8, 0)
    with pytest.raises(ValueError, match="does not support"):
        native.spmm(*args, x, y, bounds(0, 20), 4, 4, 3)
    with pytest.raises(TypeError):  # a read-only output buffer
        native.spmm(*args, x, bytes(y.nbytes), bounds(0, 20), 4, 4, 0)


def test_malformed_or_unsupported_matrices_are_refused():
    ok = random_csr(6, 5, 0.5, np.float32)
    with pytest.raises(ValueError, match="float32 or float64 matrix, got int32"):
        CsrMatrix(ok.astype(np.int32))
    bad = sp.csr_matrix((np.ones(1, np.float32), np.array([0]), np.array([0, 1])), shape=(1, 1))
    bad.indptr = np.array([0, 2])  # points past the one non-zero
    with pytest.raises(ValueError, match="index pointer|malformed CSR indptr"):
        CsrMatrix(bad)
    # SciPy accepts a decreasing indptr without a full check; the kernel would read out of bounds.
    data, indices = np.ones(1, np.float32), np.array([0], np.int32)
    bad = sp.csr_matrix((data, indices, np.array([0, 10**9, 1])), shape=(2, 1))
    with pytest.raises(ValueError, match="must not decrease"):
        CsrMatrix(bad)


@pytest.mark.parametrize("kernel", KERNELS)
def test_empty_batch_and_overlapping_output(kernel):
    csr = CsrMatrix(random_csr(20, 20, 0.3, np.float32))
    assert csr.matmul(np.zeros((20, 0), np.float32), kernel=kernel).shape == (20, 0)
    x = np.ones((20, 3), np.float32)
    with pytest.raises(ValueError, match="must not overlap"):
        csr.matmul(x, out=x, kernel=kernel)


@pytest.mark.skipif(spmm._spmm is None, reason="compiled kernel not built")
def test_compiled_kernel_checks_every_indptr_entry_it_reads():
    x, y = np.ones((1, 4), np.float32), np.zeros((2, 4), np.float32)
    data, indices = np.ones(1, np.float32), np.zeros(1, np.int32)
    for indptr in ([0, 10**9, 1], [0, -5, 1], [0, 1, 0]):
        with pytest.raises(ValueError, match="indptr points outside"):
            spmm._spmm.spmm(
                np.array(indptr, np.int32), indices, data, x, y, np.array([0, 2]), 4, 4, 0
            )
    with pytest.raises(ValueError, match="whole number of rows"):  # k * itemsize would overflow
        spmm._spmm.spmm(
            np.array([0, 1], np.int32), indices, data, x, y, np.array([0, 1]), 2**62, 4, 0
        )


def test_bad_kernel_name_is_reported_not_skipped_by_auto():
    ray = ray_transform("parallel")
    with pytest.raises(ValueError, match="unknown sparse kernel 'sse9'"):
        OperatorModule(ray, kernel="sse9")(torch.zeros(1, *ray.domain.shape))


@pytest.mark.skipif(spmm._spmm is None, reason="compiled kernel not built")
def test_default_kernel_is_chosen_per_call_so_modules_move_between_cpus(monkeypatch):
    """A module made where AVX-512 exists keeps working where only AVX2 does (pickled, say)."""
    ray = ray_transform("parallel")
    x = torch.rand(32, *ray.domain.shape, generator=torch.Generator().manual_seed(0))
    module = OperatorModule(ray, backend="matrix")
    expected = module(x)
    monkeypatch.setattr(spmm._spmm, "best_level", lambda: 0)  # "another CPU": portable only
    assert resolve_kernel() == "portable"
    torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())

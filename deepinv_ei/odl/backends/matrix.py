"""The ``"matrix"`` backend: the ray transform's sparse system matrix, applied to whole batches.

ASTRA computes the matrix of its CPU projector for the ODL geometry (the same discretisation as
``RayTransform(..., impl='astra_cpu')``), and one sparse-dense product applies it to a batch.
Both :math:`A` and :math:`A^\\top` are stored in CSR form with int32 indices, because a CSR
product is ~10x faster than a product with a transposed CSR. On the CPU the product is the
package's compiled AVX-512/AVX2 kernel (:mod:`.spmm`; SciPy where it was not built), in row
blocks over worker threads; on other devices (CUDA) it is torch's CSR product on the device.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import odl
import scipy.sparse as sp
import torch

from ..geometry import astra_cpu_projector, estimate_matrix_nnz, geometry_key, is_ray_transform
from .base import Backend, BackendOptionError
from .spmm import CsrMatrix, resolve_kernel, uses_thread_pool

#: Default memory budget for the two CSR matrices of one operator on one device, in bytes.
DEFAULT_MATRIX_BUDGET = 2 * 1024**3

# int32 column index + value
_BYTES_PER_NNZ = {torch.float32: 8, torch.float64: 12}

_lock = threading.Lock()
_matrix_cache: OrderedDict[tuple, tuple] = OrderedDict()
_CACHE_SIZE = 8


def _cache_put(cache: OrderedDict, key, value):
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def clear_matrix_cache() -> None:
    """Forget every cached system matrix (host and devices)."""
    with _lock:
        _matrix_cache.clear()


def system_matrix(ray_trafo, proj_type: str | None = None, dtype=np.float64) -> sp.csr_matrix:
    """The ray transform's system matrix as SciPy CSR (rows = flattened sinogram).

    Columns index the image flattened in C order, rows the sinogram ``(angles, detectors)``
    flattened in C order. Not cached: :class:`MatrixBackend` caches what it keeps per dtype
    and device, and holding a float64 master copy beside it would double the memory.
    """
    import astra

    proj_id = astra_cpu_projector(ray_trafo, proj_type)
    try:
        matrix_id = astra.projector.matrix(proj_id)
        try:
            mat = astra.matrix.get(matrix_id)
        finally:
            astra.matrix.delete(matrix_id)
    finally:
        astra.projector.delete(proj_id)
    mat = mat.tocsr().astype(dtype, copy=False)
    mat.sort_indices()
    return mat


def _to_torch_csr(mat: sp.csr_matrix, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if mat.nnz >= 2**31:
        raise ValueError(f"system matrix has {mat.nnz} non-zeros, more than int32 indices allow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(
            torch.from_numpy(mat.indptr.astype(np.int32)),
            torch.from_numpy(mat.indices.astype(np.int32)),
            torch.from_numpy(mat.data).to(dtype),
            size=mat.shape,
        ).to(device)


class MatrixBackend(Backend):
    """Sparse system matrix of a 2D ray transform (parallel or fan beam), on any torch device.

    :param op: an ODL ``RayTransform`` with a 2D geometry.
    :param memory_budget: the largest number of bytes the two CSR matrices may take on the
        device; larger problems raise a :class:`ValueError` (``backend="auto"`` then picks another
        backend).
    :param proj_type: ASTRA projector type, ODL's default for the geometry if ``None``.
    :param num_threads: CPU worker threads; defaults to ``torch.get_num_threads()``.
    :param kernel: CPU product kernel, ``"auto"`` (the fastest available), ``"avx512"``,
        ``"avx2"``, ``"portable"`` or ``"scipy"``; the environment variable
        ``DEEPINV_EI_SPMM_KERNEL`` sets the default. All give the same result to rounding.
    """

    name = "matrix"

    def __init__(
        self,
        op: odl.Operator,
        memory_budget: int | None = None,
        proj_type: str | None = None,
        num_threads: int | None = None,
        kernel: str | None = None,
        **options,
    ):
        super().__init__(op, **options)
        self.num_threads = num_threads or max(1, torch.get_num_threads())
        # Kept as asked ("auto" stays "auto") and resolved per call, so that a pickled module
        # runs on a CPU with other instructions; a wrong name fails here, not at first use.
        self.kernel = kernel or None
        if kernel not in (None, "auto"):
            try:
                resolve_kernel(kernel)
            except ValueError as err:
                raise BackendOptionError(str(err)) from err
        self._init_runtime()
        reason = self.unsupported_reason(op, torch.device("cpu"))
        if reason:
            raise ValueError(reason)
        self.memory_budget = DEFAULT_MATRIX_BUDGET if memory_budget is None else int(memory_budget)
        self.proj_type = proj_type
        est = self.estimated_bytes(op, torch.float32)
        if est > self.memory_budget:
            raise ValueError(
                f"the system matrix of this ray transform ({op.domain.shape} image, "
                f"{op.range.shape} sinogram) would take about {est / 2**30:.2f} GiB, over the "
                f"matrix memory budget of {self.memory_budget / 2**30:.2f} GiB; raise "
                f"memory_budget or use backend='astra'"
            )

    _runtime_attributes = ("_pool",)

    def _init_runtime(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def unsupported_reason(cls, op, device) -> str | None:
        if not is_ray_transform(op):
            return f"backend 'matrix' needs an odl RayTransform, got {type(op).__name__}"
        if op.geometry.ndim != 2:
            return (
                f"backend 'matrix' needs a 2D geometry (ASTRA computes system matrices of its 2D "
                f"CPU projectors only), got a {op.geometry.ndim}D {type(op.geometry).__name__}"
            )
        return None

    @staticmethod
    def estimated_bytes(op, dtype: torch.dtype) -> int:
        """Upper estimate of the memory of both CSR matrices."""
        return 2 * estimate_matrix_nnz(op) * _BYTES_PER_NNZ[dtype]

    def _checked_matrix(self, dtype: torch.dtype) -> sp.csr_matrix:
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        mat = system_matrix(self.op, self.proj_type, np_dtype)
        nbytes = 2 * mat.nnz * _BYTES_PER_NNZ[dtype]
        if nbytes > self.memory_budget:
            raise ValueError(
                f"the system matrix takes {nbytes / 2**30:.2f} GiB in {dtype}, over the matrix "
                f"memory budget of {self.memory_budget / 2**30:.2f} GiB"
            )
        return mat

    def matrices(self, dtype: torch.dtype, device: torch.device):
        """``(A, A^T)`` for ``dtype`` on ``device`` (cached).

        On the CPU each is a :class:`~.spmm.CsrMatrix` in one row block per worker thread;
        elsewhere a torch CSR tensor on the device.
        """
        key = (geometry_key(self.op), self.proj_type, dtype, str(device), self.num_threads)
        with _lock:
            hit = _matrix_cache.get(key)
            if hit is not None:
                _matrix_cache.move_to_end(key)
                return hit
        mat = self._checked_matrix(dtype)
        mat_t = mat.T.tocsr()
        if torch.device(device).type == "cpu":
            pair = (CsrMatrix(mat, self.num_threads), CsrMatrix(mat_t, self.num_threads))
        else:
            pair = (_to_torch_csr(mat, dtype, device), _to_torch_csr(mat_t, dtype, device))
        with _lock:
            _cache_put(_matrix_cache, key, pair)
        return pair

    def _apply(self, mat, x: torch.Tensor, out_shape: tuple[int, ...]) -> torch.Tensor:
        n = x.shape[0]
        if isinstance(mat, torch.Tensor):
            # (m, n) @ (n, N): the batch is the dense matrix's columns.
            return (mat @ x.reshape(n, -1).T).T.reshape(n, *out_shape)
        # The kernel wants the batch as the fast axis: (n_in, N) in, (n_out, N) out. torch's
        # transposing copies are faster than numpy's here, and free for a batch of one.
        cols = x.detach().reshape(n, -1).T.contiguous()
        out = torch.empty(mat.shape[0], n, dtype=x.dtype)
        kernel = resolve_kernel(self.kernel)
        pool = None
        if len(mat.row_blocks) > 1 and uses_thread_pool(kernel):
            pool = self._thread_pool(self.num_threads - 1, "deepinv-ei-spmm")
        mat.matmul(cols.numpy(), out=out.numpy(), kernel=kernel, pool=pool)
        return out.T.contiguous().reshape(n, *out_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, _ = self.matrices(x.dtype, x.device)
        return self._apply(a, x, self.op.range.shape)

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        _, at = self.matrices(y.dtype, y.device)
        return self._apply(at, y, self.op.domain.shape)

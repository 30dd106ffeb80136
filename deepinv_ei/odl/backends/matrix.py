r"""The ``"matrix"`` backend: the ray transform's sparse system matrix, applied to whole batches.

ASTRA computes the matrix of its CPU projector for the ODL geometry (the same discretisation as
``RayTransform(..., impl='astra_cpu')``), and one sparse-dense product of torch applies it to a
batch, on the CPU (MKL or torch's own kernel, on torch's intra-op threads) and on CUDA
(cuSPARSE) alike. Both :math:`A` and :math:`A^\top` are stored as CSR with int32 indices, and
the batch is the dense operand's columns: :math:`Y = A X` with :math:`X` of shape
``(n_pixels, batch)``.

Matrices are shared between modules of the same discretisation and freed with the last module
that uses them (:mod:`deepinv_ei.odl.cache`); with ``cache_dir`` (or
``$DEEPINV_EI_MATRIX_CACHE``) they are also kept on disk (:mod:`.matrix_files`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import odl
import scipy.sparse as sp
import torch

from ..cache import cached, forget
from ..geometry import (
    astra_cpu_projector,
    astra_cpu_unsupported_reason,
    estimate_matrix_nnz,
    geometry_key,
)
from .base import Backend
from .matrix_files import cache_dir, disk_load, disk_path, disk_store

#: Default memory budget for the two CSR matrices of one operator on one device, in bytes.
DEFAULT_MATRIX_BUDGET = 2 * 1024**3

# int32 column index + value
_BYTES_PER_NNZ = {torch.float32: 8, torch.float64: 12}


class MatrixPair:
    r"""A system matrix :math:`A` and its transpose :math:`A^\top` as torch CSR tensors."""

    __slots__ = ("forward", "transpose", "__weakref__")

    def __init__(self, forward: torch.Tensor, transpose: torch.Tensor):
        self.forward = forward
        self.transpose = transpose


def clear_matrix_cache() -> None:
    """Forget the system matrices held in memory (modules keep those they hold; the disk stays)."""
    forget("matrix")


def system_matrix(ray_trafo, proj_type: str | None = None, dtype=np.float64) -> sp.csr_matrix:
    """The ray transform's system matrix as SciPy CSR (rows = flattened sinogram).

    Columns index the image flattened in C order, rows the sinogram ``(angles, detectors)``
    flattened in C order. Computed by ASTRA on every call (not cached).
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


def to_torch_csr(
    mat: sp.csr_matrix, dtype: torch.dtype, device: torch.device | str
) -> torch.Tensor:
    """A SciPy CSR matrix as a torch CSR tensor with int32 indices on ``device``."""
    if mat.nnz >= 2**31 or mat.shape[0] >= 2**31:
        raise ValueError(f"system matrix has {mat.nnz} non-zeros, more than int32 indices allow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(
            torch.from_numpy(np.asarray(mat.indptr, dtype=np.int32)),  # no copy if int32
            torch.from_numpy(np.asarray(mat.indices, dtype=np.int32)),
            torch.from_numpy(mat.data).to(dtype),
            size=mat.shape,
        ).to(device)


def csr_matmul(mat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(mat @ x[i].ravel() for i)`` for a batch ``x`` of shape ``(N, ...)``: shape ``(N, m)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # The batch as the dense operand's columns, given row-major: (n, N) with N contiguous.
        return (mat @ x.reshape(x.shape[0], -1).T.contiguous()).T


def available_memory(device: torch.device) -> int | None:
    """Bytes that can still be allocated on ``device`` (``None`` if unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class MatrixBackend(Backend):
    """Sparse system matrix of a 2D ray transform (parallel or fan beam), on any torch device.

    :param op: an ODL ``RayTransform`` with a 2D geometry.
    :param memory_budget: the largest number of bytes the two CSR matrices may take on a device;
        larger problems raise a :class:`ValueError` (``backend="auto"`` then picks another
        backend). Default 2 GiB.
    :param proj_type: ASTRA projector type, ODL's default for the geometry if ``None``.
    :param cache_dir: directory of the on-disk matrix cache; ``$DEEPINV_EI_MATRIX_CACHE`` if
        ``None``; no disk cache if neither is set.
    """

    name = "matrix"
    option_names = ("memory_budget", "proj_type", "cache_dir")

    def __init__(
        self,
        op: odl.Operator,
        memory_budget: int | None = None,
        proj_type: str | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        super().__init__(op)
        self.memory_budget = DEFAULT_MATRIX_BUDGET if memory_budget is None else int(memory_budget)
        self.proj_type = proj_type
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.key = geometry_key(op, proj_type)
        self._check_budget(
            self.estimated_bytes(op, torch.float32),
            f"of this ray transform ({op.domain.shape} image, {op.range.shape} sinogram) would "
            "take about",
        )
        self._init_runtime()

    _runtime_attributes = ("_pairs",)

    def _init_runtime(self) -> None:
        # The matrices this backend holds, per (dtype, device), keeping them in the shared
        # cache; copies (pickle, deepcopy) fetch or rebuild their own.
        self._pairs: dict[tuple[torch.dtype, str], MatrixPair] = {}

    @classmethod
    def unsupported_reason(cls, op, device) -> str | None:
        return astra_cpu_unsupported_reason(op, "matrix")

    @staticmethod
    def estimated_bytes(op, dtype: torch.dtype) -> int:
        """Upper estimate of the memory of both CSR matrices."""
        return 2 * estimate_matrix_nnz(op) * _BYTES_PER_NNZ[dtype]

    def _check_budget(self, nbytes: int, what: str) -> None:
        if nbytes > self.memory_budget:
            raise ValueError(
                f"the system matrix {what} {nbytes / 2**30:.2f} GiB, over the matrix memory "
                f"budget of {self.memory_budget / 2**30:.2f} GiB; raise memory_budget or use "
                "backend='astra'"
            )

    def _check_fits(self, dtype: torch.dtype, device: torch.device) -> None:
        est = self.estimated_bytes(self.op, dtype)
        free = available_memory(device)
        # Building needs the matrix as SciPy float64 and its transpose besides the result.
        need = est + (3 * estimate_matrix_nnz(self.op) * 12 if device.type == "cpu" else 0)
        if free is not None and need > free:
            raise MemoryError(
                f"the system matrix of this ray transform ({self.op.domain.shape} image, "
                f"{self.op.range.shape} sinogram, {dtype}) needs about {need / 2**30:.2f} GiB on "
                f"{device} to build, but only {free / 2**30:.2f} GiB are available; use "
                f"backend='astra' (no matrix) or a smaller problem"
            )

    def _checked_matrix(self, dtype: torch.dtype) -> sp.csr_matrix:
        """The matrix as SciPy CSR in ``dtype``: from the disk cache, else from ASTRA."""
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        directory = cache_dir(self.cache_dir)
        path = None
        if directory is not None and self.key is not None:
            path = disk_path(directory, self.key)
            shape = (int(np.prod(self.op.range.shape)), int(np.prod(self.op.domain.shape)))
            mat = disk_load(path, self.key, shape)
            if mat is not None:
                return mat.astype(np_dtype, copy=False)
        mat = system_matrix(self.op, self.proj_type, np.float64)
        self._check_budget(2 * mat.nnz * _BYTES_PER_NNZ[dtype], f"in {dtype} takes")
        if path is not None:
            disk_store(path, self.key, mat)
        return mat.astype(np_dtype, copy=False)

    def matrices(self, dtype: torch.dtype, device: torch.device | str) -> MatrixPair:
        r"""The pair :math:`(A, A^\top)` for ``dtype`` on ``device``, as torch CSR tensors."""
        device = torch.device(device)

        def build() -> MatrixPair:
            self._check_fits(dtype, device)
            mat = self._checked_matrix(dtype)
            return MatrixPair(
                to_torch_csr(mat, dtype, device), to_torch_csr(mat.T.tocsr(), dtype, device)
            )

        # A transform without an exact key shares its matrix with nothing.
        key = None if self.key is None else ("matrix", self.key, dtype, str(device))
        return cached(key, build, self._pairs, (dtype, str(device)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.matrices(x.dtype, x.device).forward
        return csr_matmul(a, x).reshape(x.shape[0], *self.op.range.shape)

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        at = self.matrices(y.dtype, y.device).transpose
        return csr_matmul(at, y).reshape(y.shape[0], *self.op.domain.shape)

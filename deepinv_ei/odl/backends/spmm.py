"""CSR sparse matrix times dense batch on the CPU, in row blocks over threads.

The product runs in the package's compiled kernel (``_spmm.c``: AVX-512, AVX2 or portable C,
chosen for the CPU at run time) when it was built, else in SciPy. Row blocks of the matrix run in
parallel: on torch's own OpenMP threads when the kernel was built with OpenMP, else on Python
worker threads (both kernels release the GIL). Dense operands are row-major ``(n, k)`` arrays with
the batch as the fast axis, which lets the kernel keep each output row in vector registers while
it streams the matrix row's non-zeros.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch  # first: the kernel must bind to the libgomp torch loaded, not load another

try:  # built by setup.py; optional, so that an install without a C compiler still works
    from . import _spmm
except ImportError:  # pragma: no cover - exercised only where the extension was not built
    _spmm = None

#: Kernels by name, fastest first; ``"auto"`` picks the fastest this CPU and build can run.
KERNELS = ("avx512", "avx2", "portable", "scipy")
_LEVELS = {"avx512": 2, "avx2": 1, "portable": 0}

#: Below this many multiply-adds a product runs on the calling thread only.
_PARALLEL_WORK = 2_000_000

# A process forked from one that ran OpenMP or thread-pool work inherits the runtime's state but
# not its threads: its first parallel region waits forever (torch's own operators hang there
# too). In a forked child, e.g. a DataLoader worker, products therefore run serially.
_in_forked_child = False


def _mark_forked_child() -> None:
    global _in_forked_child
    _in_forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked_child)


def available_kernels() -> tuple[str, ...]:
    """The kernels this machine can run, fastest first."""
    if _spmm is None:
        return ("scipy",)
    level = _spmm.best_level()
    return tuple(k for k in KERNELS if k == "scipy" or _LEVELS[k] <= level)


def resolve_kernel(kernel: str | None = None) -> str:
    """Name of the kernel to use: ``kernel``, else ``$DEEPINV_EI_SPMM_KERNEL``, else the fastest.

    :raises ValueError: for an unknown name or one this CPU or build cannot run.
    """
    kernel = kernel or os.environ.get("DEEPINV_EI_SPMM_KERNEL") or "auto"
    available = available_kernels()
    if kernel == "auto":
        return available[0]
    if kernel not in KERNELS:
        raise ValueError(f"unknown sparse kernel {kernel!r}; expected 'auto' or one of {KERNELS}")
    if kernel not in available:
        why = (
            "the compiled extension deepinv_ei.odl.backends._spmm was not built"
            if _spmm is None
            else "this CPU lacks the instructions"
        )
        raise ValueError(f"sparse kernel {kernel!r} is not available ({why}); have {available}")
    return kernel


def uses_thread_pool(kernel: str) -> bool:
    """Whether ``kernel`` runs row blocks on a Python thread pool (else on OpenMP, or serially)."""
    return resolve_kernel(kernel) == "scipy" or not _spmm.has_openmp()


class CsrMatrix:
    """A CSR matrix with int32 indices, split in row blocks of about equal non-zeros.

    :param scipy.sparse.csr_matrix mat: a float32 or float64 matrix (its structure is checked
        once, here, so that the compiled kernel never reads outside its operands).
    :param int n_blocks: number of row blocks (one per worker thread).
    """

    def __init__(self, mat: sp.csr_matrix, n_blocks: int = 1):
        mat = sp.csr_matrix(mat)
        if mat.dtype not in (np.float32, np.float64):
            raise ValueError(f"expected a float32 or float64 matrix, got {mat.dtype}")
        # Indices stay int32 (half the memory traffic of int64), so everything must fit; the
        # last few values are kept free for the kernels' unrolled loop bounds.
        if mat.nnz >= 2**31 - 8 or max(mat.shape) >= 2**31 - 8:
            raise ValueError(
                f"matrix {mat.shape} with {mat.nnz} non-zeros is too large for int32 indices"
            )
        indptr, indices = np.asarray(mat.indptr), np.asarray(mat.indices)
        if indptr.shape != (mat.shape[0] + 1,) or indptr[0] != 0 or indptr[-1] != indices.size:
            raise ValueError("malformed CSR indptr: expected n_rows + 1 entries from 0 to nnz")
        if np.any(np.diff(indptr) < 0):
            raise ValueError("malformed CSR indptr: entries must not decrease")
        if indices.size and (indices.min() < 0 or indices.max() >= mat.shape[1]):
            raise ValueError(f"column indices outside [0, {mat.shape[1]})")
        self.shape: tuple[int, int] = mat.shape
        self.dtype = mat.dtype
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int32)
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        self.data = np.ascontiguousarray(mat.data)
        n_blocks = max(1, int(n_blocks))
        cuts = np.searchsorted(self.indptr, np.linspace(0, mat.nnz, n_blocks + 1)[1:-1])
        edges = sorted({0, *(int(c) for c in cuts), self.shape[0]})
        self.row_blocks = [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=False) if b > a]
        self._bounds = np.array([0, *(b for _, b in self.row_blocks)], dtype=np.int64)
        self._whole = np.array([0, self.shape[0]], dtype=np.int64)
        self._scipy: dict[tuple[int, int], sp.csr_matrix] = {}

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    @property
    def nbytes(self) -> int:
        return self.indptr.nbytes + self.indices.nbytes + self.data.nbytes

    def _scipy_rows(self, a: int, b: int) -> sp.csr_matrix:
        """Rows ``a:b`` as SciPy CSR (the whole matrix shares this object's arrays)."""
        if (a, b) not in self._scipy:
            whole = sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)
            self._scipy[(a, b)] = whole if (a, b) == (0, self.shape[0]) else whole[a:b]
        return self._scipy[(a, b)]

    def matmul(
        self,
        x: np.ndarray,
        out: np.ndarray | None = None,
        kernel: str | None = None,
        pool: ThreadPoolExecutor | None = None,
    ) -> np.ndarray:
        """``self @ x`` for a C-contiguous ``x`` of shape ``(n_in, k)`` and this matrix's dtype.

        :param out: optional C-contiguous ``(n_out, k)`` array to write into.
        :param kernel: see :func:`resolve_kernel`.
        :param pool: worker threads for the row blocks if the compiled kernel cannot use OpenMP;
            ``None`` runs them on this thread.
        """
        n_in = self.shape[1]
        if x.ndim != 2 or x.shape[0] != n_in or x.dtype != self.dtype or not x.flags.c_contiguous:
            raise ValueError(
                f"expected a C-contiguous {self.dtype} array of shape ({n_in}, k), got "
                f"{x.dtype} {x.shape}{'' if x.flags.c_contiguous else ' (not contiguous)'}"
            )
        k = x.shape[1]
        if out is None:
            out = np.empty((self.shape[0], k), dtype=self.dtype)
        elif (
            out.shape != (self.shape[0], k) or out.dtype != self.dtype or not out.flags.c_contiguous
        ):
            raise ValueError(
                f"out must be a C-contiguous {self.dtype} array of shape {(self.shape[0], k)}"
            )
        if np.may_share_memory(x, out):
            raise ValueError("out must not overlap x: the product cannot be computed in place")
        if k == 0:
            return out
        name = resolve_kernel(kernel)
        blocks = self.row_blocks
        parallel = (
            len(blocks) > 1
            and k * self.nnz >= _PARALLEL_WORK
            and not _in_forked_child
            and torch.get_num_threads() > 1  # torch.set_num_threads(1) after construction holds
        )
        if name == "scipy":

            def run(block):
                a, b = block
                out[a:b] = self._scipy_rows(a, b) @ x

        else:
            level, itemsize = _LEVELS[name], self.dtype.itemsize
            args = (self.indptr, self.indices, self.data, x, out)
            if parallel and _spmm.has_openmp():
                _spmm.spmm(*args, self._bounds, k, itemsize, level)
                return out

            def run(block):
                bounds = self._whole if block == (0, self.shape[0]) else np.array(block, np.int64)
                _spmm.spmm(*args, bounds, k, itemsize, level)

        if not parallel or pool is None:
            run((0, self.shape[0]))
        else:  # the calling thread takes the first block itself
            futures = [pool.submit(run, block) for block in blocks[1:]]
            run(blocks[0])
            for f in futures:
                f.result()
        return out

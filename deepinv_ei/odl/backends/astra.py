"""The ``"astra"`` backend: ASTRA's projectors on the batch, without the ODL element overhead.

On the CPU every worker thread owns one ASTRA 2D projector and projects its share of the batch
straight between numpy views of the torch tensors (ASTRA's CPU code releases the GIL, so the
threads run in parallel). The CPU projectors are the ones ODL's ``astra_cpu`` uses, and ASTRA's
CPU back-projection is the exact transpose of its forward projection.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import odl
import torch

from ..geometry import astra_cpu_projector, astra_cpu_unsupported_reason
from .base import Backend


class AstraBackend(Backend):
    """ASTRA CPU projectors, one per worker thread, for 2D parallel- and fan-beam ray transforms.

    ASTRA computes in float32 only, so float64 input is refused (use ``"matrix"`` for float64).

    :param op: an ODL ``RayTransform`` with a 2D geometry.
    :param num_threads: worker threads; defaults to ``torch.get_num_threads()``.
    :param proj_type: ASTRA projector type, ODL's default for the geometry if ``None``.
    """

    name = "astra"
    option_names = ("num_threads", "proj_type")

    def __init__(
        self,
        op: odl.Operator,
        num_threads: int | None = None,
        proj_type: str | None = None,
    ):
        super().__init__(op)
        self.num_threads = num_threads or max(1, min(torch.get_num_threads(), os.cpu_count() or 1))
        self.proj_type = proj_type
        self._init_runtime()

    _runtime_attributes = ("_local", "_projectors", "_lock", "_pool")

    def _init_runtime(self) -> None:
        self._local = threading.local()
        self._projectors: list[int] = []
        self._lock = threading.Lock()
        # Its threads start on first use.
        self._pool = ThreadPoolExecutor(self.num_threads, thread_name_prefix="deepinv-ei-astra")

    @classmethod
    def unsupported_reason(cls, op, device) -> str | None:
        reason = astra_cpu_unsupported_reason(op, "astra")
        if reason is None and torch.device(device).type != "cpu":
            return (
                f"backend 'astra' runs ASTRA's CPU projectors; got device {device}: use "
                "backend='matrix' (exact, 2D, any device) or 'odl' (per sample on the GPU "
                "through ODL's astra_cuda, no host copies)"
            )
        return reason

    def _projector(self) -> int:
        pid = getattr(self._local, "pid", None)
        if pid is None:
            pid = astra_cpu_projector(self.op, self.proj_type)
            self._local.pid = pid
            with self._lock:
                self._projectors.append(pid)
        return pid

    def _run(self, direct, src: torch.Tensor, out_shape: tuple[int, ...]) -> torch.Tensor:
        if src.dtype != torch.float32:
            raise TypeError(
                f"backend 'astra' computes in float32 only, got {src.dtype}; "
                "use backend='matrix' (or 'odl') for float64"
            )
        if src.device.type != "cpu":
            raise ValueError(f"backend 'astra' expects CPU tensors, got device {src.device}")
        self._ensure_runtime()  # a forked child makes its own projectors and threads
        src_np = np.ascontiguousarray(src.detach().numpy())
        out = torch.empty((src.shape[0], *out_shape), dtype=torch.float32)
        out_np = out.numpy()

        def work(indices: np.ndarray) -> None:
            pid = self._projector()
            for i in indices:
                direct(pid, src_np[i], out=out_np[i])

        n_workers = min(self.num_threads, src.shape[0])
        chunks = [c for c in np.array_split(np.arange(src.shape[0]), n_workers) if len(c)]
        if len(chunks) == 1:
            work(chunks[0])
        else:
            list(self._pool.map(work, chunks))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import astra

        return self._run(astra.projector.direct_FP, x, self.op.range.shape)

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        import astra

        return self._run(astra.projector.direct_BP, y, self.op.domain.shape)

    def __del__(self):
        try:
            import astra

            if hasattr(self, "_pool"):
                self._pool.shutdown(wait=False)
            for pid in getattr(self, "_projectors", ()):
                astra.projector.delete(pid)
        except Exception:  # interpreter shutdown: nothing left to free
            pass

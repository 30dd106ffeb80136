"""The interface every backend implements: a batched forward map and its exact transpose."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from typing import ClassVar

import odl
import torch

# Guards the lazy creation of runtime resources shared by the threads that call one backend.
_runtime_lock = threading.Lock()


class BackendOptionError(ValueError):
    """An option the user gave a backend is invalid: ``backend="auto"`` reports it instead of
    quietly trying the next backend (as it does for, e.g., a matrix over the memory budget)."""


class Backend(ABC):
    r"""Applies a linear ODL operator :math:`A` and its plain transpose :math:`A^\top` to batches.

    Inputs are contiguous float32 or float64 batches on a device the backend supports
    (:meth:`unsupported_reason`, checked for the CPU at construction); outputs have their dtype
    and device. :math:`A^\top` is the adjoint for the unweighted dot product
    :math:`\langle u, v\rangle = \sum_i u_i v_i` that torch's autograd uses, whatever the cell
    sizes of the ODL spaces.
    """

    name: ClassVar[str]
    #: The keyword options the constructor takes (checked by ``check_backend`` in :mod:`deepinv_ei.odl.backends`).
    option_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, op: odl.Operator):
        reason = self.unsupported_reason(op, torch.device("cpu"))
        if reason:
            raise ValueError(reason)
        self.op = op

    @classmethod
    def unsupported_reason(cls, op: odl.Operator, device: torch.device) -> str | None:
        """``None`` if this backend can apply ``op`` on ``device``, else why it cannot."""
        return None

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`A x` for ``x`` of shape ``(N, *domain.shape)``."""

    @abstractmethod
    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`A^\top y` for ``y`` of shape ``(N, *range.shape)``."""

    def _init_runtime(self) -> None:  # noqa: B027  (optional hook, most backends have none)
        """Create the runtime resources (thread pools, projector handles); never pickled."""

    def _ensure_runtime(self) -> None:
        """Recreate the runtime resources in a forked child (a DataLoader worker, say).

        A fork copies a thread pool's bookkeeping but not its threads, so work sent to the
        parent's pool would wait forever in the child.
        """
        pid = os.getpid()
        if self.__dict__.get("_runtime_pid") == pid:
            return
        with _runtime_lock:
            if self.__dict__.setdefault("_runtime_pid", pid) != pid:
                self._init_runtime()
                self._runtime_pid = pid

    def __getstate__(self) -> dict:
        # Thread pools, locks and ASTRA handles belong to one process: copies make their own.
        state = self.__dict__.copy()
        for name in (*self._runtime_attributes, "_runtime_pid"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    _runtime_attributes: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.op).__name__})"

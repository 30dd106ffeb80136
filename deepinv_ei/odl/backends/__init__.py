"""Backends that apply a linear ODL operator and its plain transpose to batches of tensors.

``BACKENDS`` is the registry that :class:`~deepinv_ei.odl.OperatorModule` and the tests use.
"""

from __future__ import annotations

import torch

from .astra import AstraBackend
from .base import Backend, BackendOptionError
from .generic import OdlBackend
from .matrix import DEFAULT_MATRIX_BUDGET, MatrixBackend, clear_matrix_cache, system_matrix

BACKENDS: dict[str, type[Backend]] = {
    MatrixBackend.name: MatrixBackend,
    AstraBackend.name: AstraBackend,
    OdlBackend.name: OdlBackend,
}

# Tried in this order by backend="auto".
AUTO_ORDER = ("matrix", "astra", "odl")


def make_backend(op, name: str, device: torch.device, **options) -> Backend:
    """Instantiate backend ``name`` for ``op`` on ``device``; ``"auto"`` picks the first that works.

    ``auto`` prefers the exact sparse matrix when it fits the memory budget, then ASTRA's
    projectors, then the generic ODL path.
    """
    if name == "auto":
        reasons = []
        for candidate in AUTO_ORDER:
            cls = BACKENDS[candidate]
            reason = cls.unsupported_reason(op, device)
            if reason is None:
                try:
                    return cls(op, **options)
                except BackendOptionError:
                    raise  # the user's own option is wrong: no other backend would fix it
                except ValueError as err:  # e.g. over the matrix memory budget
                    reason = str(err)
            reasons.append(f"{candidate}: {reason}")
        raise ValueError("no backend can apply this operator:\n  " + "\n  ".join(reasons))
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected 'auto' or one of {sorted(BACKENDS)}")
    cls = BACKENDS[name]
    reason = cls.unsupported_reason(op, device)
    if reason is not None:
        raise ValueError(reason)
    return cls(op, **options)


__all__ = [
    "Backend",
    "BackendOptionError",
    "BACKENDS",
    "AUTO_ORDER",
    "AstraBackend",
    "MatrixBackend",
    "OdlBackend",
    "DEFAULT_MATRIX_BUDGET",
    "clear_matrix_cache",
    "make_backend",
    "system_matrix",
]

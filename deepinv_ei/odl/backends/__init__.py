"""Backends that apply an ODL operator (and, if linear, its plain transpose) to batches of tensors.

``BACKENDS`` is the registry of the backends of linear operators that
:class:`~deepinv_ei.odl.OperatorModule` and the tests use; non-linear operators and functionals
go through :class:`OdlNonlinearBackend` (``"odl-nonlinear"``).
"""

from __future__ import annotations

import odl
import torch

from ..checks import is_fast_linear
from .astra import AstraBackend
from .base import Backend, BackendOptionError
from .generic import OdlBackend, OdlNonlinearBackend
from .matrix import DEFAULT_MATRIX_BUDGET, MatrixBackend, clear_matrix_cache, system_matrix

BACKENDS: dict[str, type[Backend]] = {
    MatrixBackend.name: MatrixBackend,
    AstraBackend.name: AstraBackend,
    OdlBackend.name: OdlBackend,
}

# Tried in this order by backend="auto".
AUTO_ORDER = ("matrix", "astra", "odl")


def check_backend(op: odl.Operator, name: str, options: dict) -> None:
    """Refuse a backend name, options and an operator that do not go together (the one check).

    ``"auto"`` takes the options of every backend (the one picked gets those it takes); a
    non-linear operator or a functional takes ``"auto"`` or ``"odl"`` (:class:`OdlNonlinearBackend`).

    :raises ValueError: for an unknown name, or a backend of linear operators given another.
    :raises BackendOptionError: for an option no backend (or not backend ``name``) takes.
    """
    if name != "auto" and name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected 'auto' or one of {sorted(BACKENDS)}")
    if not is_fast_linear(op) and name not in ("auto", "odl"):
        raise ValueError(
            f"backend {name!r} needs a linear operator between tensor spaces; "
            f"{type(op).__name__} is {'non-linear' if not op.is_linear else 'a functional'}: "
            "use backend='auto' or 'odl' (per sample through ODL)"
        )
    names = BACKENDS if name == "auto" else (name,)
    valid = sorted({option for n in names for option in BACKENDS[n].option_names})
    what = "any backend" if name == "auto" else f"backend {name!r}"
    unknown = sorted(set(options) - set(valid))
    if unknown:
        hint = ""
        if "device" in unknown:
            hint = (
                "; an OperatorModule has no device of its own: it runs on the device of its "
                "input (call it on x.to('cuda'))"
            )
        raise BackendOptionError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for {what}; valid options: {', '.join(valid) or 'none'}{hint}"
        )


def make_backend(op: odl.Operator, name: str, device: torch.device, **options) -> Backend:
    """Instantiate backend ``name`` for ``op`` on ``device``; ``"auto"`` picks the first that works.

    ``auto`` tries ``AUTO_ORDER``: the exact sparse matrix when it fits the memory budget, then
    ASTRA's projectors, then the generic ODL path. A non-linear operator gets
    :class:`OdlNonlinearBackend`. The choice is checked by :func:`check_backend`.
    """
    check_backend(op, name, options)
    if not is_fast_linear(op):
        return OdlNonlinearBackend(op)
    reasons = []
    for candidate in AUTO_ORDER if name == "auto" else (name,):
        cls = BACKENDS[candidate]
        reason = cls.unsupported_reason(op, device)
        if reason is None:
            try:
                return cls(op, **{k: v for k, v in options.items() if k in cls.option_names})
            except BackendOptionError:
                raise  # the user's own option is wrong: no other backend would fix it
            except ValueError as err:  # e.g. over the matrix memory budget
                if name != "auto":
                    raise
                reason = str(err)
        reasons.append(f"{candidate}: {reason}")
    if name != "auto":
        raise ValueError(reason)
    raise ValueError("no backend can apply this operator:\n  " + "\n  ".join(reasons))


__all__ = [
    "Backend",
    "BackendOptionError",
    "BACKENDS",
    "AUTO_ORDER",
    "AstraBackend",
    "MatrixBackend",
    "OdlBackend",
    "OdlNonlinearBackend",
    "DEFAULT_MATRIX_BUDGET",
    "check_backend",
    "clear_matrix_cache",
    "make_backend",
    "system_matrix",
]

r"""Diagnostics from EI theory: can a group identify the signals, and is a model equivariant?

- :func:`identifiability` -- the rank condition :math:`\operatorname{rank}[A T_g]_g = n`
  (dense or iterative), returning an :class:`IdentifiabilityReport`.
- :func:`equivariance_error` -- :math:`\|f(A T_g x) - T_g f(A x)\| / \|T_g f(A x)\|`.
"""

from __future__ import annotations

from deepinv_ei.diagnostics.equivariance import equivariance_error
from deepinv_ei.diagnostics.identifiability import (
    DENSE_MAX_BYTES,
    METHODS,
    IdentifiabilityReport,
    dense_memory_bytes,
    identifiability,
)

__all__ = [
    "identifiability",
    "IdentifiabilityReport",
    "equivariance_error",
    "METHODS",
    "DENSE_MAX_BYTES",
    "dense_memory_bytes",
]

"""deepinv-ei: Equivariant Imaging for DeepInverse and ODL.

Subpackages (imported lazily so that ``import deepinv_ei`` stays cheap):

- :mod:`deepinv_ei.odl` -- ODL operators (ray transforms above all) as batched,
  differentiable torch modules and :class:`deepinv.physics.LinearPhysics`.
- :mod:`deepinv_ei.transforms` -- exact group actions as :class:`deepinv.transform.Transform`.
- :mod:`deepinv_ei.loss` -- the EI and Robust-EI losses as :class:`deepinv.loss.Loss`.
- :mod:`deepinv_ei.diagnostics` -- identifiability checks from EI theory.
- :mod:`deepinv_ei.training` -- the trainer (atomic checkpoints, exact resume, DDP), learning
  from measurements alone (unit-free EI, scores without ground truth), bundles, reconstruction.
- :mod:`deepinv_ei.utils` -- the adjoint dot test, atomic writes.
- :mod:`deepinv_ei.scan` -- measured scans: scanner description files.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = (
    "odl",
    "transforms",
    "loss",
    "diagnostics",
    "utils",
    "data",
    "models",
    "scan",
    "training",
)

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

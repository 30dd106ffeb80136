r"""What training and reconstruction read from a measurement set
(:class:`deepinv_ei.scan.MeasurementSet`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["open_measurement_set", "all_slices", "heldout_validation"]


def open_measurement_set(path: str | Path) -> Any:
    """The :class:`~deepinv_ei.scan.MeasurementSet` at ``path``.

    :raises FileNotFoundError: if ``path`` does not exist.
    :raises ValueError: naming ``path`` if it is not a measurement set.
    """
    from deepinv_ei.scan import MeasurementSet

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such measurement set")
    return MeasurementSet(path)


def all_slices(mset: Any) -> tuple[torch.Tensor, np.ndarray]:
    """Every slice's sinogram ``(slices, 1, views, detectors)`` in original slice order, and
    the original slice indices in that order."""
    idx = np.concatenate([np.asarray(mset.train_slices), np.asarray(mset.val_slices)])
    order = np.argsort(idx, kind="stable")
    y = torch.cat([mset.y("train"), mset.y("test")])
    return y[torch.as_tensor(order)], idx[order]


def heldout_validation(mset: Any, device: str | torch.device = "cpu") -> tuple[Any, Any]:
    """``(physics, y)`` of the validation slices' held-out views, or ``(None, None)``."""
    if len(mset.heldout_angles) == 0:
        return None, None
    return mset.heldout_physics(device), mset.heldout("test").float()

r"""What training and reconstruction read from a measurement set
(:class:`deepinv_ei.scan.MeasurementSet`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .folds import ViewFold, fold_physics

__all__ = [
    "open_measurement_set",
    "all_slices",
    "heldout_validation",
    "TrainingData",
    "training_data",
]


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


@dataclass
class TrainingData:
    r"""What one training run learns from and is scored on.

    :param physics: :math:`A`, the physics of the training views.
    :param torch.Tensor y_train: the training slices at those views, ``(N, 1, views, det)``.
    :param torch.Tensor y_val: the validation slices at those views.
    :param held_physics: :math:`A_h`, the physics of the views that score the model, or ``None``.
    :param y_held: the validation slices at those views, or ``None``.
    :param ViewFold fold: the fold of the kept views held out, or ``None`` (views held out at
        ingest, or none).
    """

    physics: Any
    y_train: torch.Tensor
    y_val: torch.Tensor
    held_physics: Any = None
    y_held: torch.Tensor | None = None
    fold: ViewFold | None = None


def training_data(
    mset: Any,
    device: str | torch.device = "cpu",
    fold: ViewFold | None = None,
    heldout: bool = True,
) -> TrainingData:
    """The :class:`TrainingData` of ``mset``: every kept view and the views held out at ingest
    (``heldout=False``: none), or, with ``fold``, the views of the fold's training part
    :math:`T_k` with its held-out part :math:`F_k` to score
    (:mod:`~deepinv_ei.training.folds`); the rows :math:`F_k` of the training slices are
    dropped as soon as they are read."""
    physics = mset.physics(device)
    y_train, y_val = mset.y("train").float(), mset.y("test").float()
    if fold is None:
        held_physics, y_held = heldout_validation(mset, device) if heldout else (None, None)
        return TrainingData(physics, y_train, y_val, held_physics, y_held)
    train_physics, held_physics = fold_physics(mset.spec, physics, fold, device)
    y_train = fold.split(y_train)[0]
    y_val, y_held = fold.split(y_val)
    return TrainingData(train_physics, y_train, y_val, held_physics, y_held, fold)

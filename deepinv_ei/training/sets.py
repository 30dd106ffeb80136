r"""Access to measurement sets for training and reconstruction.

:func:`open_measurement_set` returns :class:`deepinv_ei.scan.MeasurementSet` where that reader
is installed, and otherwise a minimal reader of the same file layout (the ``y_train``/``y_test``
datasets, the ``heldout`` and ``noise`` groups, the ``spec``/``spec_hash``/slice attributes).
Both expose the attributes used here: ``spec_dict``, ``spec_hash``, ``y(split)``,
``heldout(split)``, ``physics(device)``, ``heldout_physics(device)``, ``train_slices``,
``val_slices``, ``noise``, ``units`` and ``sha256``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["open_measurement_set", "file_sha256", "spec_dict_of", "all_slices"]

SPLITS = ("train", "test")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def spec_dict_of(mset: Any) -> dict:
    """The scanner spec of a set as a plain dict (``ScannerSpec.to_dict()`` where available)."""
    spec = getattr(mset, "spec", None)
    if spec is not None and hasattr(spec, "to_dict"):
        return spec.to_dict()
    return dict(mset.spec_dict)


def all_slices(mset: Any) -> tuple[torch.Tensor, np.ndarray]:
    """Every slice's sinogram ``(slices, 1, views, detectors)`` in original slice order, and
    the original slice indices in that order."""
    ys = [mset.y("train"), mset.y("test")]
    idx = np.concatenate([np.asarray(mset.train_slices), np.asarray(mset.val_slices)])
    order = np.argsort(idx, kind="stable")
    y = torch.cat([torch.as_tensor(np.asarray(v)) for v in ys])
    return y[torch.as_tensor(order)], idx[order]


def open_measurement_set(path: str | Path) -> Any:
    """The measurement set at ``path`` (see the module documentation).

    :raises FileNotFoundError: if ``path`` does not exist.
    :raises ValueError: naming ``path`` if it is not a measurement set.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such measurement set")
    try:
        from deepinv_ei.scan import MeasurementSet
    except ImportError:
        return _ContractSet(path)
    return _with_spec_dict(MeasurementSet(path))


def _with_spec_dict(mset: Any) -> Any:
    if not hasattr(mset, "spec_dict"):
        mset.spec_dict = mset.spec.to_dict()
    return mset


class _ContractSet:
    """The measurement-set layout, read with h5py (used where :mod:`deepinv_ei.scan` is absent)."""

    def __init__(self, path: Path):
        import h5py

        self.path = path
        try:
            with h5py.File(path, "r") as f:
                attrs = dict(f.attrs)
                missing = [k for k in ("y_train", "y_test") if k not in f]
                if missing or "spec" not in attrs:
                    raise ValueError(
                        f"{path}: not a measurement set: expected datasets y_train, y_test and a "
                        f"'spec' attribute, found {sorted(f)} and attributes {sorted(attrs)}"
                    )
                self._y = {s: torch.from_numpy(f[f"y_{s}"][()]) for s in SPLITS}
                self._held = {
                    s: torch.from_numpy(f[f"heldout/y_{s}"][()])
                    for s in SPLITS
                    if f"heldout/y_{s}" in f
                }
                self.heldout_angles = (
                    np.asarray(f["heldout/angles"][()]) if "heldout/angles" in f else np.zeros(0)
                )
                self.noise = {}
                if "noise" in f:
                    self.noise = {k: _attr(v) for k, v in f["noise"].attrs.items()}
                    if "I0" in f["noise"]:
                        self.noise["I0"] = np.asarray(f["noise/I0"][()])
        except OSError as err:
            raise ValueError(f"{path}: cannot be read as HDF5 ({err})") from err
        self.spec_dict = json.loads(_attr(attrs["spec"]))
        self.spec_hash = str(_attr(attrs.get("spec_hash", "")))
        self.units = json.loads(_attr(attrs.get("units", "{}")))
        self.train_slices = np.asarray(attrs.get("train_slices", np.arange(len(self._y["train"]))))
        self.val_slices = np.asarray(attrs.get("val_slices", np.arange(len(self._y["test"]))))
        self._sha = None

    @property
    def sha256(self) -> str:
        if self._sha is None:
            self._sha = file_sha256(self.path)
        return self._sha

    def y(self, split: str) -> torch.Tensor:
        return self._y[_split(split)]

    def heldout(self, split: str) -> torch.Tensor | None:
        held = self._held.get(_split(split))
        return held if held is not None and held.shape[-2] > 0 else None

    def physics(self, device: str | torch.device = "cpu"):
        return physics_from_spec_dict(self.spec_dict, device=device)

    def heldout_physics(self, device: str | torch.device = "cpu"):
        if len(self.heldout_angles) == 0:
            return None
        spec = dict(self.spec_dict, angles=[float(a) for a in self.heldout_angles])
        return physics_from_spec_dict(spec, device=device)


def _split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _attr(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def physics_from_spec_dict(spec: dict, device: str | torch.device = "cpu"):
    """CT physics of a 2D parallel- or fan-beam spec dict (the measurement set's ``spec``)."""
    try:
        from deepinv_ei.scan.spec import ScannerSpec, ray_transform_from_spec
    except ImportError:
        pass
    else:
        return ray_transform_from_spec(ScannerSpec.from_dict(spec), device=device)
    import odl
    from odl.applications import tomo

    from deepinv_ei.odl import ray_transform_physics

    h, w = (int(n) for n in spec["image_shape"])
    px = float(spec["pixel_size"])
    space = odl.uniform_discr(
        [-h * px / 2, -w * px / 2], [h * px / 2, w * px / 2], (h, w), dtype="float32"
    )
    angles = np.asarray(spec["angles"], dtype=np.float64)
    steps = np.diff(angles)
    uniform = len(angles) > 1 and np.allclose(steps, steps[0], rtol=1e-6, atol=0)
    if uniform:  # FBP needs a uniform partition; its points are the angles themselves
        half = steps[0] / 2
        apart = odl.uniform_partition(angles[0] - half, angles[-1] + half, len(angles))
    else:
        apart = odl.nonuniform_partition(angles)
    n, pitch = int(spec["det_count"]), float(spec["det_pitch"])
    shift = float(spec.get("det_shift", 0.0))
    dpart = odl.uniform_partition(-n * pitch / 2 + shift, n * pitch / 2 + shift, n)
    if spec["geometry"] == "parallel2d":
        geometry = tomo.Parallel2dGeometry(apart, dpart)
    elif spec["geometry"] == "fan2d":
        geometry = tomo.FanBeamGeometry(
            apart, dpart, float(spec["src_radius"]), float(spec["det_radius"])
        )
    else:
        raise ValueError(f"geometry {spec['geometry']!r}: expected 'parallel2d' or 'fan2d'")
    if not math.isfinite(px) or px <= 0:
        raise ValueError(f"pixel_size must be > 0, got {px}")
    if not uniform:  # e.g. held-out views: A alone (no FBP for irregular angles)
        from deepinv_ei.odl import OdlPhysics, as_ray_transform

        return OdlPhysics(as_ray_transform((space, geometry))).to(device)
    return ray_transform_physics((space, geometry), device=device)

"""Tiny measurement sets in the contract's HDF5 layout, simulated from phantoms, for tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import torch

from deepinv_ei.data.phantoms import random_phantom


def parallel_spec(
    size: int,
    angles: np.ndarray,
    unit: str = "px",
    pixel: float = 1.0,
    det_count: int | None = None,
) -> dict:
    return {
        "geometry": "parallel2d",
        "unit": unit,
        "angles": [float(a) for a in angles],
        "det_count": det_count or int(np.ceil(np.sqrt(2) * size)),
        "det_pitch": pixel,
        "det_shift": 0.0,
        "image_shape": [size, size],
        "pixel_size": pixel,
    }


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def phantoms(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([random_phantom(rng, size) for _ in range(n)]).astype(np.float32)


def write_set(
    path: Path,
    x: np.ndarray,
    n_views: int = 8,
    keep_every: int = 2,
    unit: str = "px",
    pixel: float = 1.0,
    n_val: int = 2,
    sigma: float = 0.0,
    seed: int = 0,
    attenuation: float = 1.0,
    val: np.ndarray | None = None,
    det_count: int | None = None,
    I0: float | None = None,
) -> dict:
    """Write ``x`` (slices, H, W; per pixel attenuation in 1/px) as a measurement set whose
    spec is in ``unit`` with pixel size ``pixel``; returns the spec and the slice split."""
    from deepinv_ei.training.sets import physics_from_spec_dict

    size = x.shape[-1]
    all_angles = np.linspace(0, np.pi, n_views * keep_every, endpoint=False)
    kept = np.arange(0, len(all_angles), keep_every)
    held = np.setdiff1d(np.arange(len(all_angles)), kept)
    spec = parallel_spec(size, all_angles[kept], unit, pixel, det_count)
    spec_all = parallel_spec(size, all_angles, unit, pixel, det_count)
    physics = physics_from_spec_dict(spec_all)
    # the same physical object whatever the unit: attenuation per unit length = mu_px / pixel
    mu = torch.from_numpy(x)[:, None] * (attenuation / pixel)
    with torch.no_grad():
        y = physics.A(mu).numpy().astype(np.float64)
    rng = np.random.default_rng(seed)
    if sigma:
        y = y + sigma * rng.standard_normal(y.shape)
    if I0:  # post-log Poisson counts, floored at half a count
        y = -np.log(np.maximum(rng.poisson(I0 * np.exp(-y)), 0.5) / I0)
    y = y.astype(np.float32)
    val = np.arange(len(x) - n_val, len(x)) if val is None else np.sort(np.asarray(val))
    train = np.setdiff1d(np.arange(len(x)), val)
    with h5py.File(path, "w") as f:
        f.create_dataset("y_train", data=y[train][:, :, kept])
        f.create_dataset("y_test", data=y[val][:, :, kept])
        f.create_dataset("heldout/y_train", data=y[train][:, :, held])
        f.create_dataset("heldout/y_test", data=y[val][:, :, held])
        f.create_dataset("heldout/angles", data=all_angles[held])
        f.attrs["format"] = "deepinv-ei measurement set"
        f.attrs["format_version"] = 1
        f.attrs["spec"] = json.dumps(spec)
        f.attrs["spec_hash"] = spec_hash(spec)
        f.attrs["units"] = json.dumps({"length": unit, "image": f"1/{unit}"})
        f.attrs["train_slices"] = train
        f.attrs["val_slices"] = val
        f.attrs["split_seed"] = seed
        f.attrs["kept_views"] = kept
        f.attrs["heldout_views"] = held
        f.attrs["steps"] = "[]"
        if I0:
            f.create_dataset("noise/I0", data=np.full((len(x), y.shape[-1]), float(I0)))
            f["noise"].attrs["model"] = "poisson"
            f["noise"].attrs["read_noise"] = 0.0
    return {"spec": spec, "train": train, "val": val}

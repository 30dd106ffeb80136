"""Tiny measurement sets simulated from phantoms, written with the package's own writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepinv_ei.data.phantoms import random_phantom
from deepinv_ei.scan.measurement_set import write_measurement_set
from deepinv_ei.scan.spec import ScannerSpec, ray_transform_from_spec


def parallel_spec(
    size: int,
    angles: np.ndarray,
    unit: str = "px",
    pixel: float = 1.0,
    det_count: int | None = None,
) -> ScannerSpec:
    return ScannerSpec(
        geometry="parallel2d",
        unit=unit,
        angles=np.asarray(angles, dtype=np.float64),
        det_count=det_count or int(np.ceil(np.sqrt(2) * size)),
        det_pitch=pixel,
        image_shape=(size, size),
        pixel_size=pixel,
    )


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
    """Write the slices ``x`` ``(slices, H, W)`` (attenuation ``attenuation * x`` per pixel) as a
    measurement set whose spec is in ``unit`` with pixel size ``pixel``: ``n_views`` kept views,
    every ``keep_every``-th of a uniform set over 180 degrees, the others held out. ``sigma``
    adds Gaussian noise, ``I0`` post-log Poisson noise."""
    size = x.shape[-1]
    all_angles = np.linspace(0, np.pi, n_views * keep_every, endpoint=False)
    kept = np.arange(0, len(all_angles), keep_every)
    held = np.setdiff1d(np.arange(len(all_angles)), kept)
    spec = parallel_spec(size, all_angles[kept], unit, pixel, det_count)
    physics = ray_transform_from_spec(spec.with_angles(all_angles))
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
    noise = {"model": "none"}
    if I0:
        noise = {
            "model": "poisson",
            "I0": np.full((len(x), y.shape[-1]), float(I0)),
            "read_noise": 0.0,
        }
    write_measurement_set(
        path,
        spec,
        y[train][:, :, kept],
        y[val][:, :, kept],
        heldout_train=y[train][:, :, held],
        heldout_test=y[val][:, :, held],
        train_slices=train,
        val_slices=val,
        split_seed=seed,
        kept_views=kept,
        heldout_views=held,
        heldout_angles=all_angles[held],
        units={"length": unit, "image": f"1/{unit}"},
        steps=[],
        noise=noise,
        overwrite=True,
    )
    return {"spec": spec, "train": train, "val": val}

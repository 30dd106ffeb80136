"""Writing an ingested scan: the view selection and slice split, the step records, the sources
and their checksums, the measurement set itself and the summary of what was written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .measurement_set import MeasurementSetWriter, clipped_text
from .preprocess import DetectorWindow, select_views
from .readers import Stack, sha256_file
from .spec import ScannerSpec


@dataclass
class IngestSummary:
    """What :func:`~deepinv_ei.scan.ingest` wrote (``str(summary)`` is what the command prints)."""

    path: Path
    spec: ScannerSpec
    shapes: dict[str, tuple[int, ...]]
    units: dict[str, str]
    clipped: dict[str, int]
    kept_views: np.ndarray
    heldout_views: np.ndarray
    train_slices: np.ndarray
    val_slices: np.ndarray
    I0_mean: float | None = None
    read_noise: float | None = None
    centre_offset: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"wrote {self.path}",
            f"  y_train {self.shapes['y_train']}, y_test {self.shapes['y_test']} "
            "(slices, 1, views, detectors)",
            f"  slices: {len(self.train_slices)} train, {len(self.val_slices)} validation "
            f"{self.val_slices.tolist()}",
            f"  views: {len(self.kept_views)} kept, {len(self.heldout_views)} held out",
            f"  units: sinogram {self.units['sinogram']}, length {self.units['length']}",
            f"  clipped: {clipped_text(self.clipped)}",
        ]
        if self.I0_mean is not None:
            noise = "unknown" if self.read_noise is None else f"{self.read_noise:.4g}"
            lines.append(
                f"  I0 estimate: {self.I0_mean:.6g} counts (mean), read noise {noise} counts"
            )
        if self.centre_offset is not None:
            lines.append(f"  centre-of-rotation offset: {self.centre_offset:.3f} detector pixels")
        lines.append(f"  spec hash {self.spec.hash[:16]}")
        return "\n".join(lines)


def split_slices(n_slices: int, val_fraction: float = 0.1, seed: int = 0, n_val: int | None = None):
    """Seeded split of ``n_slices`` into sorted training and validation slice indices.

    ``n_val`` (default: ``round(val_fraction * n_slices)``, at least 1 when there are two
    slices or more and ``val_fraction > 0``) slices are drawn at random for validation.

    >>> split_slices(10, 0.2, seed=0)[1].tolist()
    [4, 6]
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if n_val is None:
        n_val = round(val_fraction * n_slices)
        if n_slices >= 2 and val_fraction > 0:
            n_val = max(n_val, 1)
    if not 0 <= n_val < max(n_slices, 1) or (n_slices == 1 and n_val):
        raise ValueError(f"n_val must leave at least one training slice of {n_slices}, got {n_val}")
    perm = np.random.default_rng(seed).permutation(n_slices)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def source_list(stacks: list[Stack | None], extra: list[Path]) -> list[dict[str, str]]:
    paths = [p for s in stacks if s is not None for p in s.sources] + list(extra)
    seen, out = set(), []
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append({"path": str(p), "sha256": sha256_file(p)})
    return out


def refuse_writing_over_inputs(out: Path, sources: list[dict[str, str]]) -> None:
    # With overwrite, the output could replace an input (a Data Exchange file, a spec).
    target = os.path.realpath(out)
    for src in sources:
        if os.path.realpath(src["path"]) == target:
            raise ValueError(
                f"{out}: the output is one of the inputs ({src['path']}); ingest never "
                "modifies its inputs: write the measurement set to another file"
            )


def units_of(spec: ScannerSpec) -> dict[str, str]:
    return {
        "length": spec.unit,
        "sinogram": f"line integral (attenuation unit x {spec.unit})",
        "image": f"1/{spec.unit}",
    }


def input_steps(kind: str, stack: Stack, values: str, window: DetectorWindow, reduce: str):
    """The step records of reading ``stack`` (``kind``: projections or sinograms) and of its
    detector window."""
    steps: list[dict[str, Any]] = [
        {"step": "read", kind: stack.name, "axes": ",".join(stack.axes),
         "dtype": str(stack.dtype), "shape": list(stack.shape), "values": values}
    ]  # fmt: skip
    if window.rows is not None:
        crop = "crop_rows" if kind == "projections" else "crop_slices"
        steps.append({"step": crop, "start": window.rows[0], "stop": window.rows[1]})
    if window.bin_rows > 1 or window.bin_cols > 1:
        steps.append({"step": "bin", "rows": window.bin_rows, "cols": window.bin_cols,
                      "reduce": reduce})  # fmt: skip
    return steps


@dataclass
class SetLayout:
    """Where the views and slices of a scan go in the measurement set."""

    kept: np.ndarray
    heldout: np.ndarray
    train: np.ndarray
    val: np.ndarray


def write_set(
    out: Path, spec: ScannerSpec, *, n_views: int, n_slices: int, views: dict, split: tuple,
    steps: list[dict[str, Any]], sources: list[dict[str, str]], noise: dict[str, Any],
    centre_offset: float | None, overwrite: bool,
    stream: Callable[[MeasurementSetWriter, SetLayout], dict[str, int]],
) -> IngestSummary:  # fmt: skip
    """Select the views, split the slices, and write the set: ``stream(writer, layout)`` fills
    the writer's datasets and returns the clipped counts. ``spec`` is the scanner after the
    detector window, with every view."""
    refuse_writing_over_inputs(out, sources)
    kept, heldout = select_views(n_views, **views)
    val_fraction, seed, n_val = split
    train, val = split_slices(n_slices, val_fraction, seed, n_val=n_val)
    given = {k: (list(v) if k == "indices" else v) for k, v in views.items() if v is not None}
    steps = [
        *steps,
        {"step": "select_views", **given, "kept": len(kept), "heldout": len(heldout)},
        {"step": "split_slices", "val_fraction": val_fraction, "seed": seed,
         "train": len(train), "validation": len(val)},
    ]  # fmt: skip
    kept_spec = spec.select_views(kept)
    n_det = spec.det_count
    writer = MeasurementSetWriter(
        out, len(train), len(val), len(kept), len(heldout), n_det, overwrite
    )
    with writer:
        clipped = stream(writer, SetLayout(kept, heldout, train, val))
        writer.set_metadata(
            kept_spec, train_slices=train, val_slices=val, split_seed=seed, kept_views=kept,
            heldout_views=heldout, heldout_angles=spec.angles[heldout], units=units_of(spec),
            steps=steps, clipped=clipped, sources=sources, noise=noise,
        )  # fmt: skip
    I0 = noise.get("I0")
    return IngestSummary(
        out, kept_spec, {"y_train": (len(train), 1, len(kept), n_det),
                         "y_test": (len(val), 1, len(kept), n_det)},
        units_of(spec), clipped, kept, heldout, train, val,
        I0_mean=float(I0.mean()) if I0 is not None else None,
        read_noise=noise.get("read_noise"), centre_offset=centre_offset, steps=steps,
    )  # fmt: skip

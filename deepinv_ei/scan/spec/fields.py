"""The vocabulary of scanner specs: geometries, units, the error, and the checks of one field.

Each check names the field as the file writes it (``detector.pitch (det_pitch)``), so an error
says what to fix in the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ANGLE_UNITS", "GEOMETRIES", "LENGTH_UNITS", "ScannerSpecError"]

#: The geometries a spec describes.
GEOMETRIES = ("parallel2d", "fan2d", "parallel3d", "cone3d")
#: The length units: every distance of a spec is in one of these.
LENGTH_UNITS = ("mm", "cm", "m", "px")
#: The units angles may be given in (they are radians in memory).
ANGLE_UNITS = ("deg", "rad")
#: The version of the file format that this package reads and writes.
FORMAT_VERSION = 1
STACKED = ("parallel3d", "cone3d")  # geometries with detector rows
DIVERGENT = ("fan2d", "cone3d")  # geometries with a source and detector distance
PARALLEL = ("parallel2d", "parallel3d")

# Where each dataclass field lives in the file, for error messages.
FILE_KEY = {
    "geometry": "geometry",
    "unit": "unit",
    "angles": "angles",
    "det_count": "detector.count",
    "det_pitch": "detector.pitch",
    "det_shift": "detector.shift",
    "det_rows": "detector.rows",
    "row_pitch": "detector.row_pitch",
    "row_shift": "detector.row_shift",
    "det_radius": "detector.distance",
    "det_offset": "detector.offset",
    "src_radius": "source.distance",
    "src_offset": "source.offset",
    "image_shape": "image.shape",
    "pixel_size": "image.pixel_size",
    "image_center": "image.center",
    "det_extent": "detector.extent",
    "row_extent": "detector.row_extent",
    "image_extent": "image.extent",
}


class ScannerSpecError(ValueError):
    """A scanner spec (file, dict or arguments) that is malformed or contradicts the data."""


def field_name(attr: str) -> str:
    """How errors name the dataclass field ``attr``: its place in the file, and its name."""
    key = FILE_KEY[attr]
    return key if key == attr else f"{key} ({attr})"


def is_number(v: Any) -> bool:
    """A real number, not a bool."""
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def as_float(v: Any, attr: str, *, minimum: float | None = None, strict: bool = True) -> float:
    """``v`` as a finite float (``-0.0`` as ``0.0``), above ``minimum`` (or equal, not
    ``strict``)."""
    if not is_number(v) or not math.isfinite(float(v)):
        raise ScannerSpecError(f"{field_name(attr)} must be a finite number, got {v!r}")
    v = float(v) + 0.0  # -0.0 -> 0.0
    if minimum is not None and (v <= minimum if strict else v < minimum):
        rel = ">" if strict else ">="
        raise ScannerSpecError(f"{field_name(attr)} must be {rel} {minimum:g}, got {v!r}")
    return v


def as_int(v: Any, attr: str, minimum: int = 1) -> int:
    """``v`` as an integer of at least ``minimum``."""
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise ScannerSpecError(f"{field_name(attr)} must be an integer, got {v!r}")
    if v < minimum:
        raise ScannerSpecError(f"{field_name(attr)} must be >= {minimum}, got {int(v)}")
    return int(v)


def as_floats(v: Any, attr: str, length: int) -> tuple[float, ...]:
    """``v`` as ``length`` finite floats."""
    if not isinstance(v, list | tuple | np.ndarray) or len(v) != length:
        raise ScannerSpecError(f"{field_name(attr)} must be a list of {length} numbers, got {v!r}")
    return tuple(as_float(x, attr) for x in v)


def angle_values(form: dict, origin: str) -> np.ndarray:
    """The angles that the file form ``form`` describes, in its unit (no conversion)."""
    if "values" in form:
        values = form["values"]
        if not isinstance(values, list | tuple | np.ndarray) or not all(
            is_number(v) for v in values
        ):
            raise ScannerSpecError(f"{origin}angles.values must be a list of numbers")
        return np.asarray(values, dtype=np.float64).reshape(-1)
    count = form["count"]
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise ScannerSpecError(f"{origin}angles.count must be an integer >= 1, got {count!r}")
    start = form.get("start", 0.0)
    for key in ("start", "stop", "step"):
        if key in form and (not is_number(form[key]) or not math.isfinite(form[key])):
            raise ScannerSpecError(f"{origin}angles.{key} must be a finite number")
    step = form["step"] if "step" in form else (form["stop"] - start) / count
    # start + i * step: the scanner's convention; the range's end (stop) is excluded.
    return float(start) + np.arange(int(count), dtype=np.float64) * float(step)


def to_radians(values: np.ndarray, unit: str) -> np.ndarray:
    """Angles in ``unit`` (``"deg"`` or ``"rad"``) as float64 radians."""
    return np.deg2rad(values) if unit == "deg" else np.array(values, dtype=np.float64)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two float arrays are equal bit for bit (``-0.0`` differs from ``0.0``)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.all(a.view(np.int64) == b.view(np.int64)))


def cell_bounds(n: int, size: float, center: float) -> tuple[float, float]:
    """The ends ``center -+ n * size / 2`` of ``n`` cells of ``size``."""
    half = n * size / 2
    return center - half, center + half


def checked_extent(
    extent: Any,
    attr: str,
    counts: Sequence[int],
    size: float,
    centres: Sequence[float],
    per_axis: bool = False,
) -> Any:
    """Validate an exact extent against the size and centres it must agree with."""
    if extent is None:
        return None
    pairs = list(extent) if per_axis else [extent]
    if not isinstance(extent, list | tuple) or len(pairs) != len(counts):
        raise ScannerSpecError(
            f"{field_name(attr)} must be {len(counts)} pair(s) [low, high], got {extent!r}"
        )
    out = []
    for pair, n, c in zip(pairs, counts, centres, strict=True):
        lo, hi = as_floats(pair, attr, 2)
        if not (
            hi > lo
            and math.isclose((hi - lo) / n, size, rel_tol=1e-9)
            and abs((lo + hi) / 2 - c) <= 1e-9 * (hi - lo)
        ):
            raise ScannerSpecError(
                f"{field_name(attr)} [{lo!r}, {hi!r}] of {n} cells does not agree with the pixel "
                f"size {size!r} and centre {c!r} (relative 1e-9)"
            )
        out.append((lo, hi))
    return tuple(out) if per_axis else out[0]

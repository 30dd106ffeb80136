r"""Scanner description files: what a CT scanner measured, as a small TOML or JSON file.

A :class:`ScannerSpec` holds the geometry of a scan (2D parallel beam, 2D fan beam with a flat
detector, 3D parallel beam as a stack of 2D slices, 3D cone beam), its views, its detector and
the image grid to reconstruct on, all lengths in one unit. :func:`load_spec` and
:func:`save_spec` read and write the file format (documented field by field in
``docs/scanner_spec.md``); :func:`geometry_from_spec` and :func:`spec_from_geometry` convert to
and from ODL, exactly: the round trip gives the same system matrix
(``deepinv_ei.odl.geometry.geometry_key``), bit for bit.

Sinograms are ``(views, detectors)`` per slice, ODL's order. Angles are in radians in memory,
increasing; a view at angle :math:`\theta` sees the object rotated by :math:`-\theta` (ODL's
convention: source and detector turn counter-clockwise).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.io import atomic_write_json, atomic_write_text
from . import _toml

__all__ = [
    "ANGLE_UNITS",
    "GEOMETRIES",
    "LENGTH_UNITS",
    "ScannerSpec",
    "ScannerSpecError",
    "geometry_fingerprint",
    "geometry_from_spec",
    "load_spec",
    "ray_transform_from_spec",
    "save_spec",
    "spec_from_geometry",
]

#: The geometries a spec describes.
GEOMETRIES = ("parallel2d", "fan2d", "parallel3d", "cone3d")
#: The length units: every distance of a spec is in one of these.
LENGTH_UNITS = ("mm", "cm", "m", "px")
#: The units angles may be given in (they are radians in memory).
ANGLE_UNITS = ("deg", "rad")
FORMAT_VERSION = 1
_HASH_TAG = "deepinv-ei scanner spec"
_STACKED = ("parallel3d", "cone3d")  # geometries with detector rows
_DIVERGENT = ("fan2d", "cone3d")  # geometries with a source and detector distance
_PARALLEL = ("parallel2d", "parallel3d")

# Where each dataclass field lives in the file, for error messages.
_FILE_KEY = {
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


def _name(attr: str) -> str:
    key = _FILE_KEY[attr]
    return key if key == attr else f"{key} ({attr})"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _float(v: Any, attr: str, *, minimum: float | None = None, strict: bool = True) -> float:
    if not _is_number(v) or not math.isfinite(float(v)):
        raise ScannerSpecError(f"{_name(attr)} must be a finite number, got {v!r}")
    v = float(v) + 0.0  # -0.0 -> 0.0
    if minimum is not None and (v <= minimum if strict else v < minimum):
        rel = ">" if strict else ">="
        raise ScannerSpecError(f"{_name(attr)} must be {rel} {minimum:g}, got {v!r}")
    return v


def _int(v: Any, attr: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise ScannerSpecError(f"{_name(attr)} must be an integer, got {v!r}")
    if v < minimum:
        raise ScannerSpecError(f"{_name(attr)} must be >= {minimum}, got {int(v)}")
    return int(v)


def _floats(v: Any, attr: str, length: int) -> tuple[float, ...]:
    if not isinstance(v, list | tuple | np.ndarray) or len(v) != length:
        raise ScannerSpecError(f"{_name(attr)} must be a list of {length} numbers, got {v!r}")
    return tuple(_float(x, attr) for x in v)


def _absent(spec: ScannerSpec, attrs: Sequence[str], allowed_for: str) -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(spec)}
    for attr in attrs:
        if getattr(spec, attr) != defaults[attr]:
            raise ScannerSpecError(
                f"{_name(attr)} is only for {allowed_for}, not for geometry "
                f"{spec.geometry!r}; got {getattr(spec, attr)!r}"
            )


def _angle_values(form: dict, origin: str) -> np.ndarray:
    """The angles that the file form ``form`` describes, in its unit (no conversion)."""
    if "values" in form:
        values = form["values"]
        if not isinstance(values, list | tuple | np.ndarray) or not all(
            _is_number(v) for v in values
        ):
            raise ScannerSpecError(f"{origin}angles.values must be a list of numbers")
        return np.asarray(values, dtype=np.float64).reshape(-1)
    count = form["count"]
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise ScannerSpecError(f"{origin}angles.count must be an integer >= 1, got {count!r}")
    start = form.get("start", 0.0)
    for key in ("start", "stop", "step"):
        if key in form and (not _is_number(form[key]) or not math.isfinite(form[key])):
            raise ScannerSpecError(f"{origin}angles.{key} must be a finite number")
    step = form["step"] if "step" in form else (form["stop"] - start) / count
    # start + i * step: the scanner's convention; the range's end (stop) is excluded.
    return float(start) + np.arange(int(count), dtype=np.float64) * float(step)


def _to_radians(values: np.ndarray, unit: str) -> np.ndarray:
    return np.deg2rad(values) if unit == "deg" else np.array(values, dtype=np.float64)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.all(a.view(np.int64) == b.view(np.int64)))


@dataclass(frozen=True, eq=False)
class ScannerSpec:
    r"""The geometry of a CT scan: views, detector, source (fan and cone beam) and image grid.

    Lengths are in ``unit``, angles in radians. The detector's pixel ``i`` (``0 <= i <
    det_count``) is centred at :math:`u_i = (i + \tfrac12 - \tfrac{n}{2})\,p - s` along the
    detector, with :math:`n` = ``det_count``, :math:`p` = ``det_pitch`` and :math:`s` =
    ``det_shift``, measured from the point where the ray through the rotation axis meets the
    detector: so that ray falls on column :math:`(n - 1)/2 + s/p`. A positive shift is a
    rotation axis seen right of the detector's centre (towards higher columns), as
    ``center = (n - 1)/2 + shift/pitch`` in tomopy's terms.

    :param str geometry: ``"parallel2d"``, ``"fan2d"``, ``"parallel3d"`` (a stack of
        independent 2D parallel-beam slices: each detector row is one slice's sinogram) or
        ``"cone3d"``.
    :param str unit: the length unit of every distance: ``"mm"``, ``"cm"``, ``"m"`` or ``"px"``.
    :param angles: the views' angles in radians, strictly increasing (exposed read-only).
    :param int det_count: detector pixels along a row (the sinogram's last axis).
    :param float det_pitch: detector pixel width.
    :param float det_shift: centre-of-rotation offset along the detector (see above).
    :param int det_rows: detector rows (``parallel3d``: slices; ``cone3d``: rows); 1 in 2D.
    :param row_pitch: height of a detector row (``cone3d``; ``parallel3d``: the slice
        spacing, ``det_pitch`` if ``None``).
    :param float row_shift: ``cone3d``: offset of the central ray along the rows, as
        ``det_shift`` along the columns.
    :param src_radius: source to rotation axis (fan and cone beam).
    :param det_radius: rotation axis to detector (fan and cone beam; 0 is a virtual detector
        through the axis).
    :param src_offset: ``fan2d``: constant displacement ``(radial, lateral)`` of the source,
        radial away from the axis, lateral along the detector's columns.
    :param det_offset: ``fan2d``: the same for the detector.
    :param image_shape: the image grid of one slice, ``(H, W)`` in ODL's axis order (``cone3d``:
        ``(X, Y, Z)``); for parallel beam ``(det_count, det_count)`` by default.
    :param pixel_size: the grid's (square) pixel size; for parallel beam ``det_pitch`` by
        default.
    :param image_center: the grid's centre, zeros by default (an off-centre field of view).
    :param det_extent: the detector's exact ends ``(low, high)`` along its axis, only where
        they are not exactly :math:`-s \mp \tfrac{n}{2} p` in floating point (as
        :func:`spec_from_geometry` finds for some ODL partitions); ``det_pitch`` and
        ``det_shift`` must then agree with them to a relative ``1e-9``.
    :param row_extent: the same for the rows (``cone3d``).
    :param image_extent: the same for the image grid, ``(low, high)`` per axis.
    :param angles_form: how a file wrote the angles (count and range, or a list in degrees);
        :meth:`to_dict` writes them back that way. Equality and :attr:`hash` ignore it.

    :Examples:

    >>> import numpy as np
    >>> from deepinv_ei.scan import ScannerSpec
    >>> spec = ScannerSpec.from_dict({
    ...     "geometry": "parallel2d", "unit": "mm",
    ...     "angles": {"unit": "deg", "count": 4, "start": 0.0, "stop": 180.0},
    ...     "detector": {"count": 8, "pitch": 0.5}})
    >>> np.rad2deg(spec.angles).round(6).tolist(), spec.sinogram_shape, spec.image_shape
    ([0.0, 45.0, 90.0, 135.0], (4, 8), (8, 8))
    >>> spec == ScannerSpec.from_dict(spec.to_dict()) and len(spec.hash)
    64
    """

    geometry: str
    unit: str
    angles: np.ndarray
    det_count: int
    det_pitch: float
    det_shift: float = 0.0
    det_rows: int = 1
    row_pitch: float | None = None
    row_shift: float = 0.0
    src_radius: float | None = None
    det_radius: float | None = None
    src_offset: tuple[float, float] = (0.0, 0.0)
    det_offset: tuple[float, float] = (0.0, 0.0)
    image_shape: tuple[int, ...] | None = None
    pixel_size: float | None = None
    image_center: tuple[float, ...] | None = None
    det_extent: tuple[float, float] | None = None
    row_extent: tuple[float, float] | None = None
    image_extent: tuple[tuple[float, float], ...] | None = None
    angles_form: dict | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:  # frozen: normalise the fields in place
            object.__setattr__(self, name, value)

        if self.geometry not in GEOMETRIES:
            raise ScannerSpecError(
                f"geometry must be one of {', '.join(GEOMETRIES)}, got {self.geometry!r}"
            )
        if self.unit is None:
            raise ScannerSpecError(
                f"unit is missing: the length unit of every distance, one of "
                f"{', '.join(LENGTH_UNITS)}"
            )
        if self.unit not in LENGTH_UNITS:
            raise ScannerSpecError(
                f"unit must be one of {', '.join(LENGTH_UNITS)}, got {self.unit!r}"
            )
        set_("angles", self._checked_angles(self.angles))
        set_("det_count", _int(self.det_count, "det_count"))
        set_("det_pitch", _float(self.det_pitch, "det_pitch", minimum=0.0))
        set_("det_shift", _float(self.det_shift, "det_shift"))
        set_("det_rows", _int(self.det_rows, "det_rows"))
        set_("row_shift", _float(self.row_shift, "row_shift"))
        set_("src_offset", _floats(self.src_offset, "src_offset", 2))
        set_("det_offset", _floats(self.det_offset, "det_offset", 2))
        g = self.geometry
        if g not in _STACKED:
            _absent(self, ("det_rows", "row_pitch"), "parallel3d and cone3d")
        if g != "cone3d":
            _absent(self, ("row_shift",), "cone3d")
        if g != "fan2d":
            _absent(self, ("src_offset", "det_offset"), "fan2d")
        if g == "parallel3d" and self.row_pitch is None:
            set_("row_pitch", self.det_pitch)
        if self.row_pitch is not None:
            set_("row_pitch", _float(self.row_pitch, "row_pitch", minimum=0.0))
        elif g == "cone3d":
            raise ScannerSpecError(f"{_name('row_pitch')} is missing (needed for cone3d)")
        if g in _DIVERGENT:
            for attr in ("src_radius", "det_radius"):
                if getattr(self, attr) is None:
                    raise ScannerSpecError(f"{_name(attr)} is missing (needed for {g})")
            set_("src_radius", _float(self.src_radius, "src_radius", minimum=0.0))
            set_("det_radius", _float(self.det_radius, "det_radius", minimum=0.0, strict=False))
        else:
            _absent(self, ("src_radius", "det_radius"), "fan2d and cone3d")
        ndim = 3 if g == "cone3d" else 2
        if self.image_shape is None and g in _PARALLEL:
            set_("image_shape", (self.det_count, self.det_count))
        if self.pixel_size is None and g in _PARALLEL:
            set_("pixel_size", self.det_pitch)
        for attr in ("image_shape", "pixel_size"):
            if getattr(self, attr) is None:
                raise ScannerSpecError(
                    f"{_name(attr)} is missing (needed for {g}; only parallel beam has a default)"
                )
        shape = self.image_shape
        if not isinstance(shape, list | tuple) or len(shape) != ndim:
            raise ScannerSpecError(
                f"{_name('image_shape')} must be a list of {ndim} integers for {g}, got {shape!r}"
            )
        set_("image_shape", tuple(_int(n, "image_shape") for n in shape))
        set_("pixel_size", _float(self.pixel_size, "pixel_size", minimum=0.0))
        center = (0.0,) * ndim if self.image_center is None else self.image_center
        set_("image_center", _floats(center, "image_center", ndim))
        if g != "cone3d":
            _absent(self, ("row_extent",), "cone3d")
        set_(
            "det_extent",
            _extent(
                self.det_extent, "det_extent", [self.det_count], self.det_pitch, [-self.det_shift]
            ),
        )
        if g == "cone3d":
            set_(
                "row_extent",
                _extent(
                    self.row_extent,
                    "row_extent",
                    [self.det_rows],
                    self.row_pitch,
                    [-self.row_shift],
                ),
            )
        set_(
            "image_extent",
            _extent(
                self.image_extent,
                "image_extent",
                self.image_shape,
                self.pixel_size,
                self.image_center,
                per_axis=True,
            ),
        )
        if self.angles_form is not None:
            set_("angles_form", dict(self.angles_form))

    @staticmethod
    def _checked_angles(angles: Any) -> np.ndarray:
        try:
            a = np.array(angles, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ScannerSpecError(f"angles must be a list of numbers, got {angles!r}") from None
        if np.ndim(angles) > 1:
            raise ScannerSpecError(f"angles must be one-dimensional, got shape {np.shape(angles)}")
        if a.size == 0:
            raise ScannerSpecError("angles: at least one view is needed, got none")
        if not np.all(np.isfinite(a)):
            raise ScannerSpecError(f"angles must be finite, got {np.sum(~np.isfinite(a))} NaN/inf")
        down = np.flatnonzero(np.diff(a) <= 0)
        if down.size:
            i = int(down[0])
            raise ScannerSpecError(
                f"angles must be strictly increasing (ODL's angle partition), but view {i + 1} "
                f"({a[i + 1]!r} rad) does not follow view {i} ({a[i]!r} rad); sort the views "
                "(and their data) by angle first, e.g. with numpy.argsort"
            )
        a.setflags(write=False)
        return a

    # --- the exact grids -----------------------------------------------------------------

    @property
    def det_bounds(self) -> tuple[float, float]:
        r"""The detector's ends ``(low, high)`` along its axis: ``det_extent``, or
        :math:`-s \mp \tfrac{n}{2} p`."""
        return self.det_extent or _bounds(self.det_count, self.det_pitch, -self.det_shift)

    @property
    def row_bounds(self) -> tuple[float, float] | None:
        """``cone3d``: the rows' ends ``(low, high)``, as :attr:`det_bounds`; else ``None``."""
        if self.geometry != "cone3d":
            return None
        return self.row_extent or _bounds(self.det_rows, self.row_pitch, -self.row_shift)

    @property
    def image_bounds(self) -> tuple[tuple[float, float], ...]:
        r"""The image grid's ends ``(low, high)`` per axis: ``image_extent``, or
        :math:`c \mp \tfrac{n}{2} h`."""
        if self.image_extent is not None:
            return self.image_extent
        return tuple(
            _bounds(n, self.pixel_size, c)
            for n, c in zip(self.image_shape, self.image_center, strict=True)
        )

    # --- equality and identity ------------------------------------------------------------

    def _canonical(self) -> dict:
        """The values that identify the scanner, floats as exact hex strings (-0.0 as 0.0)."""

        def f(x: float | None) -> str | None:
            return None if x is None else float(x + 0.0).hex()

        return {
            "format": _HASH_TAG,
            "version": FORMAT_VERSION,
            "geometry": self.geometry,
            "unit": self.unit,
            "angles": [f(a) for a in self.angles.tolist()],
            "det_count": self.det_count,
            "det_bounds": [f(x) for x in self.det_bounds],
            "det_rows": self.det_rows,
            "row_pitch": f(self.row_pitch) if self.geometry == "parallel3d" else None,
            "row_bounds": [f(x) for x in self.row_bounds] if self.row_bounds else None,
            "src_radius": f(self.src_radius),
            "det_radius": f(self.det_radius),
            "src_offset": [f(x) for x in self.src_offset],
            "det_offset": [f(x) for x in self.det_offset],
            "image_shape": list(self.image_shape),
            "image_bounds": [[f(lo), f(hi)] for lo, hi in self.image_bounds],
        }

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the canonical serialisation: it identifies the scanner.

        Independent of the file format, of key order, of whether the angles were written as
        count and range or as the equal explicit list, and of defaults written out or not. The
        serialisation is the JSON (sorted keys, no spaces) of the geometry, unit, angles in
        radians, detector count and ends (:attr:`det_bounds`), rows, distances, offsets and
        image shape and ends (:attr:`image_bounds`), every float as its exact hexadecimal form
        (:meth:`float.hex`). Two specs are equal when these are.
        """
        text = json.dumps(self._canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScannerSpec):
            return NotImplemented
        return self._canonical() == other._canonical()

    def __hash__(self) -> int:
        return hash(self.hash)

    # --- derived sizes ----------------------------------------------------------------------

    @property
    def num_views(self) -> int:
        """The number of views (angles)."""
        return int(self.angles.size)

    @property
    def num_slices(self) -> int:
        """Independent 2D slices: ``det_rows`` for ``parallel3d``, else 1."""
        return self.det_rows if self.geometry == "parallel3d" else 1

    @property
    def sinogram_shape(self) -> tuple[int, ...]:
        """``(views, detectors)`` of one slice (``cone3d``: ``(views, columns, rows)``, ODL's
        range)."""
        if self.geometry == "cone3d":
            return (self.num_views, self.det_count, self.det_rows)
        return (self.num_views, self.det_count)

    # --- variants -------------------------------------------------------------------------

    def _angle_values_in_form_unit(self) -> tuple[np.ndarray, str]:
        form = self._reproducing_form()
        if form is None:
            return np.array(self.angles), "rad"
        return _angle_values(form, ""), form["unit"]

    def with_angles(self, angles: Any, unit: str = "rad") -> ScannerSpec:
        """The same scanner with other views, ``angles`` in ``unit`` (``"rad"`` or ``"deg"``)."""
        if unit not in ANGLE_UNITS:
            raise ScannerSpecError(f"angle unit must be one of {ANGLE_UNITS}, got {unit!r}")
        values = np.asarray(angles, dtype=np.float64).reshape(-1)
        return dataclasses.replace(
            self,
            angles=_to_radians(values, unit),
            angles_form={"unit": unit, "values": values.tolist()},
        )

    def select_views(self, indices: Any) -> ScannerSpec:
        """The same scanner with the views ``indices`` (increasing), e.g. a sparse-view subset.

        The angles keep the unit they were given in, so the file lists them as written.

        >>> spec = ScannerSpec("parallel2d", "px", np.linspace(0, 3, 7), det_count=5, det_pitch=1.0)
        >>> spec.select_views([0, 3, 6]).angles.tolist()
        [0.0, 1.5, 3.0]
        """
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ScannerSpecError(f"view indices must be a 1D integer array, got {indices!r}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_views):
            raise ScannerSpecError(
                f"view indices must be in [0, {self.num_views}), got {idx.min()}..{idx.max()}"
            )
        values, unit = self._angle_values_in_form_unit()
        return self.with_angles(values[idx], unit)

    def with_detector(
        self,
        count: int | None = None,
        pitch: float | None = None,
        shift: float | None = None,
        rows: int | None = None,
        row_pitch: float | None = None,
    ) -> ScannerSpec:
        """The same scanner with another detector (after binning or cropping); ``None`` keeps a
        value. The image grid is kept: give a new one with :meth:`with_image`."""
        new = {
            "det_count": count,
            "det_pitch": pitch,
            "det_shift": shift,
            "det_rows": rows,
            "row_pitch": row_pitch,
        }
        return dataclasses.replace(self, **{k: v for k, v in new.items() if v is not None})

    def with_image(
        self,
        shape: Sequence[int] | None = None,
        pixel_size: float | None = None,
        center: Sequence[float] | None = None,
    ) -> ScannerSpec:
        """The same scanner with another image grid; ``None`` keeps a value."""
        new = {"image_shape": shape, "pixel_size": pixel_size, "image_center": center}
        return dataclasses.replace(self, **{k: v for k, v in new.items() if v is not None})

    # --- the file format --------------------------------------------------------------------

    def _reproducing_form(self) -> dict | None:
        """``angles_form`` if it gives exactly ``angles`` (else the list in radians is written)."""
        form = self.angles_form
        if not form or form.get("unit") not in ANGLE_UNITS:
            return None
        try:
            values = _angle_values(form, "")
        except (KeyError, ScannerSpecError, TypeError):
            return None
        return form if _same_bits(_to_radians(values, form["unit"]), self.angles) else None

    def to_dict(self) -> dict:
        """The file format as a plain dict (TOML and JSON), every value written out.

        Floats are written as the shortest decimal that reads back as the same float, so
        ``ScannerSpec.from_dict(spec.to_dict()) == spec``; an angles file is written inline.
        """
        form = self._reproducing_form()
        if form is None:
            angles: dict = {"unit": "rad", "values": self.angles.tolist()}
        elif "values" in form:
            angles = {"unit": form["unit"], "values": _angle_values(form, "").tolist()}
        else:
            angles = {k: form[k] for k in ("unit", "count", "start", "stop", "step") if k in form}
            angles.setdefault("start", 0.0)
        out: dict = {
            "version": FORMAT_VERSION,
            "geometry": self.geometry,
            "unit": self.unit,
            "angles": angles,
        }
        det: dict = {"count": self.det_count, "pitch": self.det_pitch, "shift": self.det_shift}
        if self.det_extent is not None:
            det["extent"] = list(self.det_extent)
        if self.geometry in _STACKED:
            det.update(rows=self.det_rows, row_pitch=self.row_pitch)
        if self.geometry == "cone3d":
            det["row_shift"] = self.row_shift
            if self.row_extent is not None:
                det["row_extent"] = list(self.row_extent)
        if self.geometry in _DIVERGENT:
            det["distance"] = self.det_radius
            src: dict = {"distance": self.src_radius}
            if self.geometry == "fan2d":
                det["offset"] = list(self.det_offset)
                src["offset"] = list(self.src_offset)
        out["detector"] = det
        if self.geometry in _DIVERGENT:
            out["source"] = src
        out["image"] = {
            "shape": list(self.image_shape),
            "pixel_size": self.pixel_size,
            "center": list(self.image_center),
        }
        if self.image_extent is not None:
            out["image"]["extent"] = [list(e) for e in self.image_extent]
        return out

    @classmethod
    def from_dict(
        cls, d: dict, base_dir: str | os.PathLike | None = None, origin: str | None = None
    ) -> ScannerSpec:
        """Read the file format (a dict from TOML or JSON), validating every field.

        :param dict d: the parsed file.
        :param base_dir: folder an ``angles.file`` is relative to (default: the working folder).
        :param origin: where ``d`` came from (a file name), for the error messages.
        :raises ScannerSpecError: unknown, missing or invalid fields, naming them (and the
            allowed ones); :class:`FileNotFoundError` if the angles file is missing.
        """
        where = f"{origin}: " if origin else ""
        try:
            return cls(**_parse(d, Path(base_dir) if base_dir is not None else Path.cwd(), where))
        except ScannerSpecError as err:
            msg = str(err)
            raise ScannerSpecError(msg if msg.startswith(where) else where + msg) from None

    # --- data checks ----------------------------------------------------------------------

    def check_data_shape(
        self, shape: Sequence[int], axes: str | Sequence[str], what: str = "data"
    ) -> None:
        """Raise if an array of ``shape``, with named ``axes``, does not fit this scanner.

        Axis names: ``angle`` (this many views), ``detector`` or ``col`` (``det_count``), and
        ``row`` or ``slice`` (``det_rows`` for ``parallel3d`` and ``cone3d``; any number for 2D
        geometries, where they count independent slices). When the lengths fit only with the
        axes in another order, the error says that the array looks transposed and how.

        :param what: what the array is (a file name and ``"sinograms"``), for the message.

        >>> spec = ScannerSpec("fan2d", "mm", np.linspace(0, 6, 90), det_count=64,
        ...                    det_pitch=1.0, src_radius=500.0, det_radius=300.0,
        ...                    image_shape=(32, 32), pixel_size=1.0)
        >>> spec.check_data_shape((5, 90, 64), "slice,angle,detector")
        >>> spec.check_data_shape((5, 64, 90), "slice,angle,detector", "fan.npy")
        Traceback (most recent call last):
        ...
        deepinv_ei.scan.spec.ScannerSpecError: fan.npy of shape (5, 64, 90) with axes (slice, angle, detector) looks transposed: its lengths fit the scanner (90 views, 64 detector pixels) as axes (slice, detector, angle); transpose it or name its axes in that order
        """
        names = _axis_names(axes)
        shape = tuple(int(n) for n in shape)
        if len(names) != len(shape):
            raise ScannerSpecError(
                f"{what} has {len(shape)} axes {shape} but {len(names)} axis names were given "
                f"({', '.join(names)})"
            )
        expected = {name: self._axis_length(name) for name in names}

        def fits(order: Sequence[str]) -> bool:
            return all(
                expected[n] is None or expected[n] == s for n, s in zip(order, shape, strict=True)
            )

        if fits(names):
            return
        about = (
            f"the scanner ({self.num_views} views, {self.det_count} detector pixels"
            + (f", {self.det_rows} rows" if self.geometry in _STACKED else "")
            + ")"
        )
        for order in itertools.permutations(names):
            if list(order) != names and fits(order):
                raise ScannerSpecError(
                    f"{what} of shape {shape} with axes ({', '.join(names)}) looks transposed: "
                    f"its lengths fit {about} as axes ({', '.join(order)}); transpose it or "
                    "name its axes in that order"
                )
        wrong = [
            f"{n} has length {s}, expected {expected[n]}"
            for n, s in zip(names, shape, strict=True)
            if expected[n] is not None and expected[n] != s
        ]
        raise ScannerSpecError(
            f"{what} of shape {shape} with axes ({', '.join(names)}) does not fit {about}: "
            + "; ".join(wrong)
        )

    def check_sinograms(
        self,
        shape: Sequence[int],
        axes: str | Sequence[str] = "angle,detector",
        what: str = "sinograms",
    ) -> None:
        """:meth:`check_data_shape` for sinograms, ``(angle, detector)`` per slice by default."""
        self.check_data_shape(shape, axes, what)

    def check_projections(
        self,
        shape: Sequence[int],
        axes: str | Sequence[str] = "angle,row,col",
        what: str = "projections",
    ) -> None:
        """:meth:`check_data_shape` for projections, ``(angle, row, col)`` by default."""
        self.check_data_shape(shape, axes, what)

    def _axis_length(self, name: str) -> int | None:
        if name == "angle":
            return self.num_views
        if name in ("detector", "col"):
            return self.det_count
        return self.det_rows if self.geometry in _STACKED else None


_AXIS_ALIASES = {
    "angle": "angle",
    "angles": "angle",
    "view": "angle",
    "views": "angle",
    "theta": "angle",
    "detector": "detector",
    "detectors": "detector",
    "det": "detector",
    "col": "col",
    "cols": "col",
    "column": "col",
    "columns": "col",
    "row": "row",
    "rows": "row",
    "slice": "slice",
    "slices": "slice",
}


def _axis_names(axes: str | Sequence[str]) -> list[str]:
    raw = axes.split(",") if isinstance(axes, str) else list(axes)
    names = []
    for a in raw:
        key = str(a).strip().lower()
        if key not in _AXIS_ALIASES:
            raise ScannerSpecError(
                f"unknown axis name {a!r}; expected angle, detector, row, col or slice"
            )
        names.append(_AXIS_ALIASES[key])
    if len(set(names)) != len(names):
        raise ScannerSpecError(f"axis names repeat: {', '.join(names)}")
    return names


# --- parsing the file format ----------------------------------------------------------------

_TOP = ("version", "geometry", "unit", "angles", "detector", "source", "image")
_IMAGE_KEYS = ("shape", "pixel_size", "center", "extent")
_ANGLE_KEYS = ("unit", "count", "start", "stop", "step", "values", "file")


def _detector_keys(geometry: str) -> tuple[str, ...]:
    keys = ["count", "pitch", "shift", "extent"]
    if geometry in _STACKED:
        keys += ["rows", "row_pitch"]
    if geometry == "cone3d":
        keys += ["row_shift", "row_extent"]
    if geometry in _DIVERGENT:
        keys.append("distance")
    if geometry == "fan2d":
        keys.append("offset")
    return tuple(keys)


def _table(d: Any, name: str, allowed: Sequence[str], required: Sequence[str], why: str) -> dict:
    if not isinstance(d, dict):
        raise ScannerSpecError(f"[{name}] must be a table, got {type(d).__name__} {d!r}")
    unknown = [k for k in d if k not in allowed]
    if unknown:
        raise ScannerSpecError(
            f"unknown field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(f'{name}.{k}' for k in unknown)}; the fields of [{name}]{why} are: "
            f"{', '.join(allowed)}"
        )
    missing = [k for k in required if k not in d]
    if missing:
        raise ScannerSpecError(
            f"missing field{'s' if len(missing) > 1 else ''} "
            f"{', '.join(f'{name}.{k}' for k in missing)}{why}"
        )
    return d


def _parse(d: Any, base_dir: Path, where: str) -> dict:
    """The :class:`ScannerSpec` arguments of the file format ``d``."""
    if not isinstance(d, dict):
        raise ScannerSpecError(f"a scanner spec is a table of fields, got {type(d).__name__}")
    unknown = [k for k in d if k not in _TOP]
    if unknown:
        raise ScannerSpecError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; the "
            f"allowed top-level fields are: {', '.join(_TOP)}"
        )
    if "geometry" not in d:
        raise ScannerSpecError(f"missing field geometry (one of {', '.join(GEOMETRIES)})")
    geometry = d["geometry"]
    if geometry not in GEOMETRIES:
        raise ScannerSpecError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    if d.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ScannerSpecError(
            f"version {d['version']!r} is not understood (this version reads {FORMAT_VERSION})"
        )
    if "unit" not in d:
        raise ScannerSpecError(
            f"missing field unit: the length unit of every distance, one of "
            f"{', '.join(LENGTH_UNITS)}"
        )
    for name in ("angles", "detector"):
        if name not in d:
            raise ScannerSpecError(f"missing table [{name}]")
    for_g = f" for {geometry}"
    det = _table(d["detector"], "detector", _detector_keys(geometry), ("count", "pitch"), for_g)
    if geometry in _DIVERGENT:
        if "source" not in d:
            raise ScannerSpecError(f"missing table [source] (its distance, needed for {geometry})")
        if "distance" not in det:
            raise ScannerSpecError(f"missing field detector.distance (needed for {geometry})")
        src_keys = ("distance", "offset") if geometry == "fan2d" else ("distance",)
        src = _table(d["source"], "source", src_keys, ("distance",), for_g)
    elif "source" in d:
        raise ScannerSpecError(f"[source] is only for fan2d and cone3d, not for {geometry}")
    else:
        src = {}
    if geometry in _PARALLEL:
        image = _table(d.get("image", {}), "image", _IMAGE_KEYS, (), "")
    else:
        if "image" not in d:
            raise ScannerSpecError(
                f"missing table [image] (its shape and pixel_size, needed for {geometry})"
            )
        image = _table(d["image"], "image", _IMAGE_KEYS, ("shape", "pixel_size"), for_g)
    angles, form = _parse_angles(d["angles"], base_dir, where)
    kwargs = {
        "geometry": geometry,
        "unit": d["unit"],
        "angles": angles,
        "angles_form": form,
        "det_count": det["count"],
        "det_pitch": det["pitch"],
        "det_shift": det.get("shift", 0.0),
        "det_rows": det.get("rows", 1),
        "row_pitch": det.get("row_pitch"),
        "row_shift": det.get("row_shift", 0.0),
        "src_radius": src.get("distance"),
        "det_radius": det.get("distance"),
        "src_offset": src.get("offset", (0.0, 0.0)),
        "det_offset": det.get("offset", (0.0, 0.0)),
        "image_shape": image.get("shape"),
        "pixel_size": image.get("pixel_size"),
        "image_center": image.get("center"),
        "det_extent": det.get("extent"),
        "row_extent": det.get("row_extent"),
        "image_extent": image.get("extent"),
    }
    if geometry in _STACKED and "rows" not in det:
        raise ScannerSpecError(f"missing field detector.rows (needed for {geometry})")
    return kwargs


def _parse_angles(a: Any, base_dir: Path, where: str) -> tuple[np.ndarray, dict]:
    a = _table(a, "angles", _ANGLE_KEYS, ("unit",), "")
    unit = a["unit"]
    if unit not in ANGLE_UNITS:
        raise ScannerSpecError(f"angles.unit must be one of {', '.join(ANGLE_UNITS)}, got {unit!r}")
    forms = [k for k in ("count", "values", "file") if k in a]
    if len(forms) != 1:
        raise ScannerSpecError(
            "angles: give exactly one of count (with start and stop or step), values (a list) "
            f"or file (a text file); got {', '.join(forms) if forms else 'none'}"
        )
    if forms == ["count"]:
        extra = [k for k in ("values", "file") if k in a]
        ends = [k for k in ("stop", "step") if k in a]
        if len(ends) != 1:
            raise ScannerSpecError(
                "angles: with count, give exactly one of stop (the range's end, excluded) or "
                f"step; got {', '.join(ends) if ends else 'neither'}"
            )
        form = {k: a[k] for k in ("unit", "count", "start", *ends) if k in a}
    else:
        extra = [k for k in ("start", "stop", "step") if k in a]
        if extra:
            raise ScannerSpecError(f"angles: {', '.join(extra)} go with count, not with {forms[0]}")
        if forms == ["file"]:
            values = _read_angles_file(base_dir / str(a["file"]), where)
        else:
            values = _angle_values({"values": a["values"]}, "")
        form = {"unit": unit, "values": values.tolist()}
    values = _angle_values(form, "")
    return _to_radians(values, unit), form


def _read_angles_file(path: Path, where: str) -> np.ndarray:
    """Numbers separated by white space, commas or new lines; ``#`` starts a comment."""
    if not path.is_file():
        raise FileNotFoundError(f"{where}angles.file {path}: no such file")
    values = []
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ScannerSpecError(f"angles file {path} is not a text file") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        for token in line.split("#", 1)[0].replace(",", " ").split():
            try:
                v = float(token)
            except ValueError:
                raise ScannerSpecError(
                    f"angles file {path}, line {lineno}: {token!r} is not a number"
                ) from None
            if not math.isfinite(v):
                raise ScannerSpecError(
                    f"angles file {path}, line {lineno}: {token!r} is not finite"
                )
            values.append(v)
    if not values:
        raise ScannerSpecError(f"angles file {path} holds no angles")
    return np.asarray(values, dtype=np.float64)


def _tomllib() -> Any:
    """The standard library's TOML reader (Python >= 3.11), or its backport ``tomli``."""
    try:
        import tomllib
    except ModuleNotFoundError:
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ImportError(
                "reading a TOML scanner spec needs Python >= 3.11 (tomllib) or the tomli "
                "package (pip install tomli); or write the spec as JSON"
            ) from None
    return tomllib


def load_spec(path: str | os.PathLike) -> ScannerSpec:
    """Read a scanner spec from a ``.toml`` (standard library ``tomllib``) or ``.json`` file.

    An ``angles.file`` is relative to the spec file's folder.

    :raises FileNotFoundError: naming the file. :raises ScannerSpecError: naming the file and
        the field, for a malformed file or field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such scanner spec file")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ScannerSpecError(f"{path}: a scanner spec is a .toml or .json file, got {suffix!r}")
    text = path.read_text(encoding="utf-8")
    tomllib = _tomllib() if suffix == ".toml" else None
    try:
        d = tomllib.loads(text) if tomllib else json.loads(text)
    except (ValueError, json.JSONDecodeError) as err:  # TOMLDecodeError is a ValueError
        raise ScannerSpecError(f"{path}: not valid {suffix[1:].upper()}: {err}") from None
    return ScannerSpec.from_dict(d, base_dir=path.parent, origin=str(path))


def save_spec(spec: ScannerSpec, path: str | os.PathLike) -> Path:
    """Write ``spec`` to a ``.toml`` or ``.json`` file, atomically; floats read back exactly."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return atomic_write_json(path, spec.to_dict())
    if suffix == ".toml":
        header = f"# deepinv-ei scanner spec (docs: scanner_spec.md); hash {spec.hash}\n"
        return atomic_write_text(path, header + _toml.dumps(spec.to_dict()))
    raise ScannerSpecError(f"{path}: a scanner spec is written as .toml or .json, got {suffix!r}")


# --- ODL ------------------------------------------------------------------------------------


class _ConstantShift:
    """A constant ODL source/detector shift function (picklable, unlike a lambda)."""

    def __init__(self, shift: Sequence[float]):
        self.shift = np.array([list(shift)], dtype=float)

    def __call__(self, angle: Any) -> np.ndarray:
        return self.shift


def _bounds(n: int, size: float, center: float) -> tuple[float, float]:
    half = n * size / 2
    return center - half, center + half


def _neighbours(x: float, k: int = 8) -> list[float]:
    """``x`` and the ``k`` floats on either side, nearest first."""
    out, up, down = [x], x, x
    for _ in range(k):
        up, down = math.nextafter(up, math.inf), math.nextafter(down, -math.inf)
        out += [up, down]
    return out


def _describe_cells(
    lows: Sequence[float], highs: Sequence[float], counts: Sequence[int], what: str
) -> tuple[float, list[float], tuple[tuple[float, float], ...] | None]:
    """``(size, centres, extent)`` of uniform cells from ``lows`` to ``highs``, ``counts`` per
    axis, one size for all axes.

    ``extent`` is ``None`` when :func:`_bounds` turns the size and centres back into exactly
    ``lows`` and ``highs``: ``size = extent / n`` and ``centre = (low + high) / 2`` may miss an
    end by a rounding, so the floats next to them are tried too, nearest first. Where none
    fits, the ends themselves are the exact description.
    """
    lows, highs = [float(x) for x in lows], [float(x) for x in highs]
    sizes = [(h - lo) / n for lo, h, n in zip(lows, highs, counts, strict=True)]
    if not np.allclose(sizes, sizes[0], rtol=1e-9, atol=0):
        raise ScannerSpecError(
            f"{what}: the cells are not square (sizes {sizes}); a scanner spec has one pixel size"
        )
    for size in _neighbours(sizes[0]):
        centres = []
        for lo, h, n in zip(lows, highs, counts, strict=True):
            c = next((c for c in _neighbours((lo + h) / 2) if _bounds(n, size, c) == (lo, h)), None)
            if c is None:
                break
            centres.append(c + 0.0)
        else:
            return size, centres, None
    centres = [(lo + h) / 2 + 0.0 for lo, h in zip(lows, highs, strict=True)]
    return sizes[0], centres, tuple(zip(lows, highs, strict=True))


def _extent(
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
            f"{_name(attr)} must be {len(counts)} pair(s) [low, high], got {extent!r}"
        )
    out = []
    for pair, n, c in zip(pairs, counts, centres, strict=True):
        lo, hi = _floats(pair, attr, 2)
        if not (
            hi > lo
            and math.isclose((hi - lo) / n, size, rel_tol=1e-9)
            and abs((lo + hi) / 2 - c) <= 1e-9 * (hi - lo)
        ):
            raise ScannerSpecError(
                f"{_name(attr)} [{lo!r}, {hi!r}] of {n} cells does not agree with the pixel "
                f"size {size!r} and centre {c!r} (relative 1e-9)"
            )
        out.append((lo, hi))
    return tuple(out) if per_axis else out[0]


def geometry_from_spec(spec: ScannerSpec, dtype: str = "float32") -> tuple[Any, Any]:
    r"""``(space, geometry)``: the ODL image space and geometry of one slice of ``spec``.

    The image grid is :math:`c \pm \tfrac{n}{2} h` per axis (centre :math:`c`, :math:`n` pixels
    of size :math:`h`), the detector :math:`-s \pm \tfrac{n}{2} p` (shift :math:`s`, pitch
    :math:`p`), the angles exactly ``spec.angles`` (uniform partition when they are uniformly
    spaced, so FBP applies). ``parallel3d`` gives the 2D geometry of one slice, ``cone3d`` a 3D
    ``ConeBeamGeometry``.

    >>> import numpy as np
    >>> from deepinv_ei.scan import ScannerSpec, geometry_from_spec
    >>> spec = ScannerSpec("fan2d", "mm", np.linspace(0, 2 * np.pi, 60, endpoint=False),
    ...                    det_count=96, det_pitch=1.0, src_radius=80.0, det_radius=40.0,
    ...                    image_shape=(64, 64), pixel_size=0.5)
    >>> space, geometry = geometry_from_spec(spec)
    >>> space.shape, type(geometry).__name__, geometry.det_partition.shape
    ((64, 64), 'FanBeamGeometry', (96,))
    """
    import odl
    from odl.applications.tomo import ConeBeamGeometry, FanBeamGeometry, Parallel2dGeometry

    if not isinstance(spec, ScannerSpec):
        raise TypeError(f"expected a ScannerSpec, got {type(spec).__name__}")
    bounds = spec.image_bounds
    space = odl.uniform_discr(
        [b[0] for b in bounds], [b[1] for b in bounds], spec.image_shape, dtype=dtype
    )
    apart = odl.nonuniform_partition(spec.angles)
    lo, hi = spec.det_bounds
    if spec.geometry in _PARALLEL:
        return space, Parallel2dGeometry(apart, odl.uniform_partition(lo, hi, spec.det_count))
    if spec.geometry == "fan2d":
        src_d, src_t = spec.src_offset
        det_d, det_t = spec.det_offset
        geometry = FanBeamGeometry(
            apart,
            odl.uniform_partition(lo, hi, spec.det_count),
            spec.src_radius,
            spec.det_radius,
            # ODL's tangents: the source's is the detector axis, the detector's its opposite.
            src_shift_func=_ConstantShift((src_d, src_t)) if any(spec.src_offset) else None,
            det_shift_func=_ConstantShift((det_d, -det_t)) if any(spec.det_offset) else None,
        )
        return space, geometry
    rlo, rhi = spec.row_bounds
    dpart = odl.uniform_partition([lo, rlo], [hi, rhi], (spec.det_count, spec.det_rows))
    return space, ConeBeamGeometry(apart, dpart, spec.src_radius, spec.det_radius)


def _constant_shift(func: Any, angles: np.ndarray, ncomp: int, what: str) -> tuple[float, ...]:
    shifts = np.array(func(angles), dtype=float, ndmin=2)
    if shifts.shape[-1] != ncomp or not np.all(shifts == shifts[:1]):
        raise ScannerSpecError(
            f"the geometry's {what} depends on the angle (a flying focal spot); a scanner spec "
            "describes constant offsets only"
        )
    return tuple(float(x) for x in shifts[0])


def _refuse_unless(condition: bool, why: str) -> None:
    if not condition:
        raise ScannerSpecError(f"spec_from_geometry: {why}")


def spec_from_geometry(space: Any, geometry: Any = None, unit: str = "px") -> ScannerSpec:
    """The :class:`ScannerSpec` of an ODL image space and geometry (or of a ``RayTransform``).

    Exact: :func:`geometry_from_spec` of the result gives the same angles, source and detector
    positions, detector and image partitions, and so the same system matrix
    (``deepinv_ei.odl.geometry.geometry_key``), bit for bit; this is checked, and a geometry
    that a spec cannot describe exactly is refused, saying why. Described: 2D parallel beam, 2D
    fan beam with a flat detector (constant source and detector shifts), circular cone beam,
    in ODL's standard orientation, with any angles, detector shift and image grid of square
    pixels.

    :param str unit: the length unit the geometry's numbers are in (ODL has none).

    >>> import odl
    >>> from odl.applications.tomo import parallel_beam_geometry
    >>> from deepinv_ei.scan import geometry_from_spec, spec_from_geometry
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (64, 64), dtype="float32")
    >>> spec = spec_from_geometry(space, parallel_beam_geometry(space, num_angles=30), unit="cm")
    >>> spec.geometry, spec.num_views, spec.det_count, spec.pixel_size
    ('parallel2d', 30, 93, 0.03125)
    """
    import odl
    from odl.applications.tomo import ConeBeamGeometry, FanBeamGeometry, Parallel2dGeometry
    from odl.applications.tomo.geometry.detector import Flat1dDetector, Flat2dDetector

    if geometry is None and hasattr(space, "geometry") and hasattr(space, "domain"):
        space, geometry = space.domain, space.geometry
    if not isinstance(space, odl.DiscretizedSpace):
        raise TypeError(f"expected an odl.DiscretizedSpace, got {type(space).__name__}")
    g = geometry
    kinds = {Parallel2dGeometry: "parallel2d", FanBeamGeometry: "fan2d", ConeBeamGeometry: "cone3d"}
    kind = next((k for cls, k in kinds.items() if isinstance(g, cls)), None)
    _refuse_unless(
        kind is not None,
        f"a scanner spec describes Parallel2dGeometry, FanBeamGeometry and ConeBeamGeometry, got "
        f"{type(g).__name__} (a 3D parallel scan is a stack of 2D slices: describe one slice "
        "and set geometry = 'parallel3d')",
    )
    _refuse_unless(space.ndim == g.ndim, f"the space is {space.ndim}D but the geometry {g.ndim}D")
    _refuse_unless(space.is_uniform, "the image space is not uniformly discretised")
    _refuse_unless(
        isinstance(g.detector, Flat1dDetector | Flat2dDetector),
        f"the operators need a flat detector, got {type(g.detector).__name__}",
    )
    _refuse_unless(g.det_partition.is_uniform, "the detector partition is not uniform")
    _refuse_unless(
        not np.any(g.translation),
        f"the geometry is translated by {g.translation.tolist()}; describe it by moving the "
        "image grid instead (image centre = minus the translation)",
    )
    std = {
        "parallel2d": {"det_pos_init": [0, 1], "det_axis_init": [1, 0]},
        "fan2d": {"src_to_det_init": [0, 1], "det_axis_init": [1, 0]},
        "cone3d": {
            "axis": [0, 0, 1],
            "src_to_det_init": [0, 1, 0],
            "det_axes_init": [[1, 0, 0], [0, 0, 1]],
        },
    }[kind]
    for attr, value in std.items():
        _refuse_unless(
            np.array_equal(np.asarray(getattr(g, attr)), value),
            f"{attr} is {np.asarray(getattr(g, attr)).tolist()}, not ODL's default {value}; a "
            "scanner spec describes the standard orientation (turn the angles instead)",
        )
    angles = np.array(g.angles, dtype=np.float64)
    det = g.det_partition
    det_pitch, det_centres, det_extent = _describe_cells(
        det.min_pt[:1], det.max_pt[:1], det.shape[:1], "the detector partition"
    )
    kwargs: dict[str, Any] = {}
    if kind == "cone3d":
        _refuse_unless(g.pitch == 0 and g.offset_along_axis == 0, "a helical scan (pitch != 0)")
        for what in ("src_shift_func", "det_shift_func"):
            _refuse_unless(
                not any(_constant_shift(getattr(g, what), angles, 3, what)),
                f"{what} shifts the cone-beam source or detector; not described for cone3d",
            )
        row_pitch, row_centres, row_extent = _describe_cells(
            det.min_pt[1:], det.max_pt[1:], det.shape[1:], "the detector rows"
        )
        kwargs.update(
            det_rows=det.shape[1],
            row_pitch=row_pitch,
            row_shift=-row_centres[0] + 0.0,
            row_extent=row_extent and row_extent[0],
        )
    if kind in _DIVERGENT:
        kwargs.update(src_radius=g.src_radius, det_radius=g.det_radius)
    if kind == "fan2d":
        src_d, src_t = _constant_shift(g.src_shift_func, angles, 2, "src_shift_func")
        det_d, det_t = _constant_shift(g.det_shift_func, angles, 2, "det_shift_func")
        kwargs.update(src_offset=(src_d, src_t), det_offset=(det_d, -det_t))
    pixel_size, centres, image_extent = _describe_cells(
        space.min_pt, space.max_pt, space.shape, "the image grid"
    )
    spec = ScannerSpec(
        geometry=kind,
        unit=unit,
        angles=angles,
        det_count=det.shape[0],
        det_pitch=det_pitch,
        det_shift=-det_centres[0] + 0.0,
        det_extent=det_extent and det_extent[0],
        image_shape=space.shape,
        pixel_size=pixel_size,
        image_center=centres,
        image_extent=image_extent,
        **kwargs,
    )
    space2, g2 = geometry_from_spec(spec, dtype=space.dtype)
    ours = geometry_fingerprint(space2, g2)
    differ = [k for k, v in geometry_fingerprint(space, g).items() if ours[k] != v]
    _refuse_unless(not differ, f"the spec would change the geometry's {', '.join(differ)}")
    return spec


def geometry_fingerprint(space: Any, geometry: Any) -> dict[str, str]:
    """Digests of what an ODL ray transform's result depends on, part by part.

    The image grid, the angles, the detector partition, the source and detector positions and
    detector axes of every view, and (2D) the matrix key
    ``deepinv_ei.odl.geometry.geometry_key`` of ODL's ``astra_cpu`` transform. Two
    ``(space, geometry)`` pairs with equal fingerprints give the same operator bit for bit.
    """
    from odl.applications.tomo import RayTransform

    from ..odl.geometry import geometry_key

    def digest(*arrays: Any) -> str:
        h = hashlib.sha256()
        for a in arrays:
            a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
            h.update(f"{a.shape};".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    g, angles = geometry, geometry.angles
    dpart = g.det_partition
    axes = g.det_axes(angles) if g.ndim == 3 else g.det_axis(angles)
    parts = {
        "image grid": digest(space.shape, space.min_pt, space.max_pt),
        "angles": digest(angles),
        "detector partition": digest(dpart.shape, dpart.min_pt, dpart.max_pt),
        "detector positions": digest(g.det_refpoint(angles), axes, g.translation),
    }
    if hasattr(g, "src_position"):
        parts["source positions"] = digest(g.src_position(angles))
    if g.ndim == 2:
        parts["matrix key"] = str(geometry_key(RayTransform(space, g, impl="astra_cpu")))
    return parts


def ray_transform_from_spec(
    spec: ScannerSpec, device: Any = "cpu", backend: str = "auto", **kwargs: Any
) -> Any:
    """The deepinv physics of one slice of ``spec``.

    2D and ``parallel3d``: :func:`deepinv_ei.odl.ray_transform_physics` of
    :func:`geometry_from_spec` (FBP as ``A_dagger``), ``kwargs`` going to it. ``cone3d``:
    an :class:`~deepinv_ei.odl.OdlPhysics` of ODL's ``astra_cuda`` ray transform, on a CUDA
    device only.

    :raises ScannerSpecError: for a parallel-beam spec with a detector shift, which ODL's
        ``astra_cpu`` (and so the matrix and astra backends) ignores: centre the projections
        first (shift them by ``-det_shift``) and use ``spec.with_detector(shift=0.0)``.
    :raises ValueError: for ``cone3d`` without a CUDA device and ASTRA's CUDA build.

    >>> import numpy as np, torch
    >>> from deepinv_ei.scan import ScannerSpec, ray_transform_from_spec
    >>> spec = ScannerSpec("parallel2d", "mm", np.linspace(0, np.pi, 30, endpoint=False),
    ...                    det_count=48, det_pitch=0.1)
    >>> physics = ray_transform_from_spec(spec)
    >>> physics(torch.ones(1, 1, 48, 48)).shape
    torch.Size([1, 1, 30, 48])
    """
    import torch

    from ..odl import OdlPhysics, ray_transform_physics

    device = torch.device(device)
    space, geometry = geometry_from_spec(spec)
    if spec.geometry == "cone3d":
        from odl.applications.tomo import ASTRA_CUDA_AVAILABLE, RayTransform

        if device.type != "cuda" or not ASTRA_CUDA_AVAILABLE:
            raise ValueError(
                f"a cone3d spec needs ODL's astra_cuda on a CUDA device; got device "
                f"{str(device)!r} (ASTRA with CUDA {'found' if ASTRA_CUDA_AVAILABLE else 'not found'}): "
                "run it on a machine with an NVIDIA GPU and device='cuda'"
            )
        ray = RayTransform(space, geometry, impl="astra_cuda")
        return OdlPhysics(ray, backend="odl", device=device, **kwargs)
    if spec.geometry in _PARALLEL and spec.det_shift != 0.0:
        raise ScannerSpecError(
            f"a parallel-beam detector shift ({spec.det_shift!r} {spec.unit}) is ignored by ODL's "
            "astra_cpu, which the matrix, astra and odl backends use: centre the projections "
            "first (shift each one by -detector.shift along the detector, the centre-of-rotation "
            "step of pre-processing) and use spec.with_detector(shift=0.0)"
        )
    return ray_transform_physics((space, geometry), backend=backend, device=device, **kwargs)

r"""The scanner spec: what a CT scanner measured, as one validated, immutable value.

A :class:`ScannerSpec` holds the geometry of a scan (2D parallel beam, 2D fan beam with a flat
detector, 3D parallel beam as a stack of 2D slices, 3D cone beam), its views, its detector and
the image grid to reconstruct on, all lengths in one unit. Every field is checked once, when
the spec is made; a spec then gives its exact grids, its hash (which identifies the scanner),
variants with one part changed, and checks of data layouts against it.

Sinograms are ``(views, detectors)`` per slice, ODL's order. Angles are in radians in memory,
increasing; a view at angle :math:`\theta` sees the object rotated by :math:`-\theta` (ODL's
convention: source and detector turn counter-clockwise).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partialmethod
from pathlib import Path
from typing import Any

import numpy as np

from .fields import (
    ANGLE_UNITS,
    DIVERGENT,
    FORMAT_VERSION,
    GEOMETRIES,
    LENGTH_UNITS,
    PARALLEL,
    STACKED,
    ScannerSpecError,
    angle_values,
    as_float,
    as_floats,
    as_int,
    cell_bounds,
    checked_extent,
    field_name,
    to_radians,
)
from .file_format import parse_spec_dict, reproducing_form, spec_to_dict
from .layout import check_axis_lengths

__all__ = ["ScannerSpec"]

_HASH_TAG = "deepinv-ei scanner spec"


def _absent(spec: ScannerSpec, attrs: Sequence[str], allowed_for: str) -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(spec)}
    for attr in attrs:
        if getattr(spec, attr) != defaults[attr]:
            raise ScannerSpecError(
                f"{field_name(attr)} is only for {allowed_for}, not for geometry "
                f"{spec.geometry!r}; got {getattr(spec, attr)!r}"
            )


def _digest(canonical: dict) -> str:
    """SHA-256 (hex) of the JSON of ``canonical`` (sorted keys, no spaces)."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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
        set_("det_count", as_int(self.det_count, "det_count"))
        set_("det_pitch", as_float(self.det_pitch, "det_pitch", minimum=0.0))
        set_("det_shift", as_float(self.det_shift, "det_shift"))
        set_("det_rows", as_int(self.det_rows, "det_rows"))
        set_("row_shift", as_float(self.row_shift, "row_shift"))
        set_("src_offset", as_floats(self.src_offset, "src_offset", 2))
        set_("det_offset", as_floats(self.det_offset, "det_offset", 2))
        g = self.geometry
        if g not in STACKED:
            _absent(self, ("det_rows", "row_pitch"), "parallel3d and cone3d")
        if g != "cone3d":
            _absent(self, ("row_shift",), "cone3d")
        if g != "fan2d":
            _absent(self, ("src_offset", "det_offset"), "fan2d")
        if g == "parallel3d" and self.row_pitch is None:
            set_("row_pitch", self.det_pitch)
        if self.row_pitch is not None:
            set_("row_pitch", as_float(self.row_pitch, "row_pitch", minimum=0.0))
        elif g == "cone3d":
            raise ScannerSpecError(f"{field_name('row_pitch')} is missing (needed for cone3d)")
        if g in DIVERGENT:
            for attr in ("src_radius", "det_radius"):
                if getattr(self, attr) is None:
                    raise ScannerSpecError(f"{field_name(attr)} is missing (needed for {g})")
            set_("src_radius", as_float(self.src_radius, "src_radius", minimum=0.0))
            set_("det_radius", as_float(self.det_radius, "det_radius", minimum=0.0, strict=False))
        else:
            _absent(self, ("src_radius", "det_radius"), "fan2d and cone3d")
        ndim = 3 if g == "cone3d" else 2
        if self.image_shape is None and g in PARALLEL:
            set_("image_shape", (self.det_count, self.det_count))
        if self.pixel_size is None and g in PARALLEL:
            set_("pixel_size", self.det_pitch)
        for attr in ("image_shape", "pixel_size"):
            if getattr(self, attr) is None:
                raise ScannerSpecError(
                    f"{field_name(attr)} is missing (needed for {g}; only parallel beam has a default)"
                )
        shape = self.image_shape
        if not isinstance(shape, list | tuple) or len(shape) != ndim:
            raise ScannerSpecError(
                f"{field_name('image_shape')} must be a list of {ndim} integers for {g}, got {shape!r}"
            )
        set_("image_shape", tuple(as_int(n, "image_shape") for n in shape))
        set_("pixel_size", as_float(self.pixel_size, "pixel_size", minimum=0.0))
        center = (0.0,) * ndim if self.image_center is None else self.image_center
        set_("image_center", as_floats(center, "image_center", ndim))
        if g != "cone3d":
            _absent(self, ("row_extent",), "cone3d")
        set_(
            "det_extent",
            checked_extent(
                self.det_extent, "det_extent", [self.det_count], self.det_pitch, [-self.det_shift]
            ),
        )
        if g == "cone3d":
            set_(
                "row_extent",
                checked_extent(
                    self.row_extent,
                    "row_extent",
                    [self.det_rows],
                    self.row_pitch,
                    [-self.row_shift],
                ),
            )
        set_(
            "image_extent",
            checked_extent(
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
        return self.det_extent or cell_bounds(self.det_count, self.det_pitch, -self.det_shift)

    @property
    def row_bounds(self) -> tuple[float, float] | None:
        """``cone3d``: the rows' ends ``(low, high)``, as :attr:`det_bounds`; else ``None``."""
        if self.geometry != "cone3d":
            return None
        return self.row_extent or cell_bounds(self.det_rows, self.row_pitch, -self.row_shift)

    @property
    def image_bounds(self) -> tuple[tuple[float, float], ...]:
        r"""The image grid's ends ``(low, high)`` per axis: ``image_extent``, or
        :math:`c \mp \tfrac{n}{2} h`."""
        if self.image_extent is not None:
            return self.image_extent
        return tuple(
            cell_bounds(n, self.pixel_size, c)
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
        return _digest(self._canonical())

    @property
    def slice_hash(self) -> str:
        """The :attr:`hash` of the scanner of one slice: a ``parallel3d`` stack's is that of the
        ``parallel2d`` scanner of its slices, whatever its number of rows; otherwise
        :attr:`hash`. Two scans whose slices a 2D model reconstructs alike share it.

        >>> a = ScannerSpec("parallel3d", "mm", np.linspace(0, 3, 7), 5, 0.1, det_rows=4)
        >>> b = dataclasses.replace(a, det_rows=9)
        >>> a.hash == b.hash, a.slice_hash == b.slice_hash
        (False, True)
        >>> a.slice_hash == dataclasses.replace(a, geometry="parallel2d", det_rows=1,
        ...                                     row_pitch=None).hash
        True
        """
        canonical = self._canonical()
        if self.geometry == "parallel3d":
            canonical |= {"geometry": "parallel2d", "det_rows": 1, "row_pitch": None}
        return _digest(canonical)

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
        form = reproducing_form(self.angles_form, self.angles)
        if form is None:
            return np.array(self.angles), "rad"
        return angle_values(form, ""), form["unit"]

    def with_angles(self, angles: Any, unit: str = "rad") -> ScannerSpec:
        """The same scanner with other views, ``angles`` in ``unit`` (``"rad"`` or ``"deg"``)."""
        if unit not in ANGLE_UNITS:
            raise ScannerSpecError(f"angle unit must be one of {ANGLE_UNITS}, got {unit!r}")
        values = np.asarray(angles, dtype=np.float64).reshape(-1)
        return dataclasses.replace(
            self,
            angles=to_radians(values, unit),
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

    def to_dict(self) -> dict:
        """The file format as a plain dict (TOML and JSON), every value written out.

        Floats are written as the shortest decimal that reads back as the same float, so
        ``ScannerSpec.from_dict(spec.to_dict()) == spec``; an angles file is written inline.
        """
        return spec_to_dict(self)

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
            base = Path(base_dir) if base_dir is not None else Path.cwd()
            return cls(**parse_spec_dict(d, base, where))
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
        deepinv_ei.scan.spec.fields.ScannerSpecError: fan.npy of shape (5, 64, 90) with axes (slice, angle, detector) looks transposed: its lengths fit the scanner (90 views, 64 detector pixels) as axes (slice, detector, angle); transpose it or name its axes in that order
        """
        expected = {
            "angle": self.num_views,
            "detector": self.det_count,
            "col": self.det_count,
            "row": self.det_rows if self.geometry in STACKED else None,
            "slice": self.det_rows if self.geometry in STACKED else None,
        }
        about = (
            f"the scanner ({self.num_views} views, {self.det_count} detector pixels"
            + (f", {self.det_rows} rows" if self.geometry in STACKED else "")
            + ")"
        )
        check_axis_lengths(shape, axes, expected, about, what)

    #: :meth:`check_data_shape` for sinograms, ``(angle, detector)`` per slice by default.
    check_sinograms = partialmethod(check_data_shape, axes="angle,detector", what="sinograms")
    #: :meth:`check_data_shape` for projections, ``(angle, row, col)`` by default.
    check_projections = partialmethod(check_data_shape, axes="angle,row,col", what="projections")

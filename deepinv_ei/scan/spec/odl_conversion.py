"""Scanner specs to and from ODL, exactly.

:func:`geometry_from_spec` builds the ODL image space and geometry of a spec;
:func:`spec_from_geometry` describes an ODL geometry as a spec, and checks that the round trip
gives the same operator bit for bit (:func:`geometry_fingerprint`), refusing, with the reason,
what a spec cannot describe. ODL is imported only when these run.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .fields import DIVERGENT, PARALLEL, ScannerSpecError, cell_bounds
from .scanner import ScannerSpec

__all__ = ["geometry_fingerprint", "geometry_from_spec", "spec_from_geometry"]


class _ConstantShift:
    """A constant ODL source/detector shift function (picklable, unlike a lambda)."""

    def __init__(self, shift: Sequence[float]):
        self.shift = np.array([list(shift)], dtype=float)

    def __call__(self, angle: Any) -> np.ndarray:
        return self.shift


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

    ``extent`` is ``None`` when :func:`cell_bounds` turns the size and centres back into exactly
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
            c = next(
                (c for c in _neighbours((lo + h) / 2) if cell_bounds(n, size, c) == (lo, h)), None
            )
            if c is None:
                break
            centres.append(c + 0.0)
        else:
            return size, centres, None
    centres = [(lo + h) / 2 + 0.0 for lo, h in zip(lows, highs, strict=True)]
    return sizes[0], centres, tuple(zip(lows, highs, strict=True))


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
    if spec.geometry in PARALLEL:
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
    if kind in DIVERGENT:
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

    from ...odl.geometry import geometry_key

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

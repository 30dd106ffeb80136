"""Helpers around ODL ray transforms: recognising them and building their ASTRA projectors.

The projectors are built with ODL's own ASTRA set-up functions, so that every backend of this
package discretises exactly as ``odl.applications.tomo.RayTransform(..., impl='astra_cpu')``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import odl
from odl.applications.tomo import RayTransform
from odl.applications.tomo.geometry import DivergentBeamGeometry, Geometry, ParallelBeamGeometry


def as_ray_transform(obj: Any, impl: str | None = None) -> RayTransform:
    """Return ``obj`` if it is a :class:`RayTransform`, or build one from ``(space, geometry)``."""
    if isinstance(obj, RayTransform):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2:
        space, geometry = obj
        if not isinstance(space, odl.DiscretizedSpace):
            raise TypeError(
                f"expected (odl.DiscretizedSpace, Geometry), got space of type {type(space).__name__}"
            )
        if not isinstance(geometry, Geometry):
            raise TypeError(
                f"expected (odl.DiscretizedSpace, Geometry), got geometry of type {type(geometry).__name__}"
            )
        if space.ndim != geometry.ndim:
            raise ValueError(
                f"space and geometry dimensions differ: space is {space.ndim}D {space.shape}, "
                f"geometry is {geometry.ndim}D {type(geometry).__name__}"
            )
        if impl is None:
            impl = "astra_cpu" if geometry.ndim == 2 else "astra_cuda"
        return RayTransform(space, geometry, impl=impl)
    raise TypeError(
        f"expected an odl RayTransform or a (space, geometry) tuple, got {type(obj).__name__}"
    )


def is_ray_transform(op: Any) -> bool:
    return isinstance(op, RayTransform)


def geometry_kind(geometry: Geometry) -> str:
    """``'parallel2d'``, ``'fan2d'``, ``'parallel3d'``, ``'cone3d'`` or ``'other'``."""
    if isinstance(geometry, ParallelBeamGeometry):
        return f"parallel{geometry.ndim}d"
    if isinstance(geometry, DivergentBeamGeometry):
        return "fan2d" if geometry.ndim == 2 else "cone3d"
    return "other"


def geometry_key(ray_trafo: RayTransform) -> tuple:
    """A hashable key identifying the discretisation of a ray transform.

    ODL geometries are neither hashable nor comparable by value, so the key is built from the
    quantities that determine the system matrix: the volume grid, the angles, the detector
    partition and the source/detector set-up.
    """
    g, space = ray_trafo.geometry, ray_trafo.domain
    angles = np.asarray(g.angles, dtype=np.float64)
    det = g.det_partition
    extra = tuple(
        float(getattr(g, name))
        for name in ("src_radius", "det_radius", "pitch")
        if hasattr(g, name)
    )
    shifts = tuple(
        np.asarray(getattr(g, name), dtype=np.float64).tobytes()
        for name in (
            "translation",
            "det_pos_init",
            "det_axes_init",
            "src_shift_func",
            "det_shift_func",
        )
        if hasattr(g, name) and isinstance(getattr(g, name), np.ndarray | list | tuple)
    )
    return (
        type(g).__name__,
        space.shape,
        tuple(np.asarray(space.min_pt, float)),
        tuple(np.asarray(space.max_pt, float)),
        angles.tobytes(),
        det.shape,
        tuple(np.asarray(det.min_pt, float).ravel()),
        tuple(np.asarray(det.max_pt, float).ravel()),
        extra,
        shifts,
    )


def astra_cpu_projector(ray_trafo: RayTransform, proj_type: str | None = None) -> int:
    """Create an ASTRA CPU projector for a 2D ray transform, exactly as ODL's ``astra_cpu``."""
    from odl.applications.tomo.backends.astra_cpu import default_astra_proj_type
    from odl.applications.tomo.backends.astra_setup import (
        astra_projection_geometry,
        astra_projector,
        astra_volume_geometry,
    )

    g = ray_trafo.geometry
    if g.ndim != 2:
        raise ValueError(
            f"ASTRA's CPU projectors are 2D only; got a {g.ndim}D {type(g).__name__} "
            f"(use backend='astra' on a CUDA device, or backend='odl')"
        )
    vol_geom = astra_volume_geometry(ray_trafo.domain, "cpu")
    proj_geom = astra_projection_geometry(g, "cpu")
    proj_type = proj_type or default_astra_proj_type(g)
    return astra_projector(proj_type, vol_geom, proj_geom, 2)


def estimate_matrix_nnz(ray_trafo: RayTransform) -> int:
    """Upper estimate of the number of non-zeros of a 2D ray transform's system matrix.

    ASTRA's ``linear``/``line_fanflat`` kernels touch at most two pixels per row (or column)
    that a ray crosses, so a ray has at most ``2 * max(H, W)`` non-zeros.
    """
    n_rays = int(np.prod(ray_trafo.range.shape))
    return n_rays * 2 * int(max(ray_trafo.domain.shape))

"""Helpers around ODL ray transforms: recognising them and building their ASTRA projectors.

The projectors are built with ODL's own ASTRA set-up functions, so that every backend of this
package discretises exactly as ``odl.applications.tomo.RayTransform(..., impl='astra_cpu')``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import odl
from odl.applications.tomo import RayTransform
from odl.applications.tomo.geometry import Geometry


def as_ray_transform(obj: Any, impl: str | None = None) -> RayTransform:
    """Return ``obj`` if it is a :class:`RayTransform`, or build one from ``(space, geometry)``."""
    if isinstance(obj, RayTransform):
        return obj
    if not (isinstance(obj, tuple) and len(obj) == 2):
        raise TypeError(
            f"expected an odl RayTransform or a (space, geometry) tuple, got {type(obj).__name__}"
        )
    space, geometry = obj
    for what, value, cls in (
        ("space", space, odl.DiscretizedSpace),
        ("geometry", geometry, Geometry),
    ):
        if not isinstance(value, cls):
            raise TypeError(
                f"expected (odl.DiscretizedSpace, Geometry), got {what} of type {type(value).__name__}"
            )
    if space.ndim != geometry.ndim:
        raise ValueError(
            f"space and geometry dimensions differ: space is {space.ndim}D {space.shape}, "
            f"geometry is {geometry.ndim}D {type(geometry).__name__}"
        )
    if impl is None:
        impl = "astra_cpu" if geometry.ndim == 2 else "astra_cuda"
    return RayTransform(space, geometry, impl=impl)


def is_ray_transform(op: Any) -> bool:
    return isinstance(op, RayTransform)


def _canonical(value: Any, h: Any) -> None:
    """Feed ``value`` (nested dicts, lists, arrays, numbers, strings) to ``h`` unambiguously."""
    if isinstance(value, dict):
        h.update(b"{")
        for k in sorted(value):
            _canonical(str(k), h)
            _canonical(value[k], h)
        h.update(b"}")
    elif isinstance(value, list | tuple):
        h.update(b"[")
        for v in value:
            _canonical(v, h)
        h.update(b"]")
    elif isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        h.update(f"a{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.data)
    elif isinstance(value, bool | int | np.integer):
        h.update(f"i{int(value)};".encode())
    elif isinstance(value, float | np.floating):
        h.update(f"f{float(value).hex()};".encode())
    elif isinstance(value, str):
        h.update(f"s{len(value)}:{value}".encode())
    elif value is None:
        h.update(b"n;")
    else:
        raise TypeError(f"cannot key a value of type {type(value).__name__}")


def astra_cpu_geometries(ray_trafo: RayTransform, proj_type: str | None = None) -> tuple:
    """``(volume geometry, projection geometry, projector type)`` exactly as ODL's ``astra_cpu``
    hands them to ASTRA for a 2D ray transform."""
    from odl.applications.tomo.backends.astra_cpu import default_astra_proj_type
    from odl.applications.tomo.backends.astra_setup import (
        astra_projection_geometry,
        astra_volume_geometry,
    )

    g = ray_trafo.geometry
    if g.ndim != 2:
        raise ValueError(f"ASTRA's CPU projectors are 2D only, got a {g.ndim}D {type(g).__name__}")
    vol_geom = astra_volume_geometry(ray_trafo.domain, "cpu")
    proj_geom = astra_projection_geometry(g, "cpu")
    return vol_geom, proj_geom, proj_type or default_astra_proj_type(g)


def geometry_key(ray_trafo: RayTransform, proj_type: str | None = None) -> str | None:
    """A digest that identifies the system matrix of a 2D ray transform exactly, or ``None``.

    The system matrix is a function of what ASTRA receives and of nothing else: the volume
    geometry, the projection geometry (for fan beam the source, detector centre and axis of
    every view, through which every attribute of the ODL geometry enters; for parallel beam the
    angles, detector width and count) and the projector type. The key is the SHA-256 of these,
    serialised exactly (floats bit for bit); ``None`` when ODL cannot build an ASTRA CPU geometry
    for ``ray_trafo`` (e.g. a curved detector).
    """
    import hashlib

    try:
        vol_geom, proj_geom, proj_type = astra_cpu_geometries(ray_trafo, proj_type)
    except (ValueError, NotImplementedError, TypeError):
        return None
    h = hashlib.sha256()
    try:
        _canonical({"vol": vol_geom, "proj": proj_geom, "proj_type": proj_type}, h)
    except TypeError:  # a value we cannot serialise exactly: do not cache
        return None
    return h.hexdigest()


def astra_cpu_unsupported_reason(op: Any, backend: str) -> str | None:
    """Why ASTRA's CPU projectors cannot apply ``op`` as ODL's ``astra_cpu`` would, or ``None``
    if they can (a ray transform: 2D, flat detector, uniform detector partition, square pixels)."""
    if not is_ray_transform(op):
        return f"backend {backend!r} needs an odl RayTransform, got {type(op).__name__}"
    try:
        astra_cpu_geometries(op)
    except (ValueError, NotImplementedError, TypeError) as err:
        g = op.geometry
        return (
            f"backend {backend!r} needs a 2D geometry and image grid that ODL can hand to ASTRA's "
            f"CPU projectors (flat detector, uniform detector partition, square pixels); "
            f"{type(g).__name__} with {type(g.detector).__name__} on a grid with cells "
            f"{tuple(float(c) for c in op.domain.cell_sides)}: {err}"
        )
    return None


def astra_cpu_projector(ray_trafo: RayTransform, proj_type: str | None = None) -> int:
    """Create an ASTRA CPU projector for a 2D ray transform, exactly as ODL's ``astra_cpu``."""
    from odl.applications.tomo.backends.astra_setup import astra_projector

    vol_geom, proj_geom, proj_type = astra_cpu_geometries(ray_trafo, proj_type)
    return astra_projector(proj_type, vol_geom, proj_geom, 2)


def estimate_matrix_nnz(ray_trafo: RayTransform) -> int:
    """Upper estimate of the number of non-zeros of a 2D ray transform's system matrix.

    ASTRA's ``linear``/``line_fanflat`` kernels touch at most two pixels per row (or column)
    that a ray crosses, so a ray has at most ``2 * max(H, W)`` non-zeros.
    """
    n_rays = int(np.prod(ray_trafo.range.shape))
    return n_rays * 2 * int(max(ray_trafo.domain.shape))

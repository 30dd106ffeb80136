"""Small ODL ray transforms shared by the tests: named cases built once per session, and fresh
parallel-beam setups on the square ``[-1, 1]^2`` for tests that need their own objects."""

from __future__ import annotations

from functools import cache

import numpy as np
import odl
from odl.applications.tomo import (
    Geometry,
    RayTransform,
    cone_beam_geometry,
    parallel_beam_geometry,
)


@cache
def ray_transform(kind: str) -> RayTransform:
    """``parallel`` (unit cells), ``parallel_cells`` (non-square, non-unit cells) or ``fan``."""
    if kind == "parallel":
        space = odl.uniform_discr([-12, -12], [12, 12], (24, 24), dtype="float32")
        geometry = parallel_beam_geometry(space, num_angles=18)
    elif kind == "parallel_cells":
        space = odl.uniform_discr([-1.0, -1.5], [1.0, 1.5], (16, 24), dtype="float32")
        geometry = parallel_beam_geometry(space, num_angles=15)
    elif kind == "fan":
        space = odl.uniform_discr([-1, -1], [1, 1], (20, 20), dtype="float32")
        geometry = cone_beam_geometry(space, src_radius=4, det_radius=2, num_angles=24)
    elif kind == "tiny_fan":  # for gradcheck, whose cost grows with inputs x outputs
        space = odl.uniform_discr([-1, -1], [1, 1], (6, 6), dtype="float32")
        geometry = cone_beam_geometry(space, src_radius=4, det_radius=2, num_angles=5)
    else:
        raise KeyError(kind)
    return RayTransform(space, geometry, impl="astra_cpu")


KINDS = ("parallel", "parallel_cells", "fan")


def parallel_setup(n: int, views: int) -> tuple[odl.DiscretizedSpace, Geometry]:
    """A float32 ``n x n`` image space on ``[-1, 1]^2`` and ODL's parallel-beam geometry of
    ``views`` angles for it (new objects on every call)."""
    space = odl.uniform_discr([-1, -1], [1, 1], (n, n), dtype="float32")
    return space, parallel_beam_geometry(space, num_angles=views)


def parallel_ray(n: int, views: int) -> RayTransform:
    """ODL's ``astra_cpu`` ray transform of :func:`parallel_setup` (a new object every call)."""
    return RayTransform(*parallel_setup(n, views), impl="astra_cpu")


def odl_forward(op, x: np.ndarray) -> np.ndarray:
    """ODL's own output, sample by sample, for ``x`` of shape ``(N, *domain.shape)``."""
    return np.stack([np.asarray(op(xi).asarray()) for xi in x])

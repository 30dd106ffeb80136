"""Small ODL ray transforms shared by the operator tests (built once per session)."""

from __future__ import annotations

from functools import cache

import numpy as np
import odl
from odl.applications.tomo import RayTransform, cone_beam_geometry, parallel_beam_geometry


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


def odl_forward(op, x: np.ndarray) -> np.ndarray:
    """ODL's own output, sample by sample, for ``x`` of shape ``(N, *domain.shape)``."""
    return np.stack([np.asarray(op(xi).asarray()) for xi in x])

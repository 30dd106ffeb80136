"""The matrix key is complete: geometries differing in one attribute get their own matrix.

For every attribute of ``Parallel2dGeometry`` and ``FanBeamGeometry`` (and of the image grid),
a pair of ray transforms differing in that attribute alone: the key differs exactly when ODL's
own ``RayTransform(..., impl='astra_cpu')`` gives a different result, and the matrix backend,
with the other one's matrix already in memory, agrees with ODL to 1e-5.
"""

from __future__ import annotations

import numpy as np
import odl
import pytest
import torch
from odl.applications.tomo import FanBeamGeometry, Parallel2dGeometry, RayTransform

from deepinv_ei.odl import OperatorModule
from deepinv_ei.odl.geometry import geometry_key

SPACE = odl.uniform_discr([-1, -1], [1, 1], (16, 16), dtype="float32")
APART = odl.uniform_partition(0, np.pi, 9)
DPART = odl.uniform_partition(-1.6, 1.6, 23)
FAN = {"src_radius": 4.0, "det_radius": 2.0}


def _shift(a):
    return np.stack(
        [0.1 * np.ones_like(np.asarray(a, float)), np.zeros_like(np.asarray(a, float))], -1
    )


PARALLEL_VARIANTS = {
    "angles (count)": lambda: Parallel2dGeometry(odl.uniform_partition(0, np.pi, 10), DPART),
    "angles (range)": lambda: Parallel2dGeometry(odl.uniform_partition(0, 0.9 * np.pi, 9), DPART),
    "angles (non-uniform)": lambda: Parallel2dGeometry(
        odl.nonuniform_partition(np.sort(APART.coord_vectors[0] + 0.01 * np.arange(9))), DPART
    ),
    "detector (count)": lambda: Parallel2dGeometry(APART, odl.uniform_partition(-1.6, 1.6, 25)),
    "detector (extent)": lambda: Parallel2dGeometry(APART, odl.uniform_partition(-2.0, 2.0, 23)),
    "detector (offset)": lambda: Parallel2dGeometry(APART, odl.uniform_partition(-1.3, 1.9, 23)),
    "det_pos_init": lambda: Parallel2dGeometry(APART, DPART, det_pos_init=(1, 0)),
    "det_axis_init": lambda: Parallel2dGeometry(APART, DPART, det_axis_init=(0, 1)),
    "translation": lambda: Parallel2dGeometry(APART, DPART, translation=(0.3, 0.0)),
    "check_bounds": lambda: Parallel2dGeometry(APART, DPART, check_bounds=False),
}

FAN_VARIANTS = {
    "angles (count)": lambda: FanBeamGeometry(odl.uniform_partition(0, np.pi, 10), DPART, **FAN),
    "angles (range)": lambda: FanBeamGeometry(odl.uniform_partition(0, 2 * np.pi, 9), DPART, **FAN),
    "detector (count)": lambda: FanBeamGeometry(APART, odl.uniform_partition(-1.6, 1.6, 25), **FAN),
    "detector (extent)": lambda: FanBeamGeometry(APART, odl.uniform_partition(-2, 2, 23), **FAN),
    "detector (offset)": lambda: FanBeamGeometry(
        APART, odl.uniform_partition(-1.3, 1.9, 23), **FAN
    ),
    "src_radius": lambda: FanBeamGeometry(APART, DPART, src_radius=5.0, det_radius=2.0),
    "det_radius": lambda: FanBeamGeometry(APART, DPART, src_radius=4.0, det_radius=2.5),
    "src_to_det_init": lambda: FanBeamGeometry(APART, DPART, src_to_det_init=(1, 0), **FAN),
    "det_axis_init": lambda: FanBeamGeometry(APART, DPART, det_axis_init=(0, 1), **FAN),
    "translation": lambda: FanBeamGeometry(APART, DPART, translation=(0.3, 0.0), **FAN),
    "src_shift_func": lambda: FanBeamGeometry(APART, DPART, src_shift_func=_shift, **FAN),
    "det_shift_func": lambda: FanBeamGeometry(APART, DPART, det_shift_func=_shift, **FAN),
    "check_bounds": lambda: FanBeamGeometry(APART, DPART, check_bounds=False, **FAN),
}

SPACE_VARIANTS = {
    "image (shape)": odl.uniform_discr([-1, -1], [1, 1], (18, 18), dtype="float32"),
    "image (extent)": odl.uniform_discr([-1.2, -1.2], [1.2, 1.2], (16, 16), dtype="float32"),
    "image (offset)": odl.uniform_discr([-0.8, -1], [1.2, 1], (16, 16), dtype="float32"),
}


def test_non_square_pixels_are_refused_with_odls_reason():
    space = odl.uniform_discr([-1, -1], [1, 1], (8, 16), dtype="float32")
    ray = RayTransform(space, Parallel2dGeometry(APART, DPART), impl="astra_cpu")
    assert geometry_key(ray) is None
    with pytest.raises(ValueError, match=r"square pixels.*cells \(0.25, 0.125\).*non-isotropic"):
        OperatorModule(ray, backend="matrix")


# ODL's astra_cpu passes only angles, detector width and count to ASTRA's parallel projector:
# these attributes change neither ODL's result nor the matrix (nor, hence, the key).
IGNORED_BY_ODL_PARALLEL = {
    "det_pos_init",
    "det_axis_init",
    "translation",
    "detector (offset)",
    "check_bounds",
}


def _odl(ray: RayTransform, x: np.ndarray) -> np.ndarray:
    return np.asarray(ray(x).asarray())


def _check_pair(base: RayTransform, variant: RayTransform, expect_same: bool) -> None:
    x = np.random.default_rng(0).random(base.domain.shape, dtype=np.float32)
    ref_base, ref_var = _odl(base, x), _odl(variant, x)
    odl_same = ref_base.shape == ref_var.shape and np.allclose(ref_base, ref_var, atol=1e-6)
    assert odl_same == expect_same
    assert (geometry_key(base) == geometry_key(variant)) == odl_same
    # The base's matrix is in memory (kept alive by A_base) when the variant's is asked for.
    A_base = OperatorModule(base, backend="matrix")
    A_base(torch.from_numpy(x))
    ours = OperatorModule(variant, backend="matrix")(torch.from_numpy(x)).numpy()
    assert np.linalg.norm(ours - ref_var) <= 1e-5 * np.linalg.norm(ref_var)


@pytest.mark.parametrize("name", sorted(PARALLEL_VARIANTS))
def test_parallel_geometry_attribute_changes_key_iff_it_changes_odl(name):
    base = RayTransform(SPACE, Parallel2dGeometry(APART, DPART), impl="astra_cpu")
    variant = RayTransform(SPACE, PARALLEL_VARIANTS[name](), impl="astra_cpu")
    _check_pair(base, variant, expect_same=name in IGNORED_BY_ODL_PARALLEL)


@pytest.mark.parametrize("name", sorted(FAN_VARIANTS))
def test_fan_geometry_attribute_changes_key_and_matrix(name):
    base = RayTransform(SPACE, FanBeamGeometry(APART, DPART, **FAN), impl="astra_cpu")
    variant = RayTransform(SPACE, FAN_VARIANTS[name](), impl="astra_cpu")
    _check_pair(base, variant, expect_same=name == "check_bounds")


@pytest.mark.parametrize("name", sorted(SPACE_VARIANTS))
@pytest.mark.parametrize("kind", ["parallel", "fan"])
def test_image_grid_changes_key_and_matrix(name, kind):
    geometry = (
        Parallel2dGeometry(APART, DPART)
        if kind == "parallel"
        else FanBeamGeometry(APART, DPART, **FAN)
    )
    base = RayTransform(SPACE, geometry, impl="astra_cpu")
    variant = RayTransform(SPACE_VARIANTS[name], geometry, impl="astra_cpu")
    assert geometry_key(base) != geometry_key(variant)
    if SPACE_VARIANTS[name].shape == SPACE.shape:
        _check_pair(base, variant, expect_same=False)


def test_projector_type_is_part_of_the_key():
    ray = RayTransform(SPACE, Parallel2dGeometry(APART, DPART), impl="astra_cpu")
    keys = {geometry_key(ray, p) for p in (None, "line", "strip")}
    assert geometry_key(ray) == geometry_key(ray, "linear")  # ODL's default for parallel beam
    assert len(keys) == 3


def test_curved_detector_is_refused_not_given_a_flat_matrix():
    flat = RayTransform(SPACE, FanBeamGeometry(APART, DPART, **FAN), impl="astra_cpu")
    OperatorModule(flat, backend="matrix")(torch.rand(1, 16, 16))  # a flat matrix in memory
    curved = RayTransform(
        SPACE, FanBeamGeometry(APART, DPART, det_curvature_radius=3.0, **FAN), impl="astra_cpu"
    )
    assert geometry_key(curved) is None
    for backend in ("matrix", "astra"):
        with pytest.raises(
            ValueError, match="flat detector.*CircularDetector.*unknown ASTRA geometry"
        ):
            OperatorModule(curved, backend=backend)

"""Scanner specs: the file format, its validation, the hash, and the exact round trip to ODL."""

from __future__ import annotations

import json
import math

import numpy as np
import odl
import pytest
import tomllib
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from odl.applications.tomo import (
    ConeBeamGeometry,
    FanBeamGeometry,
    Parallel2dGeometry,
    Parallel3dAxisGeometry,
    RayTransform,
    cone_beam_geometry,
    parallel_beam_geometry,
)

from deepinv_ei.odl import ray_transform_physics
from deepinv_ei.odl.geometry import geometry_key
from deepinv_ei.scan import (
    ScannerSpec,
    ScannerSpecError,
    geometry_fingerprint,
    geometry_from_spec,
    load_spec,
    ray_transform_from_spec,
    save_spec,
    spec_from_geometry,
)
from deepinv_ei.scan._toml import dumps

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FAN_TOML = """
geometry = "fan2d"
unit = "mm"

[angles]
unit = "deg"
count = 36
start = 0.0
stop = 360.0

[detector]
count = 40
pitch = 1.2
shift = 0.3
distance = 300.0

[source]
distance = 500.0

[image]
shape = [24, 24]
pixel_size = 1.5
"""


def parallel_dict(**detector) -> dict:
    return {
        "geometry": "parallel2d",
        "unit": "mm",
        "angles": {"unit": "deg", "count": 12, "start": 0.0, "stop": 180.0},
        "detector": {"count": 16, "pitch": 0.5, **detector},
    }


def fan_dict() -> dict:
    return tomllib.loads(FAN_TOML)


def key(space, geometry) -> str:
    return geometry_key(RayTransform(space, geometry, impl="astra_cpu"))


def odl_result(space, geometry, seed=0) -> np.ndarray:
    x = np.random.default_rng(seed).random(space.shape).astype(np.float32)
    return np.asarray(RayTransform(space, geometry, impl="astra_cpu")(x).asarray())


# --- the TOML writer ------------------------------------------------------------------------

toml_scalars = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=12)
    | st.booleans()
)
toml_values = toml_scalars | st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=20)
toml_tables = st.dictionaries(st.text(min_size=1, max_size=8), toml_values, max_size=5)


@FAST
@given(st.dictionaries(st.text(min_size=1, max_size=8), toml_values | toml_tables, max_size=6))
def test_toml_writer_round_trips_exactly(data):
    back = tomllib.loads(dumps(data))
    assert json.dumps(back, sort_keys=True) == json.dumps(data, sort_keys=True)


def test_toml_writer_refuses_what_toml_cannot_hold():
    with pytest.raises(ValueError, match="finite"):
        dumps({"a": float("nan")})
    with pytest.raises(TypeError, match="no null"):
        dumps({"a": None})


# --- files: round trips and the hash --------------------------------------------------------


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize("make", [parallel_dict, fan_dict], ids=["parallel", "fan"])
def test_save_and_load_round_trip(tmp_path, suffix, make):
    spec = ScannerSpec.from_dict(make())
    path = save_spec(spec, tmp_path / f"scanner{suffix}")
    back = load_spec(path)
    assert back == spec and back.hash == spec.hash
    assert back.to_dict() == spec.to_dict()
    assert np.array_equal(back.angles, spec.angles)
    assert [p.name for p in tmp_path.iterdir()] == [f"scanner{suffix}"]  # no temp file left


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)
positive = st.floats(1e-6, 1e6, allow_nan=False, allow_subnormal=False)


@FAST
@given(
    pitch=positive,
    shift=finite,
    src=positive,
    det=positive,
    size=positive,
    centre=st.tuples(finite, finite),
    offset=st.tuples(finite, finite),
    angles=st.lists(finite, min_size=1, max_size=8, unique=True).map(sorted),
)
def test_floats_survive_toml_and_json_exactly(
    tmp_path_factory, pitch, shift, src, det, size, centre, offset, angles
):
    spec = ScannerSpec(
        "fan2d",
        "cm",
        angles,
        det_count=7,
        det_pitch=pitch,
        det_shift=shift,
        src_radius=src,
        det_radius=det,
        det_offset=offset,
        image_shape=(5, 6),
        pixel_size=size,
        image_center=centre,
    )
    folder = tmp_path_factory.mktemp("spec")
    for suffix in (".toml", ".json"):
        back = load_spec(save_spec(spec, folder / f"s{suffix}"))
        assert back.to_dict() == spec.to_dict()  # every float, bit for bit
        assert np.array_equal(back.angles.view(np.int64), spec.angles.view(np.int64))


def test_hash_ignores_the_form_of_the_angles_and_the_key_order(tmp_path):
    by_range = ScannerSpec.from_dict(parallel_dict())
    listed = parallel_dict()
    listed["angles"] = {"unit": "deg", "values": [15.0 * i for i in range(12)]}
    by_step = parallel_dict()
    by_step["angles"] = {"unit": "deg", "count": 12, "step": 15.0}
    (tmp_path / "angles.txt").write_text(
        "# degrees\n" + "\n".join(str(15.0 * i) for i in range(12))
    )
    from_file = parallel_dict()
    from_file["angles"] = {"unit": "deg", "file": "angles.txt"}
    reordered = dict(reversed(list(parallel_dict().items())))
    explicit_defaults = parallel_dict(shift=0.0)
    explicit_defaults["image"] = {"shape": [16, 16], "pixel_size": 0.5, "center": [0.0, 0.0]}
    specs = [
        ScannerSpec.from_dict(listed),
        ScannerSpec.from_dict(by_step),
        ScannerSpec.from_dict(from_file, base_dir=tmp_path),
        ScannerSpec.from_dict(reordered),
        ScannerSpec.from_dict(explicit_defaults),
        ScannerSpec.from_dict(json.loads(json.dumps(by_range.to_dict()))),
    ]
    assert {s.hash for s in specs} == {by_range.hash}
    assert all(s == by_range for s in specs)


@pytest.mark.parametrize(
    "change",
    [
        {"unit": "cm"},
        {"det_count": 17},
        {"det_pitch": 0.51},
        {"det_shift": 0.1},
        {"pixel_size": 0.4},
        {"image_shape": (16, 15)},
        {"image_center": (0.0, 0.5)},
        {"angles": np.linspace(0, np.pi, 12, endpoint=False) + 1e-12},
        {"geometry": "parallel3d", "det_rows": 3},
    ],
)
def test_hash_changes_with_the_scanner(change):
    import dataclasses

    spec = ScannerSpec.from_dict(parallel_dict())
    other = dataclasses.replace(spec, **change)
    assert other.hash != spec.hash and other != spec


def test_count_and_range_is_start_plus_i_step_end_excluded():
    spec = ScannerSpec.from_dict(parallel_dict())
    assert np.array_equal(spec.angles, np.deg2rad(0.0 + np.arange(12) * 15.0))
    assert math.isclose(spec.angles[-1], np.deg2rad(165.0))
    rad = parallel_dict()
    rad["angles"] = {"unit": "rad", "count": 4, "start": 0.5, "stop": 2.5}
    assert ScannerSpec.from_dict(rad).angles.tolist() == [0.5, 1.0, 1.5, 2.0]


def test_angles_are_read_only():
    spec = ScannerSpec.from_dict(parallel_dict())
    with pytest.raises(ValueError, match="read-only"):
        spec.angles[0] = 1.0


def test_views_subset_keeps_the_unit_and_the_scanner():
    spec = ScannerSpec.from_dict(parallel_dict())
    sparse = spec.select_views(np.arange(0, 12, 4))
    assert sparse.to_dict()["angles"] == {"unit": "deg", "values": [0.0, 60.0, 120.0]}
    assert np.array_equal(sparse.angles, spec.angles[::4])
    assert sparse.with_angles([0.0, 60.0, 120.0], unit="deg") == sparse
    assert sparse.det_count == spec.det_count and sparse.image_shape == spec.image_shape
    binned = spec.with_detector(count=8, pitch=1.0)
    assert (binned.det_count, binned.det_pitch, binned.image_shape) == (8, 1.0, (16, 16))
    assert binned.with_image(shape=(8, 8), pixel_size=1.0).image_shape == (8, 8)


def test_parallel_image_defaults_to_a_square_of_the_detector():
    spec = ScannerSpec.from_dict(parallel_dict())
    assert (spec.image_shape, spec.pixel_size, spec.image_center) == ((16, 16), 0.5, (0.0, 0.0))
    stack = ScannerSpec.from_dict(
        {**parallel_dict(rows=5), "geometry": "parallel3d"}
    )  # each detector row is one slice
    assert (stack.num_slices, stack.sinogram_shape, stack.row_pitch) == (5, (12, 16), 0.5)
    space, geometry = geometry_from_spec(stack)
    assert space.shape == (16, 16) and isinstance(geometry, Parallel2dGeometry)


# --- validation -------------------------------------------------------------------------------


def _error(d: dict, match: str, **kw) -> None:
    with pytest.raises(ScannerSpecError, match=match):
        ScannerSpec.from_dict(d, **kw)


def test_unknown_fields_are_named_with_the_allowed_ones():
    d = parallel_dict(pitchh=1.0)
    _error(
        d,
        r"unknown field detector\.pitchh; the fields of \[detector\] for parallel2d are: "
        r"count, pitch, shift, extent",
    )
    _error({**parallel_dict(), "colour": 1}, r"unknown field colour; .*geometry, unit, angles")
    _error({**parallel_dict(), "source": {"distance": 1.0}}, r"\[source\] is only for fan2d")
    fan = fan_dict()
    fan["detector"]["rows"] = 2
    _error(fan, r"unknown field detector\.rows; .*for fan2d")


@pytest.mark.parametrize(
    "make, path, match",
    [
        (parallel_dict, ("detector", "pitch"), r"missing field detector\.pitch"),
        (fan_dict, ("source",), r"missing table \[source\]"),
        (fan_dict, ("image", "pixel_size"), r"missing field image\.pixel_size for fan2d"),
        (parallel_dict, ("geometry",), r"missing field geometry \(one of parallel2d, fan2d"),
        (parallel_dict, ("angles", "unit"), r"missing field angles\.unit"),
    ],
)
def test_missing_fields_are_named(make, path, match):
    d = make()
    del (d[path[0]] if len(path) == 2 else d)[path[-1]]
    _error(d, match)
    _error({**parallel_dict(), "geometry": "parallel3d"}, r"missing field detector\.rows")


@pytest.mark.parametrize(
    "where, value, match",
    [
        (("detector", "count"), 0, r"detector\.count \(det_count\) must be >= 1, got 0"),
        (("detector", "count"), 2.5, r"detector\.count \(det_count\) must be an integer"),
        (("detector", "pitch"), -0.5, r"detector\.pitch \(det_pitch\) must be > 0"),
        (("detector", "pitch"), 0, r"detector\.pitch \(det_pitch\) must be > 0"),
        (("detector", "distance"), -1.0, r"detector\.distance \(det_radius\) must be >= 0"),
        (("source", "distance"), 0.0, r"source\.distance \(src_radius\) must be > 0"),
        (("image", "pixel_size"), -1.0, r"image\.pixel_size \(pixel_size\) must be > 0"),
        (("image", "shape"), [0, 4], r"image\.shape \(image_shape\) must be >= 1"),
        (("image", "shape"), [4], r"image\.shape \(image_shape\) must be a list of 2 integers"),
        (("angles", "count"), -3, r"angles\.count must be an integer >= 1"),
        (("angles", "unit"), "grad", r"angles\.unit must be one of deg, rad, got 'grad'"),
        (("detector", "pitch"), "0.5", r"detector\.pitch \(det_pitch\) must be a finite number"),
    ],
)
def test_bad_values_are_refused_naming_the_field(where, value, match):
    d = fan_dict()
    d[where[0]][where[1]] = value
    _error(d, match, origin="fan.toml")
    with pytest.raises(ScannerSpecError, match="^fan.toml: "):
        ScannerSpec.from_dict(d, origin="fan.toml")


def test_the_length_unit_is_required_and_checked():
    d = parallel_dict()
    del d["unit"]
    _error(d, r"missing field unit: the length unit of every distance, one of mm, cm, m, px")
    _error({**parallel_dict(), "unit": "inch"}, r"unit must be one of mm, cm, m, px, got 'inch'")


def test_angles_must_be_given_one_way_and_increase():
    d = parallel_dict()
    d["angles"]["values"] = [0.0, 1.0]
    _error(d, r"give exactly one of count .* got count, values")
    d = parallel_dict()
    del d["angles"]["stop"]
    _error(d, r"with count, give exactly one of stop .* or step; got neither")
    d = parallel_dict()
    d["angles"] = {"unit": "deg", "values": [0.0, 10.0, 5.0]}
    _error(d, r"strictly increasing .* view 2 .* does not follow view 1")


def test_angles_file_missing_or_malformed(tmp_path):
    d = parallel_dict()
    d["angles"] = {"unit": "deg", "file": "angles.txt"}
    with pytest.raises(FileNotFoundError, match=r"angles\.file .*angles\.txt: no such file"):
        ScannerSpec.from_dict(d, base_dir=tmp_path)
    (tmp_path / "angles.txt").write_text("0.0\n1.0\n2,0x\n")
    _error(d, r"angles file .*angles\.txt, line 3: '0x' is not a number", base_dir=tmp_path)
    (tmp_path / "angles.txt").write_text("# nothing\n")
    _error(d, r"angles file .*angles\.txt holds no angles", base_dir=tmp_path)


def test_spec_files_with_errors_are_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("geometry = [")
    with pytest.raises(ScannerSpecError, match=r"bad\.toml: not valid TOML"):
        load_spec(bad)
    with pytest.raises(FileNotFoundError, match=r"nope\.json: no such scanner spec file"):
        load_spec(tmp_path / "nope.json")
    (tmp_path / "fan.toml").write_text(FAN_TOML.replace("pitch = 1.2", "pitch = -1.2"))
    with pytest.raises(ScannerSpecError, match=r"fan\.toml: detector\.pitch"):
        load_spec(tmp_path / "fan.toml")
    with pytest.raises(ScannerSpecError, match=r"\.toml or \.json"):
        save_spec(ScannerSpec.from_dict(fan_dict()), tmp_path / "fan.yaml")


def test_angles_file_is_relative_to_the_spec_file(tmp_path):
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "angles_deg.txt").write_text("0 90\n180, 270\n")
    text = FAN_TOML.replace("count = 36\nstart = 0.0\nstop = 360.0", 'file = "angles_deg.txt"')
    (tmp_path / "scan" / "fan.toml").write_text(text)
    spec = load_spec(tmp_path / "scan" / "fan.toml")
    assert np.array_equal(spec.angles, np.deg2rad([0.0, 90.0, 180.0, 270.0]))
    assert spec.to_dict()["angles"] == {"unit": "deg", "values": [0.0, 90.0, 180.0, 270.0]}


# --- checking data against the spec ---------------------------------------------------------


def test_sinogram_shapes_are_checked_and_transposition_is_named():
    spec = ScannerSpec.from_dict(fan_dict())  # 36 views, 40 detector pixels
    spec.check_sinograms((36, 40))
    spec.check_data_shape((7, 36, 40), "slice,angle,detector")
    with pytest.raises(ScannerSpecError, match=r"looks transposed: .*as axes \(detector, angle\)"):
        spec.check_sinograms((40, 36))
    with pytest.raises(ScannerSpecError, match=r"looks transposed: .*\(slice, detector, angle\)"):
        spec.check_data_shape((7, 40, 36), "slice,angle,detector", "fan.npy")
    with pytest.raises(ScannerSpecError, match=r"detector has length 41, expected 40"):
        spec.check_sinograms((36, 41))
    with pytest.raises(ScannerSpecError, match=r"3 axes .* 2 axis names"):
        spec.check_sinograms((1, 36, 40))
    with pytest.raises(ScannerSpecError, match=r"unknown axis name 'z'"):
        spec.check_data_shape((36, 40), "angle,z")


def test_projection_rows_are_checked_for_a_stack_of_slices():
    stack = ScannerSpec.from_dict({**parallel_dict(rows=5), "geometry": "parallel3d"})
    stack.check_projections((12, 5, 16))
    with pytest.raises(ScannerSpecError, match=r"looks transposed: .*\(angle, col, row\)"):
        stack.check_projections((12, 16, 5))
    with pytest.raises(ScannerSpecError, match=r"row has length 6, expected 5"):
        stack.check_projections((12, 6, 16))


# --- the exact round trip to ODL --------------------------------------------------------------

SPACE = odl.uniform_discr([-1, -1], [1, 1], (16, 16), dtype="float32")
APART = odl.uniform_partition(0, np.pi, 9)
DPART = odl.uniform_partition(-1.6, 1.6, 23)
SHIFTED = odl.uniform_partition(-1.3, 1.9, 23)
NONUNIFORM = odl.nonuniform_partition(np.sort(APART.coord_vectors[0] + 0.01 * np.arange(9)))


def _fan(apart=APART, dpart=DPART, **kw):
    return FanBeamGeometry(apart, dpart, src_radius=4.0, det_radius=2.0, **kw)


GEOMETRIES = {
    "parallel_beam_geometry": lambda: (SPACE, parallel_beam_geometry(SPACE, num_angles=25)),
    "parallel, shifted partition": lambda: (SPACE, Parallel2dGeometry(APART, SHIFTED)),
    "parallel, non-uniform angles": lambda: (SPACE, Parallel2dGeometry(NONUNIFORM, DPART)),
    "parallel, off-centre grid": lambda: (
        odl.uniform_discr([-0.8, -1.0], [1.2, 1.0], (16, 16), dtype="float32"),
        Parallel2dGeometry(APART, DPART),
    ),
    "parallel, odd extents": lambda: (
        odl.uniform_discr([-0.35, -0.7], [1.05, 0.7], (7, 7), dtype="float32"),
        Parallel2dGeometry(APART, odl.uniform_partition(-1.37, 1.91, 29)),
    ),
    "cone_beam_geometry (fan)": lambda: (SPACE, cone_beam_geometry(SPACE, 40.0, 20.0, 30)),
    "fan, shifted partition": lambda: (SPACE, _fan(dpart=SHIFTED)),
    "fan, det_shift_func": lambda: (SPACE, _fan(det_shift_func=lambda a: np.array([[0.1, 0.2]]))),
    "fan, src_shift_func": lambda: (SPACE, _fan(src_shift_func=lambda a: np.array([[0.05, -0.1]]))),
    "fan, per-view constant shifts": lambda: (
        SPACE,
        _fan(det_shift_func=lambda a: np.tile([0.0, 0.3], (np.size(a), 1))),
    ),
    "fan, non-uniform angles": lambda: (SPACE, _fan(apart=NONUNIFORM)),
    "fan, virtual detector": lambda: (
        SPACE,
        FanBeamGeometry(APART, DPART, src_radius=4.0, det_radius=0.0),
    ),
    "fan, off-centre grid, shifts": lambda: (
        odl.uniform_discr([-0.8, -1.3], [1.2, 0.7], (10, 10), dtype="float32"),
        _fan(
            dpart=SHIFTED,
            src_shift_func=lambda a: np.array([[0.05, -0.1]]),
            det_shift_func=lambda a: np.array([[-0.2, 0.1]]),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_geometry_round_trip_is_exact(name, tmp_path):
    space, geometry = GEOMETRIES[name]()
    spec = spec_from_geometry(space, geometry, unit="mm")
    spec = load_spec(save_spec(spec, tmp_path / "s.toml"))  # through a file, too
    space2, geometry2 = geometry_from_spec(spec)
    assert key(space2, geometry2) == key(space, geometry)
    assert geometry_fingerprint(space2, geometry2) == geometry_fingerprint(space, geometry)
    assert np.array_equal(odl_result(space2, geometry2), odl_result(space, geometry))
    assert geometry2.motion_partition.is_uniform == geometry.motion_partition.is_uniform
    assert spec_from_geometry(space2, geometry2, unit="mm") == spec  # and back, the same spec


def test_odd_extents_are_written_exactly():
    space, geometry = GEOMETRIES["parallel, odd extents"]()
    spec = spec_from_geometry(space, geometry)
    assert spec.det_bounds == (-1.37, 1.91)
    assert spec.image_bounds == ((-0.35, 1.05), (-0.7, 0.7))
    assert math.isclose(spec.det_pitch, 3.28 / 29) and math.isclose(spec.det_shift, -0.27)
    assert ScannerSpec.from_dict(spec.to_dict()) == spec
    d = spec.to_dict()
    d["image"]["extent"] = [[-0.35, 1.06], [-0.7, 0.7]]
    _error(d, r"image\.extent \(image_extent\) \[-0\.35, 1\.06\] of 7 cells does not agree")


@FAST
@given(
    n_img=st.integers(1, 40),
    half=st.floats(0.01, 100),
    centre=st.tuples(st.floats(-10, 10), st.floats(-10, 10)),
    n_det=st.integers(1, 60),
    det_lo=st.floats(-50, 0, exclude_max=True),
    det_width=st.floats(0.01, 100),
    fan=st.booleans(),
)
def test_geometry_round_trip_is_exact_for_random_grids(
    n_img, half, centre, n_det, det_lo, det_width, fan
):
    space = odl.uniform_discr(
        [centre[0] - half, centre[1] - half], [centre[0] + half, centre[1] + half], (n_img, n_img)
    )
    dpart = odl.uniform_partition(det_lo, det_lo + det_width, n_det)
    geometry = (
        FanBeamGeometry(APART, dpart, src_radius=3 * half + 10, det_radius=half)
        if fan
        else Parallel2dGeometry(APART, dpart)
    )
    spec = spec_from_geometry(space, geometry)
    space2, geometry2 = geometry_from_spec(spec, dtype=space.dtype)
    assert geometry_fingerprint(space2, geometry2) == geometry_fingerprint(space, geometry)
    assert ScannerSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@FAST
@given(
    pitch=st.floats(1e-3, 10),
    shift=st.floats(-5, 5),
    size=st.floats(1e-3, 10),
    n=st.integers(1, 300),
    m=st.integers(1, 300),
)
def test_spec_round_trip_through_odl_is_the_identity(pitch, shift, size, n, m):
    spec = ScannerSpec(
        "fan2d",
        "mm",
        np.linspace(0, 2 * np.pi, 10, endpoint=False),
        det_count=n,
        det_pitch=pitch,
        det_shift=shift,
        src_radius=100.0,
        det_radius=50.0,
        image_shape=(m, m),
        pixel_size=size,
    )
    assert spec_from_geometry(*geometry_from_spec(spec), unit="mm") == spec


def test_cone_beam_round_trip_is_exact():
    space = odl.uniform_discr([-1, -1, -1], [1, 1, 1], (8, 8, 8), dtype="float32")
    geometry = cone_beam_geometry(space, 40.0, 20.0, num_angles=10)
    spec = spec_from_geometry(space, geometry, unit="cm")
    assert spec.geometry == "cone3d"
    assert spec.sinogram_shape == (10, *geometry.det_partition.shape) == (10, 19, 9)
    space2, geometry2 = geometry_from_spec(ScannerSpec.from_dict(spec.to_dict()))
    assert isinstance(geometry2, ConeBeamGeometry)
    assert geometry_fingerprint(space2, geometry2) == geometry_fingerprint(space, geometry)


def test_shift_sign_convention():
    """A positive shift puts the ray through the rotation axis right of the detector's centre."""
    spec = ScannerSpec.from_dict(parallel_dict(shift=1.0))  # 16 pixels of 0.5: 2 pixels right
    _, geometry = geometry_from_spec(spec)
    u = geometry.det_partition.coord_vectors[0]
    assert np.isclose(np.interp(0.0, u, np.arange(16)), (16 - 1) / 2 + 2.0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Parallel2dGeometry(APART, DPART, translation=(0.3, 0.0)), "translated"),
        (lambda: _fan(src_to_det_init=(1, 0)), "src_to_det_init is .*standard orientation"),
        (lambda: Parallel2dGeometry(APART, DPART, det_pos_init=(1, 0)), "det_pos_init"),
        (lambda: _fan(det_curvature_radius=5.0), "flat detector, got CircularDetector"),
        (
            lambda: _fan(det_shift_func=lambda a: np.stack([np.zeros_like(a), a], -1)),
            "depends on the angle",
        ),
    ],
)
def test_geometries_a_spec_cannot_describe_are_refused(make, match):
    with pytest.raises(ScannerSpecError, match=match):
        spec_from_geometry(SPACE, make())


def test_3d_parallel_geometry_is_refused_with_the_slice_advice():
    space = odl.uniform_discr([-1] * 3, [1] * 3, (4, 4, 4))
    g = Parallel3dAxisGeometry(APART, odl.uniform_partition([-1, -1], [1, 1], (4, 4)))
    with pytest.raises(
        ScannerSpecError, match="describe one slice and set geometry = 'parallel3d'"
    ):
        spec_from_geometry(space, g)


def test_odl_astra_cpu_ignores_a_parallel_beam_detector_shift():
    """Why a parallel-beam shift must be applied to the data: the operator does not see it."""
    plain, shifted = Parallel2dGeometry(APART, DPART), Parallel2dGeometry(APART, SHIFTED)
    assert key(SPACE, plain) == key(SPACE, shifted)
    assert np.array_equal(odl_result(SPACE, plain), odl_result(SPACE, shifted))
    fan_plain, fan_shifted = _fan(), _fan(dpart=SHIFTED)  # fan beam honours it
    assert not np.allclose(odl_result(SPACE, fan_plain), odl_result(SPACE, fan_shifted))


# --- physics --------------------------------------------------------------------------------


def test_fan_beam_toml_gives_the_operator_of_the_hand_built_geometry(tmp_path):
    (tmp_path / "fan.toml").write_text(FAN_TOML)
    physics = ray_transform_from_spec(load_spec(tmp_path / "fan.toml"))
    space = odl.uniform_discr([-18.0, -18.0], [18.0, 18.0], (24, 24), dtype="float32")
    geometry = FanBeamGeometry(
        odl.nonuniform_partition(np.deg2rad(np.arange(36) * 10.0)),
        odl.uniform_partition(-24.3, 23.7, 40),
        src_radius=500.0,
        det_radius=300.0,
    )
    by_hand = ray_transform_physics((space, geometry))
    x = torch.rand(2, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    assert torch.equal(physics.A(x), by_hand.A(x))
    y = physics.A(x)
    assert y.shape == (2, 1, 36, 40)
    assert torch.allclose(physics.A_dagger(y), by_hand.A_dagger(y))


def test_parallel_physics_and_its_refusals():
    spec = ScannerSpec.from_dict(parallel_dict())
    physics = ray_transform_from_spec(spec)
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    assert physics.A(x).shape == (1, 1, *spec.sinogram_shape)
    assert bool(physics.adjointness_test(x).abs() < 1e-4)
    with pytest.raises(ScannerSpecError, match=r"detector shift .* ignored by ODL's astra_cpu"):
        ray_transform_from_spec(spec.with_detector(shift=0.25))


def test_cone_beam_physics_is_refused_on_a_cpu():
    space = odl.uniform_discr([-1, -1, -1], [1, 1, 1], (8, 8, 8), dtype="float32")
    spec = spec_from_geometry(space, cone_beam_geometry(space, 40.0, 20.0, num_angles=10))
    with pytest.raises(
        ValueError, match="needs ODL's astra_cuda on a CUDA device; got device 'cpu'"
    ):
        ray_transform_from_spec(spec, device="cpu")


def test_the_documented_example_file_loads(tmp_path):
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "scanner_spec.md").read_text()
    text = page.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "fan.toml").write_text(text)
    spec = load_spec(tmp_path / "fan.toml")
    assert (spec.geometry, spec.sinogram_shape, spec.image_shape) == (
        "fan2d",
        (360, 512),
        (256, 256),
    )

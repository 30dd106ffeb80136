"""System matrices: shared while modules use them, freed with them, optionally kept on disk."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from odl.applications.tomo import RayTransform
from odl_cases import parallel_ray

from deepinv_ei.odl import OperatorModule, clear_matrix_cache
from deepinv_ei.odl.backends import matrix as matrix_backend
from deepinv_ei.odl.backends import matrix_files
from deepinv_ei.odl.cache import held_count


def _ray(n: int = 20, views: int = 11) -> RayTransform:
    return parallel_ray(n, views)


@pytest.fixture
def count_builds(monkeypatch):
    """Counts the matrices computed by ASTRA (not read from memory or disk)."""
    calls = []
    original = matrix_backend.system_matrix

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(matrix_backend, "system_matrix", counting)
    monkeypatch.delenv(matrix_files.CACHE_ENV, raising=False)
    return calls


def test_modules_share_a_matrix_and_free_it_with_the_last_of_them(count_builds):
    ray = _ray(21, 7)
    x = torch.rand(2, 21, 21)
    A, B = OperatorModule(ray), OperatorModule(_ray(21, 7))  # equal geometry, other objects
    gc.collect()  # modules of earlier tests
    before = held_count("matrix")
    torch.testing.assert_close(A(x), B(x))
    assert count_builds == [1]
    assert A.get_backend("cpu").matrices(x.dtype, "cpu") is B.get_backend("cpu").matrices(
        x.dtype, "cpu"
    )
    assert held_count("matrix") == before + 1
    del A
    gc.collect()
    assert held_count("matrix") == before + 1  # B still uses it
    del B
    gc.collect()
    assert held_count("matrix") == before
    OperatorModule(ray)(x)
    assert count_builds == [1, 1]  # rebuilt: nothing was kept once no module used it


def test_disk_cache_serves_a_new_module_without_building(tmp_path, count_builds):
    ray = _ray(19, 9)
    x = torch.rand(3, 19, 19, dtype=torch.float64)
    y = OperatorModule(ray, cache_dir=tmp_path)(x)
    (path,) = tmp_path.glob("system-matrix-*.npz")
    gc.collect()
    clear_matrix_cache()
    A = OperatorModule(ray, cache_dir=tmp_path)
    torch.testing.assert_close(A(x), y, rtol=0, atol=0)
    assert count_builds == [1]
    assert list(tmp_path.glob("*.tmp")) == []  # written atomically, nothing left behind
    assert path.stat().st_size < 1.2 * A.get_backend("cpu").estimated_bytes(ray, torch.float32)


def test_disk_cache_directory_from_environment(tmp_path, monkeypatch, count_builds):
    monkeypatch.setenv(matrix_files.CACHE_ENV, str(tmp_path / "cache"))
    OperatorModule(_ray(17, 5))(torch.rand(1, 17, 17))
    assert len(list((tmp_path / "cache").glob("system-matrix-*.npz"))) == 1


@pytest.mark.parametrize("damage", ["truncate", "flip", "other-geometry"])
def test_corrupt_cache_file_is_rebuilt_with_a_warning_naming_it(tmp_path, count_builds, damage):
    ray, other = _ray(18, 6), _ray(18, 8)
    x = torch.rand(2, 18, 18)
    expected = OperatorModule(ray, cache_dir=tmp_path / "ref")(x)
    OperatorModule(ray, cache_dir=tmp_path)(x)
    gc.collect()
    clear_matrix_cache()
    (path,) = tmp_path.glob("system-matrix-*.npz")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF  # inside the arrays: only the checksum can tell
        path.write_bytes(bytes(data))
    else:  # a valid file of another geometry under this one's name
        OperatorModule(other, cache_dir=tmp_path / "other")(torch.rand(1, 18, 18))
        path.write_bytes(next((tmp_path / "other").glob("*.npz")).read_bytes())
    builds = len(count_builds)
    with pytest.warns(RuntimeWarning, match=str(path.name)):
        y = OperatorModule(ray, cache_dir=tmp_path)(x)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    assert len(count_builds) == builds + 1
    gc.collect()
    clear_matrix_cache()
    OperatorModule(ray, cache_dir=tmp_path)(x)  # the rebuilt file is valid again
    assert len(count_builds) == builds + 1


_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import odl, torch
from odl.applications.tomo import RayTransform, parallel_beam_geometry
from deepinv_ei.odl import OperatorModule
from deepinv_ei.odl.backends import matrix
built = []
original = matrix.system_matrix
matrix.system_matrix = lambda *a, **k: built.append(1) or original(*a, **k)
t1 = time.perf_counter()
space = odl.uniform_discr([-1, -1], [1, 1], (96, 96), dtype="float32")
ray = RayTransform(space, parallel_beam_geometry(space, num_angles=60), impl="astra_cpu")
y = OperatorModule(ray)(torch.ones(1, 96, 96))
print(json.dumps({"built": len(built), "first_product_s": time.perf_counter() - t1,
                  "sum": float(y.double().sum())}))
"""


def test_second_process_reads_the_matrix_from_disk(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        matrix_files.CACHE_ENV: str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print("first process:", runs[0], "second process:", runs[1])
    assert [r["built"] for r in runs] == [1, 0]
    assert runs[0]["sum"] == runs[1]["sum"]


def test_matrix_memory_is_checked_before_it_is_built(monkeypatch, count_builds):
    monkeypatch.setattr(matrix_backend, "available_memory", lambda device: 1000)
    A = OperatorModule(_ray(16, 5), backend="matrix")
    with pytest.raises(MemoryError, match=r"needs about .* GiB on cpu to build, but only"):
        A(torch.rand(1, 16, 16))
    assert count_builds == []


def test_stored_values_are_the_float64_matrix_exactly(tmp_path):
    ray = _ray(15, 4)
    ref = matrix_backend.system_matrix(ray, dtype=np.float64)
    key = matrix_backend.geometry_key(ray)
    path = matrix_files.disk_path(tmp_path, key)
    matrix_files.disk_store(path, key, ref)
    back = matrix_files.disk_load(path, key, ref.shape)
    assert back is not None and (back != ref).nnz == 0


def test_operator_function_builds_once_per_operator_and_frees_with_it(count_builds):
    from deepinv_ei.odl import OperatorFunction

    ray = _ray(22, 5)
    gc.collect()  # modules of earlier tests
    before = held_count("matrix")
    x = torch.rand(3, 22, 22, requires_grad=True)
    for _ in range(2):
        OperatorFunction.apply(ray, x).sum().backward()
    assert count_builds == [1]
    torch.testing.assert_close(
        OperatorFunction.apply(ray, x.detach()), OperatorModule(ray)(x.detach())
    )
    assert held_count("matrix") == before + 1
    del ray
    gc.collect()
    assert held_count("matrix") == before


def test_one_physics_per_operator_freed_with_it_and_not_copied():
    import copy
    import pickle

    from deepinv_ei.odl import cached_physics

    op = _ray(12, 5)
    gc.collect()
    before = held_count("physics"), held_count("backend")
    physics = cached_physics(op)
    assert cached_physics(op) is physics
    x = torch.rand(2, 1, 12, 12)
    torch.testing.assert_close(physics.A(x), OperatorModule(op)(x), rtol=0, atol=0)
    assert (held_count("physics"), held_count("backend")) == (before[0] + 1, before[1] + 1)
    for twin in (copy.deepcopy(op), pickle.loads(pickle.dumps(op))):
        assert cached_physics(twin) is not physics  # a copy builds its own
        assert cached_physics(twin).odl_op is twin
    del physics, twin
    gc.collect()
    assert held_count("physics") == before[0] + 1  # the operator keeps its physics
    del op
    gc.collect()
    assert (held_count("physics"), held_count("backend")) == before

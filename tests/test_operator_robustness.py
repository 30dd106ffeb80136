"""OperatorModule on bad options, through pickling and spawned workers, and on random shapes."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import odl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from odl.applications.tomo import RayTransform, cone_beam_geometry, parallel_beam_geometry
from odl_cases import parallel_ray, ray_transform

from deepinv_ei.odl import BACKENDS, OperatorModule, ray_transform_physics
from deepinv_ei.utils import dottest


def test_device_argument_gets_a_clear_error():
    ray = ray_transform("parallel")
    with pytest.raises(
        ValueError, match=r"unknown option 'device'.*runs on the device of its input"
    ):
        OperatorModule(ray, device="cuda")


@pytest.mark.parametrize("backend", ["auto", "matrix", "astra"])
def test_misspelled_option_is_refused_naming_the_valid_ones(backend):
    ray = ray_transform("parallel")
    with pytest.raises(
        ValueError,
        match=r"unknown option 'memory_budjet'.*valid options: .*memory_budget"
        if backend != "astra"
        else r"unknown option 'memory_budjet'.*num_threads",
    ):
        OperatorModule(ray, backend=backend, memory_budjet=1)


def test_option_of_another_backend_is_refused_for_an_explicit_backend():
    with pytest.raises(ValueError, match=r"for backend 'odl'; valid options: none"):
        OperatorModule(ray_transform("parallel"), backend="odl", num_threads=2)
    with pytest.raises(ValueError, match=r"'num_threads' for backend 'matrix'"):
        OperatorModule(ray_transform("parallel"), backend="matrix", num_threads=2)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_module_pickles_after_odl_adjoint_was_used(backend):
    ray = parallel_ray(12, 7)
    ray.adjoint  # noqa: B018  (ODL caches a local class: unpicklable as such)
    A = OperatorModule(ray, backend=backend)
    x = torch.rand(2, 12, 12)
    y = A(x)
    aty = A.T(y)
    clone = pickle.loads(pickle.dumps(A))
    torch.testing.assert_close(clone(x), y)
    torch.testing.assert_close(clone.T(y), aty)
    clone_t = pickle.loads(pickle.dumps(A.T))
    torch.testing.assert_close(clone_t(y), aty)
    assert clone_t.T.T is clone_t
    # (deepinv's default noise model holds a lambda, so a physics deep-copies but does not pickle)
    physics = copy.deepcopy(ray_transform_physics(ray, backend=backend))
    torch.testing.assert_close(physics.A(x[:, None]), y[:, None])


class _Project(torch.utils.data.Dataset):
    def __init__(self, module):
        self.module = module

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return self.module(torch.full((1, *self.module.in_shape), float(i)))


def test_spawned_dataloader_worker_gets_a_working_module():
    ray = ray_transform("parallel")
    ray.adjoint  # noqa: B018
    A = OperatorModule(ray)
    loader = torch.utils.data.DataLoader(
        _Project(A), batch_size=None, num_workers=1, multiprocessing_context="spawn", timeout=120
    )
    for i, y in enumerate(loader):
        torch.testing.assert_close(y, A(torch.full((1, *A.in_shape), float(i))))


# -- adjointness on random problems ---------------------------------------------------------


@st.composite
def _problems(draw):
    n = draw(st.integers(3, 10))
    m = draw(st.integers(3, 10))
    views = draw(st.integers(1, 6))
    fan = draw(st.booleans())
    h = draw(st.floats(0.05, 0.5))  # square pixels: ODL's astra_cpu needs them with ASTRA 2.5
    space = odl.uniform_discr(
        [-n * h / 2, -m * h / 2], [n * h / 2, m * h / 2], (n, m), dtype="float32"
    )
    extent = max(n, m) * h
    if fan:
        geometry = cone_beam_geometry(
            space, src_radius=4 * extent, det_radius=extent, num_angles=views
        )
    else:
        geometry = parallel_beam_geometry(space, num_angles=views)
    ray = RayTransform(space, geometry, impl="astra_cpu")
    batch = draw(st.lists(st.integers(0, 3), min_size=0, max_size=2))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    backend = draw(st.sampled_from(sorted(BACKENDS)))
    return ray, tuple(batch), dtype, backend


@settings(max_examples=25, deadline=None, database=None)
@given(_problems())
def test_transpose_is_adjoint_on_random_problems(problem):
    ray, batch, dtype, backend = problem
    if backend == "astra" and dtype == torch.float64:
        dtype = torch.float32  # ASTRA computes in float32 only
    A = OperatorModule(ray, backend=backend)
    shape = (*batch, *ray.domain.shape)
    y = A(torch.zeros(shape, dtype=dtype))
    assert y.shape == (*batch, *ray.range.shape) and y.dtype == dtype
    if int(np.prod(batch)) == 0:
        return
    # The "odl" backend computes in the space's float32 whatever the input's dtype.
    rtol = 1e-10 if dtype == torch.float64 and backend == "matrix" else 1e-5
    assert dottest(A, A.T, shape, dtype=dtype, rtol=rtol) <= rtol

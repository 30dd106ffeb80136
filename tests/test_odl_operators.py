"""OperatorModule and its backends: exact transposes, agreement with ODL, autograd, bad input."""

from __future__ import annotations

import numpy as np
import odl
import pytest
import torch
from conftest import seeded
from odl.applications.tomo import RayTransform
from odl_cases import KINDS, odl_forward, parallel_ray, parallel_setup, ray_transform

from deepinv_ei.odl import BACKENDS, OperatorModule, ray_transform_physics
from deepinv_ei.odl.backends import AUTO_ORDER
from deepinv_ei.utils import dottest

RAY_BACKENDS = tuple(BACKENDS)


@pytest.fixture(params=KINDS)
def ray(request):
    return ray_transform(request.param)


@pytest.mark.parametrize("backend", RAY_BACKENDS)
def test_forward_agrees_with_odl(ray, backend):
    x = np.random.default_rng(0).random((3, *ray.domain.shape), dtype=np.float32)
    ours = OperatorModule(ray, backend=backend)(torch.from_numpy(x)).numpy()
    ref = odl_forward(ray, x)
    assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) <= 1e-5


@pytest.mark.parametrize("backend", RAY_BACKENDS)
def test_transpose_passes_dot_test_float32(ray, backend):
    A = OperatorModule(ray, backend=backend)
    # Exactness is checked in float64 below; here the float32 path must agree to float32's
    # level. The error is relative to |<Ax, y>|, which cancellation can make small, and the
    # sparse kernels sum in a CPU-dependent order: a few 1e-6 occur on some CPUs.
    rtol = 1e-5
    assert dottest(A, A.T, (4, *ray.domain.shape), dtype=torch.float32, rtol=rtol) <= rtol


def test_matrix_backend_transpose_is_exact_in_float64(ray):
    A = OperatorModule(ray, backend="matrix")
    assert dottest(A, A.T, (2, 3, *ray.domain.shape), dtype=torch.float64, rtol=1e-10) <= 1e-10


def test_transpose_is_not_odl_adjoint_when_cells_are_not_unit():
    """The plain transpose differs from ODL's weighted adjoint by the cell-volume ratio."""
    ray = ray_transform("parallel_cells")
    A = OperatorModule(ray, backend="matrix")
    y = np.random.default_rng(1).random(ray.range.shape, dtype=np.float32)
    ours = A.T(torch.from_numpy(y)).numpy()
    odl_adj = np.asarray(ray.adjoint(y).asarray())
    ratio = float(ray.range.weighting.const) / float(ray.domain.weighting.const)
    assert abs(ratio - 1) > 0.1
    np.testing.assert_allclose(odl_adj, ratio * ours, rtol=1e-4, atol=1e-4 * np.abs(odl_adj).max())


@pytest.mark.parametrize("backend", RAY_BACKENDS)
def test_empty_batch_gives_empty_output_and_gradient(backend):
    ray = ray_transform("parallel")
    A = OperatorModule(ray, backend=backend)
    x = torch.zeros(0, 3, *ray.domain.shape, requires_grad=True)
    y = A(x)
    assert y.shape == (0, 3, *ray.range.shape)
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert A.T(torch.zeros(0, *ray.range.shape)).shape == (0, *ray.domain.shape)
    physics = ray_transform_physics(ray, backend=backend)
    sino = physics(torch.zeros(0, 1, *ray.domain.shape))
    assert sino.shape == (0, 1, *ray.range.shape)
    assert physics.A_dagger(sino).shape == (0, 1, *ray.domain.shape)


@pytest.mark.parametrize("backend", RAY_BACKENDS)
def test_batched_equals_per_sample(backend):
    ray = ray_transform("parallel")
    A = OperatorModule(ray, backend=backend)
    x = torch.rand(2, 3, *ray.domain.shape, generator=seeded(2))
    batched = A(x)
    assert batched.shape == (2, 3, *ray.range.shape)
    per_sample = torch.stack([torch.stack([A(xi) for xi in row]) for row in x])
    torch.testing.assert_close(batched, per_sample, rtol=1e-6, atol=1e-6)
    y = torch.rand(5, *ray.range.shape)
    torch.testing.assert_close(A.T(y), torch.stack([A.T(yi) for yi in y]), rtol=1e-6, atol=1e-6)


def test_gradcheck_and_second_derivatives_float64():
    ray = ray_transform("tiny_fan")
    A = OperatorModule(ray, backend="matrix")
    x = torch.rand(2, *ray.domain.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(A, (x,), eps=1e-6, atol=1e-6)
    y = torch.rand(2, *ray.range.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(A.T, (y,), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(lambda v: A(v) ** 2, (x,), eps=1e-6, atol=1e-5)


def test_gradient_of_least_squares_is_transpose_of_residual():
    ray = ray_transform("parallel_cells")
    A = OperatorModule(ray)
    x = torch.rand(1, *ray.domain.shape, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, *ray.range.shape, dtype=torch.float64)
    (0.5 * ((A(x) - y) ** 2).sum()).backward()
    torch.testing.assert_close(x.grad, A.T(A(x.detach()) - y))


def _weighted_matrix_operator():
    """A float64 operator between spaces with non-unit cells (weighted inner products)."""
    mat = np.random.default_rng(3).standard_normal((4, 5))
    domain = odl.uniform_discr(0, 2, 5, dtype="float64")  # cell 0.4
    range_ = odl.uniform_discr(0, 3, 4, dtype="float64")  # cell 0.75
    return odl.MatrixOperator(mat, domain=domain, range=range_), mat


def test_odl_backend_gives_plain_transpose_of_generic_operator():
    op, mat = _weighted_matrix_operator()
    A = OperatorModule(op)
    assert A.backend_name() == "odl"
    y = torch.rand(3, 4, dtype=torch.float64)
    torch.testing.assert_close(A.T(y), y @ torch.from_numpy(mat))
    assert dottest(A, A.T, (3, 5), dtype=torch.float64, rtol=1e-10) <= 1e-10
    x = torch.rand(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(A, (x,))


def test_auto_prefers_matrix_then_falls_back_over_budget():
    ray = ray_transform("parallel")
    assert OperatorModule(ray).backend_name() == AUTO_ORDER[0] == "matrix"
    assert OperatorModule(ray, memory_budget=1000).backend_name() == "astra"


def test_transpose_of_transpose_is_module_and_modules_stay_printable():
    A = OperatorModule(ray_transform("parallel"))
    assert A.T.T is A and A.adjoint is A.T
    assert "RayTransform" in repr(A) and "transpose" in repr(A.T)
    assert list(A.modules()) == [A]


# -- bad input -------------------------------------------------------------------------------


def test_rejects_non_operator():
    with pytest.raises(TypeError, match="expected an odl.Operator, got ndarray"):
        OperatorModule(np.eye(3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_linear_operator_gives_odl_values_and_torch_gradients(dtype):
    """A non-linear operator on a weighted space: values from ODL, gradients for torch's plain
    dot product (ODL's derivative adjoint is for the weighted one)."""
    space = odl.uniform_discr(0, 2, 5, dtype="float64")  # cell 0.4
    A = OperatorModule(odl.PowerOperator(space, 3))
    x = torch.rand(2, 3, 5, dtype=dtype, generator=seeded(0)) + 0.5
    torch.testing.assert_close(A(x), x**3)
    assert A.backend_name() == "odl-nonlinear"
    x64 = x.double().requires_grad_(True)
    assert torch.autograd.gradcheck(A, (x64,))
    with pytest.raises(ValueError, match="no transpose"):
        A.T  # noqa: B018
    with pytest.raises(ValueError, match="needs a linear operator"):
        OperatorModule(odl.PowerOperator(space, 3), backend="matrix")


def test_functional_gives_one_value_per_sample_and_its_gradient():
    space = odl.uniform_discr(0, 2, 5, dtype="float64")  # cell 0.4: sum 0.4 x^2
    f = OperatorModule(odl.functionals.L2NormSquared(space))
    x = torch.rand(4, 5, dtype=torch.float64, requires_grad=True)
    value = f(x)
    assert value.shape == (4,)
    torch.testing.assert_close(value, 0.4 * (x.detach() ** 2).sum(-1))
    assert torch.autograd.gradcheck(f, (x,))


def test_rejects_non_tensor_space():
    space = odl.uniform_discr([0, 0], [1, 1], (4, 4))
    with pytest.raises(TypeError, match="range to be an odl TensorSpace.*got ProductSpace"):
        OperatorModule(odl.Gradient(space))


def test_rejects_wrong_shape_and_dtype():
    ray = ray_transform("parallel")
    A = OperatorModule(ray)
    with pytest.raises(ValueError, match=r"shape \(\*batch, 24, 24\), got \(1, 24, 25\)"):
        A(torch.zeros(1, 24, 25))
    with pytest.raises(TypeError, match="float32 or float64, got torch.int64"):
        A(torch.zeros(1, 24, 24, dtype=torch.int64))
    with pytest.raises(TypeError, match="expected a torch.Tensor as input, got ndarray"):
        A(np.zeros((24, 24)))
    with pytest.raises(ValueError, match="input of the transpose of shape"):
        A.T(torch.zeros(1, 24, 24))


def test_rejects_unknown_backend_and_unsupported_combinations():
    ray = ray_transform("parallel")
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        OperatorModule(ray, backend="gpu")
    op, _ = _weighted_matrix_operator()
    with pytest.raises(
        ValueError, match="backend 'matrix' needs an odl RayTransform, got MatrixOperator"
    ):
        OperatorModule(op, backend="matrix")
    with pytest.raises(ValueError, match="over the matrix memory budget"):
        OperatorModule(ray, backend="matrix", memory_budget=1000)
    with pytest.raises(TypeError, match="float32 only, got torch.float64"):
        OperatorModule(ray, backend="astra")(torch.zeros(1, 24, 24, dtype=torch.float64))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matrix_backend_on_cuda_matches_cpu_without_host_copies(dtype):
    ray = ray_transform("parallel")
    A = OperatorModule(ray)
    x = torch.rand(8, *ray.domain.shape, dtype=dtype)
    y_gpu = A(x.cuda())
    assert y_gpu.is_cuda and A.backend_name("cuda") == "matrix"
    torch.testing.assert_close(y_gpu.cpu(), A(x), rtol=1e-5, atol=1e-5)
    assert dottest(A, A.T, (4, *ray.domain.shape), dtype=dtype, device="cuda") <= (
        1e-6 if dtype == torch.float32 else 1e-10
    )


@pytest.mark.parametrize("backend", RAY_BACKENDS)
def test_modules_survive_deepcopy(backend):
    # (pickling: tests/test_operator_robustness.py)
    import copy

    ray = ray_transform("parallel")
    A = OperatorModule(ray, backend=backend)
    x = torch.rand(3, *ray.domain.shape)
    y = A(x)  # creates the backend's thread pool / projectors first
    for clone in (copy.deepcopy(A), copy.deepcopy(A.T).T):
        torch.testing.assert_close(clone(x), y)
        torch.testing.assert_close(clone.T(y), A.T(y))
        assert clone.T.T is clone


def test_odl_backend_runs_torch_backed_operators_without_host_copies():
    """A ray transform on an ODL ``pytorch`` space: the path CUDA tensors take, here on the CPU."""
    ref = ray_transform("parallel_cells")
    dom = ref.domain
    space = odl.uniform_discr(
        dom.min_pt, dom.max_pt, dom.shape, dtype="float32", impl="pytorch", device="cpu"
    )
    op = RayTransform(space, ref.geometry, impl="astra_cpu")
    A = OperatorModule(op, backend="odl")
    assert A.get_backend("cpu").device_twin(torch.device("cpu")) is not None
    x = torch.rand(3, *dom.shape)
    torch.testing.assert_close(A(x), OperatorModule(ref)(x), rtol=1e-5, atol=1e-5)
    assert dottest(A, A.T, (3, *dom.shape), rtol=1e-5) <= 1e-5


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_odl_backend_on_cuda_uses_odl_astra_cuda_on_device():
    """ASTRA's CUDA projector differs from the CPU one (another discretisation) and its
    back-projection is only approximately its transpose: measured, not asserted to 1e-6."""
    ray = ray_transform("parallel")
    A = OperatorModule(ray, backend="odl")
    x = torch.rand(4, *ray.domain.shape, device="cuda")
    y = A(x)
    assert y.is_cuda
    ref = OperatorModule(ray, backend="matrix")(x.cpu())
    rel = float((y.cpu() - ref).norm() / ref.norm())
    dot = dottest(A, A.T, (4, *ray.domain.shape), device="cuda", raise_error=False)
    print(f"astra_cuda vs astra_cpu discretisation: {rel:.2e}; CUDA dot test: {dot:.2e}")
    assert rel < 0.05 and dot < 0.05


class _ProjectInWorker(torch.utils.data.Dataset):
    def __init__(self, module, x):
        self.module, self.x = module, x

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return self.module(self.x)


@pytest.mark.skipif(
    "fork" not in torch.multiprocessing.get_all_start_methods(), reason="needs fork"
)
@pytest.mark.parametrize("backend", ["matrix", "astra"])
def test_products_in_forked_dataloader_workers_do_not_hang(backend):
    """A forked child inherits an OpenMP team's or a thread pool's state but not its threads:
    work sent there would wait forever. The parent runs parallel products first; DataLoader
    workers run torch single-threaded, and the astra backend makes a fresh pool in the child."""
    ray = parallel_ray(64, 40)
    module = OperatorModule(ray, backend=backend)
    x = torch.rand(32, *ray.domain.shape, generator=seeded(0))
    expected = module(x)  # parallel in this process
    loader = torch.utils.data.DataLoader(
        _ProjectInWorker(module, x),
        batch_size=None,
        num_workers=1,
        timeout=60,
        multiprocessing_context="fork",
    )
    for y in loader:
        torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_and_autocast_run_in_float32(dtype):
    """Mixed precision: half inputs and autocast regions give the float32 result, and the
    gradient comes back in the input's dtype."""
    physics = ray_transform_physics(parallel_setup(16, 8))
    x = torch.rand(2, 1, 16, 16).to(dtype).requires_grad_()
    ref = physics.A(x.detach().float())
    y = physics.A(x)
    assert y.dtype == torch.float32 and torch.equal(y, ref)
    y.sum().backward()
    assert x.grad.dtype == dtype
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y32 = x.detach().float()
        assert torch.allclose(physics.A(y32), ref)
        fbp = physics.A_dagger(ref)
    assert fbp.dtype == torch.float32
    assert torch.allclose(fbp, physics.A_dagger(ref), atol=1e-6)

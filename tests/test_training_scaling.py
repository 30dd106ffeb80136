"""The unit-free objective: its value and gradients do not depend on units, operator scale,
data scale or repeated views."""

from __future__ import annotations

import deepinv as dinv
import numpy as np
import pytest
import torch
from learning_sets import parallel_spec, phantoms

from deepinv_ei.models import EIUNet
from deepinv_ei.scan.spec import ray_transform_from_spec
from deepinv_ei.training import (
    DataScaling,
    ScaledReconstructor,
    estimate_scaling,
    normalised_ei_losses,
    paper_alpha_in_normalised_units,
)
from deepinv_ei.transforms import Rotate, Shift

pytestmark = pytest.mark.usefixtures("one_thread")


def loss_and_grad(physics, y: torch.Tensor, alpha: float, transform_factory):
    """Total normalised loss and the gradient of every weight, from a fixed initialisation."""
    scaling = estimate_scaling(y, physics)
    torch.manual_seed(0)
    backbone = EIUNet(width=4, scales=2, batch_norm=False)  # random last layer: f != A^dagger
    model = ScaledReconstructor(backbone, scaling.scale).double()
    losses = normalised_ei_losses(scaling, alpha, transform_factory())
    x_net = model(y, physics)
    total = sum(loss(x_net=x_net, y=y, physics=physics, model=model).mean() for loss in losses)
    total.backward()
    grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    return float(total.detach()), grad


def ct_case(unit: str, pixel: float, data_scale: float = 1.0):
    """The same 24x24 objects seen by the same scanner, described in ``unit``."""
    x = torch.from_numpy(phantoms(3, 24, seed=1))[:, None].double()
    spec = parallel_spec(24, np.linspace(0, np.pi, 6, endpoint=False), unit, pixel)
    physics = ray_transform_from_spec(spec)
    physics_px = ray_transform_from_spec(parallel_spec(24, spec.angles))
    with torch.no_grad():
        y = physics_px.A(x.float()).double() * data_scale  # what the detector measured
    return physics, y


class Double(torch.nn.Module):
    """``physics`` evaluated in float64 (ODL backends run in float32)."""

    def __init__(self, physics):
        super().__init__()
        self.physics = physics

    def A(self, x):
        return self.physics.A(x.float()).double()

    def A_dagger(self, y):
        return self.physics.A_dagger(y.float()).double()


def rotations():
    return Rotate(n_trans=2, rng=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("unit,pixel", [("mm", 0.02), ("m", 2e-5), ("cm", 0.3)])
def test_ct_loss_and_gradients_do_not_depend_on_the_unit(unit, pixel):
    physics_px, y = ct_case("px", 1.0)
    physics_u, y_u = ct_case(unit, pixel)
    assert torch.equal(y, y_u)  # the measured line integrals are the same numbers
    value_px, grad_px = loss_and_grad(Double(physics_px), y, 1.0, rotations)
    value_u, grad_u = loss_and_grad(Double(physics_u), y_u, 1.0, rotations)
    assert value_u == pytest.approx(value_px, rel=1e-4)
    assert torch.allclose(grad_u, grad_px, rtol=1e-3, atol=1e-6 * grad_px.abs().max())


def test_ct_loss_does_not_depend_on_the_data_scale():
    physics, y = ct_case("mm", 0.5)
    value, grad = loss_and_grad(Double(physics), y, 3.0, rotations)
    value_s, grad_s = loss_and_grad(Double(physics), 250.0 * y, 3.0, rotations)
    assert value_s == pytest.approx(value, rel=1e-6)
    assert torch.allclose(grad_s, grad, rtol=1e-4, atol=1e-6 * grad.abs().max())  # float32 A


def test_raw_loss_does_depend_on_the_unit():
    """Without the normalisation, mm and px give different objectives (the problem solved)."""
    physics_px, y = ct_case("px", 1.0)
    physics_mm, _ = ct_case("mm", 0.02)
    from deepinv_ei.loss import equivariant_imaging

    def raw(physics):
        torch.manual_seed(0)
        model = ScaledReconstructor(EIUNet(width=4, scales=2, batch_norm=False), 1.0).double()
        mc, ei = equivariant_imaging(rotations(), alpha=1.0, apply_noise=False)
        p = Double(physics)
        x_net = model(y, p)
        return float(mc(x_net=x_net, y=y, physics=p).detach()), float(
            ei(x_net=x_net, physics=p, model=model)
        )

    (mc_px, ei_px), (mc_mm, ei_mm) = raw(physics_px), raw(physics_mm)
    assert ei_mm / mc_mm > 100 * ei_px / mc_px  # the EI term's weight grew by ~1/0.02^2


class MatrixPhysics(dinv.physics.LinearPhysics):
    """y = M x with the pseudo-inverse as A_dagger."""

    def __init__(self, matrix: torch.Tensor, shape: tuple[int, int]):
        super().__init__()
        self.matrix, self.pinv, self.shape = matrix, torch.linalg.pinv(matrix), shape

    def A(self, x, **kw):
        return (x.flatten(1) @ self.matrix.T)[:, None]

    def A_adjoint(self, y, **kw):
        return (y[:, 0] @ self.matrix).reshape(len(y), 1, *self.shape)

    def A_dagger(self, y, **kw):
        return (y[:, 0] @ self.pinv.T).reshape(len(y), 1, *self.shape)


def shifts():
    return Shift(n_trans=2, rng=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("c", [1e-3, 40.0])
def test_operator_and_data_scale_together(c):
    """A -> cA with y -> cy (the same object, a scaled scanner): nothing changes."""
    gen = torch.Generator().manual_seed(0)
    matrix = torch.randn(40, 64, generator=gen, dtype=torch.float64)
    x = torch.rand(3, 1, 8, 8, generator=gen, dtype=torch.float64)
    physics = MatrixPhysics(matrix, (8, 8))
    y = physics.A(x)
    value, grad = loss_and_grad(physics, y, 2.0, shifts)
    value_c, grad_c = loss_and_grad(MatrixPhysics(c * matrix, (8, 8)), c * y, 2.0, shifts)
    assert value_c == pytest.approx(value, rel=1e-8)
    assert torch.allclose(grad_c, grad, rtol=1e-6, atol=1e-10)


def test_repeated_views_leave_the_loss_unchanged():
    gen = torch.Generator().manual_seed(1)
    matrix = torch.randn(30, 64, generator=gen, dtype=torch.float64)
    x = torch.rand(2, 1, 8, 8, generator=gen, dtype=torch.float64)
    physics = MatrixPhysics(matrix, (8, 8))
    twice = MatrixPhysics(torch.cat([matrix, matrix]), (8, 8))
    value, grad = loss_and_grad(physics, physics.A(x), 5.0, shifts)
    value_2, grad_2 = loss_and_grad(twice, twice.A(x), 5.0, shifts)
    assert value_2 == pytest.approx(value, rel=1e-8)
    assert torch.allclose(grad_2, grad, rtol=1e-6, atol=1e-10)


def test_scaling_values_and_checks():
    physics = MatrixPhysics(torch.eye(4, dtype=torch.float64), (2, 2))
    y = torch.tensor([[[1.0, -1.0, 3.0, 1.0]]], dtype=torch.float64)
    s = estimate_scaling(y, physics)
    assert s.scale == pytest.approx(np.sqrt(3.0)) and s.measurement_energy == pytest.approx(3.0)
    assert paper_alpha_in_normalised_units(100.0, s) == pytest.approx(100.0)
    assert DataScaling.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="all zero"):
        estimate_scaling(torch.zeros(1, 1, 4, dtype=torch.float64), physics)
    with pytest.raises(ValueError, match="expected keys"):
        DataScaling.from_dict({"scale": 1.0})
    with pytest.raises(ValueError, match="alpha"):
        normalised_ei_losses(s, -1.0, shifts())
    assert len(normalised_ei_losses(s, 0.0, None)) == 1  # alpha = 0: MC alone

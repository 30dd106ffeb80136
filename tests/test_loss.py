"""Tests of deepinv_ei.loss: EI / MC losses, SURE unbiasedness, REI, Trainer log names."""

from __future__ import annotations

import copy
import doctest
import importlib
import pickle

import deepinv as dinv
import pytest
import torch

from deepinv_ei.loss import (
    SURE_LOSSES,
    EILoss,
    MCLoss,
    NamedLoss,
    REILoss,
    SureGaussian,
    SurePoisson,
    SurePoissonGaussian,
    as_physics,
    equivariant_imaging,
    robust_equivariant_imaging,
    sure_loss,
)
from deepinv_ei.transforms import Shift

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def identity_model(y, physics):
    return physics.A_adjoint(y)


class ConvDenoiser(torch.nn.Module):
    """A one-layer backbone with deepinv's denoiser signature ``(x, sigma)``."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x, sigma=None):
        return x + self.conv(x)


def pinv_model():
    torch.manual_seed(0)
    return dinv.models.ArtifactRemoval(ConvDenoiser(), mode="pinv")


# ----------------------------------------------------------------------------- EI loss
def test_ei_loss_known_answer_for_a_scaling_reconstructor():
    # A = I and f(y) = c*y give x3 = c*T_g x1, so the loss is (1-c)^2 * mean(x1^2):
    # shifts permute pixels and keep the per-image mean square.
    physics = dinv.physics.Denoising()
    x_net = torch.rand(3, 1, 6, 6, generator=gen(0))
    for c in (1.0, 0.5, -1.0):
        loss = EILoss(
            Shift(n_trans=2, rng=gen(1)), dinv.metric.MSE(), apply_noise=False, weight=3.0
        )
        value = loss(x_net=x_net, physics=physics, model=lambda y, p, c=c: c * y)
        expected = 3.0 * (1 - c) ** 2 * x_net.pow(2).flatten(1).mean(1)
        assert value.shape == (6,)  # what the metric returns: one value per copy
        torch.testing.assert_close(value, expected.repeat(2))
        # deepinv's default metric, nn.MSELoss: the mean, a scalar.
        mean = EILoss(Shift(n_trans=2, rng=gen(1)), None, False, 3.0)(
            x_net=x_net, physics=physics, model=lambda y, p, c=c: c * y
        )
        assert mean.shape == ()
        torch.testing.assert_close(mean, expected.mean())


def test_ei_loss_matches_deepinv_eiloss_on_the_same_group_elements():
    physics = dinv.physics.CompressedSensing(m=20, img_size=(1, 6, 6), rng=gen(0))
    model = pinv_model()
    y = physics.A(torch.rand(4, 1, 6, 6, generator=gen(1)))
    x_net = model(y, physics)
    ours = EILoss(dinv.transform.Shift(n_trans=2, rng=gen(5)), weight=2.0, apply_noise=False)
    theirs = dinv.loss.EILoss(
        dinv.transform.Shift(n_trans=2, rng=gen(5)), weight=2.0, apply_noise=False
    )
    value = ours(x_net=x_net, physics=physics, model=model)
    assert value.shape == ()
    torch.testing.assert_close(value, theirs(x_net=x_net, physics=physics, model=model))
    # The same positional arguments as deepinv's: (transform, metric, apply_noise, weight, no_grad).
    args = (dinv.metric.MSE(), False, 2.0, False)
    ours = EILoss(dinv.transform.Shift(n_trans=2, rng=gen(5)), *args)
    theirs = dinv.loss.EILoss(dinv.transform.Shift(n_trans=2, rng=gen(5)), *args)
    torch.testing.assert_close(
        ours(x_net=x_net, physics=physics, model=model),
        theirs(x_net=x_net, physics=physics, model=model),
    )
    for attr in ("metric", "weight", "noise", "no_grad", "T"):
        assert type(getattr(ours, attr)) is type(getattr(theirs, attr))


def test_ei_loss_gradients_flow_through_both_branches_unless_no_grad():
    physics = dinv.physics.Denoising()
    scale = torch.nn.Parameter(torch.tensor(0.7))

    def model(y, physics):
        return scale * y

    for no_grad in (False, True):
        x_net = torch.rand(2, 1, 5, 5, generator=gen(0), requires_grad=True)
        loss = EILoss(Shift(rng=gen(1)), no_grad=no_grad, apply_noise=False)
        value = loss(x_net=x_net, physics=physics, model=model).sum()
        grad_x, grad_s = torch.autograd.grad(value, [x_net, scale], allow_unused=True)
        assert grad_s is not None and grad_s.abs() > 0
        # x3 - x2 = (scale - 1) T x_net: the x_net gradient exists only through x2.
        assert (grad_x is None) == no_grad


def test_ei_loss_gradcheck():
    physics = dinv.physics.CompressedSensing(m=10, img_size=(1, 4, 4), rng=gen(0))
    physics = physics.to(torch.float64)
    weight = torch.randn(16, 10, dtype=torch.float64, generator=gen(2))

    def model(y, physics):
        return torch.tanh(y @ weight.T).reshape(-1, 1, 4, 4)

    loss = EILoss(Shift(n_trans=2, rng=gen(3)), weight=5.0, apply_noise=False)
    x_net = torch.rand(2, 1, 4, 4, dtype=torch.float64, generator=gen(4), requires_grad=True)

    def fn(x):
        loss.transform.rng.manual_seed(3)  # the same group elements at every evaluation
        return loss(x_net=x, physics=physics, model=model)

    assert torch.autograd.gradcheck(fn, (x_net,))


def test_ei_loss_handles_per_sample_physics_parameters():
    # One mask per image: the 2*B copies must be measured with their own image's mask.
    masks = (torch.rand(3, 1, 6, 6, generator=gen(0)) > 0.5).float()
    physics = dinv.physics.Inpainting(img_size=(1, 6, 6), mask=masks)
    x_net = torch.rand(3, 1, 6, 6, generator=gen(1))
    loss = EILoss(Shift(n_trans=2, rng=gen(2)), dinv.metric.MSE(), apply_noise=False)
    value = loss(x_net=x_net, physics=physics, model=identity_model)

    loss.transform.rng.manual_seed(2)
    x2 = loss.transform(x_net)
    x3 = torch.cat([masks * g for g in x2.split(3)])
    expected = (x3 - x2).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(value, expected)
    with pytest.raises(RuntimeError):  # batched on purpose: shapes cannot broadcast
        EILoss(Shift(n_trans=2), per_sample_physics=False)(
            x_net=x_net, physics=physics, model=identity_model
        )


def test_ei_loss_uses_a_given_noise_model_for_the_fresh_noise():
    physics = dinv.physics.Denoising(dinv.physics.GaussianNoise(0.0))
    x_net = torch.rand(2, 1, 4, 4, generator=gen(0))
    clean = EILoss(Shift(rng=gen(1)))(x_net=x_net, physics=physics, model=identity_model)
    noisy = EILoss(Shift(rng=gen(1)), noise_model=dinv.physics.GaussianNoise(0.5, rng=gen(2)))(
        x_net=x_net, physics=physics, model=identity_model
    )
    assert torch.all(clean == 0) and torch.all(noisy > 0.1)


def test_ei_loss_bad_inputs_raise_clear_errors():
    x_net = torch.rand(2, 1, 4, 4)
    with pytest.raises(TypeError, match="physics must be"):
        EILoss(Shift())(x_net=x_net, physics=object(), model=identity_model)
    with pytest.raises(ValueError, match="n_trans must be >= 1, got 0"):
        EILoss(dinv.transform.Shift(n_trans=0))
    with pytest.raises(TypeError, match="transform must be a callable"):
        EILoss("shift")
    with pytest.raises(TypeError, match="weight must be a real number, got str"):
        EILoss(Shift(), weight="10")
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match=rf"weight must be a finite number >= 0, got {bad}"):
            EILoss(Shift(), weight=bad)
    with pytest.raises(TypeError, match="metric must be callable"):
        EILoss(Shift(), "mse")
    with pytest.raises(TypeError, match="apply_noise must be a bool"):
        EILoss(Shift(), None, "yes")
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpha'"):
        EILoss(Shift(), alpha=10)
    with pytest.raises(TypeError, match="unexpected keyword argument 'weights'"):
        MCLoss(weights=2)
    with pytest.raises(TypeError, match="metric must be callable"):
        MCLoss(3)
    with pytest.raises(ValueError, match="transform must map shape"):
        EILoss(lambda x: x[:, :, :2])(
            x_net=x_net, physics=dinv.physics.Denoising(), model=identity_model
        )


# ----------------------------------------------------------------------------- MC loss
def test_mc_loss_matches_deepinv():
    physics = dinv.physics.CompressedSensing(m=12, img_size=(1, 5, 5), rng=gen(0))
    x = torch.rand(3, 1, 5, 5, generator=gen(1))
    y = physics.A(x)
    assert torch.all(MCLoss()(y=y, x_net=x, physics=physics) == 0)
    x_net = torch.rand(3, 1, 5, 5, generator=gen(2))
    value = MCLoss()(y=y, x_net=x_net, physics=physics)
    assert value.shape == ()
    torch.testing.assert_close(value, dinv.loss.MCLoss()(y=y, x_net=x_net, physics=physics))
    per_sample = MCLoss(dinv.metric.MSE())(y=y, x_net=x_net, physics=physics)
    theirs = dinv.loss.MCLoss(dinv.metric.MSE())(y=y, x_net=x_net, physics=physics)
    assert per_sample.shape == theirs.shape == (3,)
    torch.testing.assert_close(per_sample, theirs)
    # A hand-written loop: the default value is a scalar, so .backward() works.
    x_net.requires_grad_(True)
    MCLoss()(y=y, x_net=x_net, physics=physics).backward()
    assert x_net.grad is not None and x_net.grad.abs().sum() > 0
    assert MCLoss().metric.__class__ is torch.nn.MSELoss
    with pytest.raises(ValueError, match="expected equal shapes"):
        MCLoss()(y=y[:, :5], x_net=x_net, physics=physics)


# ----------------------------------------------------------------------------- names
def test_named_loss_has_its_own_class_name_and_the_wrapped_value():
    x_net = torch.rand(2, 1, 4, 4, generator=gen(0))
    args = dict(x_net=x_net, physics=dinv.physics.Denoising(), model=lambda y, p: 0.5 * y)
    inner = EILoss(Shift(rng=gen(1)), apply_noise=False, weight=10)
    named = NamedLoss(inner, "EI-shift")
    assert type(named).__name__ == "EI-shift" and isinstance(named, NamedLoss)
    assert named.loss is inner and type(NamedLoss(MCLoss(), "EI-shift")) is type(named)
    assert type(NamedLoss(inner, "EI-rotate")) is not type(named)
    inner.transform.rng.manual_seed(1)
    expected = inner(**args)
    inner.transform.rng.manual_seed(1)
    torch.testing.assert_close(named(**args), expected)
    model = torch.nn.Identity()
    assert named.adapt_model(model) is model
    with pytest.raises(TypeError, match="non-empty str"):
        NamedLoss(inner, 3)
    with pytest.raises(TypeError, match="non-empty str"):
        NamedLoss(inner, "")
    with pytest.raises(TypeError, match="must be a deepinv.loss.Loss"):
        NamedLoss(lambda **kw: 0, "plain")


def test_losses_survive_pickle_and_deepcopy():
    loss = EILoss(Shift(n_trans=2), weight=10)
    named = NamedLoss(loss, "EI-shift")
    for clone in (pickle.loads(pickle.dumps(named)), copy.deepcopy(named)):
        assert type(clone) is type(named) and clone.loss is not loss
        assert type(clone.loss) is EILoss and clone.loss.weight == 10.0
        x_net = torch.rand(2, 1, 4, 4)
        out = clone(x_net=x_net, physics=dinv.physics.Denoising(), model=identity_model)
        assert out.shape == ()
        with pytest.warns(DeprecationWarning):  # deepinv's deprecated attribute, kept
            assert clone.loss.name == "ei"
    for sure in (SureGaussian(sigma=0.1), SurePoissonGaussian(tau2=0.5)):
        clone = pickle.loads(pickle.dumps(sure))
        assert type(clone) is type(sure) and clone.given_levels == sure.given_levels


def test_trainer_logs_every_loss_under_its_own_name(tmp_path):
    physics = dinv.physics.CompressedSensing(m=16, img_size=(1, 6, 6), rng=gen(0))
    model = pinv_model()
    losses = [
        *equivariant_imaging(Shift(n_trans=2, rng=gen(1)), alpha=10),
        NamedLoss(EILoss(dinv.transform.Rotate(multiples=90, rng=gen(2)), weight=1), "EI-rotate"),
    ]
    loader = torch.utils.data.DataLoader(torch.rand(8, 1, 6, 6, generator=gen(3)), batch_size=4)
    trainer = dinv.Trainer(
        model=model,
        physics=physics,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        train_dataloader=loader,
        losses=losses,
        epochs=1,
        online_measurements=True,
        save_path=None,
        verbose=False,
        show_progress_bar=False,
        device="cpu",
        metrics=[],
    )
    trainer.train()
    assert list(trainer.loss_history) == ["MCLoss", "EILoss", "EI-rotate"]
    assert all(len(h) == 1 for h in trainer.loss_history.values())


# ----------------------------------------------------------------------------- ODL physics
def test_odl_operator_physics_is_wrapped_once():
    odl = pytest.importorskip("odl")
    matrix = torch.randn(6, 10, generator=gen(0), dtype=torch.float64).numpy()
    op = odl.MatrixOperator(matrix)
    wrapped = as_physics(op)
    assert as_physics(op) is wrapped and as_physics(wrapped) is wrapped
    x = torch.rand(2, 1, 10, generator=gen(1))
    y = wrapped.A(x)
    torch.testing.assert_close(y[:, 0].double(), x[:, 0].double() @ torch.from_numpy(matrix).T)

    seen = []

    def model(y, physics):
        seen.append(physics)
        return physics.A_adjoint(y)

    assert torch.all(MCLoss()(y=y, x_net=x, physics=op) < 1e-10)
    out = EILoss(lambda v: v.flip(-1))(x_net=x, physics=op, model=model)
    assert out.shape == () and seen == [wrapped]


# ----------------------------------------------------------------------------- SURE
def _linear_problem(noise, n=20, m=12, draws=2000):
    """Fixed A >= 0, x > 0, linear f(y) = W y; ``draws`` noisy measurements of fixed x's."""
    g = gen(0)
    A = torch.rand(m, n, generator=g) / n
    W = 2 * torch.randn(n, m, generator=g)
    physics = dinv.physics.LinearPhysics(
        A=lambda x: x @ A.T, A_adjoint=lambda y: y @ A, noise_model=noise
    )
    x = 0.5 + torch.rand(draws, n, generator=g)
    return physics, x, (lambda y, physics: y @ W.T)


NOISES = {
    "gaussian": lambda: dinv.physics.GaussianNoise(0.1, rng=gen(1)),
    "poisson": lambda: dinv.physics.PoissonNoise(0.05, rng=gen(1)),
    "poisson_gaussian": lambda: dinv.physics.PoissonGaussianNoise(0.05, 0.1, rng=gen(1)),
}


def _sure_minus_true(noise_name, shift=None):
    physics, x, model = _linear_problem(NOISES[noise_name]())
    y = physics(x)
    x_net = model(y, physics)
    loss = SURE_LOSSES[noise_name](rng=gen(2))  # levels read from physics.noise_model
    estimate = loss(y=y, x_net=x_net, physics=physics, model=model)
    true = (physics.A(x_net) - physics.A(x)).pow(2).mean(1)
    if shift is not None:
        estimate = estimate + shift(y, physics.noise_model)
    diff = estimate - true
    return diff.mean(), diff.std() / len(diff) ** 0.5, true.mean()


@pytest.mark.parametrize("noise_name", sorted(SURE_LOSSES))
def test_sure_is_unbiased_for_the_clean_measurement_mse(noise_name):
    # E[SURE] = E ||A f(y) - A x||^2 / m for affine f, at any tau: mean over 2000 draws
    # within 3 standard errors, and the errors are small next to the MSE itself.
    bias, stderr, mse = _sure_minus_true(noise_name)
    assert abs(bias) < 3 * stderr, (bias, stderr)
    assert stderr < 0.02 * mse


@pytest.mark.parametrize(
    "noise_name, omitted",
    [
        ("gaussian", lambda y, noise: noise.sigma**2),
        ("poisson", lambda y, noise: noise.gain * y.mean(1)),
        # The CVPR 2022 mixed formula as quoted lacks the -gain * mean(y) term.
        ("poisson_gaussian", lambda y, noise: noise.gain * y.mean(1)),
    ],
)
def test_the_unbiasedness_test_detects_a_missing_constant(noise_name, omitted):
    bias, stderr, _ = _sure_minus_true(noise_name, shift=omitted)
    assert abs(bias) > 10 * stderr


def test_gaussian_sure_is_unbiased_for_a_nonlinear_reconstructor():
    physics, x, _ = _linear_problem(dinv.physics.GaussianNoise(0.1, rng=gen(1)))
    W = torch.randn(20, 12, generator=gen(5))

    def model(y, physics):
        return torch.tanh(3 * y) @ W.T

    y = physics(x)
    x_net = model(y, physics)
    estimate = SureGaussian(tau=1e-3, rng=gen(2))(y=y, x_net=x_net, physics=physics, model=model)
    diff = estimate - (physics.A(x_net) - physics.A(x)).pow(2).mean(1)
    assert abs(diff.mean()) < 3 * diff.std() / len(diff) ** 0.5


def test_divergence_terms_of_a_quadratic_reconstructor():
    # h(y) = A f(y) with A = I and h_i(y) = sum_jk Q_ijk y_j y_k, at one fixed y: each SURE
    # term that involves the probes must average to its derivative of h, exactly for a
    # quadratic h (finite differences are exact up to odd probe moments, which vanish).
    m, draws = 5, 40_000
    Q = torch.randn(m, m, m, generator=gen(1), dtype=torch.float64)
    y = torch.randn(1, m, dtype=torch.float64, generator=gen(2)).expand(draws, m)

    def model(v, physics):
        return torch.einsum("ijk,bj,bk->bi", Q, v, v)

    def value(loss):
        physics = dinv.physics.Denoising()
        return loss(y=y, x_net=model(y, physics), physics=physics, model=model)

    def assert_mean(est, exact):
        stderr = est.std() / len(est) ** 0.5
        assert abs(est.mean() - exact) < 4 * stderr, (est.mean(), exact, stderr)
        assert abs(exact) > 10 * stderr  # the check could tell a zero-mean term apart

    fit = (model(y, None) - y).pow(2).mean(1)
    jac_diag = torch.einsum("iik,bk->bi", Q, y) + torch.einsum("iji,bj->bi", Q, y)
    # Gaussian: (2 sigma^2 / m) sum_i dh_i/dy_i.
    sigma = 0.3
    est = value(SureGaussian(sigma=sigma, tau=0.5, rng=gen(3))) - fit + sigma**2
    assert_mean(est, 2 * sigma**2 * jac_diag[0].mean())
    # Poisson: (2 gain / m) sum_i y_i dh_i/dy_i, a divergence weighted by y.
    gain = 0.2
    est = value(SurePoisson(gain=gain, tau=0.5, rng=gen(3))) - fit + gain * y.mean(1)
    assert_mean(est, 2 * gain * (y[0] * jac_diag[0]).mean())
    # Poisson-Gaussian, second-order term: -(2 gain sigma^2 / m) sum_i d^2 h_i / dy_i^2 with
    # sum_i d^2 h_i / dy_i^2 = 2 sum_i Q_iii; the same seed gives the same probes with and
    # without it.
    with_second, without = (
        value(SurePoissonGaussian(gain, sigma, tau2=0.5, second_derivative=s, rng=gen(3)))
        for s in (True, False)
    )
    exact = -2 * gain * sigma**2 * 2 * torch.diagonal(Q).diagonal().sum() / m
    assert_mean(with_second - without, exact)


def test_sure_levels_from_physics_equal_explicit_levels():
    physics = dinv.physics.Denoising(dinv.physics.PoissonGaussianNoise(0.1, 0.05, rng=gen(0)))
    y = physics(torch.rand(3, 1, 4, 4, generator=gen(1)))
    model = lambda y, physics: 0.8 * y  # noqa: E731
    args = dict(y=y, x_net=model(y, physics), physics=physics, model=model)
    from_physics = SurePoissonGaussian(rng=gen(2))(**args)
    explicit = SurePoissonGaussian(gain=0.1, sigma=0.05, rng=gen(2))(**args)
    torch.testing.assert_close(from_physics, explicit)
    per_sample = SurePoissonGaussian(gain=torch.full((3,), 0.1), sigma=0.05, rng=gen(2))(**args)
    torch.testing.assert_close(per_sample, explicit)
    with pytest.raises(ValueError, match="takes one gain for the whole batch"):
        SurePoissonGaussian(gain=torch.tensor([0.1, 0.2, 0.1]), sigma=0.05)(**args)


@pytest.mark.parametrize("loss_class", [SureGaussian, SurePoisson])
def test_sure_levels_per_sample_are_each_samples_own(loss_class):
    # With the same probes, sample i of a per-sample level equals sample i of its scalar level.
    noise = {SureGaussian: "sigma", SurePoisson: "gain"}[loss_class]
    physics = dinv.physics.Denoising()
    y = torch.rand(3, 1, 4, 4, generator=gen(1))
    model = lambda y, physics: 0.8 * y + 0.1 * y.pow(2)  # noqa: E731
    args = dict(y=y, x_net=model(y, physics), physics=physics, model=model)
    levels = torch.tensor([0.05, 0.1, 0.2])
    per_sample = loss_class(**{noise: levels}, rng=gen(2))(**args)
    for i, level in enumerate(levels.tolist()):
        scalar = loss_class(**{noise: level}, rng=gen(2))(**args)
        torch.testing.assert_close(per_sample[i], scalar[i])
    assert len(set(per_sample.tolist())) == 3


def test_sure_bad_inputs_raise_clear_errors():
    gaussian_physics = dinv.physics.Denoising(dinv.physics.GaussianNoise(0.1))
    y = gaussian_physics(torch.rand(2, 1, 4, 4))
    args = dict(y=y, x_net=y, physics=gaussian_physics, model=lambda y, p: y)
    with pytest.raises(ValueError, match="needs its levels .gain.*physics.noise_model is"):
        SurePoisson()(**args)
    unnormalised = dinv.physics.Denoising(dinv.physics.PoissonNoise(0.1, normalize=False))
    with pytest.raises(ValueError, match="normalize=True"):
        SurePoisson()(**{**args, "physics": unnormalised})
    for bad in (0, -1e-2, float("nan"), float("inf")):
        with pytest.raises(
            ValueError, match=rf"SureGaussian: tau must be a positive finite float, got {bad}"
        ):
            SureGaussian(tau=bad)
    with pytest.raises(ValueError, match=r"tau2 must be a positive finite float, got nan"):
        SurePoissonGaussian(tau2=float("nan"))
    with pytest.raises(TypeError, match="tau must be a positive finite float, got str"):
        SurePoisson(tau="0.1")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma must be finite"):
            SureGaussian(sigma=bad)
        with pytest.raises(ValueError, match="gain must be finite"):
            SurePoissonGaussian(gain=bad, sigma=0.1)
        with pytest.raises(ValueError, match="sigma must be finite"):
            SureGaussian(sigma=torch.tensor([0.1, bad]))(**args)
    with pytest.raises(
        ValueError,
        match=r"sigma must be non-negative, got \[-0.1\]|sigma must be non-negative, got -0.1",
    ):
        SureGaussian(sigma=-0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'sigm'"):
        SureGaussian(sigm=0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'tau3'"):
        REILoss(Shift(), "poisson_gaussian", tau3=0.1)
    with pytest.raises(ValueError, match="weight must be a finite number >= 0, got nan"):
        REILoss(Shift(), "gaussian", alpha=float("nan"))
    with pytest.raises(ValueError, match="one value per sample"):
        SureGaussian(sigma=torch.ones(3))(**args)
    with pytest.raises(ValueError, match="noise must be one of"):
        sure_loss("laplace")
    with pytest.raises(TypeError, match="got LaplaceNoise"):
        sure_loss(dinv.physics.LaplaceNoise())
    with pytest.raises(TypeError, match="needs a GaussianNoise noise model, got PoissonNoise"):
        SureGaussian(noise_model=dinv.physics.PoissonNoise())
    with pytest.raises(ValueError, match=r"unsure=True\) learns the levels .*\['sigma'\]"):
        SurePoissonGaussian(gain=0.1, unsure=True)


def test_sure_training_reduces_the_true_error():
    # Gaussian denoising with a learnable linear filter, trained on SURE alone.
    physics = dinv.physics.Denoising(dinv.physics.GaussianNoise(0.3, rng=gen(0)))
    t = torch.linspace(0, 1, 16)
    x = (torch.sin(6 * t)[None, None, :, None] * torch.cos(4 * t)[None, None, None, :]).repeat(
        8, 1, 1, 1
    )
    conv = torch.nn.Conv2d(1, 1, 5, padding=2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 2, 2] = 1.0  # start from f(y) = y

    def model(y, physics):
        return conv(y)

    def true_mse(y):
        with torch.no_grad():
            return (model(y, physics) - x).pow(2).mean().item()

    loss = SureGaussian(rng=gen(1))
    opt = torch.optim.Adam(conv.parameters(), lr=0.04)
    y_test = physics(x)
    before = true_mse(y_test)
    for _ in range(30):
        y = physics(x)
        opt.zero_grad()
        loss(y=y, x_net=model(y, physics), physics=physics, model=model).mean().backward()
        opt.step()
    assert true_mse(y_test) < 0.3 * before


# ----------------------------------------------------------------------------- REI
def test_rei_loss_is_the_sum_of_its_terms_and_names_them():
    noise = dinv.physics.GaussianNoise(0.05, rng=gen(0))
    physics = dinv.physics.Inpainting(img_size=(1, 6, 6), mask=0.6, rng=gen(1), noise_model=noise)
    y = physics(torch.rand(3, 1, 6, 6, generator=gen(2)))
    x_net = identity_model(y, physics)
    args = dict(y=y, x_net=x_net, physics=physics, model=identity_model)

    loss = REILoss(Shift(n_trans=2, rng=gen(3)), noise="gaussian", alpha=4.0, rng=gen(4))
    total = loss(**args)

    def reseed():  # same probes, group elements and fresh noise
        noise.rng.manual_seed(5)
        loss.sure.rng.manual_seed(4)
        loss.ei.transform.rng.manual_seed(3)

    reseed()
    sure, ei = (term(**args) for term in loss.losses())
    reseed()
    torch.testing.assert_close(loss(**args), sure + ei)
    assert total.shape == (3,)
    terms = robust_equivariant_imaging(Shift(), "poisson", 2.0)
    assert [type(t) for t in terms] == [SurePoisson, EILoss] and terms[1].weight == 2.0
    mixed = REILoss(Shift(), noise=dinv.physics.PoissonGaussianNoise(0.1, 0.1), tau=0.5)
    assert isinstance(mixed.sure, SurePoissonGaussian) and mixed.sure.tau1 == 0.5
    assert mixed.ei.noise_model is mixed.sure.noise_model


# ----------------------------------------------------------------------------- docs
@pytest.mark.parametrize("module", ["base", "ei", "mc", "sure", "rei"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(f"deepinv_ei.loss.{module}"))
    assert result.failed == 0

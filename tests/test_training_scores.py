"""Validation scores without ground truth: exact values on oracles, determinism, units."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from learning_sets import phantoms, write_set

from deepinv_ei.loss import SureGaussian
from deepinv_ei.training import PRIMARY_SCORE, ValidationScores
from deepinv_ei.training.scores import HELDOUT_SCORE, linear_reconstructor, ramp_energy
from deepinv_ei.training.sets import open_measurement_set
from deepinv_ei.transforms import Rotate

pytestmark = pytest.mark.usefixtures("one_thread")


def scores_of(path, **kw) -> ValidationScores:
    mset = open_measurement_set(path)
    return ValidationScores(
        mset.physics(),
        mset.y("test"),
        mset.heldout_physics(),
        mset.heldout("test"),
        transform_factory=lambda rng: Rotate(n_trans=1, rng=rng),
        **kw,
    )


@pytest.fixture(scope="module")
def clean_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("scores") / "set.h5"
    x = phantoms(6, 32, seed=2)
    info = write_set(path, x, n_views=8, keep_every=3, val=np.array([1, 4]))
    return path, torch.from_numpy(x[info["val"]])[:, None]


def test_the_truth_predicts_held_out_views_and_fbp_does_not(clean_set):
    path, x_val = clean_set
    scores = scores_of(path)
    oracle = scores(lambda y, physics: x_val.to(y))
    fbp = scores(linear_reconstructor)
    assert oracle[PRIMARY_SCORE] < 1e-5 and oracle["mc_residual"] < 1e-5
    assert oracle[HELDOUT_SCORE] < 1e-5 and fbp[HELDOUT_SCORE] > 0.02
    assert fbp[PRIMARY_SCORE] > 0.02
    assert scores.names == (PRIMARY_SCORE, HELDOUT_SCORE, "equivariance_error", "mc_residual")


def test_held_out_view_error_value(clean_set):
    path, _ = clean_set
    mset = open_measurement_set(path)
    y, held = mset.y("test"), mset.heldout("test")
    x = mset.physics().A_dagger(y)
    expected = (mset.heldout_physics().A(x) - held).norm() / held.norm()
    got = scores_of(path)(linear_reconstructor)[HELDOUT_SCORE]
    assert got == pytest.approx(float(expected), rel=1e-5)


def test_scores_are_deterministic_across_calls(clean_set):
    path, _ = clean_set
    scores = scores_of(path)
    torch.manual_seed(0)
    model = lambda y, physics: torch.nn.functional.avg_pool2d(  # noqa: E731
        physics.A_dagger(y), 3, 1, 1
    )
    first = scores(model)
    torch.rand(10)  # moving the global RNG changes nothing: the scores seed their own
    assert scores(model) == first


def test_scores_do_not_depend_on_the_unit(tmp_path):
    x = phantoms(4, 32, seed=3)
    values = []
    for unit, pixel in (("px", 1.0), ("mm", 0.05), ("m", 5e-5)):
        path = tmp_path / f"{unit}.h5"
        write_set(path, x, n_views=6, keep_every=2, unit=unit, pixel=pixel)
        values.append(scores_of(path)(linear_reconstructor))
    for other in values[1:]:
        for name, value in values[0].items():
            assert other[name] == pytest.approx(value, rel=1e-4), name


def test_sure_score_estimates_the_clean_measurement_error(tmp_path):
    path = tmp_path / "noisy.h5"
    clean = tmp_path / "clean.h5"
    x = phantoms(8, 32, seed=4)
    sigma = 0.5
    write_set(path, x, n_views=10, keep_every=2, sigma=sigma, n_val=6, attenuation=1.0)
    write_set(clean, x, n_views=10, keep_every=2, n_val=6, attenuation=1.0)
    noisy_scores = scores_of(path, sure=SureGaussian(sigma=sigma, rng=torch.Generator()))
    y_clean = open_measurement_set(clean).y("test")
    mset = open_measurement_set(path)
    physics, y = mset.physics(), mset.y("test")
    truth = (physics.A(physics.A_dagger(y)) - y_clean).pow(2).mean() / y.pow(2).mean()
    assert noisy_scores(linear_reconstructor)["sure"] == pytest.approx(float(truth), rel=0.1)


def test_bad_input_is_refused(clean_set):
    path, _ = clean_set
    mset = open_measurement_set(path)
    with pytest.raises(ValueError, match="non-empty"):
        ValidationScores(mset.physics(), torch.zeros(0, 1, 8, 46))
    with pytest.raises(ValueError, match="both"):
        ValidationScores(mset.physics(), mset.y("test"), mset.heldout_physics())
    with pytest.raises(ValueError, match="slices"):
        ValidationScores(
            mset.physics(), mset.y("test"), mset.heldout_physics(), mset.heldout("test")[:1]
        )


def test_ramp_energy_weighs_frequencies_by_their_magnitude():
    n = 32
    t = torch.arange(n, dtype=torch.float64)
    window = torch.hann_window(n, periodic=False, dtype=torch.float64)  # no leakage
    low = (window * torch.cos(2 * torch.pi * 2 * t / n)).reshape(1, 1, 1, n)
    high = (window * torch.cos(2 * torch.pi * 8 * t / n)).reshape(1, 1, 1, n)
    ratio = ramp_energy(high) / ramp_energy(low)
    assert ratio == pytest.approx(4.0, rel=0.01)  # the same energy at 4 times the frequency
    assert ramp_energy(3 * low) == pytest.approx(9 * ramp_energy(low))

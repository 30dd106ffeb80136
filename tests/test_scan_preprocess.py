"""Pre-processing of raw counts: flat/dark, -log, floors, binning, crop, views, centre."""

from __future__ import annotations

import numpy as np
import pytest

from deepinv_ei.scan.preprocess import (
    DetectorWindow,
    FlatDarkCorrection,
    bin_axis,
    estimate_centre_offset,
    frame_statistics,
    opposing_views,
    select_views,
    shift_detector,
)
from deepinv_ei.scan.readers import PROJECTION_AXES, ArrayStack


def as_stack(a):
    return ArrayStack(np.asarray(a), "test", [], None, PROJECTION_AXES)


def test_flat_dark_log_exact():
    flat, dark = np.full((2, 3), 1010.0), np.full((2, 3), 10.0)
    line = np.array([[0.0, 0.5, 1.0], [2.0, 0.1, 3.0]])
    raw = (1000 * np.exp(-line) + 10)[None]
    np.testing.assert_allclose(FlatDarkCorrection(flat, dark)(raw)[0], line, atol=1e-12)


def test_non_positive_values_floored_counted_warned_and_refused():
    flat, dark = np.full((1, 4), 110.0), np.full((1, 4), 10.0)
    raw = np.array([[[5.0, 10.0, 60.0, 110.0]]])  # two at or below the dark
    corr = FlatDarkCorrection(flat, dark, floor_counts=0.5, max_clip_fraction=0.5)
    y = corr(raw)
    assert corr.clipped.non_positive == 2 and corr.clipped.total == 4
    np.testing.assert_allclose(y[0, 0, :2], np.log(100 / 0.5))
    with pytest.warns(UserWarning, match="floored 2 non-positive values"):
        corr.warn()
    strict = FlatDarkCorrection(flat, dark, max_clip_fraction=0.25, expected_total=4)
    with pytest.raises(ValueError, match="2 non-positive .* more than max_clip_fraction=0.25"):
        strict(raw)
    sat = FlatDarkCorrection(flat, dark, max_clip_fraction=0.1, expected_total=40)
    with pytest.raises(ValueError, match="5 saturated"):
        sat(np.full((1, 1, 4), 110.0), saturated=5)


def test_flats_not_above_darks_or_zero_refused():
    dark = np.full((2, 2), 10.0)
    with pytest.raises(ValueError, match="flat fields are all zero"):
        FlatDarkCorrection(np.zeros((2, 2)), dark, flat_name="f.tif")
    flat = np.full((2, 2), 50.0)
    flat[1, 0] = 10.0
    with pytest.raises(
        ValueError, match=r"f\*\.tif: expected flats above darks.*1 of 4 pixels.*row 1, col 0"
    ):
        FlatDarkCorrection(flat, dark, flat_name="f*.tif")


def test_window_crop_and_bin_sum():
    frames = np.arange(2 * 4 * 6, dtype=float).reshape(2, 4, 6)
    w = DetectorWindow(rows=(1, 3), bin_rows=2, bin_cols=3)
    out = w(frames)
    assert out.shape == (2, 1, 2) and w.out_shape(4, 6) == (1, 2)
    np.testing.assert_allclose(out[0, 0, 0], frames[0, 1:3, 0:3].sum())
    assert bin_axis(np.ones((1, 1, 7)), 2, 3).shape == (1, 1, 2)  # the remainder is dropped
    with pytest.raises(ValueError, match="row crop 2:9 is outside the detector's 4 rows"):
        DetectorWindow(rows=(2, 9)).check((1, 4, 6), "p")


def test_frame_statistics_mean_and_read_noise():
    rng = np.random.default_rng(0)
    darks = 100 + rng.normal(0, 3.0, (50, 8, 8))
    stats = frame_statistics(as_stack(darks), DetectorWindow(), chunk=7)
    np.testing.assert_allclose(stats.mean, darks.mean(axis=0))
    np.testing.assert_allclose(np.sqrt(stats.temporal_variance), 3.0, rtol=0.05)
    assert frame_statistics(as_stack(darks[:1]), DetectorWindow()).temporal_variance is None


def test_select_views():
    kept, held = select_views(720, every=40)
    assert kept.tolist() == list(range(0, 720, 40)) and len(held) == 702
    assert np.intersect1d(kept, held).size == 0
    assert select_views(10, count=4)[0].tolist() == [0, 2, 5, 7]
    assert select_views(5, indices=[4, 1])[0].tolist() == [1, 4]
    assert select_views(3)[1].size == 0
    with pytest.raises(ValueError, match="distinct and in 0..4"):
        select_views(5, indices=[1, 5])
    with pytest.raises(ValueError, match="give one view selection"):
        select_views(5, every=2, count=2)


def test_shift_and_estimate_centre_offset():
    n = 64
    u = np.arange(n) - (n - 1) / 2
    profile = lambda x: np.exp(-(((x - 5) / 4) ** 2)) + 0.5 * np.exp(-(((x + 10) / 3) ** 2))  # noqa: E731
    for c in (0.0, 3.0, -2.0, 1.5):
        view, opposite = profile(u - c), profile(c - u)  # axis at c: p(u - c) and its mirror
        est = estimate_centre_offset(view[None], opposite[None])
        assert abs(est - c) < 0.1
        np.testing.assert_allclose(shift_detector(view, c)[8:-8], profile(u)[8:-8], atol=2e-2)
    np.testing.assert_array_equal(shift_detector(np.arange(4.0), 2.0), [2, 3, 3, 3])
    angles = np.deg2rad(np.arange(0, 180, 0.25))
    i, j = opposing_views(np.deg2rad(np.arange(0, 360, 10.0)))
    assert abs(abs(i - j) - 18) == 0
    assert opposing_views(angles) in ((0, 719), (719, 0))

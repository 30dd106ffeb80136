r"""Pre-processing of raw projections into line integrals, one chunk of views at a time.

The steps every tomography pipeline performs before reconstruction:

- **detector window**: crop detector rows, then bin ``b_r x b_c`` pixels by summing their
  counts (sums of Poisson counts stay Poisson, so the noise statistics stay exact);
- **flat/dark correction and -log**: with :math:`\bar F, \bar D` the mean flat and dark
  frames (after the same window),

  .. math::

      y = -\log \frac{\max(P - \bar D,\ c_{\min})}{\bar F - \bar D},

  the line integral :math:`\int \mu \,\mathrm d\ell` in attenuation unit :math:`\times` length
  unit. Non-positive values :math:`P - \bar D \le 0` are floored at :math:`c_{\min}` counts and
  counted, as are saturated values (at the detector's maximum count); above a given fraction of
  the scan the data are refused;
- **view selection**: every k-th view, a count of evenly spaced views, or a list; the other
  views are held out (validation views);
- **centre of rotation**: an offset :math:`c` of the rotation axis from the detector centre
  (pixels) is undone by resampling every detector row, :math:`y'(u) = y(u + c)` (linear
  interpolation), since ODL's parallel-beam CPU projector ignores a detector shift;
  :func:`estimate_centre_offset` estimates :math:`c` from two opposing views;
- **noise statistics**: :math:`I_0 = \bar F - \bar D` per detector pixel and the darks' read
  noise :math:`\sigma` (temporal standard deviation of the dark frames, pooled over pixels).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .readers import Stack


def bin_axis(a: np.ndarray, axis: int, factor: int, reduce: str = "sum") -> np.ndarray:
    """Sum (``"sum"``) or average (``"mean"``) blocks of ``factor`` samples along ``axis``; a
    remainder that does not fill a block is dropped."""
    if factor == 1:
        return a
    n = a.shape[axis] // factor
    if n == 0:
        raise ValueError(f"binning by {factor} leaves no sample of an axis of {a.shape[axis]}")
    a = np.take(a, np.arange(n * factor), axis=axis)
    shape = (*a.shape[:axis], n, factor, *a.shape[axis % a.ndim + 1 :])
    blocks = a.reshape(shape)
    return (
        blocks.sum(axis=axis % a.ndim + 1)
        if reduce == "sum"
        else blocks.mean(axis=axis % a.ndim + 1)
    )


@dataclass(frozen=True)
class DetectorWindow:
    """Crop of detector rows ``rows = (start, stop)`` then binning by ``bin_rows x bin_cols``
    (sums), applied alike to projections, flats and darks of shape ``(n, rows, cols)``."""

    rows: tuple[int, int] | None = None
    bin_rows: int = 1
    bin_cols: int = 1

    def check(self, shape: Sequence[int], name: str) -> None:
        """Validate against a stack of shape ``(n, rows, cols)``."""
        for label, b in (("bin_rows", self.bin_rows), ("bin_cols", self.bin_cols)):
            if int(b) != b or b < 1:
                raise ValueError(f"{label} must be a positive integer, got {b}")
        if self.rows is not None:
            start, stop = self.rows
            if not 0 <= start < stop <= shape[1]:
                raise ValueError(
                    f"{name}: row crop {start}:{stop} is outside the detector's {shape[1]} rows "
                    "(expected 0 <= start < stop <= rows)"
                )

    def out_shape(self, rows: int, cols: int) -> tuple[int, int]:
        """``(rows, cols)`` after the window."""
        if self.rows is not None:
            rows = self.rows[1] - self.rows[0]
        return rows // self.bin_rows, cols // self.bin_cols

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        out = np.asarray(chunk, dtype=np.float64)
        if self.rows is not None:
            out = out[:, self.rows[0] : self.rows[1]]
        return bin_axis(bin_axis(out, 1, self.bin_rows), 2, self.bin_cols)


@dataclass
class FrameStatistics:
    """Mean and temporal variance (pooled over pixels) of a stack of frames."""

    mean: np.ndarray
    temporal_variance: float | None
    count: int


def frame_statistics(stack: Stack, window: DetectorWindow, chunk: int = 16) -> FrameStatistics:
    """Mean frame and pooled temporal variance of ``stack`` (flats or darks) after ``window``,
    accumulated chunk by chunk (``None`` variance for a single frame)."""
    total = total_sq = None
    for _, _, frames in stack.chunks(chunk):
        frames = window(frames)
        s, sq = frames.sum(axis=0), (frames * frames).sum(axis=0)
        total, total_sq = (s, sq) if total is None else (total + s, total_sq + sq)
    n = len(stack)
    mean = total / n
    var = None
    if n > 1:
        var = float(np.maximum(total_sq / n - mean * mean, 0.0).mean() * n / (n - 1))
    return FrameStatistics(mean, var, n)


@dataclass
class ClipCounts:
    """Counts of values floored (non-positive after dark subtraction) and saturated."""

    non_positive: int = 0
    saturated: int = 0
    total: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"non_positive": self.non_positive, "saturated": self.saturated, "total": self.total}


class FlatDarkCorrection:
    r"""Flat/dark correction and :math:`-\log`: :math:`y = -\log(\max(P-\bar D, c_{\min}) /
    (\bar F - \bar D))`, counting floored and saturated values.

    :param numpy.ndarray flat: mean flat frame (counts, after the detector window).
    :param numpy.ndarray dark: mean dark frame (zeros if no darks were taken).
    :param float floor_counts: :math:`c_{\min}`, what a non-positive value becomes (counts).
    :param float max_clip_fraction: refuse the scan when more than this fraction of its
        values are floored or saturated.
    :param int expected_total: the number of values of the whole scan (for the fraction).
    :param str name: the projections' name, for messages.
    :raises ValueError: if the flats are all zero or not above the darks somewhere.
    """

    def __init__(
        self,
        flat: np.ndarray,
        dark: np.ndarray,
        floor_counts: float = 0.5,
        max_clip_fraction: float = 0.01,
        expected_total: int | None = None,
        name: str = "projections",
        flat_name: str = "flats",
        dark_name: str = "darks",
    ):
        if not np.any(flat):
            raise ValueError(
                f"{flat_name}: the flat fields are all zero; expected open-beam counts"
            )
        gain = flat - dark
        bad = gain <= 0
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(
                f"{flat_name}: expected flats above darks ({dark_name}) at every detector pixel; "
                f"{int(bad.sum())} of {bad.size} pixels are not (first at row {r}, col {c}: "
                f"flat {flat[r, c]:.6g}, dark {dark[r, c]:.6g}); crop those rows or check the files"
            )
        if not 0 <= max_clip_fraction <= 1:
            raise ValueError(f"max_clip_fraction must be in [0, 1], got {max_clip_fraction}")
        if floor_counts <= 0:
            raise ValueError(f"floor_counts must be positive, got {floor_counts}")
        self.dark, self.log_gain = dark, np.log(gain)
        self.floor_counts = float(floor_counts)
        self.max_clip_fraction, self.expected_total = max_clip_fraction, expected_total
        self.name = name
        self.clipped = ClipCounts()

    def __call__(self, raw: np.ndarray, saturated: int = 0) -> np.ndarray:
        """Line integrals of raw counts ``(n, rows, cols)`` (after the detector window), of
        which ``saturated`` values were found saturated (they are counted, not changed)."""
        counts = raw - self.dark
        low = counts <= 0
        n_low, n_sat = int(low.sum()), int(saturated)
        c = self.clipped
        c.non_positive, c.saturated, c.total = (
            c.non_positive + n_low,
            c.saturated + n_sat,
            c.total + raw.size,
        )
        limit = self.max_clip_fraction * (self.expected_total or c.total)
        if c.non_positive + c.saturated > limit:
            raise ValueError(
                f"{self.name}: {c.non_positive} non-positive (after dark subtraction) and "
                f"{c.saturated} saturated values so far, more than max_clip_fraction="
                f"{self.max_clip_fraction} of the scan's {self.expected_total or c.total} values; "
                "check the darks and the exposure, or raise the limit"
            )
        if n_low:
            counts[low] = self.floor_counts
        return self.log_gain - np.log(counts)

    def warn(self) -> None:
        """Warn with the counts, if anything was floored or saturated."""
        c = self.clipped
        if c.non_positive or c.saturated:
            warnings.warn(
                f"{self.name}: floored {c.non_positive} non-positive values (after dark "
                f"subtraction) at {self.floor_counts} counts and found {c.saturated} saturated "
                f"values, of {c.total}",
                stacklevel=2,
            )


def select_views(
    n_views: int,
    every: int | None = None,
    count: int | None = None,
    indices: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Views kept for training and views held out, as sorted index arrays.

    Give at most one of ``every`` (every k-th view from the first), ``count`` (that many
    evenly spaced views) or ``indices``; none keeps every view.

    >>> kept, held = select_views(8, every=4)
    >>> kept.tolist(), held.tolist()
    ([0, 4], [1, 2, 3, 5, 6, 7])
    """
    given = [
        name
        for name, v in (("every", every), ("count", count), ("indices", indices))
        if v is not None
    ]
    if len(given) > 1:
        raise ValueError(f"give one view selection, got {' and '.join(given)}")
    if every is not None:
        if int(every) != every or every < 1:
            raise ValueError(f"keep every k-th view: expected an integer k >= 1, got {every}")
        kept = np.arange(0, n_views, int(every))
    elif count is not None:
        if int(count) != count or not 1 <= count <= n_views:
            raise ValueError(f"keep a count of views: expected 1..{n_views}, got {count}")
        kept = np.unique(np.floor(np.arange(int(count)) * n_views / int(count)).astype(int))
    elif indices is not None:
        kept = np.asarray(indices, dtype=int).ravel()
        if (
            len(np.unique(kept)) != len(kept)
            or kept.min(initial=0) < 0
            or kept.max(initial=0) >= n_views
        ):
            raise ValueError(
                f"kept view indices must be distinct and in 0..{n_views - 1}, got {kept.tolist()}"
            )
        kept = np.sort(kept)
    else:
        kept = np.arange(n_views)
    heldout = np.setdiff1d(np.arange(n_views), kept)
    return kept, heldout


def shift_detector(y: np.ndarray, offset: float) -> np.ndarray:
    r"""Resample every detector row so that :math:`y'(u) = y(u + c)` with ``offset`` :math:`c`
    in pixels (linear interpolation, edge values repeated): a rotation axis seen ``c`` pixels
    from the detector centre moves to the centre.

    >>> shift_detector(np.array([[0.0, 1.0, 2.0, 3.0]]), 1.0).tolist()
    [[1.0, 2.0, 3.0, 3.0]]
    """
    if offset == 0:
        return y
    n = y.shape[-1]
    pos = np.clip(np.arange(n) + float(offset), 0, n - 1)
    left = np.floor(pos).astype(int)
    right = np.minimum(left + 1, n - 1)
    frac = pos - left
    return y[..., left] * (1 - frac) + y[..., right] * frac


def estimate_centre_offset(view: np.ndarray, opposite: np.ndarray) -> float:
    r"""Centre-of-rotation offset :math:`c` (pixels, from the detector centre) from two parallel-beam
    views 180 degrees apart, ``(rows, cols)`` line integrals each.

    The opposite view is the first mirrored about the rotation axis,
    :math:`p_{\theta+\pi}(u) = p_\theta(2c - u)`, so the mirrored opposite view is the first
    shifted by :math:`2c` pixels; the shift is the peak of their cross-correlation (summed over rows,
    refined to a fraction of a pixel by a parabola through the peak).
    """
    a = np.atleast_2d(np.asarray(view, dtype=np.float64))
    b = np.atleast_2d(np.asarray(opposite, dtype=np.float64))[..., ::-1]
    a, b = a - a.mean(axis=-1, keepdims=True), b - b.mean(axis=-1, keepdims=True)
    n = a.shape[-1]
    nfft = 2 * n
    # The mirrored opposite view is b[j] = a[j + 2c], so r[L] = sum_j a[j + L] b[j] peaks at L = 2c.
    r = np.fft.irfft(np.fft.rfft(a, nfft) * np.conj(np.fft.rfft(b, nfft)), nfft).sum(axis=0)
    lags = np.concatenate([np.arange(0, n), np.arange(-n, 0)])
    k = int(np.argmax(r))
    lag = float(lags[k])
    left, mid, right = r[k - 1], r[k], r[(k + 1) % nfft]
    denom = left - 2 * mid + right
    if denom < 0:
        lag += 0.5 * (left - right) / denom
    return lag / 2.0


def opposing_views(angles: np.ndarray) -> tuple[int, int]:
    """The pair of views whose angles are closest to 180 degrees apart, as indices."""
    diff = np.abs(np.angle(np.exp(1j * (angles[None, :] - angles[:, None] - np.pi))))
    i, j = np.unravel_index(np.argmin(diff), diff.shape)
    return int(i), int(j)

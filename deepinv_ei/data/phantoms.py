r"""Seeded random-ellipse CT phantoms (Shepp--Logan-like), rasterised here in numpy.

An image is a sum of ellipse indicators on :math:`[-1, 1]^2`,

.. math::

    x(p) = \sum_k c_k \, \mathbb{1}\big[(u_k/a_k)^2 + (v_k/b_k)^2 \le 1\big], \qquad
    \begin{pmatrix} u_k \\ v_k \end{pmatrix} = R(-\theta_k) (p - p_k),

with intensity :math:`c_k`, half-axes :math:`a_k, b_k`, centre :math:`p_k` and angle
:math:`\theta_k`, sampled on pixel centres (supersampled, then block-averaged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import ImageSplit, check_count


@dataclass(frozen=True)
class Ellipse:
    """One ellipse: ``intensity`` added inside; half-axes ``a`` (along the rotated x axis) and
    ``b``; centre ``(x0, y0)`` in :math:`[-1, 1]^2`; rotation ``theta`` in radians."""

    intensity: float
    a: float
    b: float
    x0: float = 0.0
    y0: float = 0.0
    theta: float = 0.0


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    # Pixel centres of an n x n grid on [-1, 1]^2; x along columns, y along rows.
    c = ((2.0 * np.arange(n) + 1.0) / n - 1.0).astype(np.float32)
    return np.meshgrid(c, c, indexing="xy")


def ellipse_masks(ellipses: list[Ellipse], n: int) -> np.ndarray:
    """Boolean indicators, shape ``(len(ellipses), n, n)``, of the ellipses on pixel centres."""
    x, y = _grid(n)
    # float32 halves the cost; only pixels within ~1e-7 of an edge can flip.
    p = np.array([[e.x0, e.y0, e.a, e.b, e.theta] for e in ellipses], dtype=np.float64)
    cos, sin = np.cos(p[:, 4]), np.sin(p[:, 4])
    x0, y0, cos_a, sin_a, cos_b, sin_b = (
        v.astype(np.float32)[:, None, None]
        for v in (p[:, 0], p[:, 1], cos / p[:, 2], sin / p[:, 2], cos / p[:, 3], sin / p[:, 3])
    )
    dx, dy = x - x0, y - y0
    u = dx * cos_a + dy * sin_a  # u / a
    v = dy * cos_b - dx * sin_b  # v / b
    return u * u + v * v <= 1.0


def rasterize_ellipses(ellipses: list[Ellipse], size: int, supersample: int = 2) -> np.ndarray:
    r"""The image :math:`\sum_k c_k \mathbb{1}_{E_k}` on a ``size x size`` grid (float64).

    Each pixel is the mean over ``supersample**2`` sub-pixel centres, which softens the
    staircase edges that a ray transform would otherwise see as high frequencies.

    :Examples:

    >>> disc = rasterize_ellipses([Ellipse(1.0, 0.5, 0.5)], 64)
    >>> round(float(disc.mean()), 2)  # area pi * 0.5**2 over the square's area 4
    0.2
    """
    size = check_count(size, "size", minimum=1)
    s = check_count(supersample, "supersample", minimum=1)
    if not ellipses:
        return np.zeros((size, size))
    masks = ellipse_masks(ellipses, size * s)
    fine = np.tensordot(np.array([e.intensity for e in ellipses]), masks, axes=1)
    return fine.reshape(size, s, size, s).mean(axis=(1, 3))


def random_phantom_ellipses(rng: np.random.Generator) -> tuple[list[Ellipse], list[Ellipse]]:
    """Random Shepp--Logan-like ellipses: ``(outer, inner)``.

    ``outer`` is a bright rim (value 1) around a body of tissue value in [0.2, 0.45], inside
    the unit disc so that every rotation keeps it in the field of view. ``inner`` are 4--10
    structures (contrast +-[0.1, 0.5]) to be added inside the body only.
    """
    a, b = rng.uniform(0.70, 0.92), rng.uniform(0.55, 0.85)
    x0, y0 = rng.uniform(-0.05, 0.05, size=2)
    theta = rng.uniform(-np.pi / 12, np.pi / 12)
    rim = rng.uniform(0.88, 0.94)  # inner/outer scale: a rim of 6-12 % of the axes
    tissue = rng.uniform(0.2, 0.45)
    outer = [
        Ellipse(1.0, a, b, x0, y0, theta),
        Ellipse(tissue - 1.0, rim * a, rim * b, x0, y0, theta),
    ]
    inner = []
    for _ in range(int(rng.integers(4, 11))):
        # Centre uniformly inside 75 % of the body (polar sampling of the ellipse).
        r, phi = 0.75 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        u, v = r * rim * a * np.cos(phi), r * rim * b * np.sin(phi)
        cx = x0 + u * np.cos(theta) - v * np.sin(theta)
        cy = y0 + u * np.sin(theta) + v * np.cos(theta)
        axes = rng.uniform(0.03, 0.3, size=2) * rim
        contrast = rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.5)
        inner.append(Ellipse(contrast, axes[0], axes[1], cx, cy, rng.uniform(0, np.pi)))
    return outer, inner


def random_phantom(rng: np.random.Generator, size: int, supersample: int = 2) -> np.ndarray:
    """One random phantom, ``size x size``, values in [0, 1] (see :func:`random_phantom_ellipses`)."""
    outer, inner = random_phantom_ellipses(rng)
    s = check_count(supersample, "supersample", minimum=1)
    fine, _ = _fine_phantom(outer, inner, size * s)
    return np.clip(fine.reshape(size, s, size, s).mean(axis=(1, 3)), 0.0, 1.0)


def _fine_phantom(outer: list[Ellipse], inner: list[Ellipse], n: int):
    # (image, body mask) on the n x n fine grid; inner structures are cut to the body.
    masks = ellipse_masks(outer + inner, n)
    rim, body, structures = masks[0], masks[1], masks[2:]
    contrasts = np.array([e.intensity for e in inner])
    fine = rim + outer[1].intensity * body + body * np.tensordot(contrasts, structures, axes=1)
    return fine, body


def ct_phantoms(
    n_train: int = 90, n_test: int = 10, size: int = 128, seed: int = 0, supersample: int = 2
) -> ImageSplit:
    r"""Seeded random-ellipse CT phantoms, :math:`(N, 1, \text{size}, \text{size})` in [0, 1].

    Image ``i`` of the training (test) part depends only on ``(seed, 0, i)`` (``(seed, 1, i)``),
    so fewer images are a prefix of more and the test set does not depend on ``n_train``.
    The default 90 / 10 split mirrors CT100's.

    :param int n_train: number of training phantoms.
    :param int n_test: number of test phantoms.
    :param int size: image side in pixels.
    :param int seed: random seed.
    :param int supersample: sub-pixels per side averaged into one pixel.

    :Examples:

    >>> split = ct_phantoms(n_train=3, n_test=2, size=32)
    >>> tuple(split.train.shape), tuple(split.test.shape)
    ((3, 1, 32, 32), (2, 1, 32, 32))
    """
    n_train = check_count(n_train, "n_train")
    n_test = check_count(n_test, "n_test")
    seed = check_count(seed, "seed")

    def make(part: int, n: int) -> torch.Tensor:
        images = [
            random_phantom(np.random.default_rng([seed, part, i]), size, supersample)
            for i in range(n)
        ]
        stacked = np.stack(images) if images else np.zeros((0, size, size))
        return torch.from_numpy(stacked[:, None].astype(np.float32))

    return ImageSplit(
        make(0, n_train), make(1, n_test), "ct_phantoms", f"random-ellipse phantoms, seed={seed}"
    )


def _smooth_noise(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    # White noise low-passed by a Gaussian of ``scale`` pixels (in Fourier), unit std.
    f = np.fft.fftfreq(n)
    g = np.exp(-2 * (np.pi * scale) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    z = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) * g))
    return z / max(float(z.std()), 1e-12)


def random_textured_phantom(
    rng: np.random.Generator, size: int, supersample: int = 2
) -> np.ndarray:
    r"""A phantom with texture and fine structures inside the body, ``size x size`` in [0, 1].

    The body and its ellipses are those of :func:`random_phantom`; inside the body are added

    - a smooth random texture (white noise low-passed at 1--3 % of the field of view,
      amplitude 0.03--0.08),
    - 5--15 small bright or dark dots (radius 0.6--2 % of the field of view),
    - 2--6 thin straight bars (width about one pixel at 64², length 10--40 %),

    i.e. the high-frequency detail that sparse-view FBP streaks hide and that no single ellipse
    phantom has.

    :Examples:

    >>> x = random_textured_phantom(np.random.default_rng(0), 32)
    >>> x.shape, bool(0.0 <= x.min() and x.max() <= 1.0)
    ((32, 32), True)
    """
    outer, inner = random_phantom_ellipses(rng)
    s = check_count(supersample, "supersample", minimum=1)
    n = size * s
    base, body = _fine_phantom(outer, inner, n)
    texture = _smooth_noise(rng, n, rng.uniform(0.01, 0.03) * n) * rng.uniform(0.03, 0.08)
    details = []
    a, b, x0, y0 = outer[1].a, outer[1].b, outer[1].x0, outer[1].y0
    for _ in range(int(rng.integers(5, 16))):
        r, phi = 0.8 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        rad = rng.uniform(0.012, 0.04)
        c = rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.4)
        details.append(Ellipse(c, rad, rad, x0 + r * a * np.cos(phi), y0 + r * b * np.sin(phi)))
    for _ in range(int(rng.integers(2, 7))):
        r, phi = 0.6 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        c = rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.35)
        half_len, half_width = rng.uniform(0.1, 0.4), rng.uniform(0.02, 0.035)
        details.append(
            Ellipse(
                c,
                half_len,
                half_width,
                x0 + r * a * np.cos(phi),
                y0 + r * b * np.sin(phi),
                rng.uniform(0, np.pi),
            )
        )
    masks = ellipse_masks(details, n)
    fine = base + body * (texture + np.tensordot([d.intensity for d in details], masks, axes=1))
    return np.clip(fine.reshape(size, s, size, s).mean(axis=(1, 3)), 0.0, 1.0)


PHANTOM_FAMILIES = {"ellipses": random_phantom, "textured": random_textured_phantom}


def ct_phantom_family(
    family: str = "ellipses",
    n_train: int = 90,
    n_test: int = 10,
    size: int = 128,
    seed: int = 0,
    supersample: int = 2,
) -> ImageSplit:
    r"""Seeded CT phantoms of one family: ``"ellipses"`` (:func:`ct_phantoms`) or ``"textured"``
    (:func:`random_textured_phantom`), :math:`(N, 1, \text{size}, \text{size})` in [0, 1].

    :Examples:

    >>> split = ct_phantom_family("textured", n_train=2, n_test=1, size=32)
    >>> tuple(split.train.shape), split.name
    ((2, 1, 32, 32), 'ct_phantoms_textured')
    """
    if family not in PHANTOM_FAMILIES:
        raise ValueError(
            f"phantom family must be one of {sorted(PHANTOM_FAMILIES)}, got {family!r}"
        )
    if family == "ellipses":
        return ct_phantoms(n_train, n_test, size, seed, supersample)
    n_train, n_test = check_count(n_train, "n_train"), check_count(n_test, "n_test")
    seed = check_count(seed, "seed")
    make_one = PHANTOM_FAMILIES[family]

    def make(part: int, n: int) -> torch.Tensor:
        images = [
            make_one(np.random.default_rng([seed, part, i, 1]), size, supersample) for i in range(n)
        ]
        stacked = np.stack(images) if images else np.zeros((0, size, size))
        return torch.from_numpy(stacked[:, None].astype(np.float32))

    return ImageSplit(
        make(0, n_train),
        make(1, n_test),
        f"ct_phantoms_{family}",
        f"{family} phantoms, seed={seed}",
    )

r"""Rotations: exact quarter turns (:math:`C_4`) and continuous angles.

Angles :math:`\theta` (degrees) are split as :math:`\theta = 90k + \varphi` with
:math:`\varphi \in [-45°, 45°)`. The quarter turns :math:`R^k` are exact pixel permutations
(:func:`torch.rot90`); only the residual :math:`\varphi` is interpolated.

Continuous modes (``interpolation_mode=``):

- ``"fourier"`` (default): three shears :math:`X(a)\,Y(b)\,X(a)` with
  :math:`a = \tan(\varphi/2)`, :math:`b = -\sin\varphi`, each a per-row (per-column) fractional
  circular shift applied in Fourier space, computed in float64. Every shear is orthogonal on the
  periodic grid (the Nyquist bin of even sizes is left unshifted so that the operator stays real
  and orthogonal), hence :math:`T_\theta^\top = T_\theta^{-1} = R^{-k} S_{-\varphi}` holds to
  rounding, and the norm is preserved. The price is the periodic boundary: content outside the
  disc inscribed in the image (corners) wraps around instead of leaving the image.
- ``"nearest"``, ``"bilinear"``, ``"bicubic"`` (strings or
  :class:`torchvision.transforms.InterpolationMode`, deepinv's meaning): resampling by
  :func:`torch.nn.functional.grid_sample` with zero padding, the same samples as
  :func:`torchvision.transforms.functional.rotate` used by deepinv (``nearest`` agrees to the
  bit, ``bilinear`` to about 1e-5). It loses the corners and smooths, so it is neither
  orthogonal nor exactly invertible; its transpose is computed by autograd.

The norm loss, inverse error and composition error of each mode, measured, are in
``docs/transforms.md``.

Non-square images (:math:`H \ne W`): a quarter turn does not map the grid onto itself, so no
exact or orthogonal rotation by an odd :math:`k` exists. Angles whose nearest quarter turn is odd
(:math:`45° \le |\theta \bmod 180°| < 135°`) are then resampled like deepinv does (``grid_sample``
with the chosen mode, ``nearest`` in Fourier mode), cropped and zero-padded to the input shape,
and are not invertible; the other angles stay exact (:math:`0°, 180°`) or orthogonal (Fourier).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from deepinv.transform import Transform
from torchvision.transforms import InterpolationMode
from torchvision.transforms.functional import rotate as tv_rotate

from deepinv_ei.transforms.base import GroupTransform, Params
from deepinv_ei.transforms.functional import (
    as_images,
    check_bool,
    check_finite_number,
    is_multiple,
    rot90_where,
    sample_uniform,
    sample_without_replacement,
)

GRID_MODES = ("nearest", "bilinear", "bicubic")
INTERPOLATIONS = ("fourier", *GRID_MODES)


def _split_angle(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``theta = 90 k + phi`` with integer ``k`` and ``phi`` in [-45, 45) degrees."""
    theta = theta.to(torch.float64)
    k = torch.floor((theta + 45.0) / 90.0)
    phi = theta - 90.0 * k
    return k.to(torch.long), phi


def _shear(x: torch.Tensor, amount: torch.Tensor, dim: int) -> torch.Tensor:
    r"""Fractional circular shear of a float64 batch: along axis ``dim``, line ``j`` of the other
    axis moves by ``-amount * (j - c)`` pixels, i.e. ``out(u) = in(u + amount * (j - c))``.

    Exactly orthogonal: unit-modulus Hermitian phases, the even-size Nyquist bin untouched.
    """
    n = x.shape[dim]
    other = -1 if dim == -2 else -2
    m = x.shape[other]
    real = torch.float64
    freqs = torch.arange(n // 2 + 1, device=x.device, dtype=real) / n
    centered = torch.arange(m, device=x.device, dtype=real) - (m - 1) / 2
    disp = amount.to(real).view(-1, 1) * centered  # (L, m)
    phase = torch.polar(
        torch.ones((), device=x.device, dtype=real), 2 * math.pi * disp[:, :, None] * freqs
    )
    if n % 2 == 0:
        phase[..., -1] = 1.0
    spec = torch.fft.rfft(x, dim=dim)
    # spec is (L, C, n', m) for dim=-2 and (L, C, m, n') for dim=-1.
    phase = phase.transpose(-1, -2) if dim == -2 else phase
    return torch.fft.irfft(spec * phase[:, None], n=n, dim=dim)


def fourier_rotate(x: torch.Tensor, phi_degrees: torch.Tensor) -> torch.Tensor:
    r"""Three-shear Fourier rotation of ``x[i]`` by ``phi[i]`` degrees about the image centre.

    Computed in float64 and returned in the dtype of ``x``, so that a rotation followed by its
    inverse is the identity to the rounding of ``x``'s dtype.
    """
    phi = torch.deg2rad(phi_degrees.to(torch.float64))
    a = torch.tan(phi / 2)
    b = -torch.sin(phi)
    z = x.to(torch.float64)
    return _shear(_shear(_shear(z, a, -2), b, -1), a, -2).to(x.dtype)


def grid_rotate(x: torch.Tensor, theta_degrees: torch.Tensor, mode: str) -> torch.Tensor:
    """Rotation by ``grid_sample`` with zero padding, same direction as :func:`torch.rot90`."""
    L, _, H, W = x.shape
    t = torch.deg2rad(theta_degrees.to(torch.float64))
    c, s = torch.cos(t), torch.sin(t)
    zero = torch.zeros_like(c)
    # Normalised coordinates scale with H and W separately, hence the aspect factors.
    mat = torch.stack(
        [torch.stack([c, -s * H / W, zero], -1), torch.stack([s * W / H, c, zero], -1)], -2
    ).to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(mat, [L, x.shape[1], H, W], align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _resolve_mode(mode: Any) -> str:
    if mode is None:
        return "fourier"
    if isinstance(mode, InterpolationMode):
        mode = mode.value
    if not isinstance(mode, str) or mode not in INTERPOLATIONS:
        raise ValueError(
            f"Rotate: interpolation_mode must be None, one of {INTERPOLATIONS} or the matching "
            f"torchvision InterpolationMode, got {mode!r}"
        )
    return mode


def _angle_set(
    limits: float,
    multiples: float,
    positive: bool,
    angles: Sequence[float] | None,
    nonzero: bool,
) -> torch.Tensor:
    """The angles (degrees) the sampler draws from: deepinv's set, or ``angles`` if given."""
    if angles is None:
        values = torch.arange(0, limits, multiples, dtype=torch.float64)
        if not positive:
            values = torch.cat((values, -values))
    else:
        try:
            values = torch.as_tensor(list(angles), dtype=torch.float64)
        except (TypeError, ValueError):
            raise TypeError(f"Rotate: angles must be a list of numbers, got {angles!r}") from None
        if values.ndim != 1 or len(values) == 0 or not bool(torch.isfinite(values).all()):
            raise ValueError(
                f"Rotate: angles must be a non-empty list of finite numbers, got {angles!r}"
            )
    if nonzero:
        values = values[torch.remainder(values, 360.0) != 0]
    if len(values) == 0:
        raise ValueError(
            f"Rotate: no angle left to draw (limits={limits}, multiples={multiples}, "
            f"nonzero={nonzero})"
        )
    return values


class Rotate(GroupTransform):
    r"""Rotations by :math:`\theta` degrees about the image centre; a drop-in for
    :class:`deepinv.transform.Rotate`.

    :math:`(T_\theta x)(u, v) = x(u\cos\theta + v\sin\theta,\ -u\sin\theta + v\cos\theta)` in
    centred (row, column) coordinates, counter-clockwise as ``torch.rot90(x, 1, (-2, -1))`` and
    torchvision. Multiples of 90° are always exact permutations on square images; other angles
    are interpolated, by the orthogonal Fourier three-shear rotation unless a deepinv
    ``interpolation_mode`` is given (see the module notes, also for non-square images, where
    odd quarter turns are cropped and zero-padded as in deepinv and are not invertible).

    Angles are drawn from deepinv's set: the multiples of ``multiples`` in ``[0, limits)`` and,
    unless ``positive``, their negatives (the default gives every integer angle modulo 360°
    equally often).

    :param float limits: angles in ``(-limits, limits)``.
    :param float multiples: angles are multiples of this (``90``: the exact group :math:`C_4`).
    :param bool positive: only non-negative angles.
    :param interpolation_mode: ``None`` or ``"fourier"`` (ours, orthogonal), or deepinv's
        ``"nearest"``, ``"bilinear"``, ``"bicubic"`` (:class:`torchvision.transforms.InterpolationMode`
        accepted). deepinv's default is ``nearest``; ours is Fourier.
    :param bool nonzero: exclude angles :math:`\equiv 0°` (the EI paper draws 1..359°).
    :param angles: explicit angles (degrees) to draw from, overriding ``limits``/``multiples``.
    :param bool per_sample: one angle per output image (default; ``False`` with
        ``constant_shape=False``) or ``n_trans`` distinct angles shared by the batch, drawn as
        deepinv draws them.
    :param bool constant_shape: ``False`` lets the output grow to hold the whole rotated image
        (deepinv's meaning; quarter turns then swap ``H`` and ``W`` exactly, other angles are
        resampled by torchvision, ``nearest`` in Fourier mode); needs shared angles.
    :param kwargs: the other options of :class:`GroupTransform` (``n_trans``, ``rng``,
        ``flatten_video_input``, ``device``).

    The mode is kept as a string in ``interpolation_mode`` (``"fourier"``, ``"nearest"``,
    ``"bilinear"`` or ``"bicubic"``).

    Parameters: ``theta``, a float tensor of shape ``(N,)`` or ``(N, K)`` in degrees.

    :Examples:

    >>> import torch
    >>> from deepinv_ei.transforms import Rotate
    >>> x = torch.randn(2, 1, 8, 8)
    >>> T = Rotate(multiples=90)  # C4, exact
    >>> torch.equal(T.transform(x, theta=[90.0]), torch.rot90(x, 1, (-2, -1)))
    True
    >>> T = Rotate(nonzero=True, rng=torch.Generator().manual_seed(0))  # 1..359 degrees, Fourier
    >>> p = T.get_params(x)
    >>> y = T.transform(x, **p)
    >>> bool(torch.allclose(y.norm(), x.norm(), rtol=1e-5))
    True
    >>> bool(torch.allclose(T.inverse(y, **p), x, atol=1e-5))
    True
    """

    param_spec = {"theta": ()}

    def __init__(
        self,
        *args: Any,
        limits: float = 360.0,
        multiples: float = 1.0,
        positive: bool = False,
        interpolation_mode: str | InterpolationMode | None = None,
        nonzero: bool = False,
        angles: Sequence[float] | None = None,
        per_sample: bool | None = None,
        constant_shape: bool = True,
        **kwargs: Any,
    ) -> None:
        if per_sample is None:
            per_sample = constant_shape is not False
        super().__init__(*args, per_sample=per_sample, constant_shape=constant_shape, **kwargs)
        if per_sample and not constant_shape:
            raise ValueError(
                "Rotate(constant_shape=False) gives each angle its own output shape, so the "
                "angle must be shared by the batch: use per_sample=False"
            )
        self.limits = check_finite_number("Rotate", "limits", limits)
        self.multiples = check_finite_number("Rotate", "multiples", multiples)
        if self.limits <= 0 or self.multiples <= 0:
            raise ValueError(
                f"Rotate: limits and multiples must be > 0, got limits={limits!r}, "
                f"multiples={multiples!r}"
            )
        self.positive = check_bool("Rotate", "positive", positive)
        self.nonzero = check_bool("Rotate", "nonzero", nonzero)
        self.interpolation_mode = _resolve_mode(interpolation_mode)
        self.angles = _angle_set(self.limits, self.multiples, positive, angles, nonzero)
        self.quarter_turns_only = all(is_multiple(float(a), 90.0) for a in self.angles)
        self.exact = self.quarter_turns_only
        self.orthogonal = self.quarter_turns_only or self.interpolation_mode == "fourier"

    # ----------------------------------------------------------------- sampling
    def _sample(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> Params:
        return {"theta": sample_uniform(self.angles, n, generator).to(torch.float32)}

    def _sample_copies(self, shape: tuple[int, ...]) -> Params:
        theta = sample_without_replacement(self.angles, self.n_trans, self.rng)
        return {"theta": theta.to(torch.float32)}

    def check_shape(self, shape: tuple[int, ...]) -> None:
        H, W = shape[-2:]
        if H != W:
            k, _ = _split_angle(self.angles)
            if bool((k % 2 == 1).any()):
                raise ValueError(
                    f"rotations near 90 or 270 degrees are not invertible on non-square images, "
                    f"got H x W = {H} x {W}"
                )

    def _support(self, shape: tuple[int, ...]) -> Params | None:
        # Finite support, but only the quarter turns form an exact group.
        theta = torch.unique(torch.remainder(self.angles, 360.0))
        return {"theta": theta.to(torch.float32)}

    def _check_values(self, params: Params) -> None:
        theta = params["theta"]
        if theta.is_complex() or theta.dtype == torch.bool:
            raise TypeError(f"Rotate theta must be real angles in degrees, got dtype {theta.dtype}")
        if not theta.is_floating_point():
            theta = theta.to(torch.float32)
        if not bool(torch.isfinite(theta).all()):
            raise ValueError(f"Rotate theta must be finite, got {theta.flatten()[:8].tolist()}")
        params["theta"] = theta

    # ------------------------------------------------------------------- action
    def _act(self, x: torch.Tensor, elems: Params, inverse: bool) -> torch.Tensor:
        if x.is_complex():
            return torch.complex(
                self._act(x.real, elems, inverse), self._act(x.imag, elems, inverse)
            )
        imgs, shape = as_images(x)
        return self._rotate(imgs, elems["theta"], inverse).reshape(shape)

    def _rotate(self, x: torch.Tensor, theta: torch.Tensor, inverse: bool) -> torch.Tensor:
        H, W = x.shape[-2:]
        k, phi = _split_angle(theta)
        fourier = self.interpolation_mode == "fourier"
        grid = (phi != 0) & (not fourier)
        if H != W:
            grid = grid | (k % 2 == 1)
        sign = -1.0 if inverse else 1.0
        mode = "nearest" if fourier else self.interpolation_mode
        if bool(grid.all()):
            return grid_rotate(x, sign * theta, mode)
        if not bool(grid.any()):
            return self._exact_then_fourier(x, k, phi, inverse)
        out = torch.empty_like(x)
        on_grid, kept = grid.nonzero().squeeze(1), (~grid).nonzero().squeeze(1)
        out.index_copy_(0, on_grid, grid_rotate(x[on_grid], sign * theta[on_grid], mode))
        exact = self._exact_then_fourier(x[kept], k[kept], phi[kept], inverse)
        out.index_copy_(0, kept, exact)
        return out

    @staticmethod
    def _exact_then_fourier(
        x: torch.Tensor, k: torch.Tensor, phi: torch.Tensor, inverse: bool
    ) -> torch.Tensor:
        """:math:`S_\varphi R^k` (or its exact inverse :math:`R^{-k} S_{-\varphi}`), per image."""

        def shear(v: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
            turning = angle != 0
            if bool(turning.all()):
                return fourier_rotate(v, angle)
            if bool(turning.any()):
                idx = turning.nonzero().squeeze(1)
                v = v.index_copy(0, idx, fourier_rotate(v[idx], angle[idx]))
            return v

        if not inverse:
            return shear(rot90_where(x, k), phi)
        return rot90_where(shear(x, -phi), -k)

    # --------------------------------------------------- constant_shape=False
    def _transform(self, x: torch.Tensor, **params: Any) -> torch.Tensor:
        if self.constant_shape:
            return super()._transform(x, **params)
        p, n, _ = self.normalise_params(params, x.device)
        theta = p["theta"]
        outs = []
        for i in range(n):
            row = torch.unique(theta[i])
            if len(row) != 1:
                raise ValueError(
                    "Rotate(constant_shape=False) needs one angle per copy, got "
                    f"{theta[i].tolist()}"
                )
            outs.append(self._rotate_expand(x, float(row[0])))
        return torch.cat(outs)

    def _rotate_expand(self, x: torch.Tensor, angle: float) -> torch.Tensor:
        if is_multiple(angle, 90.0):
            return torch.rot90(x, round(angle / 90.0) % 4, dims=(-2, -1))
        mode = "nearest" if self.interpolation_mode == "fourier" else self.interpolation_mode
        if mode == "bicubic":
            raise ValueError("Rotate(constant_shape=False) supports nearest or bilinear resampling")
        return tv_rotate(x, angle, interpolation=InterpolationMode(mode), expand=True)

    def inverse(self, x: torch.Tensor, batchwise: bool = True, **params: Any) -> torch.Tensor:
        if self.constant_shape:
            return super().inverse(x, batchwise=batchwise, **params)
        # Growing outputs: deepinv's inverse (rotation by the negated angles).
        return Transform.inverse(self, x, batchwise=batchwise, **params)

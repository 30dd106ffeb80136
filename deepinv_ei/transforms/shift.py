r"""Circular integer shifts: the translation group :math:`\mathbb{Z}_H \times \mathbb{Z}_W`."""

from __future__ import annotations

from typing import Any

import torch

from deepinv_ei.transforms.base import GroupTransform, Params
from deepinv_ei.transforms.functional import (
    as_images,
    cartesian,
    check_bool,
    check_finite_number,
    sample_uniform,
    sample_without_replacement,
)


class Shift(GroupTransform):
    r"""Circular shift by integer offsets; a drop-in for :class:`deepinv.transform.Shift`.

    .. math::

        (T_g x)[i, j] = x[(i - s_y) \bmod H,\ (j - s_x) \bmod W],\qquad g = (s_y, s_x),

    the convention of :func:`torch.roll` and of deepinv. It is a permutation of the pixels, so
    :math:`T_g^\top = T_g^{-1} = T_{-g}` exactly.

    Offsets are drawn from :math:`\{-m, \dots, m-1\}` per axis with :math:`m = \lfloor
    \text{shift\_max} \cdot H \rfloor` (deepinv's range; with the default ``shift_max=1`` every
    residue modulo :math:`H` is equally likely). With ``per_sample=True`` (default) each output
    image gets its own offsets; with ``per_sample=False`` the ``n_trans`` copies get distinct
    offsets shared by the batch, drawn exactly as deepinv draws them.

    :param float shift_max: maximum shift as a fraction of the height/width (deepinv's meaning).
    :param bool nonzero: exclude offsets :math:`\equiv 0` on each axis, as the EI paper does.
    :param kwargs: the options of :class:`GroupTransform` (``n_trans``, ``rng``, ``per_sample``,
        ``constant_shape``, ``flatten_video_input``, ``device``).

    Parameters: ``x_shift`` and ``y_shift``, integer tensors of shape ``(N,)`` or ``(N, K)``;
    one left out is 0 (deepinv's convention), and shorter lists are padded with 0.

    :Examples:

    >>> import torch
    >>> from deepinv_ei.transforms import Shift
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> T = Shift(n_trans=3, rng=torch.Generator().manual_seed(0))
    >>> p = T.get_params(x)
    >>> T.transform(x, **p).shape
    torch.Size([3, 1, 4, 4])
    >>> bool((T.inverse(T.transform(x, **p), batchwise=False, **p) == x).all())
    True
    >>> torch.equal(T(x, x_shift=[1]), torch.roll(x, 1, dims=-1))
    True
    """

    param_spec = {"x_shift": (), "y_shift": ()}

    def __init__(
        self, *args: Any, shift_max: float = 1.0, nonzero: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.shift_max = check_finite_number("Shift", "shift_max", shift_max, minimum=0.0)
        self.nonzero = check_bool("Shift", "nonzero", nonzero)

    def _offsets(self, size: int) -> torch.Tensor:
        m = int(self.shift_max * size)
        values = torch.arange(-m, m) if m > 0 else torch.zeros(1, dtype=torch.long)
        if self.nonzero:
            values = values[values % size != 0]
            if len(values) == 0:
                raise ValueError(
                    f"Shift(nonzero=True, shift_max={self.shift_max}) leaves no nonzero offset "
                    f"on an axis of size {size}"
                )
        return values

    def _sample(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> Params:
        H, W = shape[-2:]
        return {
            "x_shift": sample_uniform(self._offsets(W), n, generator),
            "y_shift": sample_uniform(self._offsets(H), n, generator),
        }

    def _sample_copies(self, shape: tuple[int, ...]) -> Params:
        H, W = shape[-2:]
        out = {}
        for key, size in (("x_shift", W), ("y_shift", H)):
            values = self._offsets(size)
            if len(values) == 1 and not self.nonzero:  # deepinv: no draw when shift_max*size < 1
                out[key] = torch.zeros(self.n_trans, dtype=torch.long)
            else:
                out[key] = sample_without_replacement(values, self.n_trans, self.rng)
        return out

    def _support(self, shape: tuple[int, ...]) -> Params:
        H, W = shape[-2:]
        # Distinct residues only: offsets m and m - H are the same group element.
        xs = torch.unique(self._offsets(W) % W)
        ys = torch.unique(self._offsets(H) % H)
        x, y = cartesian(xs, ys)
        return {"x_shift": x, "y_shift": y}

    def _missing(self, name: str, like: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(like, dtype=torch.long)

    def _check_values(self, params: Params) -> None:
        for key, p in params.items():
            if p.is_floating_point():
                if not bool(torch.isfinite(p).all()) or not bool((p == p.round()).all()):
                    raise ValueError(
                        f"Shift offsets must be integers, got {key}={p.flatten()[:8].tolist()}"
                    )
            elif p.is_complex() or p.dtype == torch.bool:
                raise TypeError(f"Shift offsets must be integers, got dtype {p.dtype} for {key}")
            params[key] = p.long()

    def _act(self, x: torch.Tensor, elems: Params, inverse: bool) -> torch.Tensor:
        sign = -1 if inverse else 1
        imgs, shape = as_images(x)
        L, C, H, W = imgs.shape
        rows = (torch.arange(H, device=x.device) - sign * elems["y_shift"].view(-1, 1)) % H
        cols = (torch.arange(W, device=x.device) - sign * elems["x_shift"].view(-1, 1)) % W
        out = imgs.gather(-2, rows.view(L, 1, H, 1).expand(L, C, H, W))
        out = out.gather(-1, cols.view(L, 1, 1, W).expand(L, C, H, W))
        return out.reshape(shape)

r"""Circular integer shifts: the translation group :math:`\mathbb{Z}_H \times \mathbb{Z}_W`."""

from __future__ import annotations

import torch

from deepinv_ei.transforms.base import GroupTransform, Params, cartesian, sample_uniform


class Shift(GroupTransform):
    r"""Circular shift by integer offsets, one random offset pair per output image.

    .. math::

        (T_g x)[i, j] = x[(i - s_y) \bmod H,\ (j - s_x) \bmod W],\qquad g = (s_y, s_x),

    the convention of :func:`torch.roll` and of :class:`deepinv.transform.Shift`. It is a
    permutation of the pixels, so :math:`T_g^\top = T_g^{-1} = T_{-g}` exactly.

    :param int max_shift: draw offsets in :math:`\{-m, \dots, m\}` per axis; ``None`` (default)
        draws uniformly from the whole group :math:`\{0, \dots, H-1\}`.
    :param bool nonzero: exclude offset 0 on each axis, as the EI paper does (offsets
        :math:`\pm 1..H-1`).
    :param int n_trans: copies per image.
    :param torch.Generator rng: random generator.

    Parameters: ``y_shift`` and ``x_shift``, integer tensors of shape ``(L,)``.

    :Examples:

    >>> import torch
    >>> from deepinv_ei.transforms import Shift
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> T = Shift(n_trans=3, rng=torch.Generator().manual_seed(0))
    >>> p = T.get_params(x)
    >>> T.transform(x, **p).shape
    torch.Size([3, 1, 4, 4])
    >>> bool((T.inverse(T.transform(x, **p), **p) == x).all())
    True
    """

    param_spec = {"y_shift": (), "x_shift": ()}

    def __init__(
        self,
        *,
        max_shift: int | None = None,
        nonzero: bool = False,
        n_trans: int = 1,
        rng: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_trans=n_trans, rng=rng)
        if max_shift is not None and (
            isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0
        ):
            raise ValueError(f"max_shift must be a non-negative integer or None, got {max_shift!r}")
        if max_shift == 0 and nonzero:
            raise ValueError("max_shift=0 with nonzero=True leaves no offset to draw")
        self.max_shift = max_shift
        self.nonzero = bool(nonzero)

    def _offsets(self, size: int) -> torch.Tensor:
        if self.max_shift is None:
            values = torch.arange(size)
        else:
            m = self.max_shift
            values = torch.arange(-m, m + 1)
        if self.nonzero:
            values = values[values % size != 0]
        if len(values) == 0:
            raise ValueError(f"no nonzero offset exists for an axis of size {size}")
        return values

    def _sample_params(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> Params:
        H, W = shape[-2:]
        return {
            "y_shift": sample_uniform(self._offsets(H), n, generator),
            "x_shift": sample_uniform(self._offsets(W), n, generator),
        }

    def _support(self, shape: tuple[int, ...]) -> Params:
        H, W = shape[-2:]
        # Distinct residues only: offsets m and m - H are the same group element.
        ys = torch.unique(self._offsets(H) % H)
        xs = torch.unique(self._offsets(W) % W)
        y, x = cartesian(ys, xs)
        return {"y_shift": y, "x_shift": x}

    def _transform(
        self, x: torch.Tensor, y_shift: torch.Tensor, x_shift: torch.Tensor
    ) -> torch.Tensor:
        if y_shift.is_floating_point() or x_shift.is_floating_point():
            raise ValueError("Shift offsets must be integers")
        L, C, H, W = x.shape
        rows = (torch.arange(H, device=x.device) - y_shift.view(-1, 1)) % H  # (L, H)
        cols = (torch.arange(W, device=x.device) - x_shift.view(-1, 1)) % W  # (L, W)
        x = x.gather(-2, rows.view(L, 1, H, 1).expand(L, C, H, W))
        return x.gather(-1, cols.view(L, 1, 1, W).expand(L, C, H, W))

r"""Exact flips and the dihedral group :math:`D_4` of the square."""

from __future__ import annotations

import torch

from deepinv_ei.transforms.base import GroupTransform, Params, cartesian, sample_uniform


def _flip_where(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Flip ``x[i]`` along ``dim`` where ``mask[i]`` is true."""
    mask = mask.to(torch.bool).view(-1, *([1] * (x.ndim - 1)))
    return torch.where(mask, torch.flip(x, dims=(dim,)), x)


def _rot90_where(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate ``x[i]`` by ``k[i]`` quarter turns (:func:`torch.rot90` on dims ``(-2, -1)``)."""
    k = k % 4
    out = x.clone()
    for q in (1, 2, 3):
        sel = k == q
        if bool(sel.any()):
            out[sel] = torch.rot90(x[sel], q, dims=(-2, -1))
    return out


def _check_square(shape: tuple[int, ...], what: str) -> None:
    H, W = shape[-2:]
    if H != W:
        raise ValueError(f"{what} needs square images, got H x W = {H} x {W}")


class Reflect(GroupTransform):
    r"""Flips along the chosen axes: the group :math:`\mathbb{Z}_2^{d}` (exact, involutions).

    :param tuple dims: image axes that may flip, among ``(-2, -1)`` (rows, columns).
    :param int n_trans: copies per image.
    :param torch.Generator rng: random generator.

    Parameters: ``flips``, a 0/1 tensor of shape ``(L, len(dims))``; entry ``[i, a]`` says whether
    output ``i`` is flipped along ``dims[a]``. Each element is its own inverse and transpose.

    :Examples:

    >>> import torch
    >>> from deepinv_ei.transforms import Reflect
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> Reflect().transform(x, flips=torch.tensor([[0, 1]]))
    tensor([[[[1., 0.],
              [3., 2.]]]])
    """

    def __init__(
        self,
        *,
        dims: tuple[int, ...] = (-2, -1),
        n_trans: int = 1,
        rng: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_trans=n_trans, rng=rng)
        dims = tuple(dims)
        if not dims or any(d not in (-2, -1) for d in dims) or len(set(dims)) != len(dims):
            raise ValueError(f"dims must be distinct axes among (-2, -1), got {dims}")
        self.dims = dims
        self.param_spec = {"flips": (len(dims),)}

    def _sample_params(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> Params:
        d = len(self.dims)
        flips = torch.randint(2, (n, d), generator=generator, device=generator.device).cpu()
        return {"flips": flips}

    def _support(self, shape: tuple[int, ...]) -> Params:
        cols = cartesian(*([torch.tensor([0, 1])] * len(self.dims)))
        return {"flips": torch.stack(cols, dim=1)}

    def _invert_params(self, params: Params) -> Params:
        return dict(params)  # involutions: g^{-1} = g

    def _transform(self, x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        for a, dim in enumerate(self.dims):
            x = _flip_where(x, flips[:, a], dim)
        return x


class Dihedral(GroupTransform):
    r"""The dihedral group :math:`D_4`: the 8 symmetries of the square (exact permutations).

    .. math::

        T_{(k, f)} = R^{k} F^{f},\qquad k \in \{0,1,2,3\},\ f \in \{0, 1\},

    with :math:`F` the flip of the columns (``torch.flip(x, (-1,))``) and :math:`R` a quarter turn
    (``torch.rot90(x, 1, (-2, -1))``). Since :math:`F R F = R^{-1}`, the inverse of
    :math:`(k, f)` is :math:`F^f R^{-k}`, which is :math:`(-k, 0)` or :math:`(k, 1)`.

    :param int n_trans: copies per image.
    :param torch.Generator rng: random generator.

    Parameters: ``k`` (quarter turns) and ``flip`` (0/1), integer tensors of shape ``(L,)``.
    Needs square images.
    """

    param_spec = {"k": (), "flip": ()}

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        _check_square(shape, "Dihedral (D4)")

    def _sample_params(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> Params:
        return {
            "k": sample_uniform(torch.arange(4), n, generator),
            "flip": sample_uniform(torch.arange(2), n, generator),
        }

    def _support(self, shape: tuple[int, ...]) -> Params:
        k, f = cartesian(torch.arange(4), torch.arange(2))
        return {"k": k, "flip": f}

    def _invert_params(self, params: Params) -> Params:
        k, f = params["k"], params["flip"]
        return {"k": torch.where(f.bool(), k, -k) % 4, "flip": f}

    def _transform(self, x: torch.Tensor, k: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        if k.is_floating_point() or flip.is_floating_point():
            raise ValueError("Dihedral parameters k and flip must be integers")
        return _rot90_where(_flip_where(x, flip, -1), k)

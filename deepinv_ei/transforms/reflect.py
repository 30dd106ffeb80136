r"""Exact flips and the dihedral group :math:`D_4` of the square."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from deepinv.transform.base import TransformParam

from deepinv_ei.transforms.base import GroupTransform, Params
from deepinv_ei.transforms.functional import (
    as_images,
    as_plain_tensor,
    by_code,
    cartesian,
    check_square,
    sample_uniform,
    sample_without_replacement,
)


class Reflect(GroupTransform):
    r"""Flips along chosen axes, the group :math:`\mathbb{Z}_2^{d}`; a drop-in for
    :class:`deepinv.transform.Reflect`.

    Each element is a subset :math:`S` of the axes ``dim``; :math:`T_S` flips ``x`` along every
    axis of :math:`S`. Every element is its own inverse and transpose (exact permutations).

    :param int, list[int] dim: axis or axes that may flip (deepinv's meaning; any tensor axes).
    :param bool per_sample: one random subset per output image (default), or, with ``False``,
        ``n_trans`` distinct subsets shared by the batch, drawn as deepinv draws them
        (``Reflect(dim=[-2, -1], n_trans=4, per_sample=False)`` visits the whole group).
    :param kwargs: the other options of :class:`GroupTransform` (``n_trans``, ``rng``,
        ``constant_shape``, ``flatten_video_input``, ``device``).

    Parameters: ``dims`` (deepinv's format), a float tensor of shape ``(N, d)`` or ``(N, K, d)``
    with ``d = len(dim)``: each row lists the axes to flip, padded with NaN.

    :Examples:

    >>> import torch
    >>> from deepinv_ei.transforms import Reflect
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> Reflect().transform(x, dims=torch.tensor([[-1.0, float("nan")]]))
    tensor([[[[1., 0.],
              [3., 2.]]]])
    """

    def __init__(self, *args: Any, dim: int | Sequence[int] = (-2, -1), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        axes = [dim] if isinstance(dim, int) and not isinstance(dim, bool) else dim
        try:
            axes = list(axes)
        except TypeError:
            raise TypeError(f"Reflect: dim must be an int or a list of ints, got {dim!r}") from None
        if (
            not axes
            or any(isinstance(a, bool) or not isinstance(a, int) for a in axes)
            or len(set(axes)) != len(axes)
        ):
            raise ValueError(f"Reflect: dim must be distinct integer axes, got {dim!r}")
        self.dim = axes
        self.param_spec = {"dims": (len(axes),)}
        # Rows of the subsets of dim, NaN-padded, in deepinv's order.
        subsets = [s for r in range(len(axes) + 1) for s in itertools.combinations(axes, r)]
        rows = torch.full((len(subsets), len(axes)), float("nan"))
        for i, s in enumerate(subsets):
            rows[i, : len(s)] = torch.tensor(s, dtype=torch.float32)
        self._subsets = rows

    def _wrap(self, dims: torch.Tensor) -> TransformParam:
        # Negation leaves flips unchanged (involutions), also for generic inverters.
        return TransformParam(dims, neg=lambda v: v)

    def _sample(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> Params:
        idx = sample_uniform(torch.arange(len(self._subsets)), n, generator)
        return {"dims": self._subsets[idx]}

    def _sample_copies(self, shape: tuple[int, ...]) -> Params:
        idx = sample_without_replacement(torch.arange(len(self._subsets)), self.n_trans, self.rng)
        return {"dims": self._subsets[idx]}

    def _get_params(self, x: torch.Tensor) -> Params:
        return {"dims": self._wrap(super()._get_params(x)["dims"])}

    def _support(self, shape: tuple[int, ...]) -> Params:
        return {"dims": self._subsets.clone()}

    def invert_params(self, params: dict) -> dict:
        return {**params}  # involutions: g^{-1} = g

    def _check_values(self, params: Params) -> None:
        d = params["dims"]
        ok = torch.isnan(d) | (d == d.round())
        if not d.is_floating_point():
            params["dims"] = d = d.to(torch.float32)
        elif not bool(ok.all()):
            raise ValueError(f"Reflect dims must hold integer axes or NaN, got {d.tolist()}")

    def _act(self, x: torch.Tensor, elems: Params, inverse: bool) -> torch.Tensor:
        dims = elems["dims"]
        axes = torch.unique(dims[~torch.isnan(dims)]).long().tolist()
        for axis in axes:
            if not -x.ndim < axis < x.ndim or axis in (0, -x.ndim):
                raise ValueError(f"Reflect axis {axis} is not an image axis of a {x.ndim}D tensor")
        # One bit per axis: images with the same set of flipped axes move together.
        codes = torch.zeros(len(x), dtype=torch.long, device=x.device)
        for bit, axis in enumerate(axes):
            codes |= (dims == axis).any(dim=-1).long() << bit

        def flip(v: torch.Tensor, code: int) -> torch.Tensor:
            chosen = [axis for bit, axis in enumerate(axes) if code >> bit & 1]
            return torch.flip(v, dims=chosen) if chosen else v

        return by_code(x, codes, flip)


class Dihedral(GroupTransform):
    r"""The dihedral group :math:`D_4`: the 8 symmetries of the square (exact permutations).

    .. math::

        T_{(k, f)} = R^{k} F^{f},\qquad k \in \{0,1,2,3\},\ f \in \{0, 1\},

    with :math:`F` the flip of the columns (``torch.flip(x, (-1,))``) and :math:`R` a quarter turn
    (``torch.rot90(x, 1, (-2, -1))``). Since :math:`F R F = R^{-1}`, the inverse of
    :math:`(k, f)` is :math:`F^f R^{-k}`, which is :math:`(-k, 0)` or :math:`(k, 1)`.

    deepinv has no namesake; ``Rotate(multiples=90) * Reflect(dim=[-1])`` draws the same set.

    Takes the options of :class:`GroupTransform` (``per_sample``, ``n_trans``, ``rng``...).

    Parameters: ``k`` (quarter turns) and ``flip`` (0/1), integer tensors of shape ``(N,)`` or
    ``(N, K)``; one left out is 0. Needs square images.
    """

    param_spec = {"k": (), "flip": ()}

    def check_shape(self, shape: tuple[int, ...]) -> None:
        check_square(shape, "Dihedral (D4)")

    def _sample(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> Params:
        return {
            "k": sample_uniform(torch.arange(4), n, generator),
            "flip": sample_uniform(torch.arange(2), n, generator),
        }

    def _sample_copies(self, shape: tuple[int, ...]) -> Params:
        k, f = cartesian(torch.arange(4), torch.arange(2))
        idx = sample_without_replacement(torch.arange(8), self.n_trans, self.rng)
        return {"k": k[idx], "flip": f[idx]}

    def _support(self, shape: tuple[int, ...]) -> Params:
        k, f = cartesian(torch.arange(4), torch.arange(2))
        return {"k": k, "flip": f}

    def _missing(self, name: str, like: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(like, dtype=torch.long)

    def invert_params(self, params: dict) -> dict:
        k, f = as_plain_tensor(params["k"]).long(), as_plain_tensor(params["flip"]).long()
        return {**params, "k": torch.where(f.bool(), k, -k) % 4, "flip": f}

    def _check_values(self, params: Params) -> None:
        for key, p in params.items():
            if p.is_floating_point() and not bool((p == p.round()).all()):
                raise ValueError(f"Dihedral parameter {key} must be integers, got {p.tolist()}")
            params[key] = p.long()
        if not bool(((params["flip"] == 0) | (params["flip"] == 1)).all()):
            raise ValueError(f"Dihedral flip must be 0 or 1, got {params['flip'].tolist()}")

    def _act(self, x: torch.Tensor, elems: Params, inverse: bool) -> torch.Tensor:
        imgs, shape = as_images(x)
        check_square(shape, "Dihedral (D4)")
        k, f = elems["k"] % 4, elems["flip"]

        def act(v: torch.Tensor, code: int) -> torch.Tensor:
            q, flip = code // 2, code % 2
            if inverse:
                v = torch.rot90(v, -q, dims=(-2, -1)) if q else v
                return torch.flip(v, dims=(-1,)) if flip else v
            v = torch.flip(v, dims=(-1,)) if flip else v
            return torch.rot90(v, q, dims=(-2, -1)) if q else v

        return by_code(imgs, 2 * k + f, act).reshape(shape)

r"""Products of groups: :math:`T_{(g_1, \dots, g_r)} = T^{(r)}_{g_r} \circ \dots \circ T^{(1)}_{g_1}`."""

from __future__ import annotations

import torch

from deepinv_ei.transforms.base import GroupTransform, Params


class Product(GroupTransform):
    r"""Composition of group actions, each factor drawing its own element per output image.

    ``Shift() * Reflect()`` builds ``Product(Shift(), Reflect())``: first shift, then reflect.
    The inverse applies the factors' inverses in reverse order,
    :math:`T^{-1} = (T^{(1)}_{g_1})^{-1} \circ \dots \circ (T^{(r)}_{g_r})^{-1}`, so it is exact
    whenever every factor is. (Whether the product of two subgroups is itself a group, e.g. a
    semidirect product like shifts and flips, is up to the factors; the diagnostics only need the
    set of elements.)

    Parameter names are the factors' names; if two factors share a name, every name is prefixed
    by the factor's index (``"0_x_shift"``, ``"1_x_shift"``).

    :param factors: two or more :class:`GroupTransform` instances (products are flattened).
    :param int n_trans: copies per image; defaults to the product of the factors' ``n_trans``,
        as for deepinv's ``*``.
    :param torch.Generator rng: random generator for all factors; defaults to the first factor's.
    """

    def __init__(
        self,
        *factors: GroupTransform,
        n_trans: int | None = None,
        rng: torch.Generator | None = None,
    ) -> None:
        flat: list[GroupTransform] = []
        for f in factors:
            if not isinstance(f, GroupTransform):
                raise TypeError(
                    f"Product factors must be deepinv_ei GroupTransforms, got {type(f).__name__}"
                )
            flat.extend(f.factors if isinstance(f, Product) else [f])
        if len(flat) < 2:
            raise ValueError(f"a product needs at least two factors, got {len(flat)}")
        if n_trans is None:
            n_trans = 1
            for f in factors:
                n_trans *= f.n_trans
        super().__init__(n_trans=n_trans, rng=rng if rng is not None else flat[0].rng)
        self.factors = torch.nn.ModuleList(flat)
        names = [name for f in flat for name in f.param_spec]
        self._prefixed = len(set(names)) != len(names)
        self.param_spec = {
            self._key(i, name): shape
            for i, f in enumerate(flat)
            for name, shape in f.param_spec.items()
        }
        self.exact = all(f.exact for f in flat)
        self.orthogonal = all(f.orthogonal for f in flat)

    def _key(self, i: int, name: str) -> str:
        return f"{i}_{name}" if self._prefixed else name

    def _split(self, params: Params) -> list[Params]:
        return [
            {name: params[self._key(i, name)] for name in f.param_spec}
            for i, f in enumerate(self.factors)
        ]

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        for f in self.factors:
            f._check_shape(shape)

    def _sample_params(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> Params:
        out: Params = {}
        for i, f in enumerate(self.factors):
            for name, value in f._sample_params(n, shape, generator).items():
                out[self._key(i, name)] = value
        return out

    def _support(self, shape: tuple[int, ...]) -> Params | None:
        supports = [f._support(shape) for f in self.factors]
        if any(s is None for s in supports):
            return None
        sizes = [len(next(iter(s.values()))) for s in supports]
        index = torch.cartesian_prod(*[torch.arange(n) for n in sizes]).view(-1, len(sizes))
        out: Params = {}
        for i, s in enumerate(supports):
            for name, value in s.items():
                out[self._key(i, name)] = value[index[:, i]]
        return out

    def _transform(self, x: torch.Tensor, **params: torch.Tensor) -> torch.Tensor:
        for f, p in zip(self.factors, self._split(params), strict=True):
            x = f._transform(x, **p)
        return x

    def _inverse_transform(self, x: torch.Tensor, **params: torch.Tensor) -> torch.Tensor:
        for f, p in reversed(list(zip(self.factors, self._split(params), strict=True))):
            x = f._inverse_transform(x, **p)
        return x

    def _adjoint_transform(self, x: torch.Tensor, **params: torch.Tensor) -> torch.Tensor:
        for f, p in reversed(list(zip(self.factors, self._split(params), strict=True))):
            x = f._adjoint_transform(x, **p)
        return x

    def _invert_params(self, params: Params) -> Params:
        raise NotImplementedError(
            "a product's inverse is not a product with inverted parameters in the same order; "
            "use Product.inverse"
        )

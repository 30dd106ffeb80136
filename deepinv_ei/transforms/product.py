r"""Products of groups: :math:`T_{(g_1, \dots, g_r)} = T^{(r)}_{g_r} \circ \dots \circ T^{(1)}_{g_1}`."""

from __future__ import annotations

import torch

from deepinv_ei.transforms.base import GroupTransform, Params


class Product(GroupTransform):
    r"""Composition of our group actions, ``Shift() * Reflect()``: first shift, then reflect.

    It has the layout of deepinv's composition ``T1 * T2`` (``n_trans`` is the product of the
    factors' ``n_trans``; copy ``i2 * n1 + i1`` combines element ``i1`` of the first factor with
    element ``i2`` of the second), and adds what deepinv's composition lacks: the inverse applies
    the factors' exact inverses in reverse order,
    :math:`T^{-1} = (T^{(1)}_{g_1})^{-1} \circ \dots \circ (T^{(r)}_{g_r})^{-1}`, so
    :math:`T^{-1}T = I` exactly whenever every factor is exact; elements are per sample; the
    transpose, the finite set of elements and ODL operators are available. (Whether the product
    of two subgroups is itself a group, e.g. a semidirect product like shifts and flips, is up to
    the factors; the diagnostics only need the set of elements.)

    Parameter names are the factors' names; if two factors share a name, every name is prefixed
    by the factor's index (``"0_x_shift"``, ``"1_x_shift"``).

    :param factors: two or more :class:`GroupTransform` instances (products are flattened).
    :param int n_trans: copies per image; ``None`` for the product of the factors' ``n_trans``
        (the factors draw their own copies, combined as deepinv combines them); an explicit value
        draws ``n_trans`` i.i.d. product elements per image.
    :param torch.Generator rng: random generator of :meth:`get_params` when drawing from
        :meth:`group_elements`-free factors is delegated; defaults to the first factor's.
    :param bool flatten_video_input: accept 5-D video input; defaults to the first factor's.
    """

    def __init__(
        self,
        *factors: GroupTransform,
        n_trans: int | None = None,
        rng: torch.Generator | None = None,
        flatten_video_input: bool | None = None,
    ) -> None:
        flat: list[GroupTransform] = []
        for f in factors:
            if not isinstance(f, GroupTransform):
                raise TypeError(
                    f"Product factors must be deepinv_ei GroupTransforms, got {type(f).__name__}"
                )
            if not f.constant_shape:
                raise ValueError("Product factors must keep the image shape (constant_shape=True)")
            flat.extend(f.factors if isinstance(f, Product) else [f])
        if len(flat) < 2:
            raise ValueError(f"a product needs at least two factors, got {len(flat)}")
        total = 1
        for f in flat:
            total *= f.n_trans
        # With an explicit n_trans, every copy draws i.i.d. product elements per sample.
        self_drawn = n_trans is not None
        super().__init__(
            n_trans=total if n_trans is None else n_trans,
            rng=rng if rng is not None else flat[0].rng,
            flatten_video_input=(
                flat[0].flatten_video_input if flatten_video_input is None else flatten_video_input
            ),
            per_sample=any(f.per_sample for f in flat),
        )
        self.factors = torch.nn.ModuleList(flat)
        self._self_drawn = self_drawn
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

    def _get_params(self, x: torch.Tensor) -> Params:
        # Each factor draws its own copies; copy i2 * n1 + i1 pairs element i1 with i2 (deepinv's
        # order for T1 * T2), per-sample dimensions broadcast to the batch.
        if self._self_drawn:
            return super()._get_params(x)
        drawn = []
        for f in self.factors:
            p, n, k = f._normalise(x, f._get_params(x))
            drawn.append((p, n, k))
        ks = {k for _, _, k in drawn}
        kmax = max(ks)
        index = torch.cartesian_prod(*[torch.arange(n) for _, n, _ in reversed(drawn)])
        index = index.view(-1, len(drawn)).flip(-1)  # column i: copy index of factor i
        out: Params = {}
        for i, (p, _, k) in enumerate(drawn):
            for name, value in p.items():
                if k != kmax:
                    value = value.expand(value.shape[0], kmax, *value.shape[2:])
                picked = value[index[:, i].to(value.device)]
                out[self._key(i, name)] = picked if kmax > 1 else picked[:, 0]
        return out

    def _sample(self, n: int, shape: tuple[int, ...], generator: torch.Generator) -> Params:
        out: Params = {}
        for i, f in enumerate(self.factors):
            for name, value in f._sample(n, shape, generator).items():
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

    def _missing(self, name: str, like: torch.Tensor) -> torch.Tensor:
        for i, f in enumerate(self.factors):
            for own in f.param_spec:
                if self._key(i, own) == name:
                    return f._missing(own, like)
        raise KeyError(name)  # pragma: no cover - names come from param_spec

    def _check_values(self, params: Params) -> None:
        for i, (f, p) in enumerate(zip(self.factors, self._split(params), strict=True)):
            f._check_values(p)
            for name, value in p.items():
                params[self._key(i, name)] = value

    def _act(self, x: torch.Tensor, elems: Params, inverse: bool) -> torch.Tensor:
        pairs = list(zip(self.factors, self._split(elems), strict=True))
        for f, p in reversed(pairs) if inverse else pairs:
            x = f._act(x, p, inverse)
        return x

    def _adjoint_act(self, x: torch.Tensor, elems: Params) -> torch.Tensor:
        for f, p in reversed(list(zip(self.factors, self._split(elems), strict=True))):
            x = f._adjoint_act(x, p)
        return x

    def invert_params(self, params: dict) -> dict:
        raise NotImplementedError(
            "a product's inverse is not a product with inverted parameters in the same order; "
            "use Product.inverse"
        )

    def extra_repr(self) -> str:
        return " * ".join(type(f).__name__ for f in self.factors)

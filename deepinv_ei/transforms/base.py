r"""Group actions on deepinv's :class:`deepinv.transform.Transform` hooks, and their products.

deepinv's transforms implement two hooks, ``_get_params(x)`` (random parameters, one set per
``n_trans`` copy) and ``_transform(x, **params)`` (``len(params)`` copies of the batch, stacked
copy-major: copy ``i`` of image ``b`` at index ``i * B + b``), and deepinv builds everything else
on them: ``forward``, ``inverse``, ``symmetrize``, ``identity``, 5-D video input and the
arithmetic ``*`` (composition), ``+`` (stacking) and ``|`` (random choice).
:class:`GroupTransform` implements the same hooks with the same layout, so our transforms mix
with any deepinv transform.

Parameters
----------
Each parameter is a tensor whose first dimension indexes the copies (length :math:`N`):

- shape ``(N, *trailing)`` (deepinv's convention): element ``p[i]`` acts on every image of
  copy ``i``;
- shape ``(N, K, *trailing)`` (per-sample elements): element ``p[i, j mod K]`` acts on image
  ``j`` of copy ``i``; ``K`` must divide the batch size. ``get_params`` draws this form with
  ``K = B`` when ``per_sample=True`` (the default), one independent element per output image.

Inside a deepinv composition ``A * B`` the second factor sees the ``n_A * B`` outputs of the
first; a per-sample parameter of shape ``(N, B)`` then gives image ``j`` the element of its
source image ``j mod B``.

``inverse`` applies the exact inverse elements :math:`T_g^{-1}` (not the action of negated
parameters, which for interpolated rotations is only approximately the inverse).

:class:`Product` composes our group actions (``Shift() * Reflect()``); it lives here because
``GroupTransform.__mul__`` builds it, as deepinv's ``Transform.__mul__`` builds its composition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from deepinv.transform import Transform

from deepinv_ei.transforms.functional import as_plain_tensor, check_bool

Params = dict[str, torch.Tensor]


class GroupTransform(Transform):
    r"""A group action :math:`x \mapsto T_g x` on images, usable wherever deepinv takes a transform.

    Subclasses declare ``param_spec`` (name → trailing shape of one element), ``exact`` (every
    element is a pixel permutation, so group laws hold to the last bit) and ``orthogonal``
    (:math:`T_g^\top = T_g^{-1}`), and implement

    - ``_sample(n, shape, generator)``: ``n`` i.i.d. random elements, tensors of leading size ``n``;
    - ``_sample_copies(shape)``: ``n_trans`` elements drawn as deepinv draws them (used with
      ``per_sample=False``);
    - ``_act(x, elems, inverse)``: apply element ``i`` (or its inverse) to ``x[i]``;

    and, where they apply, ``check_shape``, ``_support``, ``_missing`` and ``_check_values``.
    Subclasses take their own options as keywords and forward the others (``**kwargs``) here.

    :param int n_trans: number of transformed copies per input image (at least 1).
    :param torch.Generator rng: random generator of the group elements; ``None`` for a fresh
        :class:`torch.Generator` (on ``device`` if given).
    :param bool constant_shape: deepinv's option; ``True`` keeps the image shape.
    :param bool flatten_video_input: accept 5-D video ``(B, C, T, H, W)`` by folding the time
        axis into the channels (deepinv's default).
    :param device: device of a generator created here; ``None`` for the CPU.
    :param bool per_sample: draw one independent element per output image (default); ``False``
        draws one element per copy, shared by the batch, exactly as deepinv does.
    """

    param_spec: Mapping[str, tuple[int, ...]] = {}
    exact: bool = True
    orthogonal: bool = True

    def __init__(
        self,
        *args: Any,
        n_trans: int = 1,
        rng: torch.Generator | None = None,
        constant_shape: bool = True,
        flatten_video_input: bool = True,
        device: torch.device | str | None = None,
        per_sample: bool = True,
    ) -> None:
        name = type(self).__name__
        if args:
            raise TypeError(
                f"{name} takes keyword arguments only, got positional arguments {args!r}"
            )
        if isinstance(n_trans, bool) or not isinstance(n_trans, int) or n_trans < 1:
            raise ValueError(f"{name}: n_trans must be an integer >= 1, got {n_trans!r}")
        if rng is not None and not isinstance(rng, torch.Generator):
            raise TypeError(
                f"{name}: rng must be a torch.Generator or None, got {type(rng).__name__}"
            )
        check_bool(name, "constant_shape", constant_shape)
        check_bool(name, "flatten_video_input", flatten_video_input)
        check_bool(name, "per_sample", per_sample)
        if rng is None and device is not None:
            rng = torch.Generator(torch.device(device))
        super().__init__(
            n_trans=n_trans,
            rng=rng,
            constant_shape=constant_shape,
            flatten_video_input=flatten_video_input,
        )
        self.per_sample = per_sample

    # ------------------------------------------------------------------ hooks
    def _sample(
        self, n: int, shape: tuple[int, ...], generator: torch.Generator
    ) -> Params:  # pragma: no cover - abstract
        raise NotImplementedError

    def _sample_copies(self, shape: tuple[int, ...]) -> Params:
        return self._sample(self.n_trans, shape, self.rng)

    def _act(
        self, x: torch.Tensor, elems: Params, inverse: bool
    ) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _adjoint_act(self, x: torch.Tensor, elems: Params) -> torch.Tensor:
        if self.orthogonal:
            return self._act(x, elems, inverse=True)
        # The action is linear, so the vector-Jacobian product is the exact transpose.
        with torch.enable_grad():
            z = torch.zeros_like(x, requires_grad=True)
            (out,) = torch.autograd.grad(self._act(z, elems, inverse=False), z, grad_outputs=x)
        return out

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` if the elements do not act as an exact group (invertibly) on
        images of this shape, e.g. quarter turns on non-square images."""

    def _support(self, shape: tuple[int, ...]) -> Params | None:
        """All elements the sampler can draw (a finite group), or ``None`` if infinitely many."""
        return None

    def _missing(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """Value of a parameter left out (deepinv pads shifts with 0); raise if none makes sense."""
        raise ValueError(
            f"{type(self).__name__} needs parameter {name!r}; got only "
            f"{sorted(set(self.param_spec) - {name})}"
        )

    def _check_values(self, params: Params) -> None:
        """Validate parameter values (integers, finite angles...): hook for subclasses."""

    # --------------------------------------------------------------- deepinv hooks
    def _check_x_5D(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor image batch, got {type(x).__name__}")
        if x.ndim not in (4, 5):
            raise ValueError(
                f"expected a 4D (B, C, H, W) or 5D (B, C, T, H, W) tensor, got shape "
                f"{tuple(x.shape)} ({x.ndim}D)"
            )
        return x.ndim == 5

    def _get_params(self, x: torch.Tensor) -> Params:
        shape = tuple(x.shape[1:])
        if self.per_sample:
            n, batch = self.n_trans, x.shape[0]
            raw = self._sample(n * batch, shape, self.rng)
            params = {k: v.reshape(n, batch, *v.shape[1:]) for k, v in raw.items()}
        else:
            params = self._sample_copies(shape)
        return {k: v.to(x.device) for k, v in params.items()}

    def _transform(self, x: torch.Tensor, **params: Any) -> torch.Tensor:
        return self.apply(x, params)

    # ------------------------------------------------------------- public API
    def normalise_params(
        self, params: Mapping[str, Any], device: torch.device | str | None = None
    ) -> tuple[Params, int, int]:
        r"""Validate parameters and bring them to the form ``(N, K, *trailing)``.

        Accepts every form described in the module notes (deepinv's ``(N, *trailing)``, one
        element without the copy dimension, deepinv's ``TransformParam`` wrappers); missing
        parameters get their neutral value where one exists. Unknown keys (other transforms'
        parameters in a deepinv composition) are ignored.

        :param dict params: the parameters.
        :param device: device of the returned tensors; ``None`` keeps theirs.
        :return: ``(params, N, K)``: plain tensors of shape ``(N, K, *trailing)``, the number
            of copies ``N`` and of per-sample elements ``K`` per copy.
        """
        name = type(self).__name__
        given = {k: as_plain_tensor(params[k]).to(device) for k in self.param_spec if k in params}
        if not given:
            raise ValueError(
                f"{name} expects parameters {sorted(self.param_spec)}, got {sorted(params)}"
            )
        out: Params = {}
        for key, trailing in self.param_spec.items():
            if key not in given:
                continue
            p = given[key]
            if p.ndim == len(trailing):  # one element given without the copy dimension
                p = p.unsqueeze(0)
            while p.ndim > 2 + len(trailing) and p.shape[0] == 1:
                # deepinv's TransformParam wraps lists once more (symmetrize, collate_batch=False)
                p = p[0]
            if p.ndim == 1 + len(trailing):
                p = p.unsqueeze(1)
            if p.ndim != 2 + len(trailing) or tuple(p.shape[2:]) != tuple(trailing):
                tail = "".join(f", {t}" for t in trailing)
                raise ValueError(
                    f"parameter {key!r} of {name} must have shape (N{tail}) or (N, K{tail}) "
                    f"(N copies, K per-sample elements), got {tuple(p.shape)}"
                )
            out[key] = p
        sizes = {tuple(p.shape[:2]) for p in out.values()}
        if len(sizes) > 1:
            ns = {s[0] for s in sizes}
            ks = {s[1] for s in sizes}
            if len(ks) == 1 and ks == {1}:
                # deepinv pads shared parameters of different lengths with their neutral value.
                n = max(ns)
                out = {k: self._pad(k, v, n) for k, v in out.items()}
            else:
                raise ValueError(
                    f"parameters of {name} must agree in shape (N, K), got "
                    f"{ {k: tuple(v.shape[:2]) for k, v in out.items()} }"
                )
        n, k = next(iter(out.values())).shape[:2]
        for key in self.param_spec:
            if key not in out:
                ref = next(iter(out.values()))
                out[key] = self._missing(key, ref)
        if n == 0:
            raise ValueError(f"{name}: parameters must hold at least one element, got none")
        self._check_values(out)
        return out, int(n), int(k)

    def apply(
        self,
        x: torch.Tensor,
        params: Mapping[str, Any],
        inverse: bool = False,
        batchwise: bool = True,
    ) -> torch.Tensor:
        r"""Apply the given elements :math:`T_g` (or their exact inverses :math:`T_g^{-1}`).

        The group action itself, on the pixel grid of ``x`` (the shape is kept): what
        :meth:`transform` and :meth:`inverse` do on 4-D input, without deepinv's video handling
        and random draws.

        :param torch.Tensor x: images ``(B, C, H, W)`` (any ``(B, ..., H, W)``).
        :param dict params: the parameters, in any form :meth:`normalise_params` accepts.
        :param bool inverse: apply the inverse elements.
        :param bool batchwise: as in :meth:`inverse`: ``True``, every copy's elements act on
            the whole ``x`` (``N * B`` images out); ``False``, ``x`` holds the ``N`` copies
            stacked and copy ``i`` gets element ``i``.
        """
        z, elems = self._per_output_elements(x, params, batchwise)
        return self._act(z, elems, inverse)

    def inverse(self, x: torch.Tensor, batchwise: bool = True, **params: Any) -> torch.Tensor:
        r"""Apply the inverse elements :math:`T_{g}^{-1}` (exactly, for exact groups).

        :param torch.Tensor x: images, 4-D or 5-D.
        :param bool batchwise: ``True``: every copy's elements act on the whole ``x`` (output
            ``N * len(x)`` images, as :meth:`transform`); ``False``: ``x`` holds the ``N``
            copies stacked (``len(x) = N * B``) and copy ``i`` gets the inverse of element ``i``,
            so ``inverse(transform(x, **p), batchwise=False, **p)`` returns ``N`` copies of ``x``.
        :param params: the parameters; drawn at random if none are given (deepinv's behaviour).
        """
        if not params:
            params = self.get_params(x)

        def undo(z: torch.Tensor) -> torch.Tensor:
            return self.apply(z, params, inverse=True, batchwise=batchwise)

        if self._check_x_5D(x) and self.flatten_video_input:
            return self.wrap_flatten_C(undo)(x)
        return undo(x)

    def adjoint(self, x: torch.Tensor, batchwise: bool = True, **params: Any) -> torch.Tensor:
        r"""Apply the transposes :math:`T_{g}^\top` (the inverses for orthogonal groups).

        ``batchwise`` as in :meth:`inverse`. The transpose of ``x -> transform(x, **p)``
        (``B`` images to ``N * B``) is ``adjoint(w, batchwise=False, **p)`` summed over the
        ``N`` copies.
        """
        self._check_x_5D(x)
        z, elems = self._per_output_elements(x, params, batchwise)
        return self._adjoint_act(z, elems)

    def group_elements(self, shape: tuple[int, ...]) -> Params | None:
        r"""Every element the sampler can draw, as parameters of length ``G``; ``None`` if infinite.

        Applied with :meth:`transform` to one image they give its ``G`` transformed copies.

        :param tuple shape: image shape ``(C, H, W)``.
        :raises ValueError: if the elements do not act as an exact group on this shape.
        """
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(f"shape must be (C, H, W), got {shape}")
        self.check_shape(shape)
        return self._support(shape)

    def __mul__(self, other: Transform) -> Transform:
        r"""``self * other``: first ``self``, then ``other``.

        Between two of our transforms the result is a :class:`~deepinv_ei.transforms.Product`
        (exact inverse, per-sample elements, listed elements); with any other deepinv transform
        it is deepinv's own composition.
        """
        if isinstance(other, GroupTransform) and self.constant_shape and other.constant_shape:
            return Product(self, other)
        return super().__mul__(other)

    # ---------------------------------------------------------------- layout
    def _pad(self, key: str, p: torch.Tensor, n: int) -> torch.Tensor:
        if p.shape[0] == n:
            return p
        fill = self._missing(key, p[:1].expand(n, *p.shape[1:]))
        fill[: p.shape[0]] = p
        return fill

    def _per_output_elements(
        self, x: torch.Tensor, params: Mapping[str, Any], batchwise: bool
    ) -> tuple[torch.Tensor, Params]:
        """The images to act on (``x`` repeated per copy if ``batchwise``) and their elements.

        Output ``i * count + j`` gets element ``p[i, j mod K]``.
        """
        p, n, k = self.normalise_params(params, x.device)
        if batchwise:
            count = len(x)
            x = x if n == 1 else x.repeat(n, *([1] * (x.ndim - 1)))
        elif len(x) % n != 0:
            raise ValueError(
                f"batchwise=False needs len(x) divisible by the number of copies {n}, "
                f"got len(x)={len(x)}"
            )
        else:
            count = len(x) // n
        if count % k != 0:
            raise ValueError(
                f"per-sample parameters hold {k} elements per copy, which does not divide the "
                f"batch of {count} images"
            )
        reps = count // k
        elems = {
            key: v.repeat(1, reps, *([1] * (v.ndim - 2))).reshape(n * count, *v.shape[2:])
            for key, v in p.items()
        }
        return x, elems


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
    :param torch.Generator rng: random generator of the product's own draws (with an explicit
        ``n_trans``); defaults to the first factor's.
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

    def check_shape(self, shape: tuple[int, ...]) -> None:
        for f in self.factors:
            f.check_shape(shape)

    def _get_params(self, x: torch.Tensor) -> Params:
        # Each factor draws its own copies; copy i2 * n1 + i1 pairs element i1 with i2 (deepinv's
        # order for T1 * T2), per-sample dimensions broadcast to the batch.
        if self._self_drawn:
            return super()._get_params(x)
        drawn = [f.normalise_params(f._get_params(x), x.device) for f in self.factors]
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

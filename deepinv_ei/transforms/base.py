r"""Base class for group actions built on deepinv's :class:`deepinv.transform.Transform` hooks.

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from deepinv.transform import Transform
from deepinv.transform.base import TransformParam

Params = dict[str, torch.Tensor]


def _plain(p: Any) -> torch.Tensor:
    """A parameter as a plain tensor (``TransformParam`` and lists accepted)."""
    if isinstance(p, TransformParam):
        return p.as_subclass(torch.Tensor)
    if isinstance(p, torch.Tensor):
        return p
    return torch.as_tensor(p)


class GroupTransform(Transform):
    r"""A group action :math:`x \mapsto T_g x` on images, usable wherever deepinv takes a transform.

    Subclasses declare ``param_spec`` (name → trailing shape of one element), ``exact`` (every
    element is a pixel permutation, so group laws hold to the last bit) and ``orthogonal``
    (:math:`T_g^\top = T_g^{-1}`), and implement

    - ``_sample(n, shape, generator)``: ``n`` i.i.d. random elements, tensors of leading size ``n``;
    - ``_sample_copies(shape)``: ``n_trans`` elements drawn as deepinv draws them (used with
      ``per_sample=False``);
    - ``_act(x, elems, inverse)``: apply element ``i`` (or its inverse) to ``x[i]``.

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
        for key, flag in (
            ("constant_shape", constant_shape),
            ("flatten_video_input", flatten_video_input),
            ("per_sample", per_sample),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{name}: {key} must be a bool, got {flag!r}")
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

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise if the elements do not form an exact group on this shape (e.g. 90° on H != W)."""

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

    def _normalise(self, x: torch.Tensor, params: Mapping[str, Any]) -> tuple[Params, int, int]:
        """Own parameters as ``(N, K, *trailing)`` tensors on ``x.device``, with ``N`` and ``K``.

        Unknown keys (other transforms' parameters in a deepinv composition) are ignored.
        """
        name = type(self).__name__
        given = {k: _plain(params[k]).to(x.device) for k in self.param_spec if k in params}
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

    def _pad(self, key: str, p: torch.Tensor, n: int) -> torch.Tensor:
        if p.shape[0] == n:
            return p
        fill = self._missing(key, p[:1].expand(n, *p.shape[1:]))
        fill[: p.shape[0]] = p
        return fill

    @staticmethod
    def _per_output(params: Params, n: int, k: int, count: int) -> Params:
        """Element of each of ``n * count`` outputs: ``p[i, j mod k]`` for output ``i*count + j``."""
        if count % k != 0:
            raise ValueError(
                f"per-sample parameters hold {k} elements per copy, which does not divide the "
                f"batch of {count} images"
            )
        reps = count // k
        return {
            key: p.repeat(1, reps, *([1] * (p.ndim - 2))).reshape(n * count, *p.shape[2:])
            for key, p in params.items()
        }

    def _apply_batchwise(self, x: torch.Tensor, params: Mapping[str, Any], inverse: bool):
        p, n, k = self._normalise(x, params)
        elems = self._per_output(p, n, k, len(x))
        xx = x if n == 1 else x.repeat(n, *([1] * (x.ndim - 1)))
        return self._act(xx, elems, inverse)

    def _transform(self, x: torch.Tensor, **params: Any) -> torch.Tensor:
        return self._apply_batchwise(x, params, inverse=False)

    # ------------------------------------------------------------- public API
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
        if batchwise:
            apply = lambda z: self._apply_batchwise(z, params, inverse=True)  # noqa: E731
        else:
            apply = lambda z: self._inverse_stacked(z, params)  # noqa: E731
        if self._check_x_5D(x) and self.flatten_video_input:
            return self.wrap_flatten_C(apply)(x)
        return apply(x)

    def _inverse_stacked(self, x: torch.Tensor, params: Mapping[str, Any]) -> torch.Tensor:
        p, n, k = self._normalise(x, params)
        if len(x) % n != 0:
            raise ValueError(
                f"batchwise=False needs len(x) divisible by the number of copies {n}, "
                f"got len(x)={len(x)}"
            )
        elems = self._per_output(p, n, k, len(x) // n)
        return self._act(x, elems, inverse=True)

    def adjoint(self, x: torch.Tensor, batchwise: bool = True, **params: Any) -> torch.Tensor:
        r"""Apply the transposes :math:`T_{g}^\top` (the inverses for orthogonal groups).

        ``batchwise`` as in :meth:`inverse`. The transpose of ``x -> transform(x, **p)``
        (``B`` images to ``N * B``) is ``adjoint(w, batchwise=False, **p)`` summed over the
        ``N`` copies.
        """
        self._check_x_5D(x)
        p, n, k = self._normalise(x, params)
        if batchwise:
            elems = self._per_output(p, n, k, len(x))
            x = x if n == 1 else x.repeat(n, *([1] * (x.ndim - 1)))
        else:
            if len(x) % n != 0:
                raise ValueError(
                    f"batchwise=False needs len(x) divisible by the number of copies {n}, "
                    f"got len(x)={len(x)}"
                )
            elems = self._per_output(p, n, k, len(x) // n)
        return self._adjoint_act(x, elems)

    def group_elements(self, shape: tuple[int, ...]) -> Params | None:
        r"""Every element the sampler can draw, as parameters of length ``G``; ``None`` if infinite.

        Applied with :meth:`transform` to one image they give its ``G`` transformed copies.

        :param tuple shape: image shape ``(C, H, W)``.
        :raises ValueError: if the elements do not act as an exact group on this shape.
        """
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(f"shape must be (C, H, W), got {shape}")
        self._check_shape(shape)
        return self._support(shape)

    def as_odl_operator(self, space: Any, **params: Any):
        r"""The ODL linear operator of ONE group element acting on a 2D ``odl.uniform_discr``.

        :param space: a 2D :class:`odl.DiscretizedSpace` of shape ``(H, W)``.
        :param params: the parameters of one element (scalars or length-1 tensors).
        :return: :class:`deepinv_ei.transforms.GroupElementOperator`, linear, with ``.adjoint``
            (the inverse permutation for exact groups) and ``.inverse``.
        """
        from deepinv_ei.transforms.odl_operator import GroupElementOperator

        return GroupElementOperator(self, space, params)

    def __mul__(self, other: Transform) -> Transform:
        r"""``self * other``: first ``self``, then ``other``.

        Between two of our transforms the result is a :class:`~deepinv_ei.transforms.Product`
        (exact inverse, per-sample elements, ODL operators); with any other deepinv transform it
        is deepinv's own composition.
        """
        from deepinv_ei.transforms.product import Product

        if isinstance(other, GroupTransform) and self.constant_shape and other.constant_shape:
            return Product(self, other)
        return super().__mul__(other)


def sample_uniform(values: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` i.i.d. uniform draws from the 1D tensor ``values``."""
    idx = torch.randint(len(values), (n,), generator=generator, device=generator.device)
    return values.to(generator.device)[idx].cpu()


def sample_without_replacement(
    values: torch.Tensor, n: int, generator: torch.Generator
) -> torch.Tensor:
    """The first ``n`` entries of a random permutation of ``values`` (deepinv's draw)."""
    perm = torch.randperm(len(values), generator=generator, device=generator.device)
    return values.to(generator.device)[perm][:n].cpu()


def cartesian(*columns: torch.Tensor) -> list[torch.Tensor]:
    """All combinations of the given 1D tensors, as aligned 1D tensors (first varies slowest)."""
    grids = torch.meshgrid(*columns, indexing="ij")
    return [g.reshape(-1) for g in grids]


def is_multiple(value: float, base: float) -> bool:
    return math.isclose(value / base, round(value / base), abs_tol=1e-9)


def as_images(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """View ``(L, ..., H, W)`` as ``(L, C', H, W)``; also return the original shape."""
    return x.reshape(x.shape[0], -1, *x.shape[-2:]), tuple(x.shape)


def check_finite_number(owner: str, key: str, value: Any, minimum: float | None = None) -> float:
    """A finite real number (bools refused), at least ``minimum`` if given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {key} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {key} must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {key} must be >= {minimum}, got {value!r}")
    return float(value)

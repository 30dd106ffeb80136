r"""Base class for group actions with one random group element per batch element.

deepinv's :class:`deepinv.transform.Transform` draws one parameter per ``n_trans`` copy and
shares it across the batch. :class:`GroupTransform` keeps deepinv's interface and output layout
(``n_trans`` copies stacked along the batch dimension, copy ``t`` of image ``b`` at index
``t * B + b``, the order of ``x.repeat(n_trans, 1, 1, 1)``), but draws an independent group
element for every one of the ``n_trans * B`` outputs, and carries the parameters as tensors of
length ``n_trans * B``, one entry per output image.

Parameters index output images. ``transform(x, **params)`` with ``len(params) = k * len(x)``
repeats ``x`` ``k`` times and applies element ``i`` to output ``i``; ``inverse`` does the same
with the inverse elements, so ``inverse(transform(x, **p), **p)`` returns the ``k`` stacked
copies of ``x`` (exactly, for exact groups). This one rule serves both of deepinv's ``batchwise``
modes, which is why ``batchwise`` is accepted and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from deepinv.transform import Transform

Params = dict[str, torch.Tensor]


class GroupTransform(Transform):
    r"""A group action :math:`x \mapsto T_g x` on images ``(B, C, H, W)``, one :math:`g` per output.

    Subclasses implement three hooks:

    - ``_sample_params(n, shape, generator)``: ``n`` random group elements as a dict of tensors
      with leading dimension ``n``;
    - ``_transform(x, **params)``: apply element ``i`` to ``x[i]`` (``len(x) == n``);
    - ``_invert_params(params)`` or ``_inverse_transform(x, **params)``: the inverse action.

    and declare ``param_spec`` (name → trailing shape of each parameter), ``exact`` (the action is
    a pixel permutation, so group laws hold to the last bit) and ``orthogonal``
    (:math:`T_g^\top = T_g^{-1}`).

    :param int n_trans: number of transformed copies per input image (at least 1).
    :param torch.Generator rng: random generator for the group elements; seed it for
        reproducibility. Defaults to a fresh :class:`torch.Generator`.
    """

    param_spec: Mapping[str, tuple[int, ...]] = {}
    exact: bool = True
    orthogonal: bool = True

    def __init__(self, *, n_trans: int = 1, rng: torch.Generator | None = None) -> None:
        if isinstance(n_trans, bool) or not isinstance(n_trans, int) or n_trans < 1:
            raise ValueError(f"n_trans must be an integer >= 1, got {n_trans!r}")
        if rng is not None and not isinstance(rng, torch.Generator):
            raise TypeError(f"rng must be a torch.Generator or None, got {type(rng).__name__}")
        # flatten_video_input=False: per-sample parameters are defined for 4D batches only.
        super().__init__(n_trans=n_trans, rng=rng, flatten_video_input=False)

    # ------------------------------------------------------------------ hooks
    def _sample_params(
        self, n: int, shape: tuple[int, ...], generator: torch.Generator
    ) -> Params:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(
        self, x: torch.Tensor, **params: torch.Tensor
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _invert_params(self, params: Params) -> Params:
        return {k: -v for k, v in params.items()}

    def _inverse_transform(self, x: torch.Tensor, **params: torch.Tensor) -> torch.Tensor:
        return self._transform(x, **self._invert_params(params))

    def _adjoint_transform(self, x: torch.Tensor, **params: torch.Tensor) -> torch.Tensor:
        if self.orthogonal:
            return self._inverse_transform(x, **params)
        # The action is linear, so the vector-Jacobian product is the exact transpose.
        with torch.enable_grad():
            z = torch.zeros_like(x, requires_grad=True)
            (out,) = torch.autograd.grad(self._transform(z, **params), z, grad_outputs=x)
        return out

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise if the group cannot act on images of this shape (e.g. 90° on non-square)."""

    def _support(self, shape: tuple[int, ...]) -> Params | None:
        """All elements the sampler can draw (a finite group), or ``None`` if infinitely many."""
        return None

    # --------------------------------------------------------------- checking
    @staticmethod
    def _check_input(x: Any) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor image batch, got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(
                f"expected a 4D tensor (B, C, H, W), got shape {tuple(x.shape)} ({x.ndim}D)"
            )

    def _check_x_5D(self, x: torch.Tensor) -> bool:
        self._check_input(x)
        return False

    def _coerce_params(self, x: torch.Tensor, params: Mapping[str, Any]) -> Params:
        expected = set(self.param_spec)
        given = set(params)
        if given != expected:
            raise ValueError(
                f"{type(self).__name__} expects parameters {sorted(expected)}, got {sorted(given)}"
            )
        out: Params = {}
        length = None
        for name, trailing in self.param_spec.items():
            p = params[name]
            p = p if isinstance(p, torch.Tensor) else torch.as_tensor(p)
            p = p.to(x.device)
            if p.ndim != 1 + len(trailing) or tuple(p.shape[1:]) != tuple(trailing):
                want = ("L",) + tuple(trailing)
                raise ValueError(
                    f"parameter {name!r} of {type(self).__name__} must have shape {want} "
                    f"(one entry per output image), got {tuple(p.shape)}"
                )
            if length is None:
                length = p.shape[0]
            elif p.shape[0] != length:
                raise ValueError(
                    f"all parameters must have the same length, got {length} and {p.shape[0]} "
                    f"for {name!r}"
                )
            out[name] = p
        if length is None or length == 0 or length % len(x) != 0:
            raise ValueError(
                f"parameter length must be a positive multiple of the batch size {len(x)}, "
                f"got {length}"
            )
        return out

    def _expand(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        length = next(iter(params.values())).shape[0]
        k = length // len(x)
        return x if k == 1 else x.repeat(k, 1, 1, 1)

    # ------------------------------------------------------------- public API
    def get_params(self, x: torch.Tensor) -> Params:
        r"""Draw ``n_trans * B`` random group elements, one per output image.

        :param torch.Tensor x: image batch ``(B, C, H, W)``.
        :return: dict of parameter tensors of length ``n_trans * B``.
        """
        self._check_input(x)
        self._check_shape(tuple(x.shape[1:]))
        params = self._sample_params(self.n_trans * len(x), tuple(x.shape[1:]), self.rng)
        return {k: v.to(x.device) for k, v in params.items()}

    def transform(self, x: torch.Tensor, **params: Any) -> torch.Tensor:
        r"""Apply the group elements in ``params``: output ``i`` is :math:`T_{g_i} x_{i \bmod B}`."""
        self._check_input(x)
        self._check_shape(tuple(x.shape[1:]))
        p = self._coerce_params(x, params)
        return self._transform(self._expand(x, p), **p)

    def inverse(self, x: torch.Tensor, batchwise: bool = True, **params: Any) -> torch.Tensor:
        r"""Apply the inverse elements: output ``i`` is :math:`T_{g_i}^{-1} x_{i \bmod B}`.

        ``batchwise`` is accepted for deepinv compatibility; per-output parameters make both of
        its modes the same.
        """
        self._check_input(x)
        self._check_shape(tuple(x.shape[1:]))
        if not params:
            params = self.get_params(x)
        p = self._coerce_params(x, params)
        return self._inverse_transform(self._expand(x, p), **p)

    def adjoint(self, x: torch.Tensor, **params: Any) -> torch.Tensor:
        r"""Apply the transposes :math:`T_{g_i}^\top` (the inverses for orthogonal groups)."""
        self._check_input(x)
        self._check_shape(tuple(x.shape[1:]))
        p = self._coerce_params(x, params)
        return self._adjoint_transform(self._expand(x, p), **p)

    def invert_params(self, params: dict) -> dict:
        return self._invert_params(dict(params))

    def group_elements(self, shape: tuple[int, ...]) -> Params | None:
        r"""Every element the sampler can draw, as parameters of length ``G``; ``None`` if infinite.

        :param tuple shape: image shape ``(C, H, W)``.
        """
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(f"shape must be (C, H, W), got {shape}")
        self._check_shape(shape)
        return self._support(shape)

    def symmetrize(self, f, average: bool = False, collate_batch: bool = True):
        r"""Reynolds average :math:`x \mapsto \frac{1}{N}\sum_i T_{g_i}^{-1} f(T_{g_i} x)`."""

        def symmetrized(x, *args, **kwargs):
            params = self.get_params(x)
            out = self.inverse(f(self.transform(x, **params), *args, **kwargs), **params)
            return out.reshape(-1, *x.shape).mean(dim=0) if average else out

        return symmetrized

    def as_odl_operator(self, space: Any, **params: Any):
        r"""The ODL linear operator of ONE group element acting on a 2D ``odl.uniform_discr``.

        :param space: a 2D :class:`odl.DiscretizedSpace` of shape ``(H, W)``.
        :param params: the parameters of one element (length-1 tensors or scalars).
        :return: :class:`deepinv_ei.transforms.GroupElementOperator`, linear, with ``.adjoint``
            (the inverse permutation for exact groups) and ``.inverse``.
        """
        from deepinv_ei.transforms.odl_operator import GroupElementOperator

        return GroupElementOperator(self, space, params)

    def __mul__(self, other: Transform) -> Transform:
        from deepinv_ei.transforms.product import Product

        if isinstance(other, GroupTransform):
            return Product(self, other)
        return super().__mul__(other)


def sample_uniform(values: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` i.i.d. uniform draws from the 1D tensor ``values``."""
    idx = torch.randint(len(values), (n,), generator=generator, device=generator.device)
    return values.to(generator.device)[idx].cpu()


def cartesian(*columns: torch.Tensor) -> list[torch.Tensor]:
    """All combinations of the given 1D tensors, as aligned 1D tensors (first varies slowest)."""
    grids = torch.meshgrid(*columns, indexing="ij")
    return [g.reshape(-1) for g in grids]


def is_multiple(value: float, base: float) -> bool:
    return math.isclose(value / base, round(value / base), abs_tol=1e-9)

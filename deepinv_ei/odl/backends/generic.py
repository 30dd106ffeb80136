"""The ``"odl"`` backend: any linear ODL operator, one sample at a time through ODL itself."""

from __future__ import annotations

import numpy as np
import odl
import torch

from .base import Backend


def _weights(space: odl.TensorSpace) -> float | np.ndarray:
    """The weights :math:`w` of the space's inner product :math:`\\sum_i w_i u_i v_i`."""
    weighting = space.weighting
    if hasattr(weighting, "const"):
        return float(weighting.const)
    if hasattr(weighting, "array"):
        return np.asarray(weighting.array)
    raise TypeError(
        f"expected a constant or array weighting on {space}, got {type(weighting).__name__}; "
        "the plain transpose cannot be derived from its adjoint"
    )


class OdlBackend(Backend):
    r"""Calls the operator and its ODL adjoint on each sample, converting the adjoint.

    ODL's ``op.adjoint`` :math:`A^*` is the adjoint for the spaces' weighted inner products
    :math:`\langle u,v\rangle_W = \sum_i w_i u_i v_i`. The plain transpose follows from
    :math:`\sum (Ax)\,(w_R \odot z) = \sum (w_D \odot x)\,A^* z`:

    .. math::

        A^\top y = w_D \odot A^*\!\left(y \oslash w_R\right),

    which for constant weights (uniform cells) is :math:`(w_D / w_R)\, A^* y`.

    Some ODL operators (``MatrixOperator`` in ODL 1.0) return the plain transpose as
    ``adjoint`` even between weighted spaces. At construction a random dot test decides which
    inner product ``op.adjoint`` is the adjoint for; if it is neither, a :class:`ValueError` is
    raised rather than a wrong gradient returned.
    """

    name = "odl"

    def __init__(self, op: odl.Operator, **options):
        super().__init__(op, **options)
        self._w_dom = _weights(op.domain)
        self._w_ran = _weights(op.range)
        self._init_runtime()
        if self._adjoint_is_plain_transpose():
            self._w_dom = self._w_ran = None

    # ODL builds some adjoints as local classes, which cannot be pickled: rebuild them instead.
    _runtime_attributes = ("_adjoint",)

    def _init_runtime(self) -> None:
        self._adjoint = self.op.adjoint

    def _adjoint_is_plain_transpose(self) -> bool:
        rng = np.random.default_rng(0)
        x = rng.standard_normal(self.op.domain.shape).astype(self.op.domain.dtype)
        y = rng.standard_normal(self.op.range.shape).astype(self.op.range.dtype)
        ax = _to_numpy(self.op(self.op.domain.element(x))).astype(np.float64)
        aty = _to_numpy(self._adjoint(self.op.range.element(y))).astype(np.float64)
        w_dom = np.broadcast_to(self._w_dom, x.shape)
        w_ran = np.broadcast_to(self._w_ran, y.shape)
        tol = 1e-4 if np.dtype(self.op.domain.dtype).itemsize <= 4 else 1e-9
        errors = {}
        for name, lhs, rhs in (
            ("weighted", np.sum(w_ran * ax * y), np.sum(w_dom * x * aty)),
            ("plain", np.sum(ax * y), np.sum(x * aty)),
        ):
            errors[name] = abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-300)
        if errors["weighted"] <= tol:
            return False
        if errors["plain"] <= tol:
            return True
        raise ValueError(
            f"{type(self.op).__name__}.adjoint is not the adjoint of the operator for the spaces' "
            f"weighted inner products (relative dot-test error {errors['weighted']:.2e}) nor for the "
            f"plain dot product ({errors['plain']:.2e}); cannot derive its transpose"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._map(self.op, x, self.op.domain, self.op.range)

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        return self._map(
            self._adjoint, y, self.op.range, self.op.domain, pre=self._w_ran, post=self._w_dom
        )

    @staticmethod
    def _map(fn, x, space_in, space_out, pre=None, post=None) -> torch.Tensor:
        out = torch.empty((x.shape[0], *space_out.shape), dtype=x.dtype, device=x.device)
        for i, xi in enumerate(x.detach().cpu().numpy()):
            if pre is not None:  # weight conversions in float64: one rounding, not two
                xi = xi.astype(np.float64) / pre
            arr = xi.astype(space_in.dtype, copy=False)
            res = np.asarray(_to_numpy(fn(space_in.element(arr))))
            if post is not None:
                res = res.astype(np.float64) * post
            out[i] = torch.from_numpy(np.ascontiguousarray(res)).to(dtype=x.dtype)
        return out


def _to_numpy(element) -> np.ndarray:
    if hasattr(element, "asarray"):
        arr = element.asarray()
    else:
        arr = element
    if isinstance(arr, torch.Tensor):
        return arr.detach().cpu().numpy()
    return np.asarray(arr)

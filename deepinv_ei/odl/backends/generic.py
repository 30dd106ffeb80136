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
    """

    name = "odl"

    def __init__(self, op: odl.Operator, **options):
        super().__init__(op, **options)
        self._w_dom = _weights(op.domain)
        self._w_ran = _weights(op.range)
        self._adjoint = op.adjoint

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
            arr = xi.astype(space_in.dtype, copy=False)
            if pre is not None:
                arr = arr / pre
            res = np.asarray(_to_numpy(fn(space_in.element(arr))))
            if post is not None:
                res = res * post
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

"""The ``"odl"`` backend: any linear ODL operator, one sample at a time through ODL itself.

Operators on ODL's ``pytorch`` spaces, and ray transforms on a CUDA device, run without host
copies: a ray transform gets a twin on a ``pytorch`` space on the tensors' device (with ODL's
``astra_cuda`` on a GPU), and each sample goes to ODL as a torch view.
"""

from __future__ import annotations

import numpy as np
import odl
import torch
from odl.core.space.base_tensors import TensorSpace

from ...utils import dottest
from ..geometry import is_ray_transform
from .base import Backend


def _weights(space: odl.TensorSpace) -> float | np.ndarray:
    """The weights :math:`w` of the space's inner product :math:`\\sum_i w_i u_i v_i`
    (1 for a field, the range of a functional)."""
    if not isinstance(space, TensorSpace):
        return 1.0
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

    def __init__(self, op: odl.Operator):
        super().__init__(op)
        self._w_dom = _weights(op.domain)
        self._w_ran = _weights(op.range)
        self._init_runtime()
        if self._adjoint_is_plain_transpose():
            self._w_dom = self._w_ran = None

    # ODL builds some adjoints as local classes, which cannot be pickled: rebuild them instead.
    _runtime_attributes = ("_adjoint", "_twins")

    def _init_runtime(self) -> None:
        self._adjoint = self.op.adjoint
        self._twins: dict[str, tuple[odl.Operator, odl.Operator] | None] = {}

    def device_twin(self, device: torch.device) -> tuple[odl.Operator, odl.Operator] | None:
        """``(op, adjoint)`` acting on torch tensors on ``device`` without host copies, or ``None``.

        ``None`` means the host path (numpy) is used. Only constant weightings (uniform cells)
        are supported on the twin path.
        """
        key = str(device)
        if key in self._twins:
            return self._twins[key]
        twin = None
        constant = not isinstance(self._w_dom, np.ndarray) and not isinstance(
            self._w_ran, np.ndarray
        )
        if constant and getattr(self.op.domain, "impl", "numpy") == "pytorch":
            twin = self.op  # already torch-backed
        elif constant and device.type == "cuda" and is_ray_transform(self.op):
            from odl.applications.tomo import RayTransform

            dom = self.op.domain
            space = odl.uniform_discr(
                dom.min_pt, dom.max_pt, dom.shape, dtype=dom.dtype, impl="pytorch", device=key
            )
            twin = RayTransform(space, self.op.geometry, impl="astra_cuda")
        self._twins[key] = None if twin is None else (twin, twin.adjoint)
        return self._twins[key]

    def _adjoint_is_plain_transpose(self) -> bool:
        """Whether ``op.adjoint`` is the plain transpose rather than the weighted adjoint."""
        dom, ran, dtype = self.op.domain, self.op.range, _torch_dtype(self.op.domain)
        tol = 1e-4 if dtype.itemsize <= 4 else 1e-9
        errors = {  # the transpose if op.adjoint is the weighted adjoint, and op.adjoint itself
            name: dottest(
                lambda x: self._map(self.op, x, dom, ran),
                lambda y, w=weights: self._map(self._adjoint, y, ran, dom, *w),
                (1, *dom.shape),
                (1, *ran.shape),
                dtype=dtype,
                rtol=tol,
                raise_error=False,
            )
            for name, weights in (("weighted", (self._w_ran, self._w_dom)), ("plain", ()))
        }
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
        twin = self.device_twin(x.device)
        if twin is not None:
            return self._map_torch(twin[0], x, twin[0].domain, twin[0].range)
        return self._map(self.op, x, self.op.domain, self.op.range)

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        twin = self.device_twin(y.device)
        if twin is not None:
            scale = 1.0 if self._w_dom is None else self._w_dom / self._w_ran
            return self._map_torch(twin[1], y, twin[0].range, twin[0].domain, scale)
        return self._map(
            self._adjoint, y, self.op.range, self.op.domain, pre=self._w_ran, post=self._w_dom
        )

    @staticmethod
    def _map_torch(fn, x, space_in, space_out, scale: float = 1.0) -> torch.Tensor:
        """Per-sample application on torch-backed ODL spaces (no host copies)."""
        out = torch.empty((x.shape[0], *space_out.shape), dtype=x.dtype, device=x.device)
        for i in range(x.shape[0]):
            out[i] = _result_to_torch(fn(_sample_to_space(space_in, x[i])), x)
        return out if scale == 1.0 else out * scale

    @staticmethod
    def _map(fn, x, space_in, space_out, pre=None, post=None) -> torch.Tensor:
        out = torch.empty((x.shape[0], *space_out.shape), dtype=x.dtype, device=x.device)
        for i, xi in enumerate(x.detach().cpu().numpy()):
            if pre is not None:  # weight conversions in float64: one rounding, not two
                xi = xi.astype(np.float64) / pre
            res = _to_numpy(fn(_sample_to_space(space_in, torch.from_numpy(xi))))
            if post is not None:
                res = res.astype(np.float64) * post
            out[i] = torch.from_numpy(np.ascontiguousarray(res)).to(dtype=x.dtype)
        return out


def _numpy_dtype(space) -> np.dtype:
    dtype = space.dtype
    return (
        np.dtype(str(dtype).removeprefix("torch."))
        if isinstance(dtype, torch.dtype)
        else np.dtype(dtype)
    )


def _torch_dtype(space) -> torch.dtype:
    return getattr(torch, _numpy_dtype(space).name)


def _to_numpy(element) -> np.ndarray:
    if hasattr(element, "asarray"):
        arr = element.asarray()
    else:
        arr = element
    if isinstance(arr, torch.Tensor):
        return arr.detach().cpu().numpy()
    return np.asarray(arr)


def _sample_to_space(space, sample: torch.Tensor):
    """An element of ``space`` holding ``sample`` (numpy on the host, or torch for ``pytorch``
    spaces, on the space's device), or a Python float for a field."""
    if not isinstance(space, TensorSpace):
        return float(sample)
    if getattr(space, "impl", "numpy") == "pytorch":
        return space.element(sample.detach().to(device=space.device, dtype=_torch_dtype(space)))
    return space.element(sample.detach().cpu().numpy().astype(_numpy_dtype(space), copy=False))


def _result_to_torch(result, like: torch.Tensor) -> torch.Tensor:
    """An ODL result (element or scalar) as a tensor of ``like``'s dtype and device."""
    if isinstance(result, int | float | complex | np.number):
        return torch.tensor(float(result), dtype=like.dtype, device=like.device)
    data = result.data if hasattr(result, "data") else result
    if not isinstance(data, torch.Tensor):
        data = torch.from_numpy(np.ascontiguousarray(np.asarray(data)))
    return data.to(dtype=like.dtype, device=like.device)


class OdlNonlinearBackend(Backend):
    """Applies any operator (non-linear, or a functional) per sample through ODL; no transpose.

    Its gradients come from :func:`vjp_per_sample`. Chosen for such operators by
    ``backend="auto"`` or ``"odl"``.
    """

    name = "odl-nonlinear"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = self.op
        outs = [_result_to_torch(op(_sample_to_space(op.domain, xi)), x) for xi in x]
        return torch.stack(outs)

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        raise ValueError(f"{type(self.op).__name__} is not linear: it has no transpose")


def vjp_per_sample(op: odl.Operator, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    r"""The gradient :math:`J_f(x_i)^\top g_i` for every sample, from ODL's derivative adjoint.

    ODL's :math:`f'(x)^*` is the adjoint for the weighted inner products
    :math:`\langle u,v\rangle_W=\sum_i w_iu_iv_i`; for torch's plain dot product

    .. math::

        J_f(x)^\top g = w_D \odot f'(x)^*\!\left(g \oslash w_R\right),

    with :math:`w_R = 1` for a functional.

    :param x: inputs of shape ``(N, *op.domain.shape)``.
    :param g: output gradients of shape ``(N, *out_shape)``.
    :return: shape ``(N, *op.domain.shape)``, dtype and device of ``x``.
    """
    w_dom, w_ran = _weights(op.domain), _weights(op.range)
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        gi = g[i].detach().to(torch.float64)
        if not (isinstance(w_ran, float) and w_ran == 1.0):
            gi = gi / torch.as_tensor(w_ran, dtype=torch.float64, device=gi.device)
        deriv = op.derivative(_sample_to_space(op.domain, x[i]))
        res = _result_to_torch(deriv.adjoint(_sample_to_space(op.range, gi)), x[i])
        if not (isinstance(w_dom, float) and w_dom == 1.0):
            res = res * torch.as_tensor(w_dom, dtype=res.dtype, device=res.device)
        out[i] = res
    return out

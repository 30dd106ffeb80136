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
        constant = not any(isinstance(w, np.ndarray) for w in (self._w_dom, self._w_ran))
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
                lambda x: per_sample(self.op, x, dom, ran.shape),
                lambda y, w=weights: per_sample(self._adjoint, y, ran, dom.shape, *w),
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

    def _operators(self, device: torch.device) -> tuple[odl.Operator, odl.Operator]:
        """``(op, adjoint)`` to apply on ``device``: its twin there, else the operator itself."""
        return self.device_twin(device) or (self.op, self._adjoint)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = self._operators(x.device)[0]
        return per_sample(op, x, op.domain, op.range.shape)

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        op, adjoint = self._operators(y.device)
        return per_sample(adjoint, y, op.range, op.domain.shape, self._w_ran, self._w_dom)


def _numpy_dtype(space) -> np.dtype:
    return np.dtype(str(space.dtype).removeprefix("torch."))  # a numpy or a torch dtype


def _torch_dtype(space) -> torch.dtype:
    return getattr(torch, _numpy_dtype(space).name)


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


def per_sample(
    fn,
    x: torch.Tensor,
    space_in,
    out_shape: tuple[int, ...],
    pre: float | np.ndarray | None = None,
    post: float | np.ndarray | None = None,
) -> torch.Tensor:
    r"""``fn`` applied through ODL to every sample :math:`x_i` of ``x``, as
    :math:`\mathrm{post} \odot \mathrm{fn}(x_i \oslash \mathrm{pre})` in ``x``'s dtype and device.

    The weights are applied in float64 (one rounding, not two).

    :param space_in: the ODL space the samples are elements of.
    :param out_shape: the shape of one result (``()`` for a scalar).
    """
    x = x.detach()
    f64 = x.new_empty((), dtype=torch.float64)
    pre, post = (None if w is None else torch.as_tensor(w).to(f64) for w in (pre, post))
    out = x.new_empty((x.shape[0], *out_shape))
    for i in range(x.shape[0]):
        res = fn(_sample_to_space(space_in, x[i] if pre is None else x[i].to(f64) / pre))
        out[i] = _result_to_torch(res, x) if post is None else _result_to_torch(res, f64) * post
    return out


class OdlNonlinearBackend(Backend):
    """Applies any operator (non-linear, or a functional) per sample through ODL; no transpose.

    Its gradients come from :func:`vjp_per_sample`. Chosen for such operators by
    ``backend="auto"`` or ``"odl"``.
    """

    name = "odl-nonlinear"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_sample(self.op, x, self.op.domain, getattr(self.op.range, "shape", ()))

    def transpose(self, y: torch.Tensor) -> torch.Tensor:
        raise ValueError(f"{type(self.op).__name__} is not linear: it has no transpose")


def vjp_per_sample(op: odl.Operator, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    r"""The gradient for torch's plain dot product, from ODL's derivative adjoint, per sample:

    .. math::

        J_f(x_i)^\top g_i = w_D \odot f'(x_i)^*\!\left(g_i \oslash w_R\right),

    the conversion of :class:`OdlBackend` (:math:`w_R = 1` for a functional).

    :param x: inputs of shape ``(N, *op.domain.shape)``.
    :param g: output gradients of shape ``(N, *out_shape)``.
    :return: shape ``(N, *op.domain.shape)``, dtype and device of ``x``.
    """
    w_dom, w_ran = _weights(op.domain), _weights(op.range)
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        adjoint = op.derivative(_sample_to_space(op.domain, x[i])).adjoint
        out[i] = per_sample(adjoint, g[i : i + 1], op.range, x.shape[1:], w_ran, w_dom)[0]
    return out

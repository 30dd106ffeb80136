r"""ODL operators as differentiable, batched torch modules and autograd functions.

:class:`OperatorModule` applies a linear operator and its plain transpose on a batched backend
(:mod:`deepinv_ei.odl.backends`) and any other operator per sample through ODL;
:class:`OperatorFunction` is the same with the call convention of ``odl.contrib.torch``.
"""

from __future__ import annotations

from typing import Any

import odl
import torch

from .backends import Backend, check_backend, make_backend
from .backends.generic import vjp_per_sample
from .cache import cached, operator_holder
from .checks import check_input, check_operator, is_fast_linear


class _Apply(torch.autograd.Function):
    """``y = M x`` for a linear map ``M`` given with its transpose; backward is ``M^T g``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, module: OperatorModule, transposed: bool) -> torch.Tensor:
        ctx.module, ctx.transposed = module, transposed
        return module._raw(x, transposed)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # Applying the other direction through _Apply keeps the graph for double backward.
        return _Apply.apply(grad.contiguous(), ctx.module, not ctx.transposed), None, None


class _ApplyNonlinear(torch.autograd.Function):
    r"""``y = f(x)`` per sample through ODL; backward is :math:`J_f(x)^\top g` per sample."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, module: OperatorModule) -> torch.Tensor:
        ctx.module = module
        ctx.save_for_backward(x)
        return module.get_backend(x.device).forward(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return vjp_per_sample(ctx.module.op, x, grad), None


def _forget_local_caches(op: Any, depth: int = 0) -> None:
    """Drop an ODL operator's cached adjoint if it is an instance of a local class (ODL 1.0's
    ``RayTransform.adjoint`` is): such objects cannot be pickled, and ODL rebuilds the cache."""
    if depth > 3 or not isinstance(op, odl.Operator):
        return
    for name, value in list(vars(op).items()):
        if isinstance(value, odl.Operator):
            if name.endswith("_adjoint") and "<locals>" in type(value).__qualname__:
                setattr(op, name, None)
            else:
                _forget_local_caches(value, depth + 1)


class OperatorModule(torch.nn.Module):
    r"""An ODL operator :math:`A` (linear or not, or a functional) as a differentiable torch module.

    For a linear operator between real tensor spaces,

    .. math::

        x \in \mathbb{R}^{\ast \times \mathrm{domain}} \mapsto A x \in \mathbb{R}^{\ast \times \mathrm{range}},
        \qquad \frac{\partial \langle A x, g\rangle}{\partial x} = A^\top g,

    where :math:`A^\top` is the plain transpose (the adjoint for :math:`\langle u,v\rangle=\sum_i
    u_iv_i`, whatever the ODL cell sizes), applied by a batched backend; its own backward applies
    :math:`A`, so double backward and ``gradcheck`` work. A non-linear operator :math:`f` (or a
    functional, one scalar per sample) runs per sample through ODL, with the gradient
    :math:`J_f(x)^\top g = w_D \odot f'(x)^*(g \oslash w_R)` from ODL's
    ``op.derivative(x).adjoint`` and the weights :math:`w` of the spaces.

    A drop-in replacement of ``odl.contrib.torch.OperatorModule`` (same argument, ``.operator``,
    shapes, dtypes and gradients).

    :param odl.Operator op: an operator whose domain is a real ODL tensor space (e.g. a
        ``RayTransform``, a ``MatrixOperator``, a functional).
    :param str backend: ``"auto"`` (default: per device, the first of ``"matrix"``, ``"astra"``,
        ``"odl"`` that supports ``op`` and fits the matrix memory budget) or one of these names;
        an operator that is not linear between tensor spaces takes ``"auto"`` or ``"odl"``.
    :param options: backend options (``memory_budget``, ``cache_dir``, ``num_threads``,
        ``proj_type``); one that no backend takes raises a :class:`ValueError`.

    :Examples:

    >>> import odl, torch
    >>> from odl.applications.tomo import RayTransform, parallel_beam_geometry
    >>> from deepinv_ei.odl import OperatorModule
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (32, 32), dtype="float32")
    >>> ray = RayTransform(space, parallel_beam_geometry(space, num_angles=20), impl="astra_cpu")
    >>> A = OperatorModule(ray)
    >>> y = A(torch.rand(4, 1, 32, 32))
    >>> tuple(y.shape), A.backend_name(y.device)
    ((4, 1, 20, 47), 'matrix')
    >>> tuple(A.T(y).shape)
    (4, 1, 32, 32)

    A functional gives one value per sample:

    >>> norm = OperatorModule(odl.functionals.L2NormSquared(odl.rn(3, dtype="float32")))
    >>> norm(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]))
    tensor([14.,  1.])
    """

    def __init__(
        self,
        op: odl.Operator,
        backend: str = "auto",
        *,
        _transpose_of: OperatorModule | None = None,
        **options: Any,
    ):
        super().__init__()
        self.op = check_operator(op)
        self.is_linear = is_fast_linear(op)
        check_backend(op, backend, options)
        self.backend = backend
        self.options = options
        # The backends this module holds, per device (shared with the transpose).
        self._backends: dict[str, Backend] = _transpose_of._backends if _transpose_of else {}
        #: Whether this module applies the transpose :math:`A^\top` of its operator.
        self.is_transpose = _transpose_of is not None
        dom, ran = tuple(op.domain.shape), () if op.is_functional else tuple(op.range.shape)
        #: The trailing shapes of the inputs and of the outputs (``()`` for a functional).
        self.in_shape, self.out_shape = (ran, dom) if self.is_transpose else (dom, ran)
        # Kept outside nn.Module's registry: A and A.T refer to each other.
        object.__setattr__(self, "_transpose", _transpose_of)
        if _transpose_of is None and backend != "auto":
            # Name the problem now (unknown name, unsupported operator, over budget), not at first use.
            self.get_backend("cpu")

    @property
    def operator(self) -> odl.Operator:
        """The wrapped ODL operator (the name ``odl.contrib.torch.OperatorModule`` uses)."""
        return self.op

    # -- backends -----------------------------------------------------------------------------
    def get_backend(self, device: torch.device | str) -> Backend:
        """The backend used on ``device``: made on first use, shared with the transpose and with
        every module of the same operator and settings (see :mod:`deepinv_ei.odl.cache`)."""
        device = torch.device(device)
        settings = tuple(sorted((k, repr(v)) for k, v in self.options.items()))
        return cached(
            ("backend", id(self.op), self.backend, settings, str(device)),
            lambda: make_backend(self.op, self.backend, device, **self.options),
            self._backends,
            str(device),
        )

    def backend_name(self, device: torch.device | str = "cpu") -> str:
        """Name of the backend used on ``device``."""
        return self.get_backend(device).name

    def _raw(self, x: torch.Tensor, transposed: bool) -> torch.Tensor:
        """Apply the forward (``transposed=False``) or transpose map of ``op`` without autograd."""
        if x.shape[0] == 0:  # an empty batch: nothing for a backend to do
            out_shape = self.op.domain.shape if transposed else self.op.range.shape
            return x.new_empty((0, *out_shape))
        backend = self.get_backend(x.device)
        # autocast would cast the sparse product to a half type that its kernels lack
        with torch.autocast(x.device.type, enabled=False):
            return backend.transpose(x) if transposed else backend.forward(x)

    # -- application --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        what = "input of the transpose" if self.is_transpose else "input"
        x = check_input(x, self.in_shape, what)
        batch = x.shape[: x.ndim - len(self.in_shape)]
        flat = x.reshape(-1, *self.in_shape).contiguous()
        if self.is_linear:
            out = _Apply.apply(flat, self, self.is_transpose)
        else:
            out = _ApplyNonlinear.apply(flat, self)
        return out.reshape((*batch, *self.out_shape))

    @property
    def T(self) -> OperatorModule:
        r"""The module of the plain transpose :math:`A^\top` (its own transpose is ``self``)."""
        if not self.is_linear:
            raise ValueError(
                f"{type(self.op).__name__} is not a linear operator between tensor spaces: it has "
                "no transpose (its gradients use op.derivative(x).adjoint)"
            )
        if self._transpose is None:
            transpose = OperatorModule(self.op, self.backend, _transpose_of=self, **self.options)
            object.__setattr__(self, "_transpose", transpose)
        return self._transpose

    @property
    def adjoint(self) -> OperatorModule:
        """Alias of :attr:`T`: the adjoint for the unweighted dot product."""
        return self.T

    # -- pickling -----------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        _forget_local_caches(self.op)
        return self.__dict__.copy()

    def extra_repr(self) -> str:
        kind = "transpose of " if self.is_transpose else ""
        return f"{kind}{type(self.op).__name__}: {self.in_shape} -> {self.out_shape}, backend={self.backend!r}"


def cached_module(op: odl.Operator) -> OperatorModule:
    """The :class:`OperatorModule` of ``op`` with the default backend, made once per operator and
    kept on it, so that it (and its system matrix) lives exactly as long as the operator."""
    return cached(("module", id(op)), lambda: OperatorModule(op), operator_holder(op), "module")


class OperatorFunction(torch.autograd.Function):
    r"""An ODL operator as a ``torch.autograd.Function``: ``OperatorFunction.apply(op, x)``.

    ``x`` has shape ``(*extra, *op.domain.shape)``, the result ``(*extra, *op.range.shape)``
    (``(*extra,)`` for a functional); the computation is that of :func:`cached_module` (or of
    ``op`` itself if it is an :class:`OperatorModule`).

    :Examples:

    >>> import numpy as np, odl, torch
    >>> from deepinv_ei.odl import OperatorFunction
    >>> op = odl.MatrixOperator(np.array([[1, 0, 1], [0, 1, 1]], dtype="float32"))
    >>> x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = OperatorFunction.apply(op, x)
    >>> y
    tensor([4., 5.], grad_fn=<OperatorFunctionBackward>)
    >>> y.sum().backward()
    >>> x.grad
    tensor([1., 1., 2.])
    """

    @staticmethod
    def forward(ctx, operator: odl.Operator | OperatorModule, x: torch.Tensor) -> torch.Tensor:
        module = operator if isinstance(operator, OperatorModule) else cached_module(operator)
        ctx.module = module
        if not module.is_linear:
            ctx.save_for_backward(x)
        return module(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if not ctx.needs_input_grad[1]:
            return None, None
        module = ctx.module
        if module.is_linear:
            return None, module.T(grad)  # differentiable: double backward works
        (x,) = ctx.saved_tensors
        flat_x = x.reshape(-1, *module.in_shape)
        flat_g = grad.reshape(flat_x.shape[0], *module.out_shape)
        return None, vjp_per_sample(module.op, flat_x, flat_g).reshape(x.shape)


__all__ = ["OperatorFunction", "OperatorModule", "cached_module"]

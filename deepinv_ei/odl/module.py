r"""Linear ODL operators as differentiable, batched torch modules.

:class:`OperatorModule` maps ``(*batch, *op.domain.shape)`` tensors to ``(*batch, *op.range.shape)``
tensors on the input's device. Its backward pass applies the plain transpose :math:`A^\top` (the
adjoint for torch's unweighted dot product, whatever the ODL cell sizes), and the transpose's
backward applies :math:`A`, so second derivatives and ``torch.autograd.gradcheck`` work.
"""

from __future__ import annotations

from typing import Any

import odl
import torch

from ._validation import check_input, check_linear_tensor_operator
from .backends import Backend, make_backend


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


class OperatorModule(torch.nn.Module):
    r"""A linear ODL operator :math:`A` as a differentiable torch module.

    .. math::

        x \in \mathbb{R}^{\ast \times \mathrm{domain}} \mapsto A x \in \mathbb{R}^{\ast \times \mathrm{range}},
        \qquad \frac{\partial \langle A x, g\rangle}{\partial x} = A^\top g,

    where :math:`A^\top` is the plain transpose (the adjoint for :math:`\langle u,v\rangle=\sum_i u_iv_i`).
    ODL's own ``op.adjoint`` is the adjoint for the spaces' *weighted* inner products and differs
    from :math:`A^\top` by the ratio of the cell volumes; this module always uses :math:`A^\top`.

    :param odl.Operator op: a linear operator between real ODL tensor spaces (e.g. a ``RayTransform``).
    :param str backend: ``"auto"`` (default), ``"matrix"`` (sparse system matrix of a 2D ray
        transform, on any device), ``"astra"`` (ASTRA's CPU projectors, one per thread) or
        ``"odl"`` (any linear operator, per sample through ODL). ``"auto"`` picks, per device, the
        first of these that supports the operator and fits the matrix memory budget.
    :param options: passed to the backend, e.g. ``memory_budget`` (bytes, matrix backend),
        ``num_threads`` (matrix and astra backends), ``kernel`` (matrix backend on the CPU:
        ``"auto"``, ``"avx512"``, ``"avx2"``, ``"portable"``, ``"scipy"``), ``proj_type`` (ASTRA
        projector type).

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
        self.op = check_linear_tensor_operator(op)
        self.backend = backend
        self.options = options
        self._backends: dict[str, Backend] = (
            {} if _transpose_of is None else _transpose_of._backends
        )
        self._is_transpose = _transpose_of is not None
        # Kept outside nn.Module's registry: A and A.T refer to each other.
        object.__setattr__(self, "_transpose", _transpose_of)
        if _transpose_of is None and backend != "auto":
            # Name the problem now (unknown name, unsupported operator, over budget), not at first use.
            self._backends["cpu"] = make_backend(op, backend, torch.device("cpu"), **options)

    # -- shapes -------------------------------------------------------------------------------
    @property
    def in_shape(self) -> tuple[int, ...]:
        """Trailing shape of the inputs."""
        return tuple(self.op.range.shape if self._is_transpose else self.op.domain.shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Trailing shape of the outputs."""
        return tuple(self.op.domain.shape if self._is_transpose else self.op.range.shape)

    # -- backends -----------------------------------------------------------------------------
    def get_backend(self, device: torch.device | str) -> Backend:
        """The backend used on ``device`` (created on first use and shared with the transpose)."""
        device = torch.device(device)
        key = str(device)
        if key not in self._backends:
            self._backends[key] = make_backend(self.op, self.backend, device, **self.options)
        return self._backends[key]

    def backend_name(self, device: torch.device | str = "cpu") -> str:
        """Name of the backend used on ``device``."""
        return self.get_backend(device).name

    def _raw(self, x: torch.Tensor, transposed: bool) -> torch.Tensor:
        """Apply the forward (``transposed=False``) or transpose map of ``op`` without autograd."""
        if x.shape[0] == 0:  # an empty batch: nothing for a backend to do
            out_shape = self.op.domain.shape if transposed else self.op.range.shape
            return x.new_empty((0, *out_shape))
        backend = self.get_backend(x.device)
        return backend.transpose(x) if transposed else backend.forward(x)

    # -- application --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        what = "input of the transpose" if self._is_transpose else "input"
        check_input(x, self.in_shape, what)
        batch = x.shape[: x.ndim - len(self.in_shape)]
        flat = x.reshape(-1, *self.in_shape).contiguous()
        out = _Apply.apply(flat, self, self._is_transpose)
        return out.reshape(*batch, *self.out_shape)

    @property
    def T(self) -> OperatorModule:
        r"""The module of the plain transpose :math:`A^\top` (its own transpose is ``self``)."""
        if self._transpose is None:
            object.__setattr__(
                self,
                "_transpose",
                OperatorModule(self.op, self.backend, _transpose_of=self, **self.options),
            )
        return self._transpose

    @property
    def adjoint(self) -> OperatorModule:
        """Alias of :attr:`T`: the adjoint for the unweighted dot product."""
        return self.T

    def extra_repr(self) -> str:
        kind = "transpose of " if self._is_transpose else ""
        return f"{kind}{type(self.op).__name__}: {self.in_shape} -> {self.out_shape}, backend={self.backend!r}"

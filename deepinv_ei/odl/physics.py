r"""deepinv physics built from linear ODL operators and ray transforms."""

from __future__ import annotations

from typing import Any

import deepinv as dinv
import odl
import torch

from .cache import cached, operator_holder
from .fbp import FilteredBackProjection
from .geometry import as_ray_transform
from .module import OperatorModule


class OdlPhysics(dinv.physics.LinearPhysics):
    r"""A :class:`deepinv.physics.LinearPhysics` whose operator is a linear ODL operator.

    .. math::

        y = N(A x), \qquad x \in \mathbb{R}^{B \times C \times \mathrm{domain}},\;
        y \in \mathbb{R}^{B \times C \times \mathrm{range}},

    where :math:`A` acts on every ``(b, c)`` slice and ``A_adjoint`` is its exact plain transpose
    :math:`A^\top`, so deepinv's ``adjointness_test``, ``compute_norm``, ``A_dagger`` and solvers
    work unchanged.

    :param odl.Operator | OperatorModule op: a linear operator between real ODL tensor spaces, or
        an :class:`OperatorModule` already made from one.
    :param str backend: see :class:`OperatorModule`.
    :param dict backend_options: the backend ``options`` of :class:`OperatorModule`.
    :param physics_kwargs: e.g. ``noise_model=dinv.physics.GaussianNoise(0.1)``.

    :Examples:

    >>> import odl, torch
    >>> from deepinv_ei.odl import OdlPhysics
    >>> op = odl.MatrixOperator(torch.randn(3, 5).numpy())
    >>> physics = OdlPhysics(op)
    >>> physics(torch.rand(2, 1, 5)).shape
    torch.Size([2, 1, 3])
    >>> bool(physics.adjointness_test(torch.rand(2, 1, 5)).abs() < 1e-5)
    True
    """

    def __init__(
        self,
        op: odl.Operator | OperatorModule,
        backend: str = "auto",
        backend_options: dict[str, Any] | None = None,
        **physics_kwargs: Any,
    ):
        module = op
        if not isinstance(op, OperatorModule):
            module = OperatorModule(op, backend, **(backend_options or {}))
        physics_kwargs.setdefault("img_size", (1, *module.in_shape))
        # module.T refuses an operator without a transpose (non-linear, or a functional).
        super().__init__(A=module, A_adjoint=module.T, **physics_kwargs)
        self.operator = module
        self.odl_op = module.op

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.operator(x)

    def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.operator.T(y)


def cached_physics(op: odl.Operator) -> OdlPhysics:
    """The :class:`OdlPhysics` of a linear ODL operator with default settings, made once per
    operator and kept on it (see :mod:`deepinv_ei.odl.cache`): the same object on every call.

    :Examples:

    >>> import numpy as np, odl
    >>> from deepinv_ei.odl import cached_physics
    >>> op = odl.MatrixOperator(np.eye(3, dtype="float32"))
    >>> cached_physics(op) is cached_physics(op)
    True
    """
    return cached(("physics", id(op)), lambda: OdlPhysics(op), operator_holder(op), "physics")


class RayTransformPhysics(OdlPhysics):
    r"""CT physics of a ray transform, given as an ODL ``RayTransform`` or ``(space, geometry)``.

    ``A`` is the ray transform on ``(B, C, *space.shape)`` tensors, ``A_adjoint`` its exact
    transpose and ``A_dagger`` the :class:`~deepinv_ei.odl.FilteredBackProjection` in torch on the
    tensors' device (2D parallel and fan beam); ``physics.A_dagger(y, solver="CG")`` gives
    deepinv's least-squares pseudo-inverse instead. ``ray_transform_physics`` is the same class.

    :param ray_trafo: ``odl.applications.tomo.RayTransform`` or a ``(space, geometry)`` pair
        (a 2D pair gets ``impl='astra_cpu'``).
    :param str backend: see :class:`OperatorModule`.
    :param filter_type, frequency_scaling, padding, filter_design: those of
        :class:`~deepinv_ei.odl.FilteredBackProjection`.
    :param backend_options, physics_kwargs: those of :class:`OdlPhysics`.

    :Examples:

    >>> import odl, torch
    >>> from odl.applications.tomo import parallel_beam_geometry
    >>> from deepinv_ei.odl import ray_transform_physics
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (64, 64), dtype="float32")
    >>> physics = ray_transform_physics((space, parallel_beam_geometry(space, num_angles=90)))
    >>> x = torch.zeros(1, 1, 64, 64); x[..., 20:44, 20:44] = 1
    >>> x_fbp = physics.A_dagger(physics(x))
    >>> bool(((x_fbp - x).norm() / x.norm()) < 0.2)
    True
    """

    def __init__(
        self,
        ray_trafo: Any,
        backend: str = "auto",
        filter_type: str = "Ram-Lak",
        frequency_scaling: float = 1.0,
        padding: bool = True,
        filter_design: str = "kak-slaney",
        backend_options: dict[str, Any] | None = None,
        **physics_kwargs: Any,
    ):
        super().__init__(
            as_ray_transform(ray_trafo),
            backend=backend,
            backend_options=backend_options,
            **physics_kwargs,
        )
        self.fbp = FilteredBackProjection(
            self.operator, filter_type, frequency_scaling, padding, filter_design
        )

    @property
    def geometry(self):
        return self.odl_op.geometry

    def A_dagger(self, y: torch.Tensor, solver: str | None = None, **kwargs) -> torch.Tensor:
        if solver is not None:
            return super().A_dagger(y, solver=solver, **kwargs)
        return self.fbp(y)


#: The function-style name of :class:`RayTransformPhysics`.
ray_transform_physics = RayTransformPhysics

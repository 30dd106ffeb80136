"""ODL operators, ray transforms above all, as batched differentiable torch modules and deepinv physics.

- :class:`OperatorModule`: any ODL operator as a ``torch.nn.Module``; exact transpose if linear.
- :class:`OperatorFunction`: the same as an autograd function, ``OperatorFunction.apply(op, x)``.
- :class:`OdlPhysics`: a :class:`deepinv.physics.LinearPhysics` from a linear ODL operator.
- :func:`ray_transform_physics`: CT physics from a ray transform, with FBP as ``A_dagger``.
- :class:`FilteredBackProjection`: FBP in torch, matching ODL's ``fbp_op``.
- :class:`GroupElementOperator`: one element of a :mod:`deepinv_ei.transforms` group action.
- ``BACKENDS``: the registry of backends (``"matrix"``, ``"astra"``, ``"odl"``).
"""

from .backends import BACKENDS, DEFAULT_MATRIX_BUDGET, clear_matrix_cache, system_matrix
from .fbp import FilteredBackProjection
from .geometry import as_ray_transform
from .module import OperatorFunction, OperatorModule
from .physics import OdlPhysics, RayTransformPhysics, ray_transform_physics
from .transforms import GroupElementOperator

__all__ = [
    "BACKENDS",
    "DEFAULT_MATRIX_BUDGET",
    "FilteredBackProjection",
    "GroupElementOperator",
    "OdlPhysics",
    "OperatorFunction",
    "OperatorModule",
    "RayTransformPhysics",
    "as_ray_transform",
    "clear_matrix_cache",
    "ray_transform_physics",
    "system_matrix",
]

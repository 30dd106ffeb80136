"""ODL operators, ray transforms above all, as batched differentiable torch modules and deepinv physics.

Operators become torch modules and autograd functions (exact transpose if linear), deepinv
physics (CT with filtered back-projection in torch as ``A_dagger``), and group elements of
:mod:`deepinv_ei.transforms` become ODL operators. ``BACKENDS`` names the ways a linear operator
is applied; :mod:`deepinv_ei.odl.cache` is the one cache of what is built from operators.
"""

from .backends import BACKENDS, DEFAULT_MATRIX_BUDGET, clear_matrix_cache, system_matrix
from .fbp import FilteredBackProjection
from .geometry import as_ray_transform
from .module import OperatorFunction, OperatorModule, cached_module
from .physics import OdlPhysics, RayTransformPhysics, cached_physics, ray_transform_physics
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
    "cached_module",
    "cached_physics",
    "clear_matrix_cache",
    "ray_transform_physics",
    "system_matrix",
]

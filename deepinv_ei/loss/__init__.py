r"""Equivariant imaging losses as :class:`deepinv.loss.Loss`.

- :class:`EILoss`, :class:`MCLoss` and :func:`equivariant_imaging` (ICCV 2021),
- SURE losses for Gaussian, Poisson and Poisson--Gaussian noise (:data:`SURE_LOSSES`),
  :class:`REILoss` and :func:`robust_equivariant_imaging` (CVPR 2022).

:class:`EILoss` and :class:`MCLoss` are drop-ins for deepinv's namesakes (same arguments, same
values); the SURE losses are deepinv's, with the noise levels read from the physics; the SURE and
REI losses return one value per sample. Every loss accepts a linear ODL operator as ``physics``;
:class:`NamedLoss` gives a loss a log name of its own in :class:`deepinv.Trainer`.
"""

from . import sure
from .base import NamedLoss, as_physics
from .ei import EILoss, equivariant_imaging
from .mc import MCLoss
from .rei import REILoss, robust_equivariant_imaging
from .sure import *  # noqa: F403  (re-exports sure.__all__)

__all__ = [
    "NamedLoss",
    "as_physics",
    "EILoss",
    "MCLoss",
    "equivariant_imaging",
    *sure.__all__,
    "REILoss",
    "robust_equivariant_imaging",
]

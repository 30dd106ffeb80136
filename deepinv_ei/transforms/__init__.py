r"""Exact group actions as :class:`deepinv.transform.Transform`, drop-ins for deepinv's namesakes.

Built on deepinv's ``_get_params``/``_transform`` hooks, so deepinv's arithmetic (``*``, ``+``,
``|``), ``symmetrize``, ``identity`` and 5-D video input work with them, also mixed with any
deepinv transform. By default every output image gets its own random group element.

- :class:`Shift` -- circular integer shifts (permutations).
- :class:`Rotate` -- quarter turns (exact :math:`C_4`) and continuous angles (orthogonal
  three-shear Fourier rotation by default).
- :class:`Reflect` -- flips; :class:`Dihedral` -- the 8 symmetries :math:`D_4` of the square.
- :class:`Product` -- compositions, also written ``Shift() * Reflect()``.

:meth:`GroupTransform.apply` applies given elements or their exact inverses; the ODL operator
of one element is :class:`deepinv_ei.odl.GroupElementOperator`. This package needs torch and
deepinv only.

``TRANSFORMS`` maps names to classes (tests parametrise over it).
"""

from __future__ import annotations

from deepinv_ei.transforms.base import GroupTransform, Product
from deepinv_ei.transforms.reflect import Dihedral, Reflect
from deepinv_ei.transforms.rotate import Rotate
from deepinv_ei.transforms.shift import Shift

TRANSFORMS: dict[str, type[GroupTransform]] = {
    "shift": Shift,
    "rotate": Rotate,
    "reflect": Reflect,
    "dihedral": Dihedral,
}

__all__ = [
    "GroupTransform",
    "Shift",
    "Rotate",
    "Reflect",
    "Dihedral",
    "Product",
    "TRANSFORMS",
]

r"""One group element :math:`T_g` of a :mod:`deepinv_ei.transforms` action as a linear ODL operator."""

from __future__ import annotations

from typing import Any

import odl
import torch

from deepinv_ei.transforms import GroupTransform

_KINDS = ("forward", "inverse", "adjoint")


class GroupElementOperator(odl.Operator):
    r"""The linear map :math:`x \mapsto T_g x` (or its inverse / transpose) for ONE element :math:`g`.

    The domain and range are the same uniform space, whose constant cell-volume weighting cancels
    in :math:`\langle T_g x, y\rangle = \langle x, T_g^\top y\rangle`, so the ODL adjoint is the
    plain transpose: the inverse permutation for exact groups, the inverse for orthogonal ones,
    the autograd transpose otherwise. The action is the transform's own
    (:meth:`~deepinv_ei.transforms.GroupTransform.apply` and
    :meth:`~deepinv_ei.transforms.GroupTransform.adjoint`), computed in float64.

    :param transform: a :class:`deepinv_ei.transforms.GroupTransform`.
    :param space: 2D :class:`odl.DiscretizedSpace`, shape ``(H, W)``.
    :param dict params: the element's parameters, each with a single entry (scalars accepted).
    :param str kind: ``"forward"``, ``"inverse"`` or ``"adjoint"``.

    :Examples:

    >>> import numpy as np, odl
    >>> from deepinv_ei.odl import GroupElementOperator
    >>> from deepinv_ei.transforms import Shift
    >>> space = odl.uniform_discr([0, 0], [1, 1], (4, 4))
    >>> op = GroupElementOperator(Shift(), space, {"y_shift": 1, "x_shift": 0})
    >>> x = space.element(np.arange(16.0).reshape(4, 4))
    >>> bool(np.array_equal(op(x).asarray(), np.roll(x.asarray(), 1, axis=0)))
    True
    >>> bool(np.array_equal(op.adjoint(op(x)).asarray(), x.asarray()))
    True
    """

    def __init__(
        self,
        transform: GroupTransform,
        space: Any,
        params: dict[str, Any],
        kind: str = "forward",
    ) -> None:
        if not isinstance(transform, GroupTransform):
            raise TypeError(
                "transform must be a deepinv_ei.transforms.GroupTransform, got "
                f"{type(transform).__name__}"
            )
        if not isinstance(space, odl.DiscretizedSpace) or space.ndim != 2:
            raise TypeError(
                f"space must be a 2D odl.uniform_discr (DiscretizedSpace), got {space!r}"
            )
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.transform = transform
        self.kind = kind
        # Validate names, shapes and image size once, with clear errors.
        transform.check_shape((1, *space.shape))
        elems, n, k = transform.normalise_params(params)
        if n != 1 or k != 1:
            raise ValueError(
                "GroupElementOperator takes the parameters of ONE group element, got shapes "
                f"{ {key: tuple(torch.as_tensor(v).shape) for key, v in params.items()} }"
            )
        self.params = {key: v.reshape(1, *v.shape[2:]) for key, v in elems.items()}
        super().__init__(domain=space, range=space, linear=True)

    def _call(self, x):
        t = torch.as_tensor(x.asarray()).to(torch.float64).reshape(1, 1, *self.domain.shape)
        if self.kind == "adjoint":
            out = self.transform.adjoint(t, **self.params)
        else:
            out = self.transform.apply(t, self.params, inverse=self.kind == "inverse")
        return self.range.element(out[0, 0].cpu().numpy())

    def _other(self, kinds: dict[str, str], what: str) -> GroupElementOperator:
        """The operator of kind ``kinds[self.kind]``; for an orthogonal action the forward map."""
        kind = kinds.get(self.kind)
        if kind is None:
            if not self.transform.orthogonal:
                raise NotImplementedError(f"the {what} is not provided")
            kind = "forward"
        return GroupElementOperator(self.transform, self.domain, self.params, kind)

    @property
    def adjoint(self) -> GroupElementOperator:
        return self._other(
            {"forward": "adjoint", "adjoint": "forward"}, "transpose of a non-orthogonal inverse"
        )

    @property
    def inverse(self) -> GroupElementOperator:
        return self._other(
            {"forward": "inverse", "inverse": "forward"}, "inverse of a non-orthogonal transpose"
        )

    def __repr__(self) -> str:
        p = {k: v.tolist() for k, v in self.params.items()}
        return f"{type(self).__name__}({type(self.transform).__name__}, {p}, kind={self.kind!r})"

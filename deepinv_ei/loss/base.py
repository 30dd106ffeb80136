r"""Shared machinery of the losses: argument checks, physics resolution, per-sample physics,
and log names for :class:`deepinv.Trainer`."""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable
from typing import Any

import torch
from deepinv.loss import Loss

__all__ = ["NamedLoss", "as_physics", "has_per_sample_params", "check_weight", "check_metric"]


def check_weight(owner: str, weight: Any) -> float:
    """A finite, non-negative loss weight (a real number or a one-element tensor)."""
    if isinstance(weight, torch.Tensor) and weight.numel() == 1 and not weight.is_complex():
        weight = float(weight)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise TypeError(f"{owner}: weight must be a real number, got {type(weight).__name__}")
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"{owner}: weight must be a finite number >= 0, got {weight!r}")
    return float(weight)


def check_metric(owner: str, metric: Any) -> Callable:
    """``metric`` itself, or deepinv's default :class:`torch.nn.MSELoss` for ``None``."""
    if metric is None:
        return torch.nn.MSELoss()
    if not callable(metric):
        raise TypeError(
            f"{owner}: metric must be callable (a deepinv Metric or a torch.nn.Module) or None, "
            f"got {type(metric).__name__}"
        )
    return metric


# One class per log name, so that equal names give equal classes.
_NAMED_CLASSES: dict[str, type] = {}


class NamedLoss(Loss):
    r"""A loss that :class:`deepinv.Trainer` logs under a name of its own.

    The Trainer keys its logs and ``loss_history`` by ``loss.__class__.__name__`` (deepinv
    names losses by their class), so two losses of one class, say two
    :class:`~deepinv_ei.loss.EILoss` with other transforms, share one entry. ``NamedLoss(loss,
    name)`` wraps ``loss`` in an instance of a class called ``name`` (made once per name, a
    subclass of :class:`NamedLoss`) whose value, gradient and model adaptation are those of
    ``loss``. It pickles and deep-copies as the pair ``(loss, name)``.

    :param deepinv.loss.Loss loss: the wrapped loss, kept as :attr:`loss`.
    :param str name: the log name.

    :Example:

    >>> import deepinv as dinv
    >>> from deepinv_ei.loss import EILoss, NamedLoss
    >>> rotations = NamedLoss(EILoss(dinv.transform.Rotate(), weight=1), "EI-rotate")
    >>> type(rotations).__name__, isinstance(rotations, NamedLoss), rotations.loss.weight
    ('EI-rotate', True, 1.0)
    """

    def __new__(cls, loss: Loss, name: str):
        if not isinstance(name, str) or not name:
            raise TypeError(f"NamedLoss: name must be a non-empty str, got {name!r}")
        if name not in _NAMED_CLASSES:
            _NAMED_CLASSES[name] = type(name, (NamedLoss,), {"__module__": __name__})
        return super().__new__(_NAMED_CLASSES[name])

    def __init__(self, loss: Loss, name: str):
        super().__init__()
        if not isinstance(loss, Loss):
            raise TypeError(f"NamedLoss: loss must be a deepinv.loss.Loss, got {type(loss)}")
        self.loss = loss

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The wrapped loss' value."""
        return self.loss(*args, **kwargs)

    def adapt_model(self, model: torch.nn.Module, **kwargs: Any) -> torch.nn.Module:
        """The wrapped loss' model adaptation."""
        return self.loss.adapt_model(model, **kwargs)

    def __reduce__(self):
        # The class is made at run time: rebuild through the constructor, not by class name.
        return NamedLoss, (self.loss, type(self).__name__)


# Wrapping an ODL operator builds backends (e.g. ASTRA geometries): do it once per operator.
_ODL_WRAPPERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def as_physics(physics: Any) -> Any:
    r"""Return ``physics`` itself, or its :class:`~deepinv_ei.odl.OdlPhysics` wrapper.

    A linear :class:`odl.Operator` is wrapped with ``deepinv_ei.odl.OdlPhysics`` once and
    the wrapper is cached per operator; anything with a callable ``A`` is returned as is.

    :param physics: a :class:`deepinv.physics.Physics` (anything with ``A``) or an
        :class:`odl.Operator`.
    :raises TypeError: for anything else.
    """
    if callable(getattr(physics, "A", None)):
        return physics
    if _is_odl_operator(physics):
        wrapped = _ODL_WRAPPERS.get(physics)
        if wrapped is None:
            from deepinv_ei.odl import OdlPhysics  # lazy: ODL backends are heavy

            wrapped = OdlPhysics(physics)
            _ODL_WRAPPERS[physics] = wrapped
        return wrapped
    raise TypeError(
        "physics must be a deepinv.physics.Physics (an object with a callable `A`) or a "
        f"linear odl.Operator, got {type(physics).__name__}"
    )


def _is_odl_operator(obj: Any) -> bool:
    try:
        import odl
    except ImportError:  # pragma: no cover - odl is a dependency
        return False
    return isinstance(obj, odl.Operator)


def has_per_sample_params(physics: Any, batch_size: int) -> bool:
    r"""Whether ``physics`` (or its noise model) holds tensors with one entry per sample.

    Such physics (a mask per image, a noise level per image) cannot be applied to the
    ``n_trans * batch_size`` stacked copies of the EI loss at once. The test looks for a
    buffer or parameter whose leading dimension equals ``batch_size > 1``; a coincidental
    match only costs speed (the copies are then processed one group at a time).
    """
    if batch_size <= 1 or not isinstance(physics, torch.nn.Module):
        return False
    tensors = itertools.chain(physics.buffers(), physics.parameters())
    return any(t.ndim >= 1 and t.shape[0] == batch_size for t in tensors)

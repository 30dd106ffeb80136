r"""Shared machinery of the losses: log names, physics resolution, per-sample physics.

:class:`deepinv.Trainer` names every loss in its logs and in its loss history by
``loss.__class__.__name__``, so two :class:`~deepinv_ei.loss.EILoss` with different
transforms or weights would be merged into one entry. :class:`NamedLoss` gives each
instance a distinct, descriptive class name (a cached subclass per name) without any
change to the Trainer.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from deepinv.loss import Loss

__all__ = ["NamedLoss", "as_physics", "has_per_sample_params"]

# One subclass per (base class, name), so that equal names give equal classes.
_NAMED_CLASSES: dict[tuple[type, str], type] = {}


def _named_subclass(base: type, name: str) -> type:
    key = (base, name)
    if key not in _NAMED_CLASSES:
        cls = type(name, (base,), {"__module__": base.__module__, "__doc__": base.__doc__})
        cls._named_base = base
        _NAMED_CLASSES[key] = cls
    return _NAMED_CLASSES[key]


def _rebuild_named(base: type, name: str) -> NamedLoss:
    # Pickle/deepcopy entry point: a bare instance of the named subclass; the state is
    # restored afterwards by ``torch.nn.Module.__setstate__``.
    return object.__new__(_named_subclass(base, name))


class NamedLoss(Loss):
    r"""A :class:`deepinv.loss.Loss` whose class name is its log name.

    Subclasses implement :meth:`default_name`; a user-given ``name`` overrides it. The
    instance keeps being an instance of its class (``isinstance`` works) and can be
    pickled and deep-copied.

    :param str name: name under which :class:`deepinv.Trainer` logs the loss; ``None``
        for :meth:`default_name`.
    """

    _named_base: type | None = None

    def __init__(self, name: str | None = None):
        super().__init__()
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty str or None, got {name!r}")
        self._log_name = name

    def default_name(self) -> str:
        """Descriptive name built from the loss' settings (hook for subclasses)."""
        return type(self).__name__

    def _finalise_name(self) -> None:
        """Switch to the named subclass; call at the end of a subclass' ``__init__``."""
        base = self._named_base or type(self)
        name = self._log_name or self.default_name()
        if name != base.__name__:
            self.__class__ = _named_subclass(base, name)
        self._log_name = name

    @property
    def log_name(self) -> str:
        """The name shown in :class:`deepinv.Trainer` logs (``type(self).__name__``)."""
        return type(self).__name__

    def __reduce_ex__(self, protocol: int):
        base = self._named_base or type(self)
        return (_rebuild_named, (base, type(self).__name__), self.__getstate__())


def as_physics(physics: Any) -> Any:
    r"""Return ``physics`` itself, or its :class:`~deepinv_ei.odl.OdlPhysics` wrapper.

    A linear :class:`odl.Operator` is wrapped once per operator
    (:func:`deepinv_ei.odl.cached_physics`); anything with a callable ``A`` is returned as is.

    :param physics: a :class:`deepinv.physics.Physics` (anything with ``A``) or an
        :class:`odl.Operator`.
    :raises TypeError: for anything else.
    """
    if callable(getattr(physics, "A", None)):
        return physics
    if _is_odl_operator(physics):
        from deepinv_ei.odl import cached_physics  # lazy: ODL backends are heavy

        return cached_physics(physics)
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

r"""The one in-memory cache of what is built from ODL operators.

Backends (key ``("backend", id(op), name, options, device)``), the module of
:class:`~deepinv_ei.odl.OperatorFunction` and the physics of
:func:`~deepinv_ei.odl.cached_physics` (``("module" | "physics", id(op))``) and system matrices
(``("matrix", geometry digest, dtype, device)``) are looked up in one weak-valued table before
they are built. A *holder* keeps each value alive: the operator its module and physics
(:func:`operator_holder`), the module its backends, the backend its matrices. A value is thus
shared while held and freed with its last holder; a value whose key names an object by ``id``
holds that object, so the id cannot be reused while the entry exists.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, MutableMapping
from typing import Any, TypeVar

Value = TypeVar("Value")

_lock = threading.Lock()
_table: weakref.WeakValueDictionary[tuple, Any] = weakref.WeakValueDictionary()

# The attribute of an ODL operator that holds what was built from it.
_HOLDER_ATTRIBUTE = "_deepinv_ei_built"


class _Holder(dict):
    """A holder that copies and pickles empty: a copied operator rebuilds what it needs."""

    def __reduce__(self):
        return (_Holder, ())


def cached(
    key: tuple | None,
    build: Callable[[], Value],
    holder: MutableMapping[Hashable, Any],
    name: Hashable,
) -> Value:
    """``holder[name]``, else the table's value for ``key``, else ``build()``; kept in both.

    :param tuple key: the table key, whose first item names the kind (``"matrix"``, ...);
        ``None`` for a value shared with nothing.
    :param build: makes the value (outside the lock: two threads may both build, and both get
        the value stored first).
    :param holder: the dict that keeps the value alive for its user, under ``name``.
    """
    value = holder.get(name)
    if value is None and key is not None:
        with _lock:
            value = _table.get(key)
    if value is None:
        value = build()
        if key is not None:
            with _lock:
                value = _table.setdefault(key, value)
    holder[name] = value
    return value


def operator_holder(op: object) -> MutableMapping[Hashable, Any]:
    """The dict, kept on ``op`` itself, that holds what was built from ``op``.

    Copies of ``op`` (pickle, deepcopy) start with an empty one. An operator without an instance
    ``__dict__`` (one with ``__slots__``) gets a new dict per call: what is built for it is then
    shared only while its users hold it.
    """
    try:
        return vars(op).setdefault(_HOLDER_ATTRIBUTE, _Holder())
    except TypeError:
        return {}


def held_count(kind: str) -> int:
    """How many values of ``kind`` (``"matrix"``, ``"backend"``, ...) are held in memory now."""
    with _lock:
        return sum(1 for key in list(_table.keys()) if key[0] == kind)


def forget(kind: str) -> None:
    """Drop the table's values of ``kind``; their holders keep them, new lookups rebuild them."""
    with _lock:
        for key in [k for k in list(_table.keys()) if k[0] == kind]:
            _table.pop(key, None)


__all__ = ["cached", "forget", "held_count", "operator_holder"]

r"""The one in-memory cache of what is built from ODL operators.

Building from an operator costs time (ASTRA geometries, dot tests, a module's backends) or
memory (system matrices), so everything built from one is looked up by a key before it is
built, in a single table:

- the backend of a module on a device: ``("backend", id(op), name, options, device)``, shared
  by every module of the operator with those settings;
- the module :class:`~deepinv_ei.odl.OperatorFunction` applies and the physics that
  :func:`~deepinv_ei.odl.cached_physics` returns: ``("module" | "physics", id(op))``;
- a system matrix: ``("matrix", geometry digest, dtype, device)``, shared by every operator of
  the same discretisation.

The table holds its values weakly; a *holder* (a plain ``dict`` owned by whoever uses the
value) keeps them alive: the operator for its module and physics (:func:`operator_holder`), the
module for its backends, the backend for its matrices. A value is thus shared while something
holds it and freed with its last holder, and nothing outlives the operator it was built from.
A key that names an object by ``id`` belongs to a value that holds that object, so the id
cannot be reused while the entry exists.
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

    :param tuple key: the table key; its first item names the kind of value (``"matrix"``, ...).
        ``None`` for a value shared with nothing, kept by its holder alone.
    :param build: makes the value (called outside the lock: a value built twice by two threads
        at once is built twice, and both get the one stored first).
    :param holder: the dict that keeps the value alive for its user.
    :param name: the value's key in ``holder``.
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

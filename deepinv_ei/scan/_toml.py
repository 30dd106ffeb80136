"""A small TOML writer for plain data: the standard library reads TOML (``tomllib``) but does not
write it.

Only what scanner specs need: tables (nested dicts), and values that are strings, booleans,
integers, finite floats or arrays of these. Floats are written with :func:`repr`, the shortest
text that reads back as the same float, so ``tomllib.loads(dumps(d)) == d`` bit for bit.
"""

from __future__ import annotations

import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
#: Arrays longer than this are written one row of this many values per line.
ARRAY_ROW = 8


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"TOML keys are strings, got {type(key).__name__} {key!r}")
    return key if _BARE_KEY.match(key) else _string(key)


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{where}: TOML files of this project hold finite numbers, got {v}")
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list | tuple):
        items = [_value(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if len(items) <= ARRAY_ROW:
            return "[" + ", ".join(items) + "]"
        rows = [", ".join(items[i : i + ARRAY_ROW]) for i in range(0, len(items), ARRAY_ROW)]
        return "[\n    " + ",\n    ".join(rows) + ",\n]"
    raise TypeError(f"{where}: cannot write a {type(v).__name__} to TOML")


def _table(d: dict, path: list[str], lines: list[str]) -> None:
    scalars = [(k, v) for k, v in d.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in d.items() if isinstance(v, dict)]
    if path and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_key(p) for p in path) + "]")
    for k, v in scalars:
        if v is None:
            raise TypeError(f"{'.'.join([*path, k])}: TOML has no null; leave the key out")
        lines.append(f"{_key(k)} = {_value(v, '.'.join([*path, k]))}")
    for k, v in tables:
        _table(v, [*path, k], lines)


def dumps(data: dict) -> str:
    """``data`` as a TOML document (top-level keys first, then one ``[table]`` per nested dict).

    >>> import tomllib
    >>> text = dumps({"unit": "mm", "detector": {"count": 3, "pitch": 0.1}})
    >>> print(text, end="")
    unit = "mm"
    <BLANKLINE>
    [detector]
    count = 3
    pitch = 0.1
    >>> tomllib.loads(text) == {"unit": "mm", "detector": {"count": 3, "pitch": 0.1}}
    True
    """
    if not isinstance(data, dict):
        raise TypeError(f"expected a dict, got {type(data).__name__}")
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"

"""Array layouts against a scanner: named axes, their expected lengths, and transposition.

A stored array's axes are named (``angle``, ``detector`` or ``col``, ``row``, ``slice``, and
a few aliases); :func:`check_axis_lengths` compares their lengths with what the scanner
expects, and when they fit only in another order of the axes, says the array looks transposed
and which order fits.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from .fields import ScannerSpecError

#: Accepted axis names and the canonical name each stands for.
AXIS_ALIASES = {
    "angle": "angle",
    "angles": "angle",
    "view": "angle",
    "views": "angle",
    "theta": "angle",
    "detector": "detector",
    "detectors": "detector",
    "det": "detector",
    "col": "col",
    "cols": "col",
    "column": "col",
    "columns": "col",
    "row": "row",
    "rows": "row",
    "slice": "slice",
    "slices": "slice",
}


def axis_names(axes: str | Sequence[str]) -> list[str]:
    """The canonical names of ``axes`` (``"slice,angle,detector"`` or a sequence).

    :raises ScannerSpecError: on an unknown or repeated name.
    """
    raw = axes.split(",") if isinstance(axes, str) else list(axes)
    names = []
    for a in raw:
        key = str(a).strip().lower()
        if key not in AXIS_ALIASES:
            raise ScannerSpecError(
                f"unknown axis name {a!r}; expected angle, detector, row, col or slice"
            )
        names.append(AXIS_ALIASES[key])
    if len(set(names)) != len(names):
        raise ScannerSpecError(f"axis names repeat: {', '.join(names)}")
    return names


def check_axis_lengths(
    shape: Sequence[int],
    axes: str | Sequence[str],
    expected: dict[str, int | None],
    about: str,
    what: str = "data",
) -> None:
    """Raise if an array of ``shape`` with named ``axes`` does not have the ``expected`` length
    on each axis (``None``: any length); the error says which order fits, if another does.

    :param dict expected: canonical axis name to its length.
    :param str about: what the lengths describe, for the message (``"the scanner (...)"``).
    :param str what: what the array is, for the message.
    """
    names = axis_names(axes)
    shape = tuple(int(n) for n in shape)
    if len(names) != len(shape):
        raise ScannerSpecError(
            f"{what} has {len(shape)} axes {shape} but {len(names)} axis names were given "
            f"({', '.join(names)})"
        )

    def fits(order: Sequence[str]) -> bool:
        return all(
            expected.get(n) is None or expected[n] == s for n, s in zip(order, shape, strict=True)
        )

    if fits(names):
        return
    for order in itertools.permutations(names):
        if list(order) != names and fits(order):
            raise ScannerSpecError(
                f"{what} of shape {shape} with axes ({', '.join(names)}) looks transposed: "
                f"its lengths fit {about} as axes ({', '.join(order)}); transpose it or "
                "name its axes in that order"
            )
    wrong = [
        f"{n} has length {s}, expected {expected[n]}"
        for n, s in zip(names, shape, strict=True)
        if expected.get(n) is not None and expected[n] != s
    ]
    raise ScannerSpecError(
        f"{what} of shape {shape} with axes ({', '.join(names)}) does not fit {about}: "
        + "; ".join(wrong)
    )

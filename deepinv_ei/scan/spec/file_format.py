"""The file format of a scanner spec, as a plain dict (what TOML and JSON parse to).

:func:`parse_spec_dict` checks a parsed file field by field and gives the
:class:`~deepinv_ei.scan.ScannerSpec` arguments; :func:`spec_to_dict` writes a spec back, its
angles in the form they were given (a count and range, or a list) when that form reproduces
them exactly. The fields are documented in ``docs/scanner_spec.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import fields
from .fields import ScannerSpecError, angle_values

_TOP = ("version", "geometry", "unit", "angles", "detector", "source", "image")
_IMAGE_KEYS = ("shape", "pixel_size", "center", "extent")
_ANGLE_KEYS = ("unit", "count", "start", "stop", "step", "values", "file")


def _detector_keys(geometry: str) -> tuple[str, ...]:
    keys = ["count", "pitch", "shift", "extent"]
    if geometry in fields.STACKED:
        keys += ["rows", "row_pitch"]
    if geometry == "cone3d":
        keys += ["row_shift", "row_extent"]
    if geometry in fields.DIVERGENT:
        keys.append("distance")
    if geometry == "fan2d":
        keys.append("offset")
    return tuple(keys)


def _refuse_unknown(d: dict, allowed: Sequence[str], prefix: str, which: str) -> None:
    # A misspelt field must never go unnoticed: name it, and what is allowed there.
    unknown = [k for k in d if k not in allowed]
    if unknown:
        raise ScannerSpecError(
            f"unknown field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(prefix + k for k in unknown)}; {which} are: {', '.join(allowed)}"
        )


def _table(d: Any, name: str, allowed: Sequence[str], required: Sequence[str], why: str) -> dict:
    if not isinstance(d, dict):
        raise ScannerSpecError(f"[{name}] must be a table, got {type(d).__name__} {d!r}")
    _refuse_unknown(d, allowed, f"{name}.", f"the fields of [{name}]{why}")
    missing = [k for k in required if k not in d]
    if missing:
        raise ScannerSpecError(
            f"missing field{'s' if len(missing) > 1 else ''} "
            f"{', '.join(f'{name}.{k}' for k in missing)}{why}"
        )
    return d


def parse_spec_dict(d: Any, base_dir: Path, where: str) -> dict:
    """The :class:`ScannerSpec` arguments of the file format ``d``."""
    if not isinstance(d, dict):
        raise ScannerSpecError(f"a scanner spec is a table of fields, got {type(d).__name__}")
    _refuse_unknown(d, _TOP, "", "the allowed top-level fields")
    if "geometry" not in d:
        raise ScannerSpecError(f"missing field geometry (one of {', '.join(fields.GEOMETRIES)})")
    geometry = d["geometry"]
    if geometry not in fields.GEOMETRIES:
        raise ScannerSpecError(
            f"geometry must be one of {', '.join(fields.GEOMETRIES)}, got {geometry!r}"
        )
    if d.get("version", fields.FORMAT_VERSION) != fields.FORMAT_VERSION:
        raise ScannerSpecError(
            f"version {d['version']!r} is not understood (this version reads {fields.FORMAT_VERSION})"
        )
    if "unit" not in d:
        raise ScannerSpecError(
            f"missing field unit: the length unit of every distance, one of "
            f"{', '.join(fields.LENGTH_UNITS)}"
        )
    for name in ("angles", "detector"):
        if name not in d:
            raise ScannerSpecError(f"missing table [{name}]")
    for_g = f" for {geometry}"
    det = _table(d["detector"], "detector", _detector_keys(geometry), ("count", "pitch"), for_g)
    if geometry in fields.DIVERGENT:
        if "source" not in d:
            raise ScannerSpecError(f"missing table [source] (its distance, needed for {geometry})")
        if "distance" not in det:
            raise ScannerSpecError(f"missing field detector.distance (needed for {geometry})")
        src_keys = ("distance", "offset") if geometry == "fan2d" else ("distance",)
        src = _table(d["source"], "source", src_keys, ("distance",), for_g)
    elif "source" in d:
        raise ScannerSpecError(f"[source] is only for fan2d and cone3d, not for {geometry}")
    else:
        src = {}
    if geometry in fields.PARALLEL:
        image = _table(d.get("image", {}), "image", _IMAGE_KEYS, (), "")
    else:
        if "image" not in d:
            raise ScannerSpecError(
                f"missing table [image] (its shape and pixel_size, needed for {geometry})"
            )
        image = _table(d["image"], "image", _IMAGE_KEYS, ("shape", "pixel_size"), for_g)
    angles, form = _parse_angles(d["angles"], base_dir, where)
    kwargs = {
        "geometry": geometry,
        "unit": d["unit"],
        "angles": angles,
        "angles_form": form,
        "det_count": det["count"],
        "det_pitch": det["pitch"],
        "det_shift": det.get("shift", 0.0),
        "det_rows": det.get("rows", 1),
        "row_pitch": det.get("row_pitch"),
        "row_shift": det.get("row_shift", 0.0),
        "src_radius": src.get("distance"),
        "det_radius": det.get("distance"),
        "src_offset": src.get("offset", (0.0, 0.0)),
        "det_offset": det.get("offset", (0.0, 0.0)),
        "image_shape": image.get("shape"),
        "pixel_size": image.get("pixel_size"),
        "image_center": image.get("center"),
        "det_extent": det.get("extent"),
        "row_extent": det.get("row_extent"),
        "image_extent": image.get("extent"),
    }
    if geometry in fields.STACKED and "rows" not in det:
        raise ScannerSpecError(f"missing field detector.rows (needed for {geometry})")
    return kwargs


def _parse_angles(a: Any, base_dir: Path, where: str) -> tuple[np.ndarray, dict]:
    a = _table(a, "angles", _ANGLE_KEYS, ("unit",), "")
    unit = a["unit"]
    if unit not in fields.ANGLE_UNITS:
        raise ScannerSpecError(
            f"angles.unit must be one of {', '.join(fields.ANGLE_UNITS)}, got {unit!r}"
        )
    forms = [k for k in ("count", "values", "file") if k in a]
    if len(forms) != 1:
        raise ScannerSpecError(
            "angles: give exactly one of count (with start and stop or step), values (a list) "
            f"or file (a text file); got {', '.join(forms) if forms else 'none'}"
        )
    if forms == ["count"]:
        extra = [k for k in ("values", "file") if k in a]
        ends = [k for k in ("stop", "step") if k in a]
        if len(ends) != 1:
            raise ScannerSpecError(
                "angles: with count, give exactly one of stop (the range's end, excluded) or "
                f"step; got {', '.join(ends) if ends else 'neither'}"
            )
        form = {k: a[k] for k in ("unit", "count", "start", *ends) if k in a}
    else:
        extra = [k for k in ("start", "stop", "step") if k in a]
        if extra:
            raise ScannerSpecError(f"angles: {', '.join(extra)} go with count, not with {forms[0]}")
        if forms == ["file"]:
            values = read_angles_file(base_dir / str(a["file"]), where)
        else:
            values = angle_values({"values": a["values"]}, "")
        form = {"unit": unit, "values": values.tolist()}
    values = angle_values(form, "")
    return fields.to_radians(values, unit), form


def read_angles_file(path: Path, where: str = "") -> np.ndarray:
    """The angles of a text file: numbers separated by white space, commas, semicolons or new
    lines; ``#`` starts a comment.

    :param str where: what to name before the field in a message (the spec file).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{where}angles.file {path}: no such file")
    values = []
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ScannerSpecError(f"angles file {path} is not a text file") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        for token in line.split("#", 1)[0].replace(",", " ").replace(";", " ").split():
            try:
                v = float(token)
            except ValueError:
                raise ScannerSpecError(
                    f"angles file {path}, line {lineno}: {token!r} is not a number"
                ) from None
            if not math.isfinite(v):
                raise ScannerSpecError(
                    f"angles file {path}, line {lineno}: {token!r} is not finite"
                )
            values.append(v)
    if not values:
        raise ScannerSpecError(f"angles file {path} holds no angles")
    return np.asarray(values, dtype=np.float64)


def reproducing_form(form: dict | None, angles: np.ndarray) -> dict | None:
    """``form`` (how a file wrote the angles) if it gives exactly ``angles`` in radians, bit for
    bit; else ``None``."""
    if not form or form.get("unit") not in fields.ANGLE_UNITS:
        return None
    try:
        values = angle_values(form, "")
    except (KeyError, ScannerSpecError, TypeError):
        return None
    return form if fields.same_bits(fields.to_radians(values, form["unit"]), angles) else None


def spec_to_dict(spec: Any) -> dict:
    """The file format of the :class:`~deepinv_ei.scan.ScannerSpec` ``spec`` as a plain dict,
    every value written out (see :meth:`~deepinv_ei.scan.ScannerSpec.to_dict`)."""
    form = reproducing_form(spec.angles_form, spec.angles)
    if form is None:
        angles: dict = {"unit": "rad", "values": spec.angles.tolist()}
    elif "values" in form:
        angles = {"unit": form["unit"], "values": angle_values(form, "").tolist()}
    else:
        angles = {k: form[k] for k in ("unit", "count", "start", "stop", "step") if k in form}
        angles.setdefault("start", 0.0)
    out: dict = {
        "version": fields.FORMAT_VERSION,
        "geometry": spec.geometry,
        "unit": spec.unit,
        "angles": angles,
    }
    det: dict = {"count": spec.det_count, "pitch": spec.det_pitch, "shift": spec.det_shift}
    if spec.det_extent is not None:
        det["extent"] = list(spec.det_extent)
    if spec.geometry in fields.STACKED:
        det.update(rows=spec.det_rows, row_pitch=spec.row_pitch)
    if spec.geometry == "cone3d":
        det["row_shift"] = spec.row_shift
        if spec.row_extent is not None:
            det["row_extent"] = list(spec.row_extent)
    if spec.geometry in fields.DIVERGENT:
        det["distance"] = spec.det_radius
        src: dict = {"distance": spec.src_radius}
        if spec.geometry == "fan2d":
            det["offset"] = list(spec.det_offset)
            src["offset"] = list(spec.src_offset)
    out["detector"] = det
    if spec.geometry in fields.DIVERGENT:
        out["source"] = src
    out["image"] = {
        "shape": list(spec.image_shape),
        "pixel_size": spec.pixel_size,
        "center": list(spec.image_center),
    }
    if spec.image_extent is not None:
        out["image"]["extent"] = [list(e) for e in spec.image_extent]
    return out

"""Scanner spec files: :func:`load_spec` reads a ``.toml`` or ``.json`` file, :func:`save_spec`
writes one, atomically, with floats that read back exactly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ...utils.io import atomic_write_json, atomic_write_text
from . import toml_writer
from .fields import ScannerSpecError
from .scanner import ScannerSpec

__all__ = ["load_spec", "save_spec"]


def _tomllib() -> Any:
    """The standard library's TOML reader (Python >= 3.11), or its backport ``tomli``."""
    try:
        import tomllib
    except ModuleNotFoundError:
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ImportError(
                "reading a TOML scanner spec needs Python >= 3.11 (tomllib) or the tomli "
                "package (pip install tomli); or write the spec as JSON"
            ) from None
    return tomllib


def load_spec(path: str | os.PathLike) -> ScannerSpec:
    """Read a scanner spec from a ``.toml`` (standard library ``tomllib``) or ``.json`` file.

    An ``angles.file`` is relative to the spec file's folder.

    :raises FileNotFoundError: naming the file. :raises ScannerSpecError: naming the file and
        the field, for a malformed file or field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such scanner spec file")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ScannerSpecError(f"{path}: a scanner spec is a .toml or .json file, got {suffix!r}")
    text = path.read_text(encoding="utf-8")
    tomllib = _tomllib() if suffix == ".toml" else None
    try:
        d = tomllib.loads(text) if tomllib else json.loads(text)
    except (ValueError, json.JSONDecodeError) as err:  # TOMLDecodeError is a ValueError
        raise ScannerSpecError(f"{path}: not valid {suffix[1:].upper()}: {err}") from None
    return ScannerSpec.from_dict(d, base_dir=path.parent, origin=str(path))


def save_spec(spec: ScannerSpec, path: str | os.PathLike) -> Path:
    """Write ``spec`` to a ``.toml`` or ``.json`` file, atomically; floats read back exactly."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return atomic_write_json(path, spec.to_dict())
    if suffix == ".toml":
        header = f"# deepinv-ei scanner spec (docs: scanner_spec.md); hash {spec.hash}\n"
        return atomic_write_text(path, header + toml_writer.dumps(spec.to_dict()))
    raise ScannerSpecError(f"{path}: a scanner spec is written as .toml or .json, got {suffix!r}")

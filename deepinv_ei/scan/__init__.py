"""Measured scans: scanner description files (and, with them, readers and measurement sets).

- :class:`ScannerSpec`, :func:`load_spec`, :func:`save_spec`: a scanner's geometry as a small
  TOML or JSON file.
- :func:`geometry_from_spec`, :func:`spec_from_geometry`: exact conversion to and from ODL.
- :func:`ray_transform_from_spec`: the deepinv physics of one slice.
"""

from .spec import (
    ANGLE_UNITS,
    GEOMETRIES,
    LENGTH_UNITS,
    ScannerSpec,
    ScannerSpecError,
    geometry_fingerprint,
    geometry_from_spec,
    load_spec,
    ray_transform_from_spec,
    save_spec,
    spec_from_geometry,
)

__all__ = [
    "ANGLE_UNITS",
    "GEOMETRIES",
    "LENGTH_UNITS",
    "ScannerSpec",
    "ScannerSpecError",
    "geometry_fingerprint",
    "geometry_from_spec",
    "load_spec",
    "ray_transform_from_spec",
    "save_spec",
    "spec_from_geometry",
]

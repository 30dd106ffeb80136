"""Scanner description files: what a CT scanner measured, as a small TOML or JSON file.

- :mod:`.scanner`: :class:`ScannerSpec`, the validated description (geometry, views,
  detector, source, image grid, one length unit), its hash and variants;
- :mod:`.file_format` and :mod:`.files`: the file format (documented field by field in
  ``docs/scanner_spec.md``), :func:`load_spec` and :func:`save_spec`;
- :mod:`.odl_conversion`: :func:`geometry_from_spec` and :func:`spec_from_geometry`, exact
  conversions to and from ODL: the round trip gives the same system matrix
  (``deepinv_ei.odl.geometry.geometry_key``), bit for bit;
- :mod:`.physics`: :func:`ray_transform_from_spec`, the deepinv physics of one slice;
- :mod:`.fields` (vocabulary and checks of one field) and :mod:`.layout` (data layouts
  against a scanner), used by the others.
"""

from .fields import ANGLE_UNITS, GEOMETRIES, LENGTH_UNITS, ScannerSpecError
from .files import load_spec, save_spec
from .odl_conversion import geometry_fingerprint, geometry_from_spec, spec_from_geometry
from .physics import ray_transform_from_spec
from .scanner import ScannerSpec

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

"""Measured scans: scanner description files, readers, pre-processing, measurement sets.

- :class:`ScannerSpec`, :func:`load_spec`, :func:`save_spec`: a scanner's geometry as a small
  TOML or JSON file.
- :func:`geometry_from_spec`, :func:`spec_from_geometry`: exact conversion to and from ODL.
- :func:`ray_transform_from_spec`: the deepinv physics of one slice.
- :func:`open_stack`, :func:`data_exchange`, :func:`read_angles`: lazy readers of projections
  and sinograms (TIFF, HDF5, NumPy, MATLAB).
- :func:`ingest`: raw projections or post-log sinograms in, a measurement set out;
  :class:`MeasurementSet` reads one, :func:`is_measurement_set` tells one from other files.
- :func:`simulate_scan`: a simulated raw acquisition of a seeded 3D phantom.
"""

from . import spec
from .ingestion import ingest
from .measurement_set import (
    MeasurementSet,
    MeasurementSetWriter,
    is_measurement_set,
    write_measurement_set,
)
from .preprocess import (
    DetectorWindow,
    FlatDarkCorrection,
    estimate_centre_offset,
    select_views,
    shift_detector,
)
from .readers import Stack, data_exchange, open_stack, read_angles, sha256_file
from .scanner_setup import check_not_transposed, check_shape
from .set_output import IngestSummary, split_slices
from .simulate import SimulatedScan, phantom_volume, simulate_scan
from .spec import *  # noqa: F403  (re-exports spec.__all__)

__all__ = [
    *spec.__all__,
    "DetectorWindow",
    "FlatDarkCorrection",
    "IngestSummary",
    "MeasurementSet",
    "MeasurementSetWriter",
    "SimulatedScan",
    "Stack",
    "check_not_transposed",
    "check_shape",
    "data_exchange",
    "estimate_centre_offset",
    "ingest",
    "is_measurement_set",
    "open_stack",
    "phantom_volume",
    "read_angles",
    "select_views",
    "sha256_file",
    "shift_detector",
    "simulate_scan",
    "split_slices",
    "write_measurement_set",
]

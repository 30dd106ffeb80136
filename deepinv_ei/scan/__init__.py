"""Measured scans: scanner specs, readers, pre-processing, measurement sets, simulated scans."""

from .preprocess import (
    DetectorWindow,
    FlatDarkCorrection,
    estimate_centre_offset,
    select_views,
    shift_detector,
)
from .readers import Stack, data_exchange, open_stack, read_angles, sha256_file

__all__ = [
    "DetectorWindow",
    "FlatDarkCorrection",
    "Stack",
    "data_exchange",
    "estimate_centre_offset",
    "open_stack",
    "read_angles",
    "select_views",
    "sha256_file",
    "shift_detector",
]

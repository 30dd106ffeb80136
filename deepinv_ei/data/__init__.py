"""Data sets for the Equivariant Imaging experiments, as float32 ``(N, C, H, W)`` in [0, 1].

Embedded defaults (no downloads, deterministic): :func:`ct_phantoms`,
:func:`pydicom_ct_slices`, :func:`natural_images`, :func:`digits`. The paper's data sets from a
user path: :func:`load_ct100`, :func:`load_urban100`, :func:`load_usps`. One dispatcher per
task: :func:`load_dataset`.
"""

from .base import ImageSplit, center_crop, resize
from .ct100 import load_ct100
from .embedded import (
    NATURAL_IMAGES,
    NATURAL_TEST,
    NATURAL_TRAIN,
    PYDICOM_CT_FILES,
    digits,
    natural_images,
    pydicom_ct_slices,
)
from .phantoms import Ellipse, ct_phantoms, rasterize_ellipses
from .readers import read_dicom_hu, read_libsvm, read_mat_stack
from .registry import TASK_DATA, TaskData, load_dataset
from .urban100 import load_urban100
from .usps import load_usps

__all__ = [
    "ImageSplit",
    "center_crop",
    "resize",
    "ct_phantoms",
    "Ellipse",
    "rasterize_ellipses",
    "pydicom_ct_slices",
    "natural_images",
    "digits",
    "NATURAL_IMAGES",
    "NATURAL_TRAIN",
    "NATURAL_TEST",
    "PYDICOM_CT_FILES",
    "load_ct100",
    "load_urban100",
    "load_usps",
    "read_dicom_hu",
    "read_libsvm",
    "read_mat_stack",
    "TASK_DATA",
    "TaskData",
    "load_dataset",
]

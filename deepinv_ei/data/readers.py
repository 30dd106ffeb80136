"""Readers of single files (DICOM, TIFF, MATLAB, LIBSVM, PNG) with clear errors on bad input.

Each reader returns numpy arrays and raises a :class:`ValueError` naming the file, what was
expected and what was found when the file is malformed.
"""

from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np


def read_dicom_hu(path) -> np.ndarray:
    r"""The pixel values of a single-frame DICOM slice in physical units (Hounsfield for CT):
    :math:`\text{stored} \cdot \text{RescaleSlope} + \text{RescaleIntercept}` (float64, 2-D).

    :raises ValueError: if the file is not DICOM, holds no pixel data, cannot be decoded or
        is not a single 2-D slice.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError) as err:
        raise ValueError(f"{path}: expected a DICOM file, could not read it ({err})") from err
    if "PixelData" not in ds:
        raise ValueError(f"{path}: expected a DICOM image, but the file has no Pixel Data")
    try:
        stored = ds.pixel_array
    except Exception as err:  # decoders raise many types (missing plugin, corrupt stream)
        raise ValueError(f"{path}: could not decode the DICOM pixel data ({err})") from err
    if stored.ndim != 2:
        raise ValueError(
            f"{path}: expected a single 2-D slice, got pixel data of shape {stored.shape}"
        )
    slope = float(ds.get("RescaleSlope", 1.0))
    intercept = float(ds.get("RescaleIntercept", 0.0))
    return stored.astype(np.float64) * slope + intercept


def read_tiff(path) -> np.ndarray:
    """A 2-D TIFF image as float64 (16-bit signed CT TIFFs included).

    :raises ValueError: if the file cannot be read as a single-channel image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            array = np.asarray(im)
    except (UnidentifiedImageError, OSError) as err:
        try:  # some scientific TIFF flavours are read by tifffile only
            import tifffile

            array = tifffile.imread(path)
        except Exception:
            raise ValueError(f"{path}: expected a TIFF image, could not read it ({err})") from err
    array = np.squeeze(array)
    if array.ndim != 2:
        raise ValueError(
            f"{path}: expected a single-channel 2-D TIFF, got an array of shape {array.shape}"
        )
    return array.astype(np.float64)


def read_mat_stack(path, key: str = "DATA") -> np.ndarray:
    """The 3-D array ``key`` of a MATLAB file (v5 via scipy, v7.3 via h5py) as ``(N, H, W)``.

    MATLAB v7.3 files are HDF5 and store arrays column-major, so h5py reads them with the
    axes reversed; they are reversed back here. A stack stored as ``(H, W, N)`` (square
    images) is moved to ``(N, H, W)``.

    :raises ValueError: if the file is not a MATLAB file, lacks ``key`` or ``key`` is not 3-D.
    """
    import h5py
    import scipy.io

    path = Path(path)
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            if key not in f:
                raise ValueError(
                    f"{path}: expected a variable {key!r} in the MATLAB file, found {sorted(f.keys())}"
                )
            data = np.asarray(f[key]).T
    else:
        try:
            contents = scipy.io.loadmat(path)
        except Exception as err:
            raise ValueError(
                f"{path}: expected a MATLAB .mat file, could not read it ({err})"
            ) from err
        variables = sorted(k for k in contents if not k.startswith("__"))
        if key not in contents:
            raise ValueError(
                f"{path}: expected a variable {key!r} in the MATLAB file, found {variables}"
            )
        data = np.asarray(contents[key])
    if data.ndim != 3 or not np.issubdtype(data.dtype, np.number):
        raise ValueError(
            f"{path}: expected {key!r} to be a numeric 3-D stack (N, H, W), got {data.dtype} of shape {data.shape}"
        )
    if data.shape[1] != data.shape[2] and data.shape[0] == data.shape[1]:
        data = np.moveaxis(data, -1, 0)  # (H, W, N) -> (N, H, W)
    return data.astype(np.float64)


def read_libsvm(path, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A dense LIBSVM file (plain or ``.bz2``): lines ``label idx:value ...``, indices 1-based.

    :return: ``(features, labels)``, shapes ``(N, n_features)`` (absent entries are 0) and ``(N,)``.
    :raises ValueError: naming the file and line of a malformed line or an index outside
        ``1..n_features``, or if the file holds no samples.
    """
    path = Path(path)
    opener = bz2.open if path.suffix == ".bz2" else open
    features, labels = [], []
    try:
        with opener(path, "rt") as f:
            for lineno, line in enumerate(f, start=1):
                tokens = line.split()
                if not tokens:
                    continue
                row = np.zeros(n_features)
                try:
                    labels.append(float(tokens[0]))
                    for token in tokens[1:]:
                        index, value = token.split(":")
                        i = int(index)
                        if not 1 <= i <= n_features:
                            raise ValueError(f"index {i} outside 1..{n_features}")
                        row[i - 1] = float(value)
                except ValueError as err:
                    raise ValueError(
                        f"{path}, line {lineno}: expected 'label index:value ...' with indices in "
                        f"1..{n_features} ({err}); the line starts {line[:60]!r}"
                    ) from None
                features.append(row)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path}: expected a LIBSVM text file (plain or bz2), could not read it ({err})"
        ) from err
    if not features:
        raise ValueError(f"{path}: expected LIBSVM samples, the file holds none")
    return np.stack(features), np.asarray(labels)


def read_rgb(path) -> np.ndarray:
    """An image file as RGB float64 ``(H, W, 3)`` in [0, 1] (grey and RGBA are converted)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            mode = im.mode
            array = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: expected an image file, could not read it ({err})") from err
    # 16-bit grey PNGs ("I;16", "I") convert to RGB by clipping at 255: scale them first.
    if mode.startswith("I"):
        with Image.open(path) as im:
            grey = np.asarray(im).astype(np.float64)
        return np.repeat((grey / max(grey.max(), 1.0))[..., None], 3, axis=-1)
    return array.astype(np.float64) / 255.0

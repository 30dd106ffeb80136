"""Readers of single files (DICOM, TIFF, MATLAB, LIBSVM, PNG) with clear errors on bad input.

Each reader returns numpy arrays and raises a :class:`ValueError` naming the file, what was
expected and what was found when the file is malformed: unreadable or truncated, NaN or
infinite pixels, a LIBSVM record cut short, a MATLAB stack whose axis order cannot be told.
"""

from __future__ import annotations

import bz2
import warnings
from pathlib import Path

import numpy as np

from .base import check_finite

#: Axis orders of a 3-D MATLAB stack: images first (the EI repository's ``DATA``, 100x128x128)
#: or last (MATLAB's usual ``H x W x N``).
AXIS_ORDERS = ("auto", "NHW", "HWN")


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
    return check_finite(stored.astype(np.float64) * slope + intercept, str(path))


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
    return check_finite(array.astype(np.float64), str(path))


def read_mat_array(path, key: str = "DATA") -> np.ndarray:
    """The numeric array ``key`` of a MATLAB file (v5 via scipy, v7.3 via h5py), indexed as in
    MATLAB (v7.3 files are HDF5 and column-major: h5py sees the axes reversed, they are
    reversed back here).

    :raises ValueError: naming the file if it is not a readable MATLAB file (truncated,
        corrupt), lacks ``key``, or ``key`` is not a numeric array.
    """
    import h5py
    import scipy.io

    path = Path(path)
    if h5py.is_hdf5(path):
        try:
            with h5py.File(path, "r") as f:
                if key not in f:
                    raise ValueError(
                        f"{path}: expected a variable {key!r} in the MATLAB file, found "
                        f"{sorted(f.keys())}"
                    )
                if not isinstance(f[key], h5py.Dataset):
                    raise ValueError(
                        f"{path}: expected {key!r} to be an array, found an HDF5 "
                        f"{type(f[key]).__name__}"
                    )
                data = np.asarray(f[key]).T
        except (OSError, KeyError, RuntimeError) as err:
            raise ValueError(
                f"{path}: expected a MATLAB v7.3 (HDF5) file, could not read it: truncated or "
                f"corrupt? ({err})"
            ) from err
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
    if not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"{path}: expected {key!r} to be numeric, got {data.dtype}")
    return data


def stack_axis_order(shape: tuple[int, ...], axis_order: str = "auto", where: str = "") -> str:
    """The axis order (``"NHW"`` or ``"HWN"``) of a 3-D stack of square images of ``shape``.

    ``"auto"`` decides from the shape: ``(N, S, S)`` with ``N != S`` is ``"NHW"``, ``(S, S, N)``
    is ``"HWN"`` (with a warning saying so); a shape that fits both or neither
    (``(S, S, S)``, ``(10, 20, 30)``) is an error asking for ``axis_order``.
    """
    if axis_order not in AXIS_ORDERS:
        raise ValueError(f"axis_order: expected one of {AXIS_ORDERS}, got {axis_order!r}")
    if axis_order != "auto":
        return axis_order
    nhw = shape[1] == shape[2]
    hwn = shape[0] == shape[1]
    if nhw != hwn:
        order = "NHW" if nhw else "HWN"
        if order == "HWN":
            warnings.warn(
                f"{where}: read the stack of shape {tuple(shape)} as H x W x N = "
                f"{shape[2]} images of {shape[0]}x{shape[1]} (axis_order='HWN'); pass "
                "axis_order='NHW' if the images are along the first axis",
                stacklevel=3,
            )
        return order
    raise ValueError(
        f"{where}: cannot tell the axis order of a stack of shape {tuple(shape)}: pass "
        "axis_order='NHW' (images along the first axis) or 'HWN' (along the last)"
    )


def read_mat_stack(
    path, key: str = "DATA", axis_order: str = "auto", return_order: bool = False
) -> np.ndarray | tuple[np.ndarray, str]:
    """The 3-D array ``key`` of a MATLAB file (v5 via scipy, v7.3 via h5py) as ``(N, H, W)``.

    ``axis_order`` says how the file stores it: ``"NHW"`` (images along the first axis, as the
    EI repository's ``CT100_128x128.mat``, 100x128x128), ``"HWN"`` (MATLAB's ``H x W x N``), or
    ``"auto"``: decided from the shape by :func:`stack_axis_order`, with a warning when it
    reads ``H x W x N`` and an error when the shape fits both or neither. With
    ``return_order=True`` the result is ``(stack, order used)``.

    :raises ValueError: naming the file, if it is not a readable MATLAB file, lacks ``key``,
        ``key`` is not a numeric 3-D stack, its axis order is ambiguous, or it holds NaN or
        infinite values.
    """
    path = Path(path)
    data = read_mat_array(path, key)
    if data.ndim != 3:
        raise ValueError(
            f"{path}: expected {key!r} to be a numeric 3-D stack (N, H, W), got {data.dtype} "
            f"of shape {data.shape}"
        )
    order = stack_axis_order(data.shape, axis_order, f"{path}: {key!r}")
    if order == "HWN":
        data = np.moveaxis(data, -1, 0)
    data = data.astype(np.float64)
    for i, image in enumerate(data):
        check_finite(image, f"{path}: {key!r} image {i}")
    return (data, order) if return_order else data


def read_libsvm(path, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A dense LIBSVM file (plain or ``.bz2``): lines ``label idx:value ...``, indices 1-based.

    :return: ``(features, labels)``, shapes ``(N, n_features)`` (absent entries are 0) and ``(N,)``.
    :raises ValueError: naming the file and line of a malformed line or an index outside
        ``1..n_features``, a NaN or infinite value, a last line without its newline (a record
        cut short: truncated files end mid-line), or if the file holds no samples.
    """
    path = Path(path)
    opener = bz2.open if path.suffix == ".bz2" else open
    features, labels = [], []
    last = (0, "\n")  # (line number, text) of the last non-empty line
    try:
        with opener(path, "rt") as f:
            for lineno, line in enumerate(f, start=1):
                tokens = line.split()
                if not tokens:
                    continue
                last = (lineno, line)
                row = np.zeros(n_features)
                try:
                    labels.append(float(tokens[0]))
                    for token in tokens[1:]:
                        index, value = token.split(":")
                        i = int(index)
                        if not 1 <= i <= n_features:
                            raise ValueError(f"index {i} outside 1..{n_features}")
                        row[i - 1] = float(value)
                        if not np.isfinite(row[i - 1]):
                            raise ValueError(f"non-finite value {value!r} at index {i}")
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
    if not last[1].endswith("\n"):
        raise ValueError(
            f"{path}, line {last[0]}: the last record does not end with a newline, so it was "
            f"probably cut short (a truncated download or copy): it ends {last[1][-40:]!r}. "
            "Fetch the file again; if it is complete, add a final newline"
        )
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
        check_finite(grey, str(path))
        return np.repeat((grey / max(grey.max(), 1.0))[..., None], 3, axis=-1)
    return array.astype(np.float64) / 255.0

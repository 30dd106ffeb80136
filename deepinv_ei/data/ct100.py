r"""CT100 (the paper's CT data) from a user path: the Kaggle "CT Medical Images" folder
(``dicom_dir/*.dcm`` or ``tiff_images/*.tif``) or the EI repository's ``CT100_128x128.mat``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .base import (
    ImageSplit,
    check_count,
    describe_folder,
    existing_path,
    rescale_to_unit,
    resize,
    split_images,
    to_tensor,
)
from .readers import AXIS_ORDERS, read_dicom_hu, read_mat_stack, read_tiff

CT100_FORMATS = ("mat", "dicom", "tiff")
_SUFFIXES = {"mat": (".mat",), "dicom": (".dcm",), "tiff": (".tif", ".tiff")}


def find_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``folder`` (recursively) with one of ``suffixes`` (any case), sorted by
    file name, then by path."""
    found = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes]
    return sorted(found, key=lambda p: (p.name, str(p)))


def _find_ct100(path: Path, fmt: str | None) -> tuple[str, list[Path]]:
    if path.is_file():
        kind = next((k for k, s in _SUFFIXES.items() if path.suffix.lower() in s), None)
        if kind != "mat":
            raise ValueError(
                f"CT100 at {path}: expected a folder of DICOM or TIFF slices or a .mat file, "
                f"got the file {path.name}"
            )
        return "mat", [path]
    for kind in CT100_FORMATS if fmt is None else (fmt,):
        files = find_files(path, _SUFFIXES[kind])
        if kind == "mat" and len(files) > 1:
            named = [p for p in files if p.name.lower().startswith("ct100")]
            if len(named) != 1:
                raise ValueError(
                    f"CT100 at {path}: found several .mat files {[p.name for p in files]}; "
                    "pass the one to use as the path"
                )
            files = named
        if files:
            return kind, files
    expected = "a .mat file with key DATA, DICOM slices (*.dcm) or TIFF slices (*.tif)"
    if fmt is not None:
        expected = f"{fmt} files ({', '.join('*' + s for s in _SUFFIXES[fmt])})"
    raise FileNotFoundError(f"CT100 at {path}: expected {expected}; found {describe_folder(path)}")


def load_ct100(
    path,
    size: int = 128,
    n_train: int = 90,
    n_test: int = 10,
    window: tuple[float, float] | None = None,
    format: str | None = None,
    axis_order: str = "auto",
) -> ImageSplit:
    r"""CT100 from ``path``, :math:`(N, 1, \text{size}, \text{size})` in [0, 1].

    ``path`` is the EI ``.mat`` file (key ``DATA``, shape ``(100, 128, 128)``; MATLAB v5 or
    v7.3), or a folder holding it, or a folder of DICOM (``*.dcm``, Hounsfield units from
    RescaleSlope/Intercept) or TIFF slices, searched recursively and sorted by file name
    (a ``.mat`` is preferred, then DICOM, then TIFF; ``format`` forces one). Every image is
    normalised to [0, 1] by its own min and max (or by ``window`` = (low, high), clipped) and
    resized (antialiased bilinear). The first ``n_train`` images train, the next ``n_test``
    test: with the defaults, images 0--89 and 90--99 as in the paper.

    :param path: file or folder.
    :param int size: output side in pixels.
    :param int n_train: training images.
    :param int n_test: test images.
    :param tuple window: value range mapped to [0, 1]; ``None``: per-image min--max.
    :param str format: ``"mat"``, ``"dicom"``, ``"tiff"`` or ``None`` (detect).
    :param str axis_order: how a ``.mat`` stores its stack: ``"NHW"`` (images first, as the EI
        file), ``"HWN"`` or ``"auto"`` (from the shape, see
        :func:`~deepinv_ei.data.readers.stack_axis_order`); the order used is in ``source``.
    :raises FileNotFoundError: if ``path`` is missing or holds none of the formats.
    :raises ValueError: naming the file, if a file is malformed or truncated, an image holds NaN
        or infinite values, a ``.mat`` stack's axis order is ambiguous, or there are fewer than
        ``n_train + n_test`` images.
    """
    path = existing_path(path)
    size = check_count(size, "size", minimum=1)
    if format is not None and format not in CT100_FORMATS:
        raise ValueError(f"format: expected one of {CT100_FORMATS} or None, got {format!r}")
    if axis_order not in AXIS_ORDERS:
        raise ValueError(f"axis_order: expected one of {AXIS_ORDERS}, got {axis_order!r}")
    kind, files = _find_ct100(path, format)
    n_train = check_count(n_train, "n_train", minimum=1)
    n_test = check_count(n_test, "n_test", minimum=1)
    needed = n_train + n_test
    detail = ""
    if kind == "mat":
        stack, order = read_mat_stack(files[0], "DATA", axis_order, return_order=True)
        detail = (
            f", DATA read as {order} ({len(stack)} images of {stack.shape[1]}x{stack.shape[2]})"
        )
        arrays = list(stack[:needed])
        found = len(stack)
    else:
        found = len(files)
        if found >= needed:  # check the count before decoding anything
            read = read_dicom_hu if kind == "dicom" else read_tiff
            arrays = [read(p) for p in files[:needed]]
    if found < needed:
        raise ValueError(
            f"CT100 at {path}: expected at least n_train + n_test = {needed} {kind} images, "
            f"found {found}"
        )
    images = torch.cat([resize(to_tensor([rescale_to_unit(a, window)]), size) for a in arrays])
    train, test = split_images(images, n_train, n_test, "CT100", path)
    return ImageSplit(train.contiguous(), test.contiguous(), "ct100", f"{kind}: {path}{detail}")

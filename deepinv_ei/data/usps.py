r"""USPS (the paper's compressed-sensing data) from a user path: the LIBSVM files
``usps.bz2`` / ``usps.t.bz2`` (or uncompressed ``usps`` / ``usps.t``) or an HDF5 file with
groups ``train`` and ``test`` holding ``data`` (and ``target``), as Kaggle's ``usps.h5``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import (
    ImageSplit,
    check_count,
    check_finite,
    describe_folder,
    existing_path,
    resize,
)
from .readers import read_libsvm

USPS_SIDE = 16
_TRAIN_NAMES = ("usps.bz2", "usps")
_TEST_NAMES = ("usps.t.bz2", "usps.t")
_HDF5_SUFFIXES = (".h5", ".hdf5")


def _to_unit(values: np.ndarray, where: str) -> np.ndarray:
    # LIBSVM USPS is scaled to [-1, 1]; Kaggle's HDF5 to [0, 1].
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError(f"{where}: expected pixel values, found none")
    check_finite(values, where)
    if values.min() < 0:
        values = (values + 1.0) / 2.0
    if values.min() < -1e-6 or values.max() > 1 + 1e-6:
        raise ValueError(
            f"{where}: expected pixel values in [-1, 1] or [0, 1], found [{values.min()}, {values.max()}]"
        )
    return np.clip(values, 0.0, 1.0)


def _as_images(values: np.ndarray, where: str) -> torch.Tensor:
    n_pixels = USPS_SIDE * USPS_SIDE
    if values.ndim < 2 or int(np.prod(values.shape[1:])) != n_pixels:
        raise ValueError(
            f"{where}: expected {n_pixels} pixels per image, got an array of shape {values.shape}"
        )
    images = _to_unit(values, where).reshape(-1, 1, USPS_SIDE, USPS_SIDE)
    return torch.from_numpy(images.astype(np.float32))


def _read_hdf5(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(
            f"USPS at {path}: expected an HDF5 file, could not read it ({err})"
        ) from err
    with f:
        parts = []
        for part in ("train", "test"):
            node = f.get(part)
            data = node.get("data") if isinstance(node, h5py.Group) else None
            if not isinstance(data, h5py.Dataset):
                found = ", ".join(
                    f"{k} ({'group' if isinstance(f[k], h5py.Group) else 'dataset'})"
                    for k in sorted(f.keys())
                )
                raise ValueError(
                    f"USPS at {path}: expected groups train and test each holding a dataset "
                    f"'data' (train/data, test/data), found {found or 'nothing'}"
                )
            try:
                values = np.asarray(data)
            except (OSError, RuntimeError) as err:
                raise ValueError(
                    f"USPS at {path}: could not read {part}/data: truncated or corrupt? ({err})"
                ) from err
            parts.append(_as_images(values, f"{path}:{part}/data"))
    return parts[0], parts[1]


def _read_libsvm_pair(train_file: Path, test_file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    n_pixels = USPS_SIDE * USPS_SIDE
    return tuple(_as_images(read_libsvm(p, n_pixels)[0], str(p)) for p in (train_file, test_file))


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _find_usps(path: Path) -> tuple[str, tuple[Path, ...]]:
    if path.is_file():
        if path.suffix.lower() in _HDF5_SUFFIXES:
            return "hdf5", (path,)
        folder = path.parent
        if path.name not in _TRAIN_NAMES:
            raise ValueError(
                f"USPS at {path}: expected an HDF5 file, a folder, or the LIBSVM training file "
                f"{' or '.join(_TRAIN_NAMES)}; got the file {path.name}"
            )
        test = _first_existing(folder, _TEST_NAMES)
        if test is None:
            raise FileNotFoundError(
                f"USPS at {path}: expected the test file {_TEST_NAMES[0]} beside it"
            )
        return "libsvm", (path, test)
    for folder in sorted({path, *(p.parent for p in path.rglob("usps*"))}, key=str):
        train, test = _first_existing(folder, _TRAIN_NAMES), _first_existing(folder, _TEST_NAMES)
        if train and test:
            return "libsvm", (train, test)
        if train or test:
            missing = _TEST_NAMES[0] if train else _TRAIN_NAMES[0]
            raise FileNotFoundError(
                f"USPS at {folder}: found {(train or test).name} but not {missing}"
            )
    h5 = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _HDF5_SUFFIXES)
    if h5:
        return "hdf5", (h5[0],)
    raise FileNotFoundError(
        f"USPS at {path}: expected LIBSVM files usps.bz2 and usps.t.bz2 (or usps, usps.t) or an "
        f"HDF5 file (*.h5); found {describe_folder(path)}"
    )


def load_usps(
    path, size: int = USPS_SIDE, n_train: int | None = None, n_test: int | None = None
) -> ImageSplit:
    r"""USPS from ``path``, :math:`(N, 1, \text{size}, \text{size})` in [0, 1].

    ``path`` is a folder holding ``usps.bz2`` and ``usps.t.bz2`` (7291 training and 2007 test
    digits; LIBSVM lines ``label index:value ...``, 256 values in [-1, 1] mapped to
    :math:`(v + 1) / 2`), or uncompressed ``usps`` and ``usps.t``, or an HDF5 file ``*.h5``
    with ``train/data`` and ``test/data`` (:math:`N \times 256`, in [0, 1]); or that file.
    Images are 16x16, resized (bicubic, clipped) when ``size`` differs.

    :param path: file or folder.
    :param int size: output side in pixels.
    :param int n_train: the first ``n_train`` training images (``None``: all).
    :param int n_test: the first ``n_test`` test images (``None``: all).
    :raises FileNotFoundError: if ``path`` is missing or holds none of the formats.
    :raises ValueError: if a file is malformed or holds fewer images than asked for.
    """
    path = existing_path(path)
    size = check_count(size, "size", minimum=1)
    kind, files = _find_usps(path)
    train, test = _read_hdf5(files[0]) if kind == "hdf5" else _read_libsvm_pair(*files)
    for arg, part, x, n in (
        ("n_train", "training", train, n_train),
        ("n_test", "test", test, n_test),
    ):
        if n is not None and check_count(n, arg, minimum=1) > len(x):
            raise ValueError(f"USPS at {path}: expected at least {n} {part} images, found {len(x)}")
    train, test = train[:n_train], test[:n_test]
    if size != USPS_SIDE:
        train, test = resize(train, size, mode="bicubic"), resize(test, size, mode="bicubic")
    source = ", ".join(str(p) for p in files)
    return ImageSplit(train.contiguous(), test.contiguous(), "usps", f"{kind}: {source}")

r"""Lazy readers of projection and sinogram stacks: TIFF, HDF5 (Data Exchange too), NumPy, MATLAB.

Every reader returns a :class:`Stack`: a 3-D array in a canonical axis order, read in chunks
along its first axis and never all at once, that knows the files it comes from. The user names
the axes of the stored array (:func:`parse_axes`); the stack puts them in the canonical order

- projections: ``(angle, row, col)``: one detector image per view;
- sinograms: ``(slice, angle, detector)``: one sinogram per slice (a 2-D array is one slice).

Sources are written as a path, a glob (``'scan/projections/*.tif'``: one 2-D TIFF per view,
in natural order, so ``p2.tif`` comes before ``p10.tif``), or ``path:key`` for a dataset inside
a container (``scan.h5:/exchange/data``, ``sino.npz:y``, ``sino.mat:sino``).

Bad input raises a :class:`ValueError` naming the file and what was expected: mixed shapes or
dtypes in a stack, a truncated TIFF, an HDF5 path that does not exist (with a list of what is
there), NaN or infinite values in float data.
"""

from __future__ import annotations

import glob
import hashlib
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .spec.file_format import read_angles_file

#: Canonical axis orders.
PROJECTION_AXES = ("angle", "row", "col")
SINOGRAM_AXES = ("slice", "angle", "detector")

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".cxi", ".he5")
TIFF_SUFFIXES = (".tif", ".tiff")


def natural_key(text: str) -> list:
    """Sort key that orders the numbers inside names by value: ``p2`` before ``p10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def parse_axes(axes: str | Sequence[str] | None, canonical: Sequence[str], ndim: int, name: str):
    """The permutation that puts a stored array's axes in the ``canonical`` order.

    :param axes: the stored array's axis names in storage order, e.g. ``"angle,row,col"``
        (``None``: already canonical). A 2-D array names two of the canonical axes; the missing
        one (first) gets length 1.
    :return: ``(perm, missing)``: storage axis of each present canonical axis, and whether the
        first canonical axis is missing (added with length 1).
    :raises ValueError: on unknown, repeated or missing names, or a count that is not ``ndim``.
    """
    canonical = tuple(canonical)
    if axes is None:
        names = canonical if ndim == len(canonical) else canonical[1:]
    else:
        names = tuple(a.strip() for a in (axes.split(",") if isinstance(axes, str) else axes))
    unknown = [a for a in names if a not in canonical]
    if unknown or len(set(names)) != len(names):
        raise ValueError(
            f"{name}: axes {','.join(names)!r}: expected each of {','.join(canonical)} once "
            f"(in the order they are stored), got {'unknown ' + repr(unknown) if unknown else 'repeats'}"
        )
    if len(names) != ndim:
        raise ValueError(
            f"{name}: the array has {ndim} axes but {len(names)} axis names were given "
            f"({','.join(names)}); expected {len(canonical)} names ({','.join(canonical)})"
        )
    missing = [a for a in canonical if a not in names]
    if missing and missing != [canonical[0]]:
        raise ValueError(
            f"{name}: a {ndim}-D array must name the axes {','.join(canonical[1:])}; "
            f"got {','.join(names)}"
        )
    present = canonical[1:] if missing else canonical
    return tuple(names.index(a) for a in present), bool(missing)


class Stack:
    """A lazy 3-D array in a canonical axis order, read in chunks along its first axis.

    :param tuple shape: the canonical shape.
    :param numpy.dtype dtype: the stored dtype.
    :param str name: what error messages call it (a file, a glob, ``file:key``).
    :param list sources: the files it is read from.
    :param tuple axes: the canonical axis names.
    """

    def __init__(self, shape, dtype, name: str, sources: Sequence[Path], axes: Sequence[str]):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.sources = [Path(p) for p in sources]
        self.axes = tuple(axes)

    def __len__(self) -> int:
        return self.shape[0]

    def close(self) -> None:
        """Close the files the stack holds open (HDF5, npz, mat, multi-page TIFF); reading
        afterwards is an error. Also ``with open_stack(...) as stack:``."""

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        axes = ", ".join(f"{a}={n}" for a, n in zip(self.axes, self.shape, strict=True))
        return f"{type(self).__name__}({self.name!r}, {axes}, dtype={self.dtype})"

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """The shape as stored (before the axes are put in the canonical order)."""
        return self.shape

    @property
    def stored_axes(self) -> tuple[str, ...]:
        """The canonical names of the stored axes, in storage order."""
        return self.axes

    def _read(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def read(self, start: int, stop: int) -> np.ndarray:
        """Items ``start:stop`` along the first axis, as a new array in the stored dtype.

        :raises ValueError: if float data holds NaN or infinite values (naming the item).
        """
        start, stop = max(0, int(start)), min(len(self), int(stop))
        chunk = np.array(self._read(start, stop), copy=True)
        if chunk.dtype.kind == "f" and not np.isfinite(chunk).all():
            bad = np.argwhere(~np.isfinite(chunk))
            first = bad[0]
            raise ValueError(
                f"{self.name}: expected finite numbers, found {len(bad)} NaN or infinite "
                f"values in {self.axes[0]}s {start}..{stop - 1} (first at "
                f"{self.axes[0]} {start + first[0]}, {self.axes[1]} {first[1]}, "
                f"{self.axes[2]} {first[2]})"
            )
        return chunk

    def chunks(self, size: int):
        """``(start, stop, data)`` for consecutive chunks of ``size`` items."""
        for start in range(0, len(self), size):
            stop = min(start + size, len(self))
            yield start, stop, self.read(start, stop)


class ArrayStack(Stack):
    """A :class:`Stack` over an indexable array (``numpy.memmap``, ``h5py.Dataset``, ndarray),
    with its axes permuted lazily: only the items read are loaded."""

    def __init__(
        self,
        array: Any,
        name: str,
        sources: Sequence[Path],
        axes: str | Sequence[str] | None,
        canonical: Sequence[str],
        holder: Any = None,
    ):
        self.array = array
        self._holder = holder  # keeps an open file alive as long as the stack
        perm, missing = parse_axes(axes, canonical, array.ndim, name)
        self._perm, self._missing = perm, missing
        shape = tuple(array.shape[p] for p in perm)
        super().__init__((1, *shape) if missing else shape, array.dtype, name, sources, canonical)

    @property
    def stored_shape(self) -> tuple[int, ...]:
        return self.shape if self._missing else tuple(self.array.shape)

    def close(self) -> None:
        if hasattr(self._holder, "close"):
            self._holder.close()
        self._holder = None

    @property
    def stored_axes(self) -> tuple[str, ...]:
        if self._missing:
            return self.axes
        names = [""] * len(self._perm)
        for canonical_axis, storage_axis in enumerate(self._perm):
            names[storage_axis] = self.axes[canonical_axis]
        return tuple(names)

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self._missing:  # a 2-D array: one item only
            data = np.asarray(self.array[()]).transpose(self._perm)
            return data[None][start:stop]
        index = [slice(None)] * self.array.ndim
        index[self._perm[0]] = slice(start, stop)
        data = np.asarray(self.array[tuple(index)])
        return data.transpose(self._perm)


def _check_tiff(tif, path: Path) -> None:
    # Strips or tiles that end past the file's end: the file was cut short.
    size = path.stat().st_size
    for page in tif.pages:
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)]
        if ends and max(ends) > size:
            raise ValueError(
                f"{path}: truncated TIFF: its image data needs {max(ends)} bytes, the file has "
                f"{size}; copy the file again"
            )


def _open_tiff(path: Path):
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as err:  # tifffile raises many types on a damaged header (struct.error ...)
        raise ValueError(f"{path}: expected a TIFF image, could not read it ({err})") from err
    _check_tiff(tif, path)
    return tif


def _tiff_page_array(page, path: Path) -> np.ndarray:
    try:
        return page.asarray()
    except Exception as err:  # tifffile's decoders raise many types
        raise ValueError(f"{path}: could not decode the TIFF image data ({err})") from err


class TiffFilesStack(Stack):
    """Projections stored one 2-D TIFF per view; the files' headers are checked at once
    (same shape and dtype, not truncated), their pixels read when a chunk is read."""

    def __init__(self, paths: Sequence[Path], name: str):
        if not paths:
            raise ValueError(f"{name}: no file matches")
        self.paths = [Path(p) for p in paths]
        first = None
        for p in self.paths:
            with _open_tiff(p) as tif:
                if len(tif.pages) != 1:
                    raise ValueError(
                        f"{p}: expected one 2-D image per file in {name}, found {len(tif.pages)} "
                        "pages (give a multi-page file on its own, not in a glob)"
                    )
                page = tif.pages[0]
                shape, dtype = tuple(page.shape), np.dtype(page.dtype)
            if len(shape) != 2:
                raise ValueError(f"{p}: expected a single-channel 2-D image, got shape {shape}")
            if first is None:
                first = (shape, dtype, p)
            elif (shape, dtype) != first[:2]:
                raise ValueError(
                    f"{name}: mixed shapes or dtypes in the stack: {p} is {shape} {dtype}, "
                    f"{first[2]} is {first[0]} {first[1]}; expected every file alike"
                )
        super().__init__((len(self.paths), *first[0]), first[1], name, self.paths, PROJECTION_AXES)

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.shape[1:]), self.dtype)
        for i in range(start, stop):
            with _open_tiff(self.paths[i]) as tif:
                out[i - start] = _tiff_page_array(tif.pages[0], self.paths[i])
        return out


class TiffPagesStack(Stack):
    """Projections stored as the pages of one multi-page TIFF, read page by page."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._tif = _open_tiff(self.path)
        pages = self._tif.pages
        shapes = {(tuple(p.shape), np.dtype(p.dtype)) for p in pages}
        if len(shapes) != 1:
            raise ValueError(
                f"{self.path}: mixed shapes or dtypes among its {len(pages)} pages: "
                f"{sorted((s, str(d)) for s, d in shapes)}; expected every page alike"
            )
        ((shape, dtype),) = shapes
        if len(shape) != 2:
            raise ValueError(f"{self.path}: expected 2-D single-channel pages, got shape {shape}")
        super().__init__((len(pages), *shape), dtype, str(path), [self.path], PROJECTION_AXES)

    def _read(self, start: int, stop: int) -> np.ndarray:
        return np.stack(
            [_tiff_page_array(self._tif.pages[i], self.path) for i in range(start, stop)]
        )

    def close(self) -> None:
        self._tif.close()


def split_source(source: str | Path) -> tuple[Path, str | None]:
    """``'file.h5:/exchange/data'`` -> ``(Path('file.h5'), '/exchange/data')``."""
    text = str(source)
    if Path(text).exists() or ":" not in text:
        return Path(text), None
    path, _, key = text.rpartition(":")
    return Path(path), key or None


def _hdf5_listing(f) -> str:
    found = []
    f.visititems(
        lambda n, obj: (
            found.append(f"/{n} {obj.shape} {obj.dtype}") if hasattr(obj, "shape") else None
        )
    )
    shown = ", ".join(found[:20]) + (" ..." if len(found) > 20 else "")
    return shown or "no datasets"


def hdf5_dataset(path: Path, key: str | None):
    """The dataset ``key`` of an HDF5 file, opened read-only.

    :raises ValueError: if the path does not exist (listing the datasets there).
    """
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: expected an HDF5 file, could not open it ({err})") from err
    obj = None if key is None else f.get(key)
    if obj is None or not hasattr(obj, "shape"):
        listing = _hdf5_listing(f)
        f.close()
        if key is None:
            raise ValueError(
                f"{path}: name the dataset to read as {path}:/path/to/data; the file holds "
                f"{listing}"
            )
        what = "is a group, not a dataset" if obj is not None else "does not exist"
        raise ValueError(f"{path}: the HDF5 path {key!r} {what}; the file holds {listing}")
    return obj, f


def _npz_member(path: Path, key: str | None):
    # A stored (uncompressed) member is memory-mapped at its offset; a compressed one is loaded.
    with zipfile.ZipFile(path) as z:
        names = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
        if key is None:
            if len(names) != 1:
                raise ValueError(f"{path}: name the array to read as {path}:NAME; it holds {names}")
            key = names[0]
        if key not in names:
            raise ValueError(f"{path}: no array {key!r}; the file holds {names}")
        info = z.getinfo(key + ".npy")
        if info.compress_type == zipfile.ZIP_STORED:
            with z.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(member)
                header_len = member.tell()
            with open(path, "rb") as raw:  # the local header's length varies with its extras
                raw.seek(info.header_offset + 26)
                name_len, extra_len = np.frombuffer(raw.read(4), "<u2")
            offset = info.header_offset + 30 + int(name_len) + int(extra_len) + header_len
            return np.memmap(
                path, dtype, "r", offset, shape, order="F" if fortran else "C"
            ), f"{path}:{key}"
    return np.load(path)[key], f"{path}:{key}"


def _mat_array(path: Path, key: str | None):
    import h5py

    if h5py.is_hdf5(path):  # v7.3: HDF5 with the axes in reverse (MATLAB is column-major)
        f = h5py.File(path, "r")
        names = [n for n in f if not n.startswith("#")]
        if key is None and len(names) == 1:
            key = names[0]
        if key not in f:
            raise ValueError(f"{path}: no variable {key!r}; the file holds {names}")
        return _Reversed(f[key]), f
    import scipy.io

    try:
        info = scipy.io.whosmat(path)
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: expected a MATLAB .mat file ({err})") from err
    names = [n for n, *_ in info]
    if key is None and len(names) == 1:
        key = names[0]
    if key not in names:
        raise ValueError(f"{path}: no variable {key!r}; the file holds {names}")
    return scipy.io.loadmat(path, variable_names=[key])[key], None


class _Reversed:
    """An h5py dataset seen with its axes reversed (MATLAB v7.3's order)."""

    def __init__(self, ds):
        self.ds = ds
        self.shape = tuple(reversed(ds.shape))
        self.ndim = ds.ndim
        self.dtype = ds.dtype

    def __getitem__(self, index):
        if index == ():
            return np.asarray(self.ds[()]).transpose()
        index = index if isinstance(index, tuple) else (index,)
        return np.asarray(self.ds[tuple(reversed(index))]).transpose()


def open_array(source: str | Path, what: str = "an array"):
    """The array stored at ``source`` (``.npy`` memory-mapped, ``file.npz[:name]``,
    ``file.h5:/path``, ``file.mat[:variable]``), unread.

    :return: ``(array, name, path, holder)``: an indexable array, its name for messages, the
        file and the open file object that must outlive the array (or ``None``).
    """
    path, key = split_source(source)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (expected {what})")
    suffix = path.suffix.lower()
    holder = None
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r")
        except ValueError as err:
            raise ValueError(f"{path}: expected a NumPy .npy array ({err})") from err
        name = str(path)
    elif suffix == ".npz":
        array, name = _npz_member(path, key)
    elif suffix in HDF5_SUFFIXES:
        array, holder = hdf5_dataset(path, key)
        name = f"{path}:{key}"
    elif suffix == ".mat":
        array, holder = _mat_array(path, key)
        name = f"{path}:{key}" if key else str(path)
    else:
        raise ValueError(
            f"{path}: unknown format {suffix!r}; expected TIFF, .npy, .npz, HDF5 "
            f"({', '.join(HDF5_SUFFIXES)}) or .mat"
        )
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected a real numeric array, got dtype {array.dtype}")
    return array, name, path, holder


def open_stack(
    source: str | Path,
    axes: str | Sequence[str] | None = None,
    kind: str = "projections",
) -> Stack:
    """Open a projection or sinogram stack lazily.

    :param source: a glob of 2-D TIFFs (one per view, natural order), a multi-page TIFF, a
        ``.npy`` (memory-mapped), ``file.npz[:name]``, ``file.h5:/path`` (HDF5) or
        ``file.mat[:variable]`` (v5 or v7.3, axes as MATLAB shows them).
    :param axes: the stored axes' names in storage order, e.g. ``"angle,row,col"`` or
        ``"slice,angle,detector"`` (default: the canonical order). TIFF stacks are always
        ``angle,row,col``.
    :param str kind: ``"projections"`` (canonical ``angle,row,col``) or ``"sinograms"``
        (``slice,angle,detector``).
    :raises ValueError: on a missing file, an unknown format or any bad input listed above.
    """
    canonical = {"projections": PROJECTION_AXES, "sinograms": SINOGRAM_AXES}.get(kind)
    if canonical is None:
        raise ValueError(f"kind must be 'projections' or 'sinograms', got {kind!r}")
    text = str(source)
    if any(c in text for c in "*?["):
        paths = sorted((Path(p) for p in glob.glob(text)), key=lambda p: natural_key(str(p)))
        if not paths:
            raise ValueError(f"{text}: no file matches this pattern")
        return TiffFilesStack(paths, text)
    path, _ = split_source(source)
    if path.is_file() and path.suffix.lower() in TIFF_SUFFIXES:
        return TiffPagesStack(path)
    array, name, path, holder = open_array(source, kind)
    return ArrayStack(array, name, [path], axes, canonical, holder)


def read_angles(source: str | Path, unit: str) -> np.ndarray:
    """Angles from a text file (numbers separated by spaces, commas, semicolons or new lines,
    ``#`` starting a comment, as a scanner spec's ``angles.file``), a ``.npy`` or
    ``file.h5:/path``, converted to radians (float64).

    :param str unit: ``"deg"`` or ``"rad"``.
    """
    if unit not in ("deg", "rad"):
        raise ValueError(f"angle unit must be 'deg' or 'rad', got {unit!r}")
    path, key = split_source(source)
    if not path.is_file():
        raise ValueError(f"{path}: no such angles file")
    if path.suffix.lower() in (".npy", ".npz", ".mat", *HDF5_SUFFIXES):
        array, *_ = open_array(source, f"angles in {unit}")
        values = np.asarray(array[()])
    else:
        values = read_angles_file(path)
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"{path}: expected finite angles in {unit}, got {values.size} values")
    return np.deg2rad(values) if unit == "deg" else values


def data_exchange(path: str | Path) -> dict[str, Any]:
    """The Data Exchange layout of a synchrotron HDF5 file: ``/exchange/data`` (projections,
    ``angle,row,col``), ``data_white`` (flats), ``data_dark`` (darks) and ``theta`` (degrees).

    :return: ``{"projections": Stack, "flats": Stack | None, "darks": Stack | None,
        "angles": radians | None}``.
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "r") as f:
        present = {k: f"/exchange/{k}" in f for k in ("data", "data_white", "data_dark", "theta")}
    if not present["data"]:
        hdf5_dataset(path, "/exchange/data")  # raises, listing what is there
    out = {"projections": open_stack(f"{path}:/exchange/data")}
    for key, field in (("flats", "data_white"), ("darks", "data_dark")):
        out[key] = open_stack(f"{path}:/exchange/{field}") if present[field] else None
    out["angles"] = read_angles(f"{path}:/exchange/theta", "deg") if present["theta"] else None
    return out


def is_data_exchange(path: str | Path) -> bool:
    """Whether ``path`` is an HDF5 file with a ``/exchange/data`` dataset."""
    import h5py

    path = Path(path)
    if path.suffix.lower() not in HDF5_SUFFIXES or not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return "/exchange/data" in f
    except OSError:
        return False

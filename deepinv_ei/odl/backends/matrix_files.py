"""System matrices on disk, so that a second process starts without recomputing them.

In memory, matrices are shared through :mod:`deepinv_ei.odl.cache`. On disk (opt-in: a
directory given as the backend option ``cache_dir`` or the environment variable
``DEEPINV_EI_MATRIX_CACHE``), a matrix is stored once per discretisation
(:func:`~deepinv_ei.odl.geometry.geometry_key`) and version of ASTRA, ODL and this package.
Files are written atomically (temporary file, then rename) and checked on read (format, key,
shapes, SHA-256 of the arrays); a file that fails a check is rebuilt with a warning naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

#: Environment variable naming the on-disk cache directory (unset: no disk cache).
CACHE_ENV = "DEEPINV_EI_MATRIX_CACHE"

_FORMAT = "deepinv-ei-system-matrix/1"


def cache_dir(option: str | os.PathLike | None) -> Path | None:
    """The on-disk cache directory: ``option``, else ``$DEEPINV_EI_MATRIX_CACHE``, else ``None``."""
    value = option if option is not None else os.environ.get(CACHE_ENV) or None
    return None if value is None else Path(value).expanduser()


def _versions() -> dict[str, str]:
    import astra
    import odl

    from deepinv_ei import __version__

    return {"astra": astra.__version__, "odl": odl.__version__, "deepinv_ei": __version__}


def disk_path(directory: Path, geometry_digest: str) -> Path:
    """The file of a discretisation (the digest covers the geometry and the library versions)."""
    versions = json.dumps(_versions(), sort_keys=True)
    name = hashlib.sha256(f"{geometry_digest}|{versions}".encode()).hexdigest()[:32]
    return directory / f"system-matrix-{name}.npz"


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def disk_load(path: Path, geometry_digest: str, shape: tuple[int, int]) -> sp.csr_matrix | None:
    """The matrix stored at ``path`` if the file exists and passes every check, else ``None``.

    A file that exists but fails a check gives a warning naming it (it is then rebuilt).
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(str(f["header"]))
            indptr, indices, data = f["indptr"], f["indices"], f["data"]
        problems = []
        if header.get("format") != _FORMAT:
            problems.append(f"format {header.get('format')!r}, expected {_FORMAT!r}")
        if header.get("geometry") != geometry_digest or header.get("versions") != _versions():
            problems.append("made for another geometry or library version")
        if tuple(header.get("shape", ())) != tuple(shape):
            problems.append(f"shape {header.get('shape')}, expected {list(shape)}")
        if indptr.shape != (shape[0] + 1,) or indices.shape != data.shape:
            problems.append("array sizes do not match the shape")
        elif int(indptr[0]) != 0 or int(indptr[-1]) != indices.size:
            problems.append("malformed row pointers")
        if _digest(indptr, indices, data) != header.get("sha256"):
            problems.append("checksum mismatch")
        if indices.size and (indices.min() < 0 or indices.max() >= shape[1]):
            problems.append("column index out of range")
    except Exception as err:  # truncated zip, missing array, bad JSON, ...
        problems = [f"unreadable ({type(err).__name__}: {err})"]
    if problems:
        warnings.warn(
            f"ignoring the cached system matrix {path}: {'; '.join(problems)}; rebuilding it",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return sp.csr_matrix((data, indices, indptr), shape=shape)


def disk_store(path: Path, geometry_digest: str, mat: sp.csr_matrix) -> None:
    """Write ``mat`` to ``path`` atomically (float32 values when that loses nothing)."""
    data = mat.data
    as32 = data.astype(np.float32)
    if np.array_equal(as32, data):  # ASTRA's weights are float32 numbers
        data = as32
    index = np.int32 if mat.nnz < 2**31 else np.int64  # what the torch CSR tensors use
    indptr = mat.indptr.astype(index)
    indices = mat.indices.astype(np.int32)
    header = {
        "format": _FORMAT,
        "geometry": geometry_digest,
        "versions": _versions(),
        "shape": list(mat.shape),
        "sha256": _digest(indptr, indices, data),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f, header=np.array(json.dumps(header)), indptr=indptr, indices=indices, data=data
            )
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

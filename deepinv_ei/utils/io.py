"""Atomic writes, safe checkpoint loading and the cleaning of interrupted writes.

Writes go to a temporary file in the target folder, then are renamed: a reader never sees a
half-written file, and an interrupted run leaves the previous version intact (``os.replace``
is atomic on POSIX and Windows within one filesystem). A process killed during a write
(``kill -9``, power loss) leaves its temporary file behind; :func:`clean_orphan_temp_files`
removes those, and only those (they match :data:`TEMP_NAME`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

#: Name of the temporary file of an atomic write of ``name``: ``.<name>.<8 random>.tmp``
#: (the random part is :func:`tempfile.mkstemp`'s: lower-case letters, digits, ``_``).
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file beside ``path``, for a writer that needs a file name (HDF5, say).

    When the block ends cleanly the file is flushed to disk, given the permissions a plain
    ``open()`` would, and renamed to ``path``; on any exception (an interrupt included) it is
    deleted and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return _atomic(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def non_finite_paths(obj: Any, prefix: str = "") -> list[str]:
    """Where ``obj`` (nested dicts, lists, tuples) holds a NaN or an infinite float, as paths
    ``key.sub[3]``.

    >>> non_finite_paths({"psnr": float("nan"), "curve": [[1, 2.0], [2, float("inf")]]})
    ['psnr', 'curve[1][1]']
    """
    if isinstance(obj, float):
        return [] if math.isfinite(obj) else [prefix]
    if isinstance(obj, dict):
        return [
            p for k, v in obj.items() for p in non_finite_paths(v, f"{prefix}.{k}" if prefix else k)
        ]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in non_finite_paths(v, f"{prefix}[{i}]")]
    return []


def strict_json(obj: Any) -> Any:
    """A copy of ``obj`` (nested dicts, lists, tuples) with every NaN or infinite float
    replaced by ``None``, ready for :func:`atomic_write_json`.

    >>> strict_json({"psnr": float("nan"), "curve": [(1, 2.0), (2, float("inf"))]})
    {'psnr': None, 'curve': [[1, 2.0], [2, None]]}
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Serialise ``obj`` as strict JSON (RFC 8259) to ``path`` atomically.

    :raises ValueError: if ``obj`` holds a NaN or an infinite float (not JSON), naming where;
        nothing is written then.
    """
    bad = non_finite_paths(obj)
    if bad:
        raise ValueError(
            f"{path}: refusing to write NaN or infinite numbers, which are not JSON, at "
            f"{', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''}; replace them by null first"
        )
    text = json.dumps(obj, indent=indent, sort_keys=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save the matplotlib figure ``fig`` as a PNG at ``path`` atomically, then close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically (for checkpoints)."""
    import torch  # here, not at import: the file helpers serve torch-free tools too

    return _atomic(path, lambda f: torch.save(obj, f))


def safe_load_torch(path: str | os.PathLike, map_location: Any = None) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors, numbers, strings and plain containers
    only, so a crafted file cannot run code while it is read.

    :raises FileNotFoundError: if ``path`` does not exist.
    :raises ValueError: naming ``path`` if it is truncated or corrupt, or holds other objects.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):
            found = str(err).split("WeightsUnpickler error:")[-1].split(" was not")[0].strip()
            if "numpy" in found:
                found += "; checkpoints of earlier versions stored NumPy arrays this way"
            raise ValueError(
                f"{path}: refused to load: it holds objects other than tensors, numbers, strings "
                f"and plain containers ({found}); loading them could run code. Only load files "
                "written by this program; delete this one to start the step again"
            ) from None
        raise ValueError(
            f"{path} ({size} bytes) is corrupt or truncated ({type(err).__name__}: {err}); "
            "delete it to start the step again"
        ) from err
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise ValueError(
            f"{path} ({size} bytes) is corrupt or truncated and cannot be loaded "
            f"({type(err).__name__}: {err}); delete it to start the step again"
        ) from err


def clean_orphan_temp_files(
    folder: str | os.PathLike, targets: tuple[str, ...] | None = None
) -> list[Path]:
    """Delete the temporary files that interrupted atomic writes left under ``folder``.

    Only files whose name matches :data:`TEMP_NAME` are touched, and with ``targets`` (glob
    patterns such as ``"*.pth.tar"``) only those of a target name matching one of them. Call it
    when no other process writes under ``folder`` (the reproduction holds a lock on its output
    folder first).

    :return: the deleted paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.rglob(".*.tmp")):
        match = TEMP_NAME.match(p.name)
        if not match or not p.is_file() or p.is_symlink():
            continue
        if targets is None or any(fnmatch.fnmatchcase(match["target"], t) for t in targets):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed

r"""Reconstruct every slice of a scan with a trained-model bundle.

The output holds every slice of the input in its original order, float32, shape
``(slices, H, W)``, in the physical units of the scanner spec (attenuation per length unit:
the bundle's data scaling is undone by :math:`f(y) = s\,G(A^\dagger y/s)` itself). It is written
as ``.npy``, ``.h5`` (dataset ``recon``, and ``fbp`` beside it on request) or, for any other
name, a folder of one TIFF per slice (``slice_00000.tif``, ...; FBP in ``fbp/``); every output
appears at once (atomic writes, a folder renamed into place).

Under ``torchrun`` each process reconstructs a contiguous share of the slices and the first
one writes the result.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepinv_ei.utils import atomic_write_bytes

from .bundle import Bundle, load_bundle
from .sets import all_slices, open_measurement_set

__all__ = [
    "reconstruct",
    "reconstruct_slices",
    "write_volume",
    "check_output",
    "check_scanner",
    "scanner_layout",
    "ScannerMismatch",
]

H5_SUFFIXES = (".h5", ".hdf5")
#: Slices per forward pass. Results agree to the bit across processes for the same batching
#: (and thread count); another batch size changes them at the rounding level.
RECONSTRUCT_BATCH = 8
#: What a scanner mismatch tells the user to do, for a measurement set and for a raw scan.
_SET_HINT = (
    "reconstruct only scans of the training scanner (same geometry, views and detector after "
    "ingest)"
)
_RAW_SCAN_HINT = (
    "give the scanner, window, binning and view selection of the training scan's ingest"
)


class ScannerMismatch(ValueError):
    """A scan from another scanner (or other views) than the bundle was trained on."""


def check_scanner(spec: Any, bundle: Bundle, run: str | Path, what: str, hint: str) -> None:
    """Refuse a scan whose slices are not those the bundle was trained on.

    The slices' scanners are compared (:attr:`~deepinv_ei.scan.ScannerSpec.slice_hash`): a
    stack of another number of slices from the training scanner is accepted.

    :param spec: the scan's :class:`~deepinv_ei.scan.ScannerSpec`.
    :param str what: the start of the message (``"scan.h5 was measured with"``).
    :param str hint: what to do, at the end of the message.
    :raises ScannerMismatch: naming both hashes and both layouts.
    """
    from deepinv_ei.scan import ScannerSpec

    trained = ScannerSpec.from_dict(bundle.spec, origin=f"{run}/bundle.json")
    if spec.slice_hash != trained.slice_hash:
        raise ScannerMismatch(
            f"{what} scanner {spec.slice_hash} ({scanner_layout(spec)}) but the bundle {run} "
            f"was trained on scanner {trained.slice_hash} ({scanner_layout(trained)}); {hint}"
        )


def scanner_layout(spec: Any) -> str:
    """A scanner in a few words: geometry, views, detector and image."""
    return (
        f"{spec.geometry}, {spec.num_views} views x {spec.det_count} detectors of "
        f"{spec.det_pitch:g} {spec.unit}, image {'x'.join(map(str, spec.image_shape))}"
    )


def output_kind(out: str | Path) -> str:
    """``"npy"``, ``"h5"`` or ``"tiff"`` (a folder), from the output name."""
    suffix = Path(out).suffix.lower()
    if suffix == ".npy":
        return "npy"
    if suffix in H5_SUFFIXES:
        return "h5"
    if suffix in (".tif", ".tiff"):
        raise ValueError(
            f"{out}: TIFF output is a folder of one file per slice; give a folder name "
            "without .tif (or use .npy or .h5)"
        )
    return "tiff"


def check_output(out: str | Path, overwrite: bool = False) -> Path:
    """``out`` as a :class:`~pathlib.Path`, checked before any work: a known format (see
    :func:`output_kind`), and absent unless ``overwrite``.

    :raises ValueError: for a ``.tif`` name (TIFF output is a folder).
    :raises FileExistsError: if ``out`` exists and not ``overwrite``.
    """
    out = Path(out)
    output_kind(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; choose another --out or pass --overwrite")
    return out


@torch.no_grad()
def reconstruct_slices(
    model: Any,
    physics: Any,
    y: torch.Tensor,
    batch: int = RECONSTRUCT_BATCH,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """``model(y, physics)`` for every slice of ``y`` ``(N, 1, views, detectors)``, in batches;
    float32 ``(N, H, W)`` on the CPU."""
    from tqdm.auto import tqdm

    starts = range(0, len(y), batch)
    out = []
    for start in tqdm(starts, desc="reconstruct", unit="batch", disable=not progress):
        x = model(y[start : start + batch].to(device), physics)
        out.append(x[:, 0].float().cpu().numpy())
    if not out:
        return np.zeros((0, 0, 0), np.float32)
    return np.concatenate(out)


def write_volume(out: str | Path, volume: np.ndarray, fbp: np.ndarray | None = None, **attrs):
    """Write ``volume`` (and ``fbp``) to ``out`` atomically, in the format its name says."""
    out = Path(out)
    kind = output_kind(out)
    volume = np.ascontiguousarray(volume, dtype=np.float32)
    if kind == "npy":
        atomic_write_bytes(out, _npy_bytes(volume))
        if fbp is not None:
            atomic_write_bytes(out.with_suffix(".fbp.npy"), _npy_bytes(fbp))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        if kind == "h5":
            import h5py

            target = tmp / out.name
            with h5py.File(target, "w") as f:
                f.create_dataset("recon", data=volume)
                if fbp is not None:
                    f.create_dataset("fbp", data=np.asarray(fbp, np.float32))
                for key, value in attrs.items():
                    f.attrs[key] = value
            os.replace(target, out)
        else:
            _write_tiffs(tmp, volume)
            if fbp is not None:
                _write_tiffs(tmp / "fbp", np.asarray(fbp, np.float32))
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, dtype=np.float32))
    return buf.getvalue()


def _write_tiffs(folder: Path, volume: np.ndarray) -> None:
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(volume):
        tifffile.imwrite(folder / f"slice_{i:05d}.tif", image)


def _shard(n: int) -> tuple[int, int, int, int]:
    """(rank, world size, start, stop) of this process' contiguous share of ``n`` slices."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    per = -(-n // world)
    return rank, world, min(rank * per, n), min((rank + 1) * per, n)


def reconstruct(
    run: str | Path,
    input: str | Path | None,
    out: str | Path,
    fbp: bool = False,
    batch: int = RECONSTRUCT_BATCH,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
    scan: dict[str, Any] | None = None,
) -> Path:
    """Reconstruct every slice of ``input`` with the bundle ``run``, in the original slice order.

    :param run: a bundle folder written by :func:`~deepinv_ei.training.train`.
    :param input: a measurement set from the same scanner; with ``scan``, the raw projections
        (a glob or a file; ``None`` if ``scan`` names ``projections`` or ``sinograms``).
    :param out: ``.npy``, ``.h5`` or a folder name (TIFFs).
    :param bool fbp: also write FBP of every slice.
    :param int batch: slices per forward pass.
    :param str device: ``"cpu"`` or ``"cuda"`` (``"cuda"`` under ``torchrun``: each process
        its local GPU).
    :param bool overwrite: replace an existing ``out``.
    :param bool progress: progress bars (ingestion, then reconstruction).
    :param dict scan: a raw scan: the keyword arguments of :func:`~deepinv_ei.scan.ingest`
        that describe it (:data:`~deepinv_ei.training.raw_scan.SCAN_OPTIONS`), checked by
        ingest; it is ingested into a temporary set first (:mod:`~deepinv_ei.training.raw_scan`).
    :raises ScannerMismatch: naming both hashes if ``input`` is from another scanner.
    :raises ValueError: for bad scan options or input, as :func:`~deepinv_ei.scan.ingest`.
    :raises deepinv_ei.training.BundleError: for a damaged bundle (before a scan is read).
    :raises FileExistsError: if ``out`` exists and not ``overwrite``.
    """
    out = check_output(out, overwrite)
    bundle = load_bundle(run)
    options = {"fbp": fbp, "batch": batch, "device": device, "progress": progress}
    if scan is None:
        mismatch = (f"{input} was measured with", _SET_HINT)
        return _reconstruct_set(bundle, run, input, out, mismatch, **options)
    from .raw_scan import ingested_scan

    scan = scan if input is None else {**scan, "projections": input}
    name = scan.get("projections") or scan.get("sinograms")
    mismatch = (f"{name} ingested with these options gives", _RAW_SCAN_HINT)
    with ingested_scan(bundle, run, out, scan, progress) as path:
        return _reconstruct_set(bundle, run, path, out, mismatch, **options)


def _reconstruct_set(bundle, run, input, out, mismatch, *, fbp, batch, device, progress) -> Path:
    with open_measurement_set(input) as mset:  # closed once read: a temporary set is removed
        check_scanner(mset.spec, bundle, run, *mismatch)
        y, _ = all_slices(mset)
        units = str(mset.units.get("image", ""))
    rank, world, start, stop = _shard(len(y))
    dist = world > 1
    if dist:
        import torch.distributed as tdist

        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        if not tdist.is_initialized():
            tdist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    physics = mset.physics(device)  # from the spec, read into memory
    model = bundle.build_model(device)
    part = y[start:stop]
    volume = reconstruct_slices(model, physics, part, batch, device, progress and rank == 0)
    fbp_volume = None
    if fbp:
        fbp_volume = reconstruct_slices(
            lambda v, p: p.A_dagger(v), physics, part, batch, device, False
        )
    if dist:
        parts = [None] * world
        tdist.gather_object((volume, fbp_volume), parts if rank == 0 else None, dst=0)
        if rank == 0:
            volume = np.concatenate([p[0] for p in parts if len(p[0])])
            fbp_volume = None if not fbp else np.concatenate([p[1] for p in parts if len(p[1])])
    if rank == 0:
        write_volume(out, volume, fbp_volume, units=units, spec_hash=bundle.spec_hash)
    if dist:
        tdist.barrier()
    return out

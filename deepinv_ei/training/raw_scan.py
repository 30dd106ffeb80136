r"""Reconstruct a raw scan with a trained-model bundle: ingest it with ingest's options into a
temporary measurement set (:func:`ingested_scan`), for
:func:`~deepinv_ei.training.reconstruct` with ``scan=``.

The scan is ingested with :func:`deepinv_ei.scan.ingest` and the options given, every slice
a training slice (the validation split and the held-out views play no part in
reconstruction), into a hidden folder beside the output that is removed afterwards, whatever
happens. The scanner that ingestion produces (the kept views, the detector after the window)
must be the bundle's: the scanners of one slice are compared, as for a measurement set.

Without a scanner (no ``geometry``, ``pixel_size`` or ``unit``), the scan is read with the
bundle's own scanner spec: the data must then already be what ingestion kept (the kept views on
the detector after binning and cropping, e.g. a sparse-view acquisition at the training views),
and the window, binning and view selection do not apply. Angles given with it replace the
bundle's, so the hash check compares them.
"""

from __future__ import annotations

import contextlib
import inspect
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepinv_ei.scan import ScannerSpec, ingest

from .bundle import Bundle

__all__ = ["ingested_scan", "bundle_scanner", "SCAN_OPTIONS"]

#: The keyword arguments of :func:`~deepinv_ei.scan.ingest` that describe a scan (all but its
#: output, the slice split and the progress bar).
SCAN_OPTIONS = tuple(
    name
    for name, p in inspect.signature(ingest).parameters.items()
    if p.kind is p.KEYWORD_ONLY
    and name not in ("val_fraction", "n_val", "split_seed", "overwrite", "progress")
)
#: Options that reshape the raw data into the scanner's views and detector, by their flags.
_RESHAPING = {"rows": "--rows", "binning": "--bin", "bin_rows": "--bin-rows",
              "keep_every": "--keep-every", "keep_count": "--keep-count",
              "keep_views": "--keep-views", "image_shape": "--image-shape"}  # fmt: skip


def bundle_scanner(bundle: Bundle, run: str | Path, scan: dict[str, Any]) -> dict[str, Any]:
    """``scan`` (ingest's keyword arguments) with its ``geometry`` decided: as given; else
    ``"parallel"`` if ``pixel_size`` or ``unit`` is given (ingest's default); else the
    bundle's scanner spec, which ``scan`` must not reshape (see the module documentation).

    :raises ValueError: naming the options that reshape the data, with the bundle's scanner.
    """
    if scan.get("geometry") is not None:
        return scan
    if scan.get("pixel_size") is not None or scan.get("unit") is not None:
        return {**scan, "geometry": "parallel"}
    spec = ScannerSpec.from_dict(bundle.spec, origin=f"{run}/bundle.json")
    given = [flag for key, flag in _RESHAPING.items() if scan.get(key) not in (None, 1)]
    if given:
        raise ValueError(
            f"{', '.join(given)} without a scanner: with no --geometry, --pixel-size or --unit "
            f"the scan is read with the bundle's scanner ({run}: {spec.num_views} views x "
            f"{spec.det_count} detectors after ingest), which is not reshaped; give the "
            "scanner as to `deepinv-ei ingest` (--geometry FILE, or --pixel-size and --unit)"
        )
    return {**scan, "geometry": spec}


@contextlib.contextmanager
def ingested_scan(
    bundle: Bundle, run: str | Path, out: Path, scan: dict[str, Any], progress: bool
) -> Iterator[Path]:
    """The raw scan ``scan`` (ingest's keyword arguments, :data:`SCAN_OPTIONS`) ingested into a
    temporary measurement set beside ``out``, every slice a training slice; removed on exit,
    whatever happens. ``geometry`` defaults to the bundle's scanner (:func:`bundle_scanner`);
    the set's scanner is compared with the bundle's where it is read
    (:func:`~deepinv_ei.training.reconstruct.check_scanner`).

    :raises TypeError: for a keyword that does not describe a scan.
    """
    unknown = sorted(set(scan) - set(SCAN_OPTIONS))
    if unknown:
        raise TypeError(f"scan options {unknown}: the scan is described by {list(SCAN_OPTIONS)}")
    options = bundle_scanner(bundle, run, scan)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".ingest", dir=out.parent))
    try:
        path = folder / "scan.h5"
        ingest(path, **options, val_fraction=0.0, n_val=0, progress=progress)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)

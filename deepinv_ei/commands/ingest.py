"""``deepinv-ei ingest``: raw projections or post-log sinograms in, a measurement set out
(:func:`deepinv_ei.scan.ingest`). The scan's options are those of
:mod:`deepinv_ei.commands.scan_options`, shared with ``deepinv-ei reconstruct``."""

from __future__ import annotations

import argparse

from .scan_options import add_scan_options, scan_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ingest",
        help="write a measurement set from raw projections or post-log sinograms",
        description="Pre-process a measured scan (flat/dark, -log, binning, crop, view "
        "selection, centre of rotation) into a measurement set (HDF5) that deepinv reads.",
    )
    add_scan_options(p)
    out = p.add_argument_group("output")
    out.add_argument(
        "--val-fraction", type=float, default=0.1, help="fraction of validation slices"
    )
    out.add_argument("--val-slices", type=int, help="number of validation slices (instead)")
    out.add_argument("--split-seed", type=int, default=0)
    out.add_argument("--out", required=True, help="the measurement set to write (.h5)")
    out.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    out.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def run(args: argparse.Namespace) -> int:
    from deepinv_ei.cli import guarded
    from deepinv_ei.scan import ingest

    def runner() -> int:
        summary = ingest(
            args.out, **scan_options(args), val_fraction=args.val_fraction,
            n_val=args.val_slices, split_seed=args.split_seed, overwrite=args.overwrite,
            progress=not args.quiet,
        )  # fmt: skip
        if not args.quiet:
            print(summary)
        return 0

    # bad input, a missing file, an existing output
    return guarded("ingest", runner, (ValueError, OSError))

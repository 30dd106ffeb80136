"""``deepinv-ei ingest``: raw projections or post-log sinograms in, a measurement set out
(:func:`deepinv_ei.scan.ingest`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _span(text: str) -> tuple[int, int]:
    start, sep, stop = text.partition(":")
    try:
        return int(start), int(stop)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP (integers), got {text!r}") from None


def _shape(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W (integers), got {text!r}") from None
    return h, w


def _views(text: str) -> list[int]:
    path = Path(text)
    raw = path.read_text() if path.is_file() else text
    try:
        return [int(v) for v in raw.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected view indices (a comma list or a file), got {text!r}"
        ) from None


def _offset(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of pixels or 'auto', got {text!r}"
        ) from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "ingest",
        help="write a measurement set from raw projections or post-log sinograms",
        description="Pre-process a measured scan (flat/dark, -log, binning, crop, view "
        "selection, centre of rotation) into a measurement set (HDF5) that deepinv reads.",
    )
    src = p.add_argument_group("input")
    src.add_argument("--projections", help="projections: a TIFF glob ('scan/*.tif'), a multi-page TIFF, "
                     ".npy, .npz[:name], file.h5:/path (a Data Exchange file alone), .mat[:var]")  # fmt: skip
    src.add_argument("--flats", help="flat fields (open beam), same formats")
    src.add_argument("--darks", help="dark fields, same formats")
    src.add_argument("--angles", help="angles file (text, .npy or file.h5:/path)")
    src.add_argument("--angle-unit", default="deg", choices=("deg", "rad"))
    src.add_argument("--sinograms", help="post-log sinograms instead of projections")
    src.add_argument(
        "--axes", help="the stored axes in order, e.g. angle,row,col or slice,angle,detector"
    )
    src.add_argument("--values", choices=("counts", "transmission", "line_integrals"),
                     help="what the projections hold (default: counts with --flats)")  # fmt: skip
    geo = p.add_argument_group("scanner")
    geo.add_argument("--geometry", default="parallel",
                     help="'parallel' (stack of 2-D parallel-beam slices) or a spec file (.toml, .json)")  # fmt: skip
    geo.add_argument("--pixel-size", type=float, help="detector pitch for --geometry parallel")
    geo.add_argument("--unit", choices=("mm", "cm", "m", "px"), help="length unit of --pixel-size")
    geo.add_argument(
        "--image-shape", type=_shape, help="image grid H,W (default: detector width squared)"
    )
    pre = p.add_argument_group("pre-processing")
    pre.add_argument("--rows", type=_span, help="keep detector rows (slices) START:STOP")
    pre.add_argument("--bin", type=int, default=1, help="bin N detector pixels (columns and rows)")
    pre.add_argument("--bin-rows", type=int, help="bin rows by another factor than --bin")
    sel = pre.add_mutually_exclusive_group()
    sel.add_argument("--keep-every", type=int, help="keep every k-th view; the others are held out")
    sel.add_argument("--keep-count", type=int, help="keep that many evenly spaced views")
    sel.add_argument("--keep-views", type=_views, help="keep these views (comma list or a file)")
    pre.add_argument("--centre-offset", type=_offset,
                     help="rotation axis offset from the detector centre in detector pixels, or 'auto'")  # fmt: skip
    pre.add_argument("--max-clip-fraction", type=float, default=0.01,
                     help="refuse above this fraction of non-positive or saturated values")  # fmt: skip
    pre.add_argument(
        "--floor-counts", type=float, default=0.5, help="non-positive counts become this"
    )
    pre.add_argument(
        "--saturation", type=float, help="saturated raw value (default: dtype maximum)"
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--val-fraction", type=float, default=0.1, help="fraction of validation slices"
    )
    out.add_argument("--val-slices", type=int, help="number of validation slices (instead)")
    out.add_argument("--split-seed", type=int, default=0)
    out.add_argument(
        "--chunk-size", type=int, help="views processed at once (default: 16 MiB of float64)"
    )
    out.add_argument("--out", required=True, help="the measurement set to write (.h5)")
    out.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    out.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def run(args: argparse.Namespace) -> int:
    from deepinv_ei.scan import ingest

    try:
        summary = ingest(
            args.out, projections=args.projections, flats=args.flats, darks=args.darks,
            angles=args.angles, angle_unit=args.angle_unit, sinograms=args.sinograms,
            axes=args.axes, geometry=args.geometry, pixel_size=args.pixel_size, unit=args.unit,
            image_shape=args.image_shape, values=args.values, rows=args.rows, binning=args.bin,
            bin_rows=args.bin_rows, keep_every=args.keep_every, keep_count=args.keep_count,
            keep_views=args.keep_views, centre_offset=args.centre_offset,
            max_clip_fraction=args.max_clip_fraction, floor_counts=args.floor_counts,
            saturation=args.saturation, val_fraction=args.val_fraction, n_val=args.val_slices,
            split_seed=args.split_seed, chunk_size=args.chunk_size, overwrite=args.overwrite,
            progress=not args.quiet,
        )  # fmt: skip
    except (ValueError, FileExistsError, IsADirectoryError) as err:
        print(f"deepinv-ei ingest: error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(summary)
    return 0

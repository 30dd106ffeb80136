"""The options that describe a raw scan, shared by ``deepinv-ei ingest`` and ``deepinv-ei
reconstruct``: defined once here, checked once by :func:`deepinv_ei.scan.ingest`.

:func:`add_scan_options` registers them on a parser (the groups *input*, *scanner* and
*pre-processing*), :func:`scan_options` turns the parsed arguments back into the keyword
arguments of :func:`~deepinv_ei.scan.ingest`, and :func:`given_scan_options` names those
given on the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from deepinv_ei.scan import ANGLE_UNITS, LENGTH_UNITS

#: The options that name the scan's data (one of them is the scan).
DATA_OPTIONS = ("projections", "sinograms")


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


def add_scan_options(
    p: argparse.ArgumentParser,
    geometry_default: str | None = "parallel",
    geometry_help: str = "'parallel' (stack of 2-D parallel-beam slices) or a spec file "
    "(.toml, .json)",
) -> list[argparse.Action]:
    """Register the scan's options on ``p``: its data, flats, darks, angles and axes, the
    scanner, and the pre-processing (window, binning, view selection, centre of rotation,
    clipping, chunks).

    :param argparse.ArgumentParser p: the parser of the subcommand.
    :param geometry_default: the default of ``--geometry``.
    :param str geometry_help: its help text.
    :return: the actions added, in order.
    """
    added: list[argparse.Action] = []

    def add(group, *names: str, **kw: Any) -> None:
        added.append(group.add_argument(*names, **kw))

    src = p.add_argument_group("input")
    add(src, "--projections", help="projections: a TIFF glob ('scan/*.tif'), a multi-page TIFF, "
        ".npy, .npz[:name], file.h5:/path (a Data Exchange file alone), .mat[:var]")  # fmt: skip
    add(src, "--flats", help="flat fields (open beam), same formats")
    add(src, "--darks", help="dark fields, same formats")
    add(src, "--angles", help="angles file (text, .npy or file.h5:/path)")
    add(src, "--angle-unit", default="deg", choices=ANGLE_UNITS)
    add(src, "--sinograms", help="post-log sinograms instead of projections")
    add(src, "--axes", help="the stored axes in order, e.g. angle,row,col or slice,angle,detector")
    add(src, "--values", choices=("counts", "transmission", "line_integrals"),
        help="what the projections hold (default: counts with --flats)")  # fmt: skip
    geo = p.add_argument_group("scanner")
    add(geo, "--geometry", default=geometry_default, help=geometry_help)
    add(geo, "--pixel-size", type=float, help="detector pitch for --geometry parallel")
    add(geo, "--unit", choices=LENGTH_UNITS, help="length unit of --pixel-size")
    add(geo, "--image-shape", type=_shape,
        help="image grid H,W (default: detector width squared)")  # fmt: skip
    pre = p.add_argument_group("pre-processing")
    add(pre, "--rows", type=_span, help="keep detector rows (slices) START:STOP")
    add(pre, "--bin", type=int, default=1, help="bin N detector pixels (columns and rows)")
    add(pre, "--bin-rows", type=int, help="bin rows by another factor than --bin")
    sel = pre.add_mutually_exclusive_group()
    add(sel, "--keep-every", type=int, help="keep every k-th view; the others are held out")
    add(sel, "--keep-count", type=int, help="keep that many evenly spaced views")
    add(sel, "--keep-views", type=_views, help="keep these views (comma list or a file)")
    add(pre, "--centre-offset", type=_offset,
        help="rotation axis offset from the detector centre in detector pixels, or 'auto'")  # fmt: skip
    add(pre, "--max-clip-fraction", type=float, default=0.01,
        help="refuse above this fraction of non-positive or saturated values")  # fmt: skip
    add(pre, "--floor-counts", type=float, default=0.5, help="non-positive counts become this")
    add(pre, "--saturation", type=float, help="saturated raw value (default: dtype maximum)")
    add(pre, "--chunk-size", type=int,
        help="views processed at once (default: 16 MiB of float64)")  # fmt: skip
    return added


def scan_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`deepinv_ei.scan.ingest` that describe the scan (all
    but the output, the slice split and the progress bar), from the parsed ``args``."""
    return dict(
        projections=args.projections, flats=args.flats, darks=args.darks, angles=args.angles,
        angle_unit=args.angle_unit, sinograms=args.sinograms, axes=args.axes,
        geometry=args.geometry, pixel_size=args.pixel_size, unit=args.unit,
        image_shape=args.image_shape, values=args.values, rows=args.rows, binning=args.bin,
        bin_rows=args.bin_rows, keep_every=args.keep_every, keep_count=args.keep_count,
        keep_views=args.keep_views, centre_offset=args.centre_offset,
        max_clip_fraction=args.max_clip_fraction, floor_counts=args.floor_counts,
        saturation=args.saturation, chunk_size=args.chunk_size,
    )  # fmt: skip


def given_scan_options(args: argparse.Namespace, geometry_default: str | None = None) -> list[str]:
    """The scan options of ``args`` that differ from their defaults, as their flags
    (``["--keep-every", ...]``), the data options (``--projections``, ``--sinograms``) left
    out."""
    probe = argparse.ArgumentParser(add_help=False)
    return [
        action.option_strings[0]
        for action in add_scan_options(probe, geometry_default)
        if action.dest not in DATA_OPTIONS
        and getattr(args, action.dest, action.default) != action.default
    ]

r"""Ingest a measured scan into a measurement set: the Python API of ``deepinv-ei ingest``.

Two inputs are understood:

- **raw projections** ``(angle, row, col)`` (counts, with flats and darks; or transmission, or
  line integrals), each detector row one slice's sinogram (parallel beam, a stack of 2-D
  slices). They are processed in chunks of views: detector window (row crop, binning),
  flat/dark correction and :math:`-\log`, centre-of-rotation correction, view selection;
- **post-log sinograms** ``(slice, angle, detector)``, processed in chunks of slices.

The axes are checked against the scanner spec: a length that contradicts it is an error
naming both, and a layout that matches only when transposed is an error that says it looks
transposed. Slices are split into training and validation slices (seeded); the views left out
by the selection are stored as held-out views. See :mod:`deepinv_ei.scan.measurement_set` for
the file written. Inputs are only read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .measurement_set import MeasurementSetWriter, refuse_existing
from .preprocess import (
    DetectorWindow,
    FlatDarkCorrection,
    bin_axis,
    estimate_centre_offset,
    frame_statistics,
    opposing_views,
    shift_detector,
)
from .readers import (
    Stack,
    TiffFilesStack,
    data_exchange,
    is_data_exchange,
    open_stack,
    read_angles,
    split_source,
)
from .scanner_setup import against, binned_spec, check_not_transposed, check_shape, resolve_spec
from .set_output import IngestSummary, SetLayout, input_steps, source_list, write_set
from .spec import ScannerSpec

VALUE_KINDS = ("counts", "transmission", "line_integrals")


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    unit = "view" if desc == "projections" else "slice"
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled)


def _centre_of_rotation(
    spec: ScannerSpec, centre_offset, bin_cols: int, opposing: Callable[[int, int], tuple]
) -> tuple[float, dict[str, Any] | None]:
    """The offset (detector pixels after binning) that centres a parallel-beam scan's rotation
    axis, and its step record (``None`` when there is nothing to undo).

    A parallel-beam detector shift is undone on the data: ODL's CPU projector ignores it.
    ``opposing(i, j)`` gives the line integrals of views ``i`` and ``j`` (after binning), for
    ``"auto"``.
    """
    if centre_offset == "auto":
        i, j = opposing_views(spec.angles)
        offset, source = (
            estimate_centre_offset(*opposing(i, j)),
            f"estimated from views {i} and {j}",
        )
    elif centre_offset is not None:
        offset, source = float(centre_offset) / bin_cols, "given"
    elif spec.det_shift:
        offset, source = spec.det_shift / (spec.det_pitch * bin_cols), "spec det_shift"
    else:
        return 0.0, None
    return offset, {"step": "centre_of_rotation", "offset_px": offset, "source": source,
                    "method": "resample detector rows (linear)"}  # fmt: skip


def ingest(
    out: str | os.PathLike,
    *,
    projections: str | os.PathLike | None = None,
    flats: str | os.PathLike | None = None,
    darks: str | os.PathLike | None = None,
    angles: str | os.PathLike | None = None,
    angle_unit: str = "deg",
    sinograms: str | os.PathLike | None = None,
    axes: str | None = None,
    geometry: str | os.PathLike | ScannerSpec = "parallel",
    pixel_size: float | None = None,
    unit: str | None = None,
    image_shape: tuple[int, int] | None = None,
    values: str | None = None,
    rows: tuple[int, int] | None = None,
    binning: int = 1,
    bin_rows: int | None = None,
    keep_every: int | None = None,
    keep_count: int | None = None,
    keep_views: list[int] | None = None,
    centre_offset: float | str | None = None,
    max_clip_fraction: float = 0.01,
    floor_counts: float = 0.5,
    saturation: float | None = None,
    val_fraction: float = 0.1,
    n_val: int | None = None,
    split_seed: int = 0,
    chunk_size: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> IngestSummary:
    r"""Ingest raw projections or post-log sinograms into a measurement set at ``out``.

    :param out: the ``.h5`` file to write (refused if it exists, unless ``overwrite``).
    :param projections: projection stack (see :func:`~deepinv_ei.scan.readers.open_stack`), or
        a Data Exchange HDF5 file (its flats, darks and angles are used unless given).
    :param flats: flat fields (open beam), same detector. :param darks: dark fields.
    :param angles: the angles file (text, ``.npy`` or ``file.h5:/path``).
    :param str angle_unit: ``"deg"`` or ``"rad"``.
    :param sinograms: post-log sinograms instead of projections.
    :param str axes: the stored axes' names, e.g. ``"angle,row,col"`` or
        ``"slice,angle,detector"``.
    :param geometry: ``"parallel"`` (a stack of 2-D parallel-beam slices built from the data,
        the angles, ``pixel_size`` and ``unit``; image grid a square of the detector's width,
        pixel size = detector pitch, unless ``image_shape``), a spec file or a
        :class:`~deepinv_ei.scan.ScannerSpec`.
    :param float pixel_size: the detector pitch (``geometry="parallel"``), in ``unit``.
    :param str unit: ``"mm"``, ``"cm"``, ``"m"`` or ``"px"``.
    :param str values: what the projections hold: ``"counts"`` (default with flats),
        ``"transmission"`` or ``"line_integrals"`` (default without flats, float data).
    :param rows: keep detector rows (or slices) ``start:stop``.
    :param int binning: bin ``binning`` detector columns (and rows, unless ``bin_rows``) by
        summing counts (averaging line integrals).
    :param keep_every: keep every k-th view. :param keep_count: keep that many evenly spaced
        views. :param keep_views: keep these view indices. The others are held out.
    :param centre_offset: the rotation axis's offset from the detector centre in (unbinned)
        detector pixels, towards higher columns, or ``"auto"`` (estimated from the two views
        closest to 180 degrees apart; parallel beam).
    :param float max_clip_fraction: refuse the scan above this fraction of floored or
        saturated values.
    :param float floor_counts: what non-positive dark-corrected counts become.
    :param float saturation: raw value counted as saturated (default: the integer dtype's
        maximum).
    :param float val_fraction: fraction of slices for validation. :param n_val: or a count.
    :param int split_seed: seed of the slice split.
    :param int chunk_size: views (or slices) processed at once; bounds the memory (default: a
        float64 chunk of at most 16 MiB, see :func:`auto_chunk`).
    :param bool progress: show a progress bar.
    :return: an :class:`IngestSummary`.
    :raises ValueError: on bad input, naming the file and what was expected.
    :raises FileExistsError: if ``out`` exists and not ``overwrite``.
    """
    out = refuse_existing(out, overwrite)
    if (projections is None) == (sinograms is None):
        raise ValueError("give either projections or sinograms (exactly one)")
    if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    if values is not None and values not in VALUE_KINDS:
        raise ValueError(f"values must be one of {', '.join(VALUE_KINDS)}, got {values!r}")
    if bin_rows is None:  # projections: square bins; sinograms: along the detector only
        bin_rows = binning if sinograms is None else 1
    window = DetectorWindow(tuple(rows) if rows is not None else None, bin_rows, binning)
    kw = dict(window=window, out=out, angle_unit=angle_unit, geometry=geometry,
              pixel_size=pixel_size, unit=unit, image_shape=image_shape,
              views=dict(every=keep_every, count=keep_count, indices=keep_views),
              centre_offset=centre_offset, split=(val_fraction, split_seed, n_val),
              chunk=None if chunk_size is None else int(chunk_size), overwrite=overwrite, progress=progress)  # fmt: skip
    if sinograms is not None:
        for name, value in (("flats", flats), ("darks", darks), ("values", values)):
            if value is not None:
                raise ValueError(
                    f"sinograms are post-log line integrals; {name} applies to projections"
                )
        with open_stack(sinograms, axes, "sinograms") as stack:
            return _ingest_sinograms(stack, angles=angles, **kw)
    with contextlib.ExitStack() as opened:  # every file read is closed when ingest ends
        return _ingest_projections(
            projections, flats, darks, angles, axes, values, max_clip_fraction, floor_counts,
            saturation, opened=opened, **kw,
        )  # fmt: skip


def _ingest_projections(
    projections, flats, darks, angles, axes, values, max_clip_fraction, floor_counts, saturation,
    *, window, out, angle_unit, geometry, pixel_size, unit, image_shape, views, centre_offset,
    split, chunk, overwrite, progress, opened: contextlib.ExitStack,
) -> IngestSummary:  # fmt: skip
    def open_(source, *args):
        return None if source is None else opened.enter_context(open_stack(source, *args))

    extra_sources: list[Path] = []
    angle_values = None
    proj_path, proj_key = split_source(projections)
    if proj_key is None and is_data_exchange(proj_path):
        exchange = data_exchange(proj_path)
        for held in ("projections", "flats", "darks"):
            if exchange[held] is not None:
                opened.enter_context(exchange[held])
        stack = exchange["projections"]
        flat_stack = open_(flats) if flats is not None else exchange["flats"]
        dark_stack = open_(darks) if darks is not None else exchange["darks"]
        angle_values = exchange["angles"]
        angles_name = f"{proj_path}:/exchange/theta"
    else:
        stack = open_(projections, axes, "projections")
        flat_stack, dark_stack = open_(flats), open_(darks)
    if angles is not None:
        angle_values = read_angles(angles, angle_unit)
        angles_name = str(angles)
        extra_sources.append(split_source(angles)[0])
    if (
        angle_values is not None
        and isinstance(stack, TiffFilesStack)
        and len(stack) != len(angle_values)
    ):
        raise ValueError(
            f"{stack.name}: {len(stack)} projection files match, but {angles_name} lists "
            f"{len(angle_values)} angles; expected one file per angle"
        )
    for field_stack in (flat_stack, dark_stack):
        if field_stack is not None and field_stack.shape[1:] != stack.shape[1:]:
            raise ValueError(
                f"{field_stack.name}: frames of {field_stack.shape[1]}x{field_stack.shape[2]} "
                f"pixels; expected the projections' {stack.shape[1]}x{stack.shape[2]} ({stack.name})"
            )
    n_views, n_rows, n_cols = stack.shape
    window.check(n_rows, stack.name)
    chunk = chunk or auto_chunk(n_rows * n_cols)
    spec, spec_path = resolve_spec(
        geometry, angle_values, n_rows, n_cols, pixel_size, unit, image_shape
    )
    if spec_path is not None:
        extra_sources.append(spec_path)
    check_shape(stack, spec, against(spec_path, angles_name if angle_values is not None else None))
    if not spec.geometry.startswith("parallel"):
        raise ValueError(
            f"{stack.name}: projections are read as a stack of parallel-beam slices; for a "
            f"{spec.geometry} scanner give post-log sinograms (slice, angle, detector) instead"
        )
    if values is None:
        if flat_stack is None and stack.dtype.kind != "f":
            raise ValueError(
                f"{stack.name}: integer projections are raw counts and need flat fields (flats); "
                "or say what they hold (values='transmission' or 'line_integrals')"
            )
        values = "counts" if flat_stack is not None else "line_integrals"
    if values == "counts" and flat_stack is None:
        raise ValueError(f"{stack.name}: raw counts need flat fields (flats)")
    rows_out, cols_out = window.out_shape(n_rows, n_cols)
    steps = input_steps("projections", stack, values, window,
                         "sum" if values == "counts" else "mean")  # fmt: skip

    noise: dict[str, Any] = {"model": "none"}
    correction = None
    if values == "counts":
        if saturation is None and stack.dtype.kind in "iu":
            saturation = float(np.iinfo(stack.dtype).max)
        flat_stats = frame_statistics(flat_stack, window, chunk)
        if dark_stack is not None:
            dark_stats = frame_statistics(dark_stack, window, chunk)
            dark_mean, read_var = dark_stats.mean, dark_stats.temporal_variance
        else:
            dark_mean, read_var = np.zeros_like(flat_stats.mean), None
        correction = FlatDarkCorrection(
            flat_stats.mean, dark_mean, floor_counts, max_clip_fraction,
            expected_total=n_views * rows_out * cols_out, name=stack.name,
            flat_name=flat_stack.name, dark_name=dark_stack.name if dark_stack else "darks (none given)",
        )  # fmt: skip
        read_noise = None if read_var is None else float(np.sqrt(read_var))
        noise = {"I0": flat_stats.mean - dark_mean, "read_noise": read_noise,
                 "model": "poisson" if read_noise is None else "poisson_gaussian", "gain": None}  # fmt: skip
        steps.append({"step": "flat_dark", "flats": flat_stack.name, "n_flats": len(flat_stack),
                      "darks": dark_stack.name if dark_stack else None,
                      "n_darks": len(dark_stack) if dark_stack else 0,
                      "floor_counts": floor_counts, "saturation": saturation,
                      "max_clip_fraction": max_clip_fraction})  # fmt: skip
    if values != "line_integrals":
        steps.append({"step": "minus_log"})

    def line_integrals(raw: np.ndarray, count: bool = True) -> np.ndarray:
        windowed = window(raw) if values == "counts" else _mean_window(window, raw)
        if correction is not None:
            saturated = 0 if saturation is None else _count_saturated(window, raw, saturation)
            return correction(windowed, saturated, count=count)
        if values == "transmission":
            return -np.log(np.maximum(windowed, 1e-12))
        return windowed

    def opposing(i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        # Not counted as clipped: these views are counted when the loop reaches them.
        return tuple(line_integrals(stack.read(k, k + 1), count=False)[0] for k in (i, j))

    offset_px, centre_step = _centre_of_rotation(spec, centre_offset, window.bin_cols, opposing)
    if centre_step is not None:
        steps.append(centre_step)
    spec = binned_spec(spec, cols_out, window.bin_cols, 0.0, rows_out, window.bin_rows)

    def stream(writer: MeasurementSetWriter, layout: SetLayout) -> dict[str, int]:
        # Each view's position among the kept (or held-out) views, -1 where it is not one.
        positions = []
        for chosen, target in ((layout.kept, writer.y), (layout.heldout, writer.heldout)):
            pos = np.full(n_views, -1)
            pos[chosen] = np.arange(len(chosen))
            positions.append((pos, target))
        with _progress(n_views, "projections", progress) as bar:
            for start, stop, raw in stack.chunks(chunk):
                li = shift_detector(line_integrals(raw), offset_px).astype(np.float32)
                for pos, target in positions:
                    local = np.nonzero(pos[start:stop] >= 0)[0]
                    if len(local):
                        a, b = pos[start + local[0]], pos[start + local[-1]] + 1
                        sino = li[local].transpose(1, 0, 2)  # (rows, views, cols)
                        for split_name, slices in (("train", layout.train), ("test", layout.val)):
                            if len(slices):
                                target[split_name][:, 0, a:b, :] = sino[slices]
                bar.update(stop - start)
        if correction is None:
            return {}
        correction.warn()
        return correction.clipped.as_dict()

    return write_set(
        out, spec, n_views=n_views, n_slices=rows_out, views=views, split=split, steps=steps,
        sources=source_list([stack, flat_stack, dark_stack], extra_sources), noise=noise,
        centre_offset=offset_px if centre_step else None, overwrite=overwrite, stream=stream,
    )  # fmt: skip


def _count_saturated(window: DetectorWindow, raw: np.ndarray, level: float) -> int:
    # A binned value is saturated if any of its raw pixels is.
    if window.bin_rows == window.bin_cols == 1:
        rows = slice(*window.rows) if window.rows is not None else slice(None)
        return int(np.count_nonzero(raw[:, rows] >= level))
    return int(np.count_nonzero(window(raw >= level)))


def auto_chunk(frame_values: int, budget_bytes: int = 16 * 2**20, most: int = 64) -> int:
    """Views per chunk so that one float64 chunk of frames takes at most ``budget_bytes``."""
    return int(max(1, min(most, budget_bytes // (8 * max(frame_values, 1)))))


def _mean_window(window: DetectorWindow, raw: np.ndarray) -> np.ndarray:
    # Transmission and line integrals are averaged, not summed, over a bin.
    out = np.asarray(raw, dtype=np.float64)
    if window.rows is not None:
        out = out[:, window.rows[0] : window.rows[1]]
    return bin_axis(bin_axis(out, 1, window.bin_rows, "mean"), 2, window.bin_cols, "mean")


def _ingest_sinograms(
    stack: Stack, *, angles, window, out, angle_unit, geometry, pixel_size, unit, image_shape,
    views, centre_offset, split, chunk, overwrite, progress,
) -> IngestSummary:  # fmt: skip
    extra_sources: list[Path] = []
    angle_values = read_angles(angles, angle_unit) if angles is not None else None
    if angles is not None:
        extra_sources.append(split_source(angles)[0])
    n_slices, n_views, n_det = stack.shape
    chunk = chunk or auto_chunk(n_views * n_det)
    spec, spec_path = resolve_spec(
        geometry, angle_values, n_slices, n_det, pixel_size, unit, image_shape
    )
    if spec_path is not None:
        extra_sources.append(spec_path)
    check_shape(stack, spec, against(spec_path, angles))
    check_not_transposed(stack, spec)
    if window.bin_rows > 1:
        raise ValueError(
            "sinograms are binned along the detector only (binning), not across slices"
        )
    window.check(n_slices, stack.name, "slice")
    first, last = window.rows or (0, n_slices)
    det_out = n_det // window.bin_cols
    steps = input_steps("sinograms", stack, "line_integrals", window, "mean")

    def binned(start: int, stop: int) -> np.ndarray:
        return bin_axis(stack.read(start, stop).astype(np.float64), 2, window.bin_cols, "mean")

    def opposing(i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        ref = binned(first, min(last, first + chunk))  # a chunk of slices is enough
        return ref[:, i], ref[:, j]

    offset_px, centre_step, shift = 0.0, None, spec.det_shift
    if spec.geometry.startswith("parallel"):
        offset_px, centre_step = _centre_of_rotation(spec, centre_offset, window.bin_cols, opposing)
        shift = 0.0
    elif centre_offset is not None:
        raise ValueError(
            f"a centre-of-rotation offset for a {spec.geometry} scanner goes in its spec (det_shift)"
        )
    if centre_step is not None:
        steps.append(centre_step)
    spec = binned_spec(spec, det_out, window.bin_cols, shift, last - first, 1)

    def stream(writer: MeasurementSetWriter, layout: SetLayout) -> dict[str, int]:
        where = {int(s): ("train", i) for i, s in enumerate(layout.train)}
        where.update({int(s): ("test", i) for i, s in enumerate(layout.val)})
        with _progress(last - first, "sinograms", progress) as bar:
            for start in range(first, last, chunk):
                stop = min(start + chunk, last)
                sino = shift_detector(binned(start, stop), offset_px).astype(np.float32)
                for k in range(stop - start):
                    split_name, i = where[start + k - first]
                    writer.y[split_name][i, 0] = sino[k][layout.kept]
                    writer.heldout[split_name][i, 0] = sino[k][layout.heldout]
                bar.update(stop - start)
        return {}

    return write_set(
        out, spec, n_views=n_views, n_slices=last - first, views=views, split=split, steps=steps,
        sources=source_list([stack], extra_sources), noise={"model": "none"},
        centre_offset=offset_px if centre_step else None, overwrite=overwrite, stream=stream,
    )  # fmt: skip

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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .measurement_set import MeasurementSetWriter, refuse_existing
from .preprocess import (
    ClipCounts,
    DetectorWindow,
    FlatDarkCorrection,
    bin_axis,
    estimate_centre_offset,
    frame_statistics,
    opposing_views,
    select_views,
    shift_detector,
)
from .readers import (
    Stack,
    TiffFilesStack,
    data_exchange,
    is_data_exchange,
    open_stack,
    read_angles,
    sha256_file,
    split_source,
)
from .spec import ScannerSpec, load_spec

VALUE_KINDS = ("counts", "transmission", "line_integrals")
UNITS = ("mm", "cm", "m", "px")


@dataclass
class IngestSummary:
    """What :func:`ingest` wrote (``str(summary)`` is what the command prints)."""

    path: Path
    spec: ScannerSpec
    shapes: dict[str, tuple[int, ...]]
    units: dict[str, str]
    clipped: dict[str, int]
    kept_views: np.ndarray
    heldout_views: np.ndarray
    train_slices: np.ndarray
    val_slices: np.ndarray
    I0_mean: float | None = None
    read_noise: float | None = None
    centre_offset: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"wrote {self.path}",
            f"  y_train {self.shapes['y_train']}, y_test {self.shapes['y_test']} "
            "(slices, 1, views, detectors)",
            f"  slices: {len(self.train_slices)} train, {len(self.val_slices)} validation "
            f"{self.val_slices.tolist()}",
            f"  views: {len(self.kept_views)} kept, {len(self.heldout_views)} held out",
            f"  units: sinogram {self.units['sinogram']}, length {self.units['length']}",
            f"  clipped: {self.clipped.get('non_positive', 0)} non-positive, "
            f"{self.clipped.get('saturated', 0)} saturated of {self.clipped.get('total', 0)} values",
        ]
        if self.I0_mean is not None:
            noise = "unknown" if self.read_noise is None else f"{self.read_noise:.4g}"
            lines.append(
                f"  I0 estimate: {self.I0_mean:.6g} counts (mean), read noise {noise} counts"
            )
        if self.centre_offset is not None:
            lines.append(f"  centre-of-rotation offset: {self.centre_offset:.3f} detector pixels")
        lines.append(f"  spec hash {self.spec.hash[:16]}")
        return "\n".join(lines)


def split_slices(n_slices: int, val_fraction: float = 0.1, seed: int = 0, n_val: int | None = None):
    """Seeded split of ``n_slices`` into sorted training and validation slice indices.

    ``n_val`` (default: ``round(val_fraction * n_slices)``, at least 1 when there are two
    slices or more and ``val_fraction > 0``) slices are drawn at random for validation.

    >>> split_slices(10, 0.2, seed=0)[1].tolist()
    [4, 6]
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if n_val is None:
        n_val = round(val_fraction * n_slices)
        if n_slices >= 2 and val_fraction > 0:
            n_val = max(n_val, 1)
    if not 0 <= n_val < max(n_slices, 1) or (n_slices == 1 and n_val):
        raise ValueError(f"n_val must leave at least one training slice of {n_slices}, got {n_val}")
    perm = np.random.default_rng(seed).permutation(n_slices)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def check_shape(stack: Stack, spec: ScannerSpec, against: str) -> None:
    """Check the stack's axes against ``spec`` (:meth:`ScannerSpec.check_data_shape`): a
    length that contradicts it is an error naming both, a layout that fits only in another
    axis order one that says the array looks transposed."""
    spec.check_data_shape(
        stack.stored_shape, stack.stored_axes, f"{stack.name} (against {against})"
    )


def check_not_transposed(stack: Stack, spec: ScannerSpec, n_check: int = 4) -> None:
    r"""For square sinograms (views = detectors), tell a ``(detector, angle)`` array from an
    ``(angle, detector)`` one by content: the total of a view over the detector,
    :math:`\sum_u p_\theta(u)`, is (nearly, for fan beam) the same for every view, while a
    detector pixel's values over the views vary as much as the object's profile.

    :raises ValueError: if the view totals vary much more than the detector profiles.
    """
    views, det = spec.sinogram_shape
    if views != det or views < 8:
        return
    sino = stack.read(0, min(n_check, len(stack))).astype(np.float64)
    by_view, by_det = sino.sum(axis=2), sino.sum(axis=1)

    def spread(v: np.ndarray) -> float:
        return float((v.std(axis=1) / np.maximum(np.abs(v.mean(axis=1)), 1e-12)).mean())

    if spread(by_view) > 2 * spread(by_det) and spread(by_view) > 0.1:
        raise ValueError(
            f"{stack.name}: the sinograms look transposed: the totals over the detector vary by "
            f"{100 * spread(by_view):.0f}% from view to view, the totals over the views by "
            f"{100 * spread(by_det):.0f}% from detector pixel to pixel (a sinogram's view totals "
            "are nearly constant); name the stored axes, e.g. slice,detector,angle"
        )


def _source_list(stacks: list[Stack | None], extra: list[Path]) -> list[dict[str, str]]:
    paths: list[Path] = []
    for s in stacks:
        if s is not None:
            paths += s.sources
    paths += extra
    seen, out = set(), []
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append({"path": str(p), "sha256": sha256_file(p)})
    return out


def _parallel_spec(angles, rows: int, cols: int, pixel_size, unit, image_shape) -> ScannerSpec:
    if pixel_size is None:
        raise ValueError("--geometry parallel needs the detector pitch (--pixel-size)")
    if unit is None:
        raise ValueError(
            f"--geometry parallel needs the length unit of --pixel-size (--unit, one of {UNITS})"
        )
    if unit not in UNITS:
        raise ValueError(f"unknown length unit {unit!r}; expected one of {UNITS}")
    if not pixel_size > 0:
        raise ValueError(f"the pixel size must be positive, got {pixel_size}")
    return ScannerSpec(
        geometry="parallel3d", unit=unit, angles=np.asarray(angles, dtype=np.float64),
        det_count=cols, det_pitch=float(pixel_size), det_rows=rows, row_pitch=float(pixel_size),
        image_shape=tuple(image_shape) if image_shape else (cols, cols), pixel_size=float(pixel_size),
    )  # fmt: skip


def _resolve_spec(
    geometry, angles, rows, cols, pixel_size, unit, image_shape
) -> tuple[ScannerSpec, Path | None]:
    if isinstance(geometry, ScannerSpec):
        spec, path = geometry, None
    elif str(geometry) == "parallel":
        if angles is None:
            raise ValueError(
                "--geometry parallel needs the angles (--angles FILE --angle-unit deg|rad)"
            )
        return _parallel_spec(angles, rows, cols, pixel_size, unit, image_shape), None
    else:
        path = Path(geometry)
        if not path.is_file():
            raise ValueError(
                f"{geometry}: expected 'parallel' or a scanner spec file (.toml or .json)"
            )
        spec = load_spec(path)
    if angles is not None:
        spec = spec.with_angles(angles)
    return spec, path


def _against(spec_path, angles_name) -> str:
    parts = [f"the scanner spec {spec_path}" if spec_path else "the scanner"]
    if angles_name is not None:
        parts.append(f"the angles of {angles_name}")
    return " and ".join(parts)


def _centre_px(spec: ScannerSpec, user_offset, bin_cols: int) -> tuple[float, str | None]:
    # A parallel-beam detector shift is undone on the data: ODL's CPU projector ignores it.
    if user_offset is not None and user_offset != "auto":
        return float(user_offset) / bin_cols, "given"
    if spec.geometry.startswith("parallel") and spec.det_shift:
        return spec.det_shift / spec.det_pitch, "spec det_shift"
    return 0.0, None


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
    window = DetectorWindow(
        tuple(rows) if rows is not None else None,
        int(bin_rows if bin_rows is not None else binning),
        int(binning),
    )
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
        return _ingest_sinograms(open_stack(sinograms, axes, "sinograms"), angles=angles, **kw)
    return _ingest_projections(
        projections,
        flats,
        darks,
        angles,
        axes,
        values,
        max_clip_fraction,
        floor_counts,
        saturation,
        **kw,
    )


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="view" if desc == "projections" else "slice",
        disable=not enabled,
    )


def _units(spec: ScannerSpec) -> dict[str, str]:
    return {
        "length": spec.unit,
        "sinogram": f"line integral (attenuation unit x {spec.unit})",
        "image": f"1/{spec.unit}",
    }


def _views_step(views: dict, kept, heldout) -> dict[str, Any]:
    given = {k: v for k, v in views.items() if v is not None}
    return {"step": "select_views", **{k: (list(v) if k == "indices" else v) for k, v in given.items()},
            "kept": len(kept), "heldout": len(heldout)}  # fmt: skip


def _ingest_projections(
    projections, flats, darks, angles, axes, values, max_clip_fraction, floor_counts, saturation,
    *, window, out, angle_unit, geometry, pixel_size, unit, image_shape, views, centre_offset,
    split, chunk, overwrite, progress,
) -> IngestSummary:  # fmt: skip
    extra_sources: list[Path] = []
    angle_values = None
    proj_path, proj_key = split_source(projections)
    if proj_key is None and is_data_exchange(proj_path):
        exchange = data_exchange(proj_path)
        stack = exchange["projections"]
        flat_stack = open_stack(flats) if flats is not None else exchange["flats"]
        dark_stack = open_stack(darks) if darks is not None else exchange["darks"]
        angle_values = exchange["angles"]
        angles_name = f"{proj_path}:/exchange/theta"
    else:
        stack = open_stack(projections, axes, "projections")
        flat_stack = open_stack(flats) if flats is not None else None
        dark_stack = open_stack(darks) if darks is not None else None
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
    window.check(stack.shape, stack.name)
    chunk = chunk or auto_chunk(n_rows * n_cols)
    spec, spec_path = _resolve_spec(
        geometry, angle_values, n_rows, n_cols, pixel_size, unit, image_shape
    )
    if spec_path is not None:
        extra_sources.append(spec_path)
    check_shape(stack, spec, _against(spec_path, angles_name if angle_values is not None else None))
    if not spec.geometry.startswith("parallel"):
        raise ValueError(
            f"{stack.name}: projections are read as a stack of parallel-beam slices; for a "
            f"{spec.geometry} scanner give post-log sinograms (slice, angle, detector) instead"
        )
    if values is None:
        values = (
            "counts"
            if flat_stack is not None
            else ("line_integrals" if stack.dtype.kind == "f" else None)
        )
        if values is None:
            raise ValueError(
                f"{stack.name}: integer projections are raw counts and need flat fields (flats); "
                "or say what they hold (values='transmission' or 'line_integrals')"
            )
    if values not in VALUE_KINDS:
        raise ValueError(f"values must be one of {VALUE_KINDS}, got {values!r}")
    if values == "counts" and flat_stack is None:
        raise ValueError(f"{stack.name}: raw counts need flat fields (flats)")
    rows_out, cols_out = window.out_shape(n_rows, n_cols)
    steps: list[dict[str, Any]] = [{"step": "read", "projections": stack.name, "axes": ",".join(stack.axes),
                                    "dtype": str(stack.dtype), "shape": list(stack.shape), "values": values}]  # fmt: skip
    if window.rows is not None:
        steps.append({"step": "crop_rows", "start": window.rows[0], "stop": window.rows[1]})
    if window.bin_rows > 1 or window.bin_cols > 1:
        steps.append({"step": "bin", "rows": window.bin_rows, "cols": window.bin_cols,
                      "reduce": "sum" if values == "counts" else "mean"})  # fmt: skip

    noise: dict[str, Any] = {"model": "none"}
    correction = None
    sat_level = None
    if values == "counts":
        if saturation is None and stack.dtype.kind in "iu":
            saturation = float(np.iinfo(stack.dtype).max)
        sat_level = saturation
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

    def line_integrals(raw: np.ndarray) -> np.ndarray:
        windowed = window(raw) if values == "counts" else _mean_window(window, raw)
        if correction is not None:
            saturated = 0 if sat_level is None else _count_saturated(window, raw, sat_level)
            return correction(windowed, saturated)
        if values == "transmission":
            return -np.log(np.maximum(windowed, 1e-12))
        return windowed

    offset_px, offset_from = _centre_px(spec, centre_offset, window.bin_cols)
    if centre_offset == "auto":
        i, j = opposing_views(spec.angles)
        offset_px = estimate_centre_offset(
            line_integrals(stack.read(i, i + 1))[0], line_integrals(stack.read(j, j + 1))[0]
        )
        offset_from = f"estimated from views {i} and {j}"
        if correction is not None:  # those two views are counted again in the loop
            correction.clipped = ClipCounts()
    if offset_from is not None:
        steps.append({"step": "centre_of_rotation", "offset_px": offset_px, "source": offset_from,
                      "method": "resample detector rows (linear)"})  # fmt: skip
    spec = _binned(spec, cols_out, window.bin_cols, 0.0, rows_out, window.bin_rows)
    kept, heldout = select_views(n_views, **views)
    train, val = split_slices(rows_out, *split[:2], n_val=split[2])
    steps.append(_views_step(views, kept, heldout))
    steps.append({"step": "split_slices", "val_fraction": split[0], "seed": split[1],
                  "train": len(train), "validation": len(val)})  # fmt: skip
    kept_pos = np.full(n_views, -1)
    kept_pos[kept] = np.arange(len(kept))
    held_pos = np.full(n_views, -1)
    held_pos[heldout] = np.arange(len(heldout))
    kept_spec = spec.select_views(kept)
    writer = MeasurementSetWriter(
        out, len(train), len(val), len(kept), len(heldout), cols_out, overwrite
    )
    with writer, _progress(n_views, "projections", progress) as bar:
        for start, stop, raw in stack.chunks(chunk):
            li = shift_detector(line_integrals(raw), offset_px).astype(np.float32)
            for pos, target in ((kept_pos, writer.y), (held_pos, writer.heldout)):
                local = np.nonzero(pos[start:stop] >= 0)[0]
                if len(local):
                    a, b = pos[start + local[0]], pos[start + local[-1]] + 1
                    sino = li[local].transpose(1, 0, 2)  # (rows, views, cols)
                    for split_name, slices in (("train", train), ("test", val)):
                        if len(slices):
                            target[split_name][:, 0, a:b, :] = sino[slices]
            bar.update(stop - start)
        clipped = correction.clipped.as_dict() if correction is not None else {}
        if correction is not None:
            correction.warn()
        sources = _source_list([stack, flat_stack, dark_stack], extra_sources)
        writer.set_metadata(
            kept_spec, train_slices=train, val_slices=val, split_seed=split[1], kept_views=kept,
            heldout_views=heldout, heldout_angles=spec.angles[heldout], units=_units(spec),
            steps=steps, clipped=clipped, sources=sources, noise=noise,
        )  # fmt: skip
    return IngestSummary(
        out, kept_spec, {"y_train": (len(train), 1, len(kept), cols_out),
                         "y_test": (len(val), 1, len(kept), cols_out)},
        _units(spec), clipped, kept, heldout, train, val,
        I0_mean=float(noise["I0"].mean()) if noise.get("I0") is not None else None,
        read_noise=noise.get("read_noise"), centre_offset=offset_px if offset_from else None, steps=steps,
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


def _binned(
    spec: ScannerSpec, count: int, bin_cols: int, shift: float, rows: int, bin_rows: int
) -> ScannerSpec:
    # The detector after the window, and the image grid if it was the parallel-beam default
    # (a square of the detector's width): the field of view stays the same.
    stacked = (
        {"rows": rows, "row_pitch": spec.row_pitch * bin_rows}
        if spec.geometry == "parallel3d"
        else {}
    )
    new = spec.with_detector(count=count, pitch=spec.det_pitch * bin_cols, shift=shift, **stacked)
    default_grid = spec.image_shape == (spec.det_count,) * 2 and spec.pixel_size == spec.det_pitch
    if spec.geometry.startswith("parallel") and default_grid:
        new = new.with_image(shape=(count, count), pixel_size=new.det_pitch)
    return new


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
    spec, spec_path = _resolve_spec(
        geometry, angle_values, n_slices, n_det, pixel_size, unit, image_shape
    )
    if spec_path is not None:
        extra_sources.append(spec_path)
    check_shape(stack, spec, _against(spec_path, angles))
    check_not_transposed(stack, spec)
    if window.bin_rows > 1:
        raise ValueError(
            "sinograms are binned along the detector only (binning), not across slices"
        )
    slice_range = window.rows or (0, n_slices)
    if not 0 <= slice_range[0] < slice_range[1] <= n_slices:
        raise ValueError(
            f"{stack.name}: slice crop {slice_range[0]}:{slice_range[1]} is outside its {n_slices} slices"
        )
    det_out = n_det // window.bin_cols
    steps: list[dict[str, Any]] = [{"step": "read", "sinograms": stack.name, "axes": ",".join(stack.axes),
                                    "dtype": str(stack.dtype), "shape": list(stack.shape), "values": "line_integrals"}]  # fmt: skip
    if window.rows is not None:
        steps.append({"step": "crop_slices", "start": slice_range[0], "stop": slice_range[1]})
    if window.bin_cols > 1:
        steps.append({"step": "bin", "cols": window.bin_cols, "reduce": "mean"})
    offset_px, offset_from = 0.0, None
    if spec.geometry.startswith("parallel"):
        if centre_offset == "auto":
            i, j = opposing_views(spec.angles)
            ref = bin_axis(
                stack.read(slice_range[0], slice_range[1]).astype(np.float64),
                2,
                window.bin_cols,
                "mean",
            )
            offset_px = estimate_centre_offset(ref[:, i], ref[:, j])
            offset_from = f"estimated from views {i} and {j}"
        else:
            offset_px, offset_from = _centre_px(spec, centre_offset, window.bin_cols)
    elif centre_offset is not None:
        raise ValueError(
            f"a centre-of-rotation offset for a {spec.geometry} scanner goes in its spec (det_shift)"
        )
    if offset_from is not None:
        steps.append({"step": "centre_of_rotation", "offset_px": offset_px, "source": offset_from,
                      "method": "resample detector rows (linear)"})  # fmt: skip
    shift = 0.0 if spec.geometry.startswith("parallel") else spec.det_shift
    n_kept_slices = slice_range[1] - slice_range[0]
    spec = _binned(spec, det_out, window.bin_cols, shift, n_kept_slices, 1)
    kept, heldout = select_views(n_views, **views)
    train, val = split_slices(n_kept_slices, *split[:2], n_val=split[2])
    steps.append(_views_step(views, kept, heldout))
    steps.append({"step": "split_slices", "val_fraction": split[0], "seed": split[1],
                  "train": len(train), "validation": len(val)})  # fmt: skip
    where = {int(s): ("train", i) for i, s in enumerate(train)}
    where.update({int(s): ("test", i) for i, s in enumerate(val)})
    kept_spec = spec.select_views(kept)
    writer = MeasurementSetWriter(
        out, len(train), len(val), len(kept), len(heldout), det_out, overwrite
    )
    with writer, _progress(n_kept_slices, "sinograms", progress) as bar:
        for start in range(slice_range[0], slice_range[1], chunk):
            stop = min(start + chunk, slice_range[1])
            sino = bin_axis(stack.read(start, stop).astype(np.float64), 2, window.bin_cols, "mean")
            sino = shift_detector(sino, offset_px).astype(np.float32)
            for k in range(stop - start):
                split_name, i = where[start + k - slice_range[0]]
                writer.y[split_name][i, 0] = sino[k][kept]
                writer.heldout[split_name][i, 0] = sino[k][heldout]
            bar.update(stop - start)
        writer.set_metadata(
            kept_spec, train_slices=train, val_slices=val, split_seed=split[1], kept_views=kept,
            heldout_views=heldout, heldout_angles=spec.angles[heldout], units=_units(spec),
            steps=steps, clipped={}, sources=_source_list([stack], extra_sources), noise={"model": "none"},
        )  # fmt: skip
    return IngestSummary(
        out, kept_spec, {"y_train": (len(train), 1, len(kept), det_out),
                         "y_test": (len(val), 1, len(kept), det_out)},
        _units(spec), {}, kept, heldout, train, val,
        centre_offset=offset_px if offset_from else None, steps=steps,
    )  # fmt: skip

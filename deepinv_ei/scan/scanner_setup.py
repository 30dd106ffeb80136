"""The scanner of an ingested scan: built from the arguments (``geometry="parallel"``) or read
from a spec file, the data's axes checked against it, and its detector after the window.

A length that contradicts the scanner is an error naming both, and a layout that matches only
when transposed is an error that says it looks transposed (:func:`check_shape`); square
sinograms are told apart by content (:func:`check_not_transposed`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .readers import Stack
from .spec import LENGTH_UNITS, ScannerSpec, load_spec

#: The scanners a scan is ingested for (cone beam is not: it needs projections in 3D).
INGESTED_GEOMETRIES = ("parallel2d", "parallel3d", "fan2d")


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


def _parallel_spec(angles, rows: int, cols: int, pixel_size, unit, image_shape) -> ScannerSpec:
    if pixel_size is None:
        raise ValueError("--geometry parallel needs the detector pitch (--pixel-size)")
    if unit is None:
        raise ValueError(
            "--geometry parallel needs the length unit of --pixel-size "
            f"(--unit, one of {', '.join(LENGTH_UNITS)})"
        )
    if not pixel_size > 0:
        raise ValueError(f"the pixel size must be positive, got {pixel_size}")
    return ScannerSpec(
        geometry="parallel3d", unit=unit, angles=np.asarray(angles, dtype=np.float64),
        det_count=cols, det_pitch=float(pixel_size), det_rows=rows, row_pitch=float(pixel_size),
        image_shape=tuple(image_shape) if image_shape else (cols, cols), pixel_size=float(pixel_size),
    )  # fmt: skip


def resolve_spec(
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
    if spec.geometry not in INGESTED_GEOMETRIES:
        raise ValueError(
            f"{path or 'the scanner spec'}: a {spec.geometry} scanner is not ingested; "
            f"expected one of {', '.join(INGESTED_GEOMETRIES)}"
        )
    if angles is not None:
        spec = spec.with_angles(angles)
    return spec, path


def against(spec_path, angles_name) -> str:
    parts = [f"the scanner spec {spec_path}" if spec_path else "the scanner"]
    if angles_name is not None:
        parts.append(f"the angles of {angles_name}")
    return " and ".join(parts)


def binned_spec(
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

r"""A realistic simulated acquisition of a seeded 3-D phantom, written as a scanner would.

- **Parallel beam** (``kind="parallel"``): 16-bit TIFF projections ``(angle, row, col)``, one
  file per view, each detector row seeing one slice; raw counts

  .. math::

      P = \mathrm{Poisson}\big(I_0\, g\, e^{-p}\big) + D + \mathcal N(0, \sigma^2),

  with :math:`p` the line integrals of the phantom, :math:`g` a smooth detector gain pattern
  (with fixed column noise), :math:`D` a dark offset and :math:`\sigma` the read noise, rounded
  and clipped to ``uint16``; flat fields (:math:`p = 0`), dark fields (no beam), and the angles
  in degrees in a text file.
- **Fan beam** (``kind="fan"``): post-log sinograms ``(slice, angle, detector)`` in a ``.npy``,
  :math:`y = -\log(\max(\mathrm{Poisson}(I_0 e^{-p}), 1/2) / I_0)`, and the scanner described
  in a TOML spec with distances in mm.

The phantom is a stack of random-ellipse slices cut from ellipsoids, so consecutive slices vary
smoothly. The ground truth (attenuation and noiseless line integrals) goes to a separate
folder, ``ground_truth/``, for scoring only.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from .preprocess import shift_detector
from .spec import ScannerSpec, geometry_from_spec, save_spec

KINDS = ("parallel", "fan")
GROUND_TRUTH = "ground_truth"


@dataclass(frozen=True)
class SimulatedScan:
    """What :func:`simulate_scan` wrote: the paths of the acquisition and of its ground truth.

    ``projections``, ``flats`` and ``darks`` are globs (parallel beam), ``sinograms`` and
    ``spec_file`` the fan beam's ``.npy`` and TOML; ``ground_truth`` is an ``.npz`` with
    ``attenuation`` ``(slices, H, W)`` (1 / ``unit``) and ``line_integrals``
    ``(slices, views, detectors)`` (noiseless; for parallel beam about the rotation axis, i.e.
    after any centre offset is undone). ``spec`` is the scanner as simulated.
    """

    kind: str
    folder: Path
    spec: ScannerSpec
    ground_truth: Path
    projections: str | None = None
    flats: str | None = None
    darks: str | None = None
    angles: Path | None = None
    sinograms: Path | None = None
    spec_file: Path | None = None
    params: dict = field(default_factory=dict)

    def load_ground_truth(self) -> dict[str, np.ndarray]:
        """``{"attenuation": ..., "line_integrals": ...}`` (scoring only)."""
        with np.load(self.ground_truth) as z:
            return {k: z[k] for k in z.files}


def phantom_volume(n_slices: int, size: int, seed: int = 0, supersample: int = 2) -> np.ndarray:
    r"""A seeded 3-D phantom ``(n_slices, size, size)`` in [0, 1] whose slices vary smoothly.

    Each ellipse of a random phantom (:func:`~deepinv_ei.data.phantoms.random_phantom_ellipses`)
    is the cross-section of an ellipsoid: at height :math:`z` its half-axes are scaled by
    :math:`\sqrt{1 - ((z - z_0)/c)^2}`. The body spans every slice; inner structures start and
    end between slices.

    >>> v = phantom_volume(4, 16)
    >>> v.shape, bool(0 <= v.min() and v.max() <= 1)
    ((4, 16, 16), True)
    """
    # Imported here: the data package needs torch, which ingesting a scan does not.
    from ..data.phantoms import Ellipse, random_phantom_ellipses, rasterize_ellipses

    rng = np.random.default_rng([seed, 3])
    outer, inner = random_phantom_ellipses(rng)
    z0 = np.concatenate([np.zeros(len(outer)), rng.uniform(-0.8, 0.8, len(inner))])
    c = np.concatenate([np.full(len(outer), 2.0), rng.uniform(0.25, 0.9, len(inner))])
    zs = -0.8 + 1.6 * (np.arange(n_slices) + 0.5) / n_slices
    volume = np.empty((n_slices, size, size))
    for k, z in enumerate(zs):
        ellipses = []
        for e, zc, cz in zip(outer + inner, z0, c, strict=True):
            s = 1 - ((z - zc) / cz) ** 2
            if s > 0:
                s = math.sqrt(s)
                ellipses.append(Ellipse(e.intensity, e.a * s, e.b * s, e.x0, e.y0, e.theta))
        volume[k] = np.clip(rasterize_ellipses(ellipses, size, supersample), 0.0, 1.0)
    return volume


def project(spec: ScannerSpec, volume: np.ndarray) -> np.ndarray:
    """Noiseless line integrals ``(slices, views, detectors)`` of ``volume`` ``(slices, H, W)``
    (attenuation per ``spec.unit``), with the package's ODL operators."""
    import torch

    from ..odl import ray_transform_physics

    physics = ray_transform_physics(geometry_from_spec(spec))
    with torch.no_grad():
        y = physics.A(torch.from_numpy(volume[:, None].astype(np.float32)))
    return y[:, 0].numpy().astype(np.float64)


def _smooth_pattern(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    # A few low-frequency waves: a detector's gain varies slowly across its face.
    rows, cols = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    out = np.zeros(shape)
    for _ in range(4):
        fr, fc, phase = rng.uniform(0.3, 2.0), rng.uniform(0.3, 2.0), rng.uniform(0, 2 * np.pi)
        out += np.cos(2 * np.pi * (fr * rows + fc * cols) + phase)
    return out / max(float(np.abs(out).max()), 1e-12)


def _counts(rng, mean: np.ndarray, dark: np.ndarray, read_noise: float) -> np.ndarray:
    raw = rng.poisson(mean) + dark + rng.normal(0.0, read_noise, mean.shape)
    return np.clip(np.rint(raw), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def _write_tiffs(folder: Path, stem: str, frames) -> None:
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        tifffile.imwrite(folder / f"{stem}_{i:05d}.tif", frame)


def simulate_scan(
    out_dir: str | Path,
    kind: str = "parallel",
    *,
    n_views: int = 720,
    n_slices: int = 40,
    size: int = 64,
    I0: float = 2e4,
    n_flats: int = 10,
    n_darks: int = 10,
    pixel_size: float | None = None,
    max_line_integral: float = 2.0,
    dark_level: float = 100.0,
    read_noise: float = 3.0,
    gain_variation: float = 0.05,
    centre_offset: float = 0.0,
    angle_range_deg: float | None = None,
    src_radius: float = 100.0,
    det_radius: float = 100.0,
    seed: int = 0,
    overwrite: bool = False,
) -> SimulatedScan:
    r"""Write a simulated raw acquisition of a seeded 3-D phantom under ``out_dir``.

    Parallel beam writes ``projections/proj_*.tif``, ``flats/flat_*.tif``,
    ``darks/dark_*.tif`` (``uint16``, ``n_slices`` rows by ``size`` columns) and
    ``angles_deg.txt``; fan beam writes ``fan.npy`` (``n_slices, n_views, detectors``,
    float32 line integrals) and ``fan.toml``. Both write ``ground_truth/phantom.npz`` and
    ``scan.json`` (the parameters).

    :param str kind: ``"parallel"`` or ``"fan"``.
    :param int n_views: views, evenly spaced over ``angle_range_deg`` (default 180 degrees for
        parallel beam, 360 for fan beam), the first at 0.
    :param int n_slices: slices (detector rows for parallel beam).
    :param int size: image side in pixels (parallel beam: also the detector's columns).
    :param float I0: mean open-beam counts per detector pixel.
    :param int n_flats: flat fields. :param int n_darks: dark fields.
    :param float pixel_size: image pixel side in mm (default 0.02 for parallel beam, 0.5 for
        fan beam); the parallel detector's pitch is the same.
    :param float max_line_integral: the phantom's attenuation is scaled so that its largest
        line integral is this.
    :param float dark_level: mean dark offset (counts). :param float read_noise: its
        :math:`\sigma` (counts).
    :param float gain_variation: relative amplitude of the detector gain pattern.
    :param float centre_offset: the rotation axis's offset from the detector centre, in
        detector pixels (parallel beam).
    :param float src_radius: fan beam source to rotation centre (mm).
    :param float det_radius: fan beam rotation centre to detector (mm).
    :param int seed: random seed of the phantom and of the noise.
    :param bool overwrite: replace an existing simulation in ``out_dir``.
    :return: a :class:`SimulatedScan`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    for name, value in (("n_views", n_views), ("n_slices", n_slices), ("size", size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    if kind == "parallel" and (n_flats < 1 or n_darks < 1):
        raise ValueError(
            f"a raw parallel-beam scan needs flats and darks, got {n_flats} and {n_darks}"
        )
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out}: the folder is not empty; pass overwrite=True to replace it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 7])
    angle_range = (
        angle_range_deg if angle_range_deg is not None else (180.0 if kind == "parallel" else 360.0)
    )
    angles_deg = np.arange(n_views) * (angle_range / n_views)
    unit = "mm"
    if kind == "parallel":
        pixel = 0.02 if pixel_size is None else float(pixel_size)
        spec = ScannerSpec(
            geometry="parallel3d", unit=unit, angles=np.deg2rad(angles_deg), det_count=size,
            det_pitch=pixel, det_rows=n_slices, row_pitch=pixel, image_shape=(size, size),
            pixel_size=pixel,
        )  # fmt: skip
    else:
        pixel = 0.5 if pixel_size is None else float(pixel_size)
        magnification = (src_radius + det_radius) / src_radius
        spec = ScannerSpec(
            geometry="fan2d", unit=unit, angles=np.deg2rad(angles_deg),
            det_count=int(math.ceil(1.5 * size)), det_pitch=pixel * magnification,
            src_radius=float(src_radius), det_radius=float(det_radius), image_shape=(size, size),
            pixel_size=pixel,
        )  # fmt: skip
    phantom = phantom_volume(n_slices, size, seed)
    unit_sino = project(spec, phantom)
    mu_scale = max_line_integral / max(float(unit_sino.max()), 1e-12)
    attenuation, line_integrals = phantom * mu_scale, unit_sino * mu_scale
    gt_dir = out / GROUND_TRUTH
    gt_dir.mkdir()
    gt_path = gt_dir / "phantom.npz"
    _save_npz(gt_path, attenuation=attenuation.astype(np.float32), line_integrals=line_integrals)
    params = dict(
        kind=kind, n_views=n_views, n_slices=n_slices, size=size, I0=I0, pixel_size=pixel,
        unit=unit, max_line_integral=max_line_integral, attenuation_scale=mu_scale, seed=seed,
    )  # fmt: skip
    if kind == "fan":
        noisy = -np.log(np.maximum(rng.poisson(I0 * np.exp(-line_integrals)), 0.5) / I0)
        _save_npy(out / "fan.npy", noisy.astype(np.float32))
        save_spec(spec, out / "fan.toml")
        atomic_write_json(out / "scan.json", params)
        return SimulatedScan(
            kind, out, spec, gt_path, sinograms=out / "fan.npy", spec_file=out / "fan.toml",
            params=params,
        )  # fmt: skip
    det_shape = (n_slices, size)
    gain = 1.0 + gain_variation * _smooth_pattern(rng, det_shape)
    gain *= 1.0 + 0.01 * rng.standard_normal(size)[None, :]  # fixed column pattern
    dark = dark_level + 5.0 * _smooth_pattern(rng, det_shape)
    measured = shift_detector(line_integrals, -float(centre_offset))  # y(u - c): axis at c
    _write_tiffs(
        out / "flats", "flat", (_counts(rng, I0 * gain, dark, read_noise) for _ in range(n_flats))
    )
    _write_tiffs(
        out / "darks", "dark", (_counts(rng, 0 * gain, dark, read_noise) for _ in range(n_darks))
    )
    frames = (
        _counts(rng, I0 * gain * np.exp(-measured[:, i]), dark, read_noise) for i in range(n_views)
    )
    _write_tiffs(out / "projections", "proj", frames)
    atomic_write_text(out / "angles_deg.txt", "\n".join(f"{a:.10g}" for a in angles_deg) + "\n")
    params.update(dark_level=dark_level, read_noise=read_noise, centre_offset=centre_offset,
                  n_flats=n_flats, n_darks=n_darks, gain_variation=gain_variation)  # fmt: skip
    atomic_write_json(out / "scan.json", params)
    return SimulatedScan(
        kind, out, spec, gt_path, projections=str(out / "projections" / "*.tif"),
        flats=str(out / "flats" / "*.tif"), darks=str(out / "darks" / "*.tif"),
        angles=out / "angles_deg.txt", params=params,
    )  # fmt: skip


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())

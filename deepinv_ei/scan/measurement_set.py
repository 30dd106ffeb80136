r"""Measurement sets: one HDF5 file per ingested scan, sinograms only, readable by deepinv.

Layout (deepinv's :class:`deepinv.datasets.HDF5Dataset` reads the top-level ``y_train`` and
``y_test``; there is no ``x`` anywhere):

- ``y_train``, ``y_test``: float32 ``(n, 1, views, detectors)``, the training and validation
  slices' sinograms of the kept views, each in the original slice order;
- ``heldout/y_train``, ``heldout/y_test``: the same slices at the held-out views (possibly 0
  views), ``heldout/angles`` their angles in radians;
- ``noise/I0``: mean flat minus dark counts per detector pixel ``(slices, detectors)`` when
  flats were given, with attributes ``read_noise`` (the darks' :math:`\sigma`, counts),
  ``model`` and ``gain``;
- root attributes: ``format``, ``format_version``, ``spec`` (JSON of the kept views' scanner
  spec) and ``spec_hash``, ``units``, ``steps`` (every pre-processing step with its
  parameters, in order), ``clipped``, ``sources`` (files and their SHA-256), ``train_slices``,
  ``val_slices``, ``split_seed``, ``kept_views``, ``heldout_views``.

The file is written to a temporary file beside the target and renamed when complete, so an
error or an interrupt leaves nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from deepinv_ei.utils import atomic_path

from .readers import sha256_file
from .spec import ScannerSpec, geometry_from_spec, ray_transform_from_spec

FORMAT = "deepinv-ei measurement set"
FORMAT_VERSION = 1
SPLITS = ("train", "test")
NOISE_MODELS = ("poisson", "poisson_gaussian", "gaussian", "none")


def clipped_text(clipped: dict[str, int]) -> str:
    """The clipped counts of a measurement set, as the summary and ``inspect`` print them."""
    if not clipped:
        return "none counted (line integrals given)"
    return (
        f"{clipped.get('non_positive', 0)} non-positive, {clipped.get('saturated', 0)} "
        f"saturated of {clipped.get('total', 0)} values"
    )


def refuse_existing(path: str | os.PathLike, overwrite: bool) -> Path:
    """``path`` as a :class:`~pathlib.Path`; raises :class:`FileExistsError` if it exists and
    ``overwrite`` is false."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path}: the output file already exists; pass overwrite (--overwrite) to replace it"
        )
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; expected the path of the .h5 file to write")
    return path


class MeasurementSetWriter:
    """Writes a measurement set incrementally and atomically (a context manager).

    Inside the ``with`` block fill ``writer.y[split]`` and ``writer.heldout[split]`` (h5py
    datasets of shape ``(n, 1, views, detectors)``) by slabs; :meth:`set_metadata` gives the
    attributes. On a clean exit the file is renamed into place; on any exception (an interrupt
    included) the temporary file is deleted.

    :param path: the ``.h5`` file to write.
    :param int n_train: training slices. :param int n_val: validation slices.
    :param int n_views: kept views. :param int n_heldout: held-out views.
    :param int n_det: detector pixels.
    :param bool overwrite: replace an existing file.
    """

    def __init__(
        self,
        path,
        n_train: int,
        n_val: int,
        n_views: int,
        n_heldout: int,
        n_det: int,
        overwrite: bool = False,
    ):
        self.path = refuse_existing(path, overwrite)
        self.sizes = {"train": n_train, "test": n_val}
        self.n_views, self.n_heldout, self.n_det = n_views, n_heldout, n_det
        self._metadata: dict[str, Any] | None = None
        self._close: contextlib.ExitStack | None = None

    def __enter__(self) -> MeasurementSetWriter:
        import h5py

        with contextlib.ExitStack() as stack:  # undone if a dataset cannot be made
            tmp = stack.enter_context(atomic_path(self.path))
            self.file = stack.enter_context(h5py.File(tmp, "w"))
            self.y, self.heldout = {}, {}
            group = self.file.create_group("heldout")
            for split, n in self.sizes.items():
                # Contiguous (unchunked) layout: slabs are written in place, read per item fast.
                self.y[split] = self.file.create_dataset(
                    f"y_{split}", (n, 1, self.n_views, self.n_det), "float32"
                )
                self.heldout[split] = group.create_dataset(
                    f"y_{split}", (n, 1, self.n_heldout, self.n_det), "float32"
                )
            self._close = stack.pop_all()
        return self

    def set_metadata(
        self,
        spec: ScannerSpec,
        *,
        train_slices,
        val_slices,
        split_seed: int,
        kept_views,
        heldout_views,
        heldout_angles,
        units: dict[str, str],
        steps: list[dict[str, Any]],
        clipped: dict[str, int] | None = None,
        sources: list[dict[str, str]] | None = None,
        noise: dict[str, Any] | None = None,
    ) -> None:
        """The metadata written when the block exits (see the module docstring)."""
        noise = dict(noise or {})
        model = noise.get("model", "none")
        if model not in NOISE_MODELS:
            raise ValueError(f"noise model must be one of {NOISE_MODELS}, got {model!r}")
        self._metadata = dict(
            spec=spec,
            train_slices=np.asarray(train_slices, dtype=np.int64),
            val_slices=np.asarray(val_slices, dtype=np.int64),
            split_seed=int(split_seed),
            kept_views=np.asarray(kept_views, dtype=np.int64),
            heldout_views=np.asarray(heldout_views, dtype=np.int64),
            heldout_angles=np.asarray(heldout_angles, dtype=np.float64),
            units=units,
            steps=steps,
            clipped=clipped or {},
            sources=sources or [],
            noise=noise,
        )

    def _write_metadata(self) -> None:
        m = self._metadata
        if m is None:
            raise RuntimeError("set_metadata was not called before the measurement set was closed")
        f, a = self.file, self.file.attrs
        a["format"], a["format_version"] = FORMAT, FORMAT_VERSION
        a["spec"] = json.dumps(m["spec"].to_dict(), sort_keys=True)
        a["spec_hash"] = m["spec"].hash
        for key in ("units", "steps", "clipped", "sources"):
            a[key] = json.dumps(m[key], sort_keys=False)
        for key in ("train_slices", "val_slices", "kept_views", "heldout_views"):
            a[key] = m[key]
        a["split_seed"] = m["split_seed"]
        f["heldout"].create_dataset("angles", data=m["heldout_angles"])
        group = f.create_group("noise")
        noise = m["noise"]
        if noise.get("I0") is not None:
            group.create_dataset("I0", data=np.asarray(noise["I0"], dtype=np.float64))
        group.attrs["model"] = noise.get("model", "none")
        for key in ("read_noise", "gain"):
            if noise.get(key) is not None:
                group.attrs[key] = float(noise[key])

    def __exit__(self, exc_type, exc, tb) -> bool:
        # Closing the file, then renaming it into place, or deleting it on an exception.
        close, self._close = self._close, None
        if exc_type is None:
            try:
                self._write_metadata()
            except BaseException as err:
                close.__exit__(type(err), err, err.__traceback__)
                raise
        return bool(close.__exit__(exc_type, exc, tb))


def write_measurement_set(
    path,
    spec: ScannerSpec,
    y_train: np.ndarray,
    y_test: np.ndarray,
    *,
    heldout_train: np.ndarray | None = None,
    heldout_test: np.ndarray | None = None,
    overwrite: bool = False,
    **metadata: Any,
) -> Path:
    """Write a measurement set from in-memory arrays ``(n, 1, views, detectors)`` at once.

    ``metadata`` are the keyword arguments of :meth:`MeasurementSetWriter.set_metadata`
    (``train_slices``, ``val_slices``, ``split_seed``, ``kept_views``, ``heldout_views``,
    ``heldout_angles``, ``units``, ``steps``, and optionally ``clipped``, ``sources``,
    ``noise``).
    """
    y_train, y_test = np.asarray(y_train, np.float32), np.asarray(y_test, np.float32)
    n_views, n_det = y_train.shape[-2:] if len(y_train) else y_test.shape[-2:]
    h_train = (
        np.zeros((len(y_train), 1, 0, n_det), np.float32)
        if heldout_train is None
        else heldout_train
    )
    h_test = (
        np.zeros((len(y_test), 1, 0, n_det), np.float32) if heldout_test is None else heldout_test
    )
    writer = MeasurementSetWriter(
        path, len(y_train), len(y_test), n_views, h_train.shape[2], n_det, overwrite
    )
    with writer:
        for split, y, h in (("train", y_train, h_train), ("test", y_test, h_test)):
            writer.y[split][...] = y
            writer.heldout[split][...] = h
        writer.set_metadata(spec, **metadata)
    return writer.path


def is_measurement_set(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file written as a measurement set (HDF5 with this format's
    ``format`` attribute); any other file, or no file, is not.

    :param path: the file.
    """
    path = Path(path)
    if not path.is_file():
        return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError:  # not HDF5
        return False


def _evenly_spaced(angles: np.ndarray) -> bool:
    steps = np.diff(angles)
    return len(angles) < 3 or bool(np.allclose(steps, steps[0], rtol=1e-9, atol=1e-12))


class MeasurementSet:
    """Read a measurement set (see the module docstring), lazily.

    :param path: the ``.h5`` file.
    :raises ValueError: if the file is not a measurement set of a known version.

    ``y(split)`` and ``heldout(split)`` (``"train"`` or ``"test"``) give the sinograms as torch
    tensors (``as_tensor=False``: the h5py datasets, read on demand); ``physics()`` the deepinv
    physics of the kept views, ``heldout_physics()`` that of the held-out views.
    """

    def __init__(self, path):
        import h5py

        self.path = Path(path)
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as err:
            raise ValueError(f"{self.path}: expected an HDF5 measurement set ({err})") from err
        a = self.file.attrs
        if a.get("format") != FORMAT:
            self.file.close()
            raise ValueError(
                f"{self.path}: not a {FORMAT} (its 'format' attribute is {a.get('format')!r})"
            )
        if int(a["format_version"]) > FORMAT_VERSION:
            self.file.close()
            raise ValueError(
                f"{self.path}: measurement set format version {int(a['format_version'])}; this "
                f"version of deepinv-ei reads versions up to {FORMAT_VERSION}"
            )
        self.spec = ScannerSpec.from_dict(json.loads(a["spec"]))
        self.spec_hash = str(a["spec_hash"])
        self.units = json.loads(a["units"])
        self.steps = json.loads(a["steps"])
        self.clipped = json.loads(a["clipped"])
        self.sources = json.loads(a["sources"])
        self.train_slices = np.asarray(a["train_slices"])
        self.val_slices = np.asarray(a["val_slices"])
        self.split_seed = int(a["split_seed"])
        self.kept_views = np.asarray(a["kept_views"])
        self.heldout_views = np.asarray(a["heldout_views"])
        self.heldout_angles = np.asarray(self.file["heldout/angles"])
        self._sha256: str | None = None

    def __enter__(self) -> MeasurementSet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    @staticmethod
    def _check_split(split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return split

    def y(self, split: str = "train", as_tensor: bool = True):
        """Sinograms of the kept views ``(n, 1, views, detectors)`` of one split."""
        return self._read(f"y_{self._check_split(split)}", as_tensor)

    def _read(self, name: str, as_tensor: bool):
        import torch

        ds = self.file[name]
        return torch.from_numpy(ds[()]) if as_tensor else ds

    def heldout(self, split: str = "train", as_tensor: bool = True):
        """Sinograms of the held-out views ``(n, 1, heldout_views, detectors)`` of one split."""
        return self._read(f"heldout/y_{self._check_split(split)}", as_tensor)

    @property
    def heldout_spec(self) -> ScannerSpec | None:
        """The scanner spec of the held-out views (``None`` if there are none)."""
        return self.spec.with_angles(self.heldout_angles) if len(self.heldout_angles) else None

    @property
    def noise(self) -> dict[str, Any]:
        """``{"I0": array or None, "read_noise": float or None, "model": str, "gain": ...}``."""
        group = self.file["noise"]
        return {
            "I0": np.asarray(group["I0"]) if "I0" in group else None,
            "read_noise": float(group.attrs["read_noise"]) if "read_noise" in group.attrs else None,
            "model": str(group.attrs.get("model", "none")),
            "gain": float(group.attrs["gain"]) if "gain" in group.attrs else None,
        }

    @property
    def sha256(self) -> str:
        """SHA-256 of the file (identifies the data a model was trained on)."""
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    def physics(self, device: Any = "cpu", **kwargs: Any):
        """deepinv physics of the kept views (see :func:`~deepinv_ei.scan.ray_transform_from_spec`)."""
        return ray_transform_from_spec(self.spec, device=device, **kwargs)

    def heldout_physics(self, device: Any = "cpu", **kwargs: Any):
        """deepinv physics of the held-out views.

        Held-out views are rarely evenly spaced (every view but each k-th), and FBP needs
        evenly spaced views: then the physics is the plain
        :class:`~deepinv_ei.odl.OdlPhysics` of the ray transform (``A`` and ``A_adjoint``, no
        FBP ``A_dagger``).
        """
        spec = self.heldout_spec
        if spec is None:
            raise ValueError(f"{self.path}: no held-out views (every view was kept)")
        if _evenly_spaced(spec.angles):
            return ray_transform_from_spec(spec, device=device, **kwargs)
        from ..odl import OdlPhysics, as_ray_transform

        return OdlPhysics(as_ray_transform(geometry_from_spec(spec)), device=device, **kwargs)

    def describe(self) -> str:
        """A readable summary of the set's metadata (what ``deepinv-ei inspect`` prints)."""
        views, det = self.spec.sinogram_shape
        noise = self.noise
        lines = [
            f"measurement set {self.path}",
            f"  scanner: {self.spec.geometry}, {views} views x {det} detectors "
            f"(pitch {self.spec.det_pitch:g} {self.spec.unit}), image {self.spec.image_shape[0]}x"
            f"{self.spec.image_shape[1]} (pixel {self.spec.pixel_size:g} {self.spec.unit}), "
            f"spec hash {self.spec_hash[:16]}",
            f"  slices: {len(self.train_slices)} train, {len(self.val_slices)} validation "
            f"{self.val_slices.tolist()} (split seed {self.split_seed})",
            f"  views: {len(self.kept_views)} kept, {len(self.heldout_views)} held out",
            f"  units: {', '.join(f'{k}: {v}' for k, v in self.units.items())}",
            f"  clipped: {clipped_text(self.clipped)}",
        ]
        if noise["I0"] is not None:
            lines.append(
                f"  noise: {noise['model']}, I0 mean {noise['I0'].mean():.6g} counts "
                f"(min {noise['I0'].min():.6g}), read noise "
                + (
                    "unknown"
                    if noise["read_noise"] is None
                    else f"{noise['read_noise']:.4g} counts"
                )
            )
        else:
            lines.append(f"  noise: {noise['model']}")
        lines.append("  steps:")
        for step in self.steps:
            params = ", ".join(f"{k}={v}" for k, v in step.items() if k != "step")
            lines.append(f"    {step['step']}" + (f" ({params})" if params else ""))
        lines.append("  sources:")
        for src in self.sources[:5]:
            lines.append(f"    {src['path']}  sha256 {src['sha256'][:16]}")
        if len(self.sources) > 5:
            lines.append(f"    ... and {len(self.sources) - 5} more")
        return "\n".join(lines)

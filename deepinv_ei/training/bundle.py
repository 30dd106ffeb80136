r"""Trained-model bundles: everything needed to reconstruct a new scan in a fresh process.

A bundle is a folder ``RUN/`` holding

- ``model.pth``: the network's ``state_dict``, read back with ``weights_only=True``;
- ``bundle.json``: the architecture and its arguments, the scanner spec and its hash, the data
  scaling (:class:`~deepinv_ei.training.DataScaling`), the transform, :math:`\alpha`, the noise
  model, the validation scores, the library versions, the training set's path and SHA-256, and
  the SHA-256 of ``model.pth``, and how the model was selected (``validation``: the views
  held out at ingest, or a fold of the kept views and a refit on all of them).

Every file is written atomically and ``bundle.json`` last, so a folder with a ``bundle.json``
holds a complete bundle; a missing, truncated or altered file is an error naming it.
"""

from __future__ import annotations

import contextlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

from deepinv_ei.scan import sha256_file as file_sha256
from deepinv_ei.utils import atomic_save_torch, atomic_write_json, safe_load_torch

from .scaling import DataScaling, ScaledReconstructor

__all__ = ["Bundle", "BundleError", "save_bundle", "load_bundle", "library_versions"]

FORMAT = "deepinv-ei trained model"
FORMAT_VERSION = 1
MANIFEST = "bundle.json"
WEIGHTS = "model.pth"
_KEYS = (
    "format",
    "format_version",
    "architecture",
    "spec",
    "spec_hash",
    "scaling",
    "transform",
    "alpha",
    "noise",
    "scores",
    "versions",
    "training_set",
    "weights_sha256",
)
#: Keys a bundle may lack (bundles written before them).
_OPTIONAL_KEYS = ("validation",)


class BundleError(ValueError):
    """A bundle folder that is missing, incomplete, damaged or from another format."""


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a bundle depends on."""
    import deepinv
    import numpy
    import odl

    import deepinv_ei

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "deepinv": deepinv.__version__,
        "odl": odl.__version__,
        "numpy": numpy.__version__,
        "deepinv_ei": deepinv_ei.__version__,
    }
    with contextlib.suppress(Exception):
        import astra

        out["astra"] = astra.__version__
    return out


@dataclass
class Bundle:
    r"""A trained model and what it was trained on (see the module documentation).

    :param dict architecture: ``{"name": "EIUNet", "kwargs": {...}}``.
    :param dict spec: the scanner spec (``ScannerSpec.to_dict()``) of the training views.
    :param str spec_hash: its hash.
    :param DataScaling scaling: the data scaling.
    :param dict transform: the group action's settings.
    :param float alpha: weight of the EI term (normalised units).
    :param dict noise: the noise model used (``{"model": "none"}`` for none).
    :param dict scores: the validation scores.
    :param dict training_set: ``{"path": ..., "sha256": ...}``.
    :param dict state_dict: the backbone's weights.
    :param dict validation: how the model was selected: ``{"kind": "heldout_views"}``
        (the views held out at ingest), ``{"kind": "view_folds", ...}`` (a fold of the kept
        views, then a refit on all of them: the fold, its views and scores) or
        ``{"kind": "none"}``; empty in bundles written before it was recorded.
    """

    architecture: dict
    spec: dict
    spec_hash: str
    scaling: DataScaling
    transform: dict
    alpha: float
    noise: dict
    scores: dict
    training_set: dict
    state_dict: dict = field(repr=False)
    versions: dict = field(default_factory=library_versions)
    validation: dict = field(default_factory=dict)

    def build_model(self, device: str | torch.device = "cpu") -> ScaledReconstructor:
        """The reconstructor :math:`f = s\\,G(A^\\dagger y / s)` with the trained weights, in eval mode."""
        backbone = build_backbone(self.architecture)
        try:
            backbone.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as err:
            raise BundleError(
                f"the weights do not fit the architecture {self.architecture}: {err}"
            ) from None
        return ScaledReconstructor(backbone, self.scaling.scale).to(device).eval()


def build_backbone(architecture: dict) -> torch.nn.Module:
    """The network named by ``architecture`` (``{"name": "EIUNet", "kwargs": {...}}``), untrained."""
    from deepinv_ei.models import EIUNet

    known = {"EIUNet": EIUNet}
    name = architecture.get("name") if isinstance(architecture, dict) else None
    if name not in known:
        raise BundleError(f"unknown architecture {name!r}; expected one of {sorted(known)}")
    try:
        return known[name](**architecture.get("kwargs", {}))
    except (TypeError, ValueError) as err:
        raise BundleError(f"architecture {architecture}: {err}") from None


def save_bundle(run: str | Path, bundle: Bundle) -> Path:
    """Write ``bundle`` to the folder ``run`` (weights first, then ``bundle.json``); returns it."""
    run = Path(run)
    weights = atomic_save_torch(run / WEIGHTS, bundle.state_dict)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": bundle.architecture,
        "spec": bundle.spec,
        "spec_hash": bundle.spec_hash,
        "scaling": bundle.scaling.to_dict(),
        "transform": bundle.transform,
        "alpha": float(bundle.alpha),
        "noise": bundle.noise,
        "scores": bundle.scores,
        "versions": bundle.versions,
        "training_set": bundle.training_set,
        "weights_sha256": file_sha256(weights),
        "validation": bundle.validation,
    }
    atomic_write_json(run / MANIFEST, manifest)
    return run


def load_bundle(run: str | Path, map_location: str | torch.device = "cpu") -> Bundle:
    """Read the bundle in folder ``run``.

    :raises BundleError: naming the file if the folder is not a bundle, a file is missing,
        truncated or altered (checksum), or a key is missing or unknown.
    """
    run = Path(run)
    manifest_path = run / MANIFEST
    if not run.is_dir():
        raise BundleError(f"{run}: no such bundle folder")
    if not manifest_path.is_file():
        raise BundleError(
            f"{run}: not a trained-model bundle (no {MANIFEST}); found "
            f"{sorted(p.name for p in run.iterdir())[:10]}"
        )
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{manifest_path}: damaged ({err})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object, got {type(manifest).__name__}")
    missing = [k for k in _KEYS if k not in manifest]
    unknown = sorted(set(manifest) - set(_KEYS) - set(_OPTIONAL_KEYS))
    if missing or unknown:
        raise BundleError(
            f"{manifest_path}: wrong keys: missing {missing}, unknown {unknown}; expected {list(_KEYS)} "
            f"and optionally {list(_OPTIONAL_KEYS)}"
        )
    if manifest["format"] != FORMAT or manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: format {manifest['format']!r} version {manifest['format_version']!r}; "
            f"expected {FORMAT!r} version {FORMAT_VERSION}"
        )
    weights = run / WEIGHTS
    if not weights.is_file():
        raise BundleError(f"{weights}: missing (the bundle's weights)")
    digest = file_sha256(weights)
    if digest != manifest["weights_sha256"]:
        raise BundleError(
            f"{weights}: damaged: its SHA-256 is {digest}, the bundle recorded "
            f"{manifest['weights_sha256']}"
        )
    try:
        state_dict = safe_load_torch(weights, map_location=map_location)
        scaling = DataScaling.from_dict(manifest["scaling"])
    except (ValueError, TypeError) as err:
        raise BundleError(str(err)) from None
    if not isinstance(state_dict, dict):
        raise BundleError(f"{weights}: expected a state_dict, got {type(state_dict).__name__}")
    return Bundle(
        architecture=manifest["architecture"],
        spec=manifest["spec"],
        spec_hash=manifest["spec_hash"],
        scaling=scaling,
        transform=manifest["transform"],
        alpha=float(manifest["alpha"]),
        noise=manifest["noise"],
        scores=manifest["scores"],
        training_set=manifest["training_set"],
        state_dict=state_dict,
        versions=manifest["versions"],
        validation=manifest.get("validation", {}),
    )

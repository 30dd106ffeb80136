"""Training from measurements alone: the unit-free EI objective, validation scores without
ground truth, trained-model bundles and reconstruction of new scans."""

from .bundle import Bundle, BundleError, load_bundle, save_bundle
from .learn import DEFAULT_ALPHA, LearnConfig, sweep, train
from .reconstruct import ScannerMismatch, reconstruct
from .scaling import (
    DataScaling,
    ScaledLoss,
    ScaledReconstructor,
    estimate_scaling,
    normalised_ei_losses,
    paper_alpha_in_normalised_units,
)
from .scores import PRIMARY_SCORE, ValidationScores

__all__ = [
    "Bundle",
    "BundleError",
    "load_bundle",
    "save_bundle",
    "DEFAULT_ALPHA",
    "LearnConfig",
    "sweep",
    "train",
    "ScannerMismatch",
    "reconstruct",
    "DataScaling",
    "ScaledLoss",
    "ScaledReconstructor",
    "estimate_scaling",
    "normalised_ei_losses",
    "paper_alpha_in_normalised_units",
    "PRIMARY_SCORE",
    "ValidationScores",
]

"""Training: the general trainer (checkpoints, exact resume, validation scores, DDP), and
learning from measurements alone (the unit-free EI objective, validation scores without ground
truth, trained-model bundles, reconstruction of new scans, measurement sets or raw)."""

from .bundle import Bundle, BundleError, load_bundle, save_bundle
from .checkpoint import (
    BEST_CHECKPOINT,
    CHECKPOINT,
    load_checkpoint,
    numpy_rng_state,
    rng_states,
    set_numpy_rng_state,
    set_rng_states,
)
from .distributed import (
    DistInfo,
    EpochSampler,
    bare_model,
    barrier,
    broadcast_from_main,
    init_distributed,
    is_main_process,
    shuffled_loader,
    shutdown,
    wrap_ddp,
)
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
from .scores import HELDOUT_SCORE, PRIMARY_SCORE, ValidationScores
from .trainer import CURVES, HISTORY, TRAINER_FILES, Trainer, save_curves

__all__ = [
    "BEST_CHECKPOINT",
    "CHECKPOINT",
    "CURVES",
    "HISTORY",
    "TRAINER_FILES",
    "DistInfo",
    "EpochSampler",
    "Trainer",
    "bare_model",
    "barrier",
    "broadcast_from_main",
    "init_distributed",
    "is_main_process",
    "load_checkpoint",
    "numpy_rng_state",
    "rng_states",
    "save_curves",
    "set_numpy_rng_state",
    "set_rng_states",
    "shuffled_loader",
    "shutdown",
    "wrap_ddp",
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
    "HELDOUT_SCORE",
    "ValidationScores",
]

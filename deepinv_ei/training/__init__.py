"""Training: the general trainer (checkpoints, exact resume, validation scores, DDP)."""

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
]

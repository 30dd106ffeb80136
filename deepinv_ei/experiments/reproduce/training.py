r"""Training through :class:`deepinv.Trainer`, with atomic checkpoints, exact resume and timing.

:class:`ReproTrainer` only overrides deepinv's hooks:

- ``save_model`` writes ``ckp_last.pth.tar`` atomically (model, optimiser, scheduler, loss and
  metric histories, the PSNR-vs-time curve, the training seconds and the RNG states), so that a
  resumed run continues exactly where the interrupted one stopped;
- ``load_model`` restores all of it (into the bare module when wrapped in DDP), reading the file
  with ``weights_only=True`` (:func:`load_checkpoint`): a crafted checkpoint cannot run code, and
  a truncated or corrupt one is an error naming the file;
- ``save_best_model`` (called after every evaluation) records a point of the PSNR-vs-time
  curve instead: like the paper we report the last model, not the best on the test set;
- ``step`` times evaluations so that ``train_seconds`` counts training only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import deepinv as dinv
import numpy as np
import torch
from torch.utils.data import DistributedSampler

from deepinv_ei.utils import atomic_save_torch, safe_load_torch

from .profiles import TaskProfile, check_profile

CHECKPOINT = "ckp_last.pth.tar"
_REQUIRED = ("epoch", "state_dict")


def numpy_rng_state() -> dict:
    """NumPy's global RNG state as tensors and numbers (loadable with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def set_numpy_rng_state(state: dict) -> None:
    """Inverse of :func:`numpy_rng_state`."""
    keys = state["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state(
        (state["name"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"])
    )


def load_checkpoint(path, map_location=None) -> dict:
    """A checkpoint written by :class:`ReproTrainer`, loaded safely (``weights_only=True``).

    :raises ValueError: naming ``path`` if it is corrupt, truncated, holds code objects or lacks
        the entries of a training checkpoint.
    """
    ckp = safe_load_torch(path, map_location=map_location)
    missing = [k for k in _REQUIRED if not isinstance(ckp, dict) or k not in ckp]
    if missing:
        found = sorted(ckp) if isinstance(ckp, dict) else type(ckp).__name__
        raise ValueError(
            f"{path}: expected a training checkpoint with entries {list(_REQUIRED)}, "
            f"found {found}; delete it to train this method from scratch"
        )
    return ckp


def mixed_precision_arg(p: TaskProfile) -> bool | str:
    r"""The ``mixed_precision`` argument of :class:`deepinv.Trainer` for profile ``p``: autocast
    of the forward passes and losses to bfloat16 or float16 (float16 with a
    :class:`torch.amp.GradScaler`, saved in checkpoints); ``False`` for float32 (``"none"``).
    The setting is checked by :func:`check_profile`, with the profile's other choices."""
    check_profile(p)
    return False if p.mixed_precision == "none" else p.mixed_precision


def maybe_compile(module: torch.nn.Module, p) -> torch.nn.Module:
    r"""Compile ``module`` in place with :func:`torch.compile` when ``p.compile`` (its
    ``state_dict`` keys, hence checkpoints, are unchanged); returns it."""
    if p.compile:
        module.compile()
    return module


def bare(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


class EpochSampler(DistributedSampler):
    """A :class:`DistributedSampler` that reshuffles at every pass (deepinv's Trainer re-creates
    the loader iterator each epoch but never calls ``set_epoch``)."""

    def __iter__(self):
        it = super().__iter__()
        self.epoch += 1
        return it


@dataclass
class ReproTrainer(dinv.Trainer):
    checkpoint_dir: str | Path | None = None
    is_main: bool = True
    metadata: dict = field(default_factory=dict)  # saved with every checkpoint (config check)
    generators: dict = field(default_factory=dict)  # extra RNGs (the group's) to save and restore

    # --- deepinv hooks -------------------------------------------------------------------
    def setup_train(self, train: bool = True, **kwargs):
        self.curve: list[list[float]] = []  # [epoch, train seconds, eval PSNR]
        self.seconds_before = 0.0
        self.eval_seconds = 0.0
        self.resumed_from_epoch: int | None = None
        self._scaler_state = None
        super().setup_train(train=train, **kwargs)  # ends with load_model (resume)
        if self._scaler_state is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(self._scaler_state)  # the scaler exists only now
        sampler = getattr(self.train_dataloader[0], "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(self.epoch_start)
        self._t0 = time.perf_counter()

    def train_seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self._t0 - self.eval_seconds

    def step(self, epoch, progress_bar, train_ite=None, train=True, last_batch=False, **kw):
        t = time.perf_counter()
        super().step(
            epoch, progress_bar, train_ite=train_ite, train=train, last_batch=last_batch, **kw
        )
        if not train:
            self.eval_seconds += time.perf_counter() - t

    def save_best_model(self, epoch, train_ite, **kwargs):
        history = self.eval_metrics_history.get(self.metrics[0].__class__.__name__, [])
        if history:
            self.curve.append([epoch + 1, round(self.train_seconds(), 3), float(history[-1])])

    def save_model(self, filename, epoch, state=None):
        if not self.is_main or self.checkpoint_dir is None:
            return
        state = dict(state or {})
        state |= {
            "epoch": epoch,
            "state_dict": bare(self.model).state_dict(),
            "loss": self.loss_history,
            "train_metrics": self.train_metrics_history,
            "eval_loss": self.eval_loss_history,
            "eval_metrics": self.eval_metrics_history,
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "curve": self.curve,
            "train_seconds": self.train_seconds(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": numpy_rng_state(),
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "metadata": self.metadata,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }
        atomic_save_torch(Path(self.checkpoint_dir) / CHECKPOINT, state)

    def load_model(self, ckpt_pretrained=None, strict: bool = True):
        if ckpt_pretrained is None and self.ckpt_pretrained is not None:
            ckpt_pretrained, self.ckpt_pretrained = self.ckpt_pretrained, None
        if ckpt_pretrained is None:
            return None
        ckp = load_checkpoint(ckpt_pretrained, map_location=self.device)
        saved = ckp.get("metadata", {})
        if self.metadata and saved and saved != self.metadata:
            raise ValueError(
                f"checkpoint {ckpt_pretrained} was written by another configuration:\n"
                f"  checkpoint: {saved}\n  this run:   {self.metadata}\n"
                "use a fresh --out or the same --profile/--seed/--data-dir to resume"
            )
        bare(self.model).load_state_dict(ckp["state_dict"], strict=strict)
        if self.optimizer is not None and ckp.get("optimizer") is not None:
            self.optimizer.load_state_dict(ckp["optimizer"])
        if self.scheduler is not None and ckp.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckp["scheduler"])
        self.epoch_start = ckp["epoch"] + 1
        self.resumed_from_epoch = ckp["epoch"] + 1
        self.loss_history = ckp.get("loss", self.loss_history)
        self.train_metrics_history = ckp.get("train_metrics", self.train_metrics_history)
        self.eval_loss_history = ckp.get("eval_loss", self.eval_loss_history)
        self.eval_metrics_history = ckp.get("eval_metrics", self.eval_metrics_history)
        self.curve = [list(c) for c in ckp.get("curve", [])]
        self.seconds_before = float(ckp.get("train_seconds", 0.0))
        self._scaler_state = ckp.get("scaler")
        if "torch_rng" in ckp:
            torch.set_rng_state(ckp["torch_rng"].cpu())
        if "numpy_rng" in ckp:
            set_numpy_rng_state(ckp["numpy_rng"])
        for k, state in ckp.get("generators", {}).items():
            if k in self.generators:
                self.generators[k].set_state(state.cpu())
        if self.verbose:
            print(f"resumed from {ckpt_pretrained} at epoch {self.epoch_start}")
        return ckp

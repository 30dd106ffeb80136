r"""The package's training loop: :class:`deepinv.Trainer` with what long runs need besides.

:class:`Trainer` keeps deepinv's loop, losses, metrics, evaluation schedule
(``eval_interval``), progress bars (``show_progress_bar``), mixed precision
(``mixed_precision``) and checkpoint schedule (``ckp_interval``), and overrides only its hooks
to add:

- **checkpoints that survive a kill**: ``ckpt_last.pth.tar`` in ``checkpoint_dir`` is written
  atomically (a kill mid-write leaves the previous one intact) and holds the weights, the
  optimiser, scheduler and gradient-scaler states, the loss and evaluation histories, the
  training seconds and every random-number state (:func:`~.checkpoint.rng_states`);
  ``resume=True`` continues from it exactly where the killed run stopped, and it is read with
  ``weights_only=True`` (:func:`~.checkpoint.load_checkpoint`);
- **validation without ground truth**: ``scores(model)`` returns named numbers that need no
  :math:`x` (held-out views, equivariance error, ...), computed at every evaluation on the bare
  model in eval mode without gradients. They are logged (``history``, ``history.json``,
  ``curves.png``); the lowest ``select`` score keeps ``ckp_best.pth.tar``, ``patience``
  evaluations without improvement stop the training;
- **a wall-clock budget**: ``minutes`` ends the training at the first epoch after which
  another epoch (as long as the last) would overrun it; that epoch is evaluated and saved;
- **DDP under torchrun**: a model wrapped by :func:`~.distributed.wrap_ddp` is saved and loaded
  unwrapped, only rank 0 writes files and prints, and the decisions that end a training (time,
  patience) are rank 0's, so every process stops at the same epoch;
- ``threads`` (torch CPU threads) and ``mixed_precision="none"`` (float32) as plain settings.

Training needs no :math:`x`: with ``online_measurements=False``, loaders of ``{"y": ...}``
batches and ``metrics=None``, deepinv's evaluation computes nothing and ``scores`` is the
validation. Metrics that need :math:`x` on batches without it are a clear error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import deepinv as dinv
import torch
from torch.utils.data import DistributedSampler

from deepinv_ei.utils import atomic_save_figure, atomic_save_torch, atomic_write_json, strict_json

from .checkpoint import BEST_CHECKPOINT, CHECKPOINT, load_checkpoint, rng_states, set_rng_states
from .distributed import bare_model, broadcast_from_main, is_main_process

#: The evaluation history, next to the checkpoints.
HISTORY = "history.json"
#: Training losses and evaluation values per epoch, next to the checkpoints.
CURVES = "curves.png"
#: Every file :class:`Trainer` writes in ``checkpoint_dir``.
TRAINER_FILES = (CHECKPOINT, BEST_CHECKPOINT, HISTORY, CURVES)
_CURVES_EVERY_S = 60.0  # redraw curves.png at most this often during training

Scores = Callable[[torch.nn.Module], dict[str, float]]


def _clock() -> float:
    return time.perf_counter()


@dataclass
class Trainer(dinv.Trainer):
    r"""Trainer(model, physics, optimizer, train_dataloader, ..., checkpoint_dir=None, resume=False, scores=None, select=None, patience=None, minutes=None)

    :class:`deepinv.Trainer` with atomic checkpoints, exact resume, validation scores without
    ground truth, best-checkpoint selection, early stopping, a time budget and DDP support.
    Every argument of :class:`deepinv.Trainer` keeps its meaning, except that ``save_path``
    defaults to ``None`` (no timestamped folder): checkpoints go to ``checkpoint_dir``.

    Evaluations happen on deepinv's schedule: after epoch ``e`` (from 0) when
    ``e % eval_interval == 0`` and after the last epoch, with or without an
    ``eval_dataloader``. Each appends to :attr:`history` a record
    ``{"epoch": e + 1, "train_seconds": s, <metric>: ..., <score>: ...}``, where ``s`` counts
    training only (evaluations excluded, across resumes).

    :param str, pathlib.Path checkpoint_dir: folder of ``ckp_last.pth.tar`` (after every
        checkpointed epoch), ``ckp_best.pth.tar`` (with ``select``), ``history.json`` and
        ``curves.png``; ``None`` writes nothing.
    :param bool resume: continue from ``checkpoint_dir/ckp_last.pth.tar`` if it exists.
    :param dict metadata: saved in every checkpoint; resuming from a checkpoint whose metadata
        differ is refused (another configuration wrote it).
    :param dict generators: extra :class:`torch.Generator` s (e.g. a transform's) whose states
        are saved and restored with the global ones.
    :param Callable scores: ``scores(model) -> {name: value}``, called at every evaluation on
        the bare model in eval mode under :func:`torch.no_grad` (on rank 0 only under DDP).
    :param str select: the score whose minimum keeps ``ckp_best.pth.tar``.
    :param int patience: stop when ``select`` has not improved for this many evaluations.
    :param float minutes: wall-clock budget of the training, resumes included.
    :param int threads: :func:`torch.set_num_threads` at the start of training.
    :param bool save_curves: write ``curves.png`` (training losses and evaluation values).
    """

    save_path: str | Path | None = None
    checkpoint_dir: str | Path | None = None
    resume: bool = False
    metadata: dict = field(default_factory=dict)
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    scores: Scores | None = None
    select: str | None = None
    patience: int | None = None
    minutes: float | None = None
    threads: int | None = None
    save_curves: bool = True

    def __post_init__(self):
        if self.mixed_precision == "none":
            self.mixed_precision = False
        if self.select is not None and self.scores is None:
            raise ValueError(f"select={self.select!r} names a score, but scores is None")
        if self.patience is not None:
            if isinstance(self.patience, bool) or not isinstance(self.patience, int):
                raise ValueError(f"patience: expected an integer >= 1, got {self.patience!r}")
            if self.patience < 1 or self.select is None:
                raise ValueError(
                    f"patience={self.patience!r}: expected an integer >= 1 and select= naming "
                    "the score it watches"
                )
        if self.minutes is not None and not (
            isinstance(self.minutes, (int, float)) and math.isfinite(self.minutes)
        ):
            raise ValueError(f"minutes: expected a finite number > 0, got {self.minutes!r}")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes: expected a finite number > 0, got {self.minutes!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(f"threads: expected a positive integer, got {self.threads!r}")
        if self.log_train_batch and (self.scores or self.minutes or self.patience):
            raise ValueError(
                "log_train_batch=True evaluates inside epochs; scores, patience and minutes "
                "work per epoch: use log_train_batch=False"
            )
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs the checkpoint_dir to resume from")
        super().__post_init__()
        self.stop_reason: str | None = None
        self._reset_clocks()

    def _reset_clocks(self) -> None:
        self.history: list[dict] = []
        self.seconds_before = self.wall_before = self.eval_seconds = 0.0
        self.resumed_from_epoch: int | None = None
        self._scaler_state = None
        self._t0 = self._epoch_end = self._last_curves = _clock()
        self._t_end: float | None = None

    # ------------------------------------------------------------------ time
    def train_seconds(self) -> float:
        """Seconds spent training (evaluations, scores and plots excluded), this run and the
        resumed ones."""
        return self.seconds_before + self._now() - self._t0 - self.eval_seconds

    def wall_seconds(self) -> float:
        """Wall-clock seconds of the training, this run and the resumed ones."""
        return self.wall_before + self._now() - self._t0

    def _now(self) -> float:
        return _clock() if self._t_end is None else self._t_end  # frozen once trained

    def _folder(self) -> Path | None:
        folder = self.checkpoint_dir if self.checkpoint_dir is not None else self.save_path
        return None if folder is None else Path(folder)

    # ------------------------------------------------------------------ deepinv hooks
    def setup_train(self, train: bool = True, **kwargs):
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self.verbose = self.verbose and is_main_process()
        self.show_progress_bar = self.show_progress_bar and is_main_process()
        if not train:  # deepinv's test(): keep the training's history and clocks
            return super().setup_train(train=train, **kwargs)
        self._reset_clocks()
        last = None if self._folder() is None else self._folder() / CHECKPOINT
        if self.resume and self.ckpt_pretrained is None and last.exists():
            self.ckpt_pretrained = str(last)
        super().setup_train(train=train, **kwargs)  # ends with load_model (resume)
        if self._scaler_state is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(self._scaler_state)  # the scaler exists only now
        sampler = getattr(self.train_dataloader[0], "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(self.epoch_start)
        self._t0 = self._epoch_end = self._last_curves = _clock()

    def train(self):
        """Train (see :meth:`deepinv.Trainer.train`); returns the model. :attr:`stop_reason`
        says why it stopped before ``epochs`` (time budget, patience), else ``None``."""
        planned = (self.epochs, self.max_batch_steps)
        self.stop_reason = None
        try:
            model = super().train()
        finally:  # a stop shortens these for deepinv's loop only
            self.epochs, self.max_batch_steps = planned
        self._write_history(curves=True)
        self._t_end = _clock()
        return model

    def compute_metrics(self, x, x_net, y, physics, logs, train=True, epoch=None):
        try:
            return super().compute_metrics(x, x_net, y, physics, logs, train=train, epoch=epoch)
        except Exception as err:
            if x is None and self.metrics:
                names = [type(m).__name__ for m in self.metrics]
                raise ValueError(
                    f"metrics {names} failed on batches without ground truth x ({err}); "
                    "for measurements alone pass metrics=None (and compute_train_metrics=False) "
                    "and validate with scores="
                ) from err
            raise

    def step(self, epoch, progress_bar, train_ite=None, train=True, last_batch=False, **kw):
        t = _clock()
        super().step(
            epoch, progress_bar, train_ite=train_ite, train=train, last_batch=last_batch, **kw
        )
        if not train:
            self.eval_seconds += _clock() - t
        elif last_batch:
            self._end_of_training_epoch(epoch, train_ite)

    def save_best_model(self, epoch, train_ite, **kwargs):
        """Called by deepinv after each evaluation on ``eval_dataloader``: records it (see
        :meth:`evaluate`). No best model by the first metric: that is ``select``'s job."""
        self.evaluate(epoch, train_ite)

    def save_model(self, filename, epoch, state=None):
        """``ckp_last.pth.tar`` (atomic) whatever deepinv's ``filename``, and ``history.json``."""
        self._write_checkpoint(CHECKPOINT, epoch, state)
        self._write_history(curves=_clock() - self._last_curves > _CURVES_EVERY_S)

    def load_model(self, ckpt_pretrained=None, strict: bool = True):
        """Restore a checkpoint of :meth:`save_model`: weights (into the bare module under
        DDP), optimiser, scheduler, scaler, histories, seconds and random-number states."""
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
                "resume with the same settings, or train from scratch in another folder"
            )
        bare_model(self.model).load_state_dict(ckp["state_dict"], strict=strict)
        if self.optimizer is not None and ckp.get("optimizer") is not None:
            self.optimizer.load_state_dict(ckp["optimizer"])
        if self.scheduler is not None and ckp.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckp["scheduler"])
        self.epoch_start = self.resumed_from_epoch = ckp["epoch"] + 1
        self.loss_history = ckp.get("loss", self.loss_history)
        self.train_metrics_history = ckp.get("train_metrics", self.train_metrics_history)
        self.eval_loss_history = ckp.get("eval_loss", self.eval_loss_history)
        self.eval_metrics_history = ckp.get("eval_metrics", self.eval_metrics_history)
        self.history = [dict(r) for r in ckp.get("history", [])]
        self.seconds_before = float(ckp.get("train_seconds", 0.0))
        self.wall_before = float(ckp.get("wall_seconds", 0.0))
        self._scaler_state = ckp.get("scaler")
        if "rng" in ckp:
            set_rng_states(ckp["rng"], self.generators)
        if self.verbose:
            print(f"resumed from {ckpt_pretrained} at epoch {self.epoch_start}")
        return ckp

    def load_best_model(self) -> torch.nn.Module:
        """Load the weights of ``ckp_best.pth.tar`` into the model (nothing else); returns it."""
        folder = self._folder()
        if folder is None or not (folder / BEST_CHECKPOINT).exists():
            raise FileNotFoundError(
                f"no {BEST_CHECKPOINT} in {folder}: the best checkpoint needs checkpoint_dir, "
                "scores and select"
            )
        ckp = load_checkpoint(folder / BEST_CHECKPOINT, map_location=self.device)
        bare_model(self.model).load_state_dict(ckp["state_dict"])
        return self.model

    # ------------------------------------------------------------------ our hooks
    def evaluate(self, epoch: int, train_ite: int | None = None) -> dict:
        """Append this evaluation's record to :attr:`history` (deepinv's latest metrics and
        evaluation losses, then ``scores``), keep the best checkpoint, apply ``patience``."""
        t = _clock()
        record: dict = {"epoch": epoch + 1, "train_seconds": round(self.train_seconds(), 3)}
        record |= {k: float(h[-1]) for k, h in self.eval_metrics_history.items() if h}
        if self.compute_eval_losses:
            record |= {f"eval_{k}": float(h[-1]) for k, h in self.eval_loss_history.items() if h}
        if self.scores is not None:
            record |= broadcast_from_main(self._scores() if is_main_process() else None)
        self.history.append(record)
        if self.verbose and self.scores is not None:
            shown = {k: v for k, v in record.items() if k != "train_seconds"}
            print(", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
        if self.select is not None:
            values = [r[self.select] for r in self.history]
            finite = [i for i, v in enumerate(values) if math.isfinite(v)]
            best = min(finite, key=lambda i: values[i]) if finite else None
            if best == len(values) - 1:
                self._write_checkpoint(BEST_CHECKPOINT, epoch)
            elif self.patience is not None and len(values) - 1 - (best or 0) >= self.patience:
                self._stop(
                    epoch, train_ite, f"{self.select} not improved in {self.patience} evaluations"
                )
        self.eval_seconds += _clock() - t
        return record

    def _scores(self) -> dict[str, float]:
        model = bare_model(self.model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                values = {str(k): float(v) for k, v in self.scores(model).items()}
        finally:
            model.train(was_training)
        if self.select is not None and self.select not in values:
            raise ValueError(f"select={self.select!r}: scores returned only {sorted(values)}")
        return values

    def _end_of_training_epoch(self, epoch: int, train_ite: int) -> None:
        if self.minutes is not None:
            now = _clock()
            last_epoch, self._epoch_end = now - self._epoch_end, now
            if broadcast_from_main(self.wall_seconds() + last_epoch > 60 * self.minutes):
                self._stop(epoch, train_ite, f"time budget of {self.minutes:g} min")
        evaluation_epoch = epoch % self.eval_interval == 0 or epoch + 1 == self.epochs
        if not self.eval_dataloader and self.scores is not None and evaluation_epoch:
            self.evaluate(epoch, train_ite)

    def _stop(self, epoch: int, train_ite: int, reason: str) -> None:
        """Make ``epoch`` the last: deepinv's loop then evaluates it, checkpoints it and ends."""
        if self.stop_reason is None:
            self.stop_reason = reason
            if self.verbose:
                print(f"stopping after epoch {epoch + 1}: {reason}")
        self.epochs = epoch + 1
        self.max_batch_steps = min(self.max_batch_steps, train_ite)

    # ------------------------------------------------------------------ files
    def checkpoint_state(self, epoch: int) -> dict:
        """What a checkpoint holds after ``epoch`` (plain containers and tensors only)."""
        return {
            "epoch": epoch,
            "state_dict": bare_model(self.model).state_dict(),
            "loss": self.loss_history,
            "train_metrics": self.train_metrics_history,
            "eval_loss": self.eval_loss_history,
            "eval_metrics": self.eval_metrics_history,
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "history": self.history,
            "train_seconds": self.train_seconds(),
            "wall_seconds": self.wall_seconds(),
            "rng": rng_states(self.generators),
            "metadata": self.metadata,
        }

    def _write_checkpoint(self, name: str, epoch: int, state: dict | None = None) -> None:
        folder = self._folder()
        if folder is not None and is_main_process():
            atomic_save_torch(folder / name, dict(state or {}) | self.checkpoint_state(epoch))

    def _write_history(self, curves: bool) -> None:
        folder = self._folder()
        if folder is None or not is_main_process():
            return
        t = _clock()
        atomic_write_json(
            folder / HISTORY,
            strict_json(
                {"history": self.history, "loss": self.loss_history, "stop": self.stop_reason}
            ),
        )
        if curves and self.save_curves:
            save_curves(folder / CURVES, self.loss_history, self.history)
            self._last_curves = _clock()
        self.eval_seconds += _clock() - t  # bookkeeping, not training


def save_curves(path: str | Path, loss_history: dict[str, list[float]], history: list[dict]):
    """A PNG (atomic) of the training losses per epoch and of each evaluated value per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(
        dict.fromkeys(k for r in history for k in r if k not in ("epoch", "train_seconds"))
    )
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(4 * (1 + len(names)), 3.2), squeeze=False)
    ax = axes[0, 0]
    for name, values in loss_history.items():
        if values:
            ax.semilogy(range(1, len(values) + 1), values, label=name)
    ax.set(xlabel="epoch", title="training losses")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    for ax, name in zip(axes[0, 1:], names, strict=True):
        points = [(r["epoch"], r[name]) for r in history if r.get(name) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".")
        ax.set(xlabel="epoch", title=name)
    return atomic_save_figure(fig, path, dpi=100)

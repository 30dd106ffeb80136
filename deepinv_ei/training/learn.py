r"""Learn a reconstructor from a measurement set alone: :func:`train` and :func:`sweep`.

One run reads settings, then the data, then the physics, trains, and writes a bundle:

1. the settings are checked (:class:`LearnConfig`) and the run folder claimed;
2. the measurement set gives the training slices' sinograms :math:`y`, the validation slices'
   sinograms and their held-out views, the physics :math:`A` of the kept views and
   :math:`A_h` of the held-out ones, and the noise statistics;
3. the data scaling (:class:`~deepinv_ei.training.DataScaling`) is measured on the training
   :math:`y`, and :math:`f(y) = s\,G(A^\dagger y / s)` is trained on the unit-free objective
   (:func:`~deepinv_ei.training.normalised_ei_losses`): MC, or SURE for noisy data (Robust EI),
   plus :math:`\alpha` EI; no image :math:`x` is ever read;
4. the scores of :class:`~deepinv_ei.training.ValidationScores` are computed after every
   epoch; the epoch with the lowest primary score (the ramp-weighted held-out-view error) is
   kept, and training stops early when it has not improved for ``patience`` evaluations or the
   time budget is spent;
5. the best model is written as a bundle (:mod:`~deepinv_ei.training.bundle`) with its
   validation reconstructions, the score history (JSON and PNG) and FBP's scores beside it.

**No held-out views: k-fold.** A set whose every view was kept has no :math:`A_h`; a fold of
the kept views (:mod:`~deepinv_ei.training.folds`) takes its place: the run in ``fold/``
trains on the views :math:`T_k` alone and keeps the epoch :math:`e^*` with the lowest
held-out-view score on the fold's views :math:`F_k` of the validation slices, then the model is
refit from the same initialisation on every kept view for exactly :math:`e^*` epochs (a
model trained on :math:`A_T` does not fit the full scanner), and that refit is the bundle. The
time budget ``minutes`` bounds the whole run: the fold run gets
:data:`FOLD_BUDGET_SHARE` of it, the refit what the fold run left (its :math:`e^*` epochs, each
at most :math:`n/|T_k|` times as long as a fold epoch, usually fit; if not, it stops when the
budget ends and records how many it trained, ``refit_epochs``). A killed run resumes
in the phase it was killed in: ``fold/scores.json`` (written last in ``fold/``) marks the fold
run complete.

**Noise.** Post-log line integrals :math:`p = -\log((P-D)/(F-D))` of Poisson counts with mean
:math:`I_0 e^{-p}` and Gaussian read noise :math:`\sigma_r` have, to first order (delta method),
the variance :math:`e^{p}/I_0 + \sigma_r^2 e^{2p}/I_0^2`: Gaussian and heteroscedastic. The
SURE losses take one level per sample, so Robust EI uses Gaussian SURE with the mean of that
variance over the training entries, :math:`\sigma^2 = \overline{e^{y}/I_0 + \sigma_r^2
e^{2y}/I_0^2}` (with :math:`I_0` per detector pixel from the flats and darks); this is exact
when the line integrals vary little and otherwise weighs every entry alike. A user-given
:math:`\sigma` replaces it; ``noise="none"`` trains plain MC.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepinv_ei.utils import atomic_write_bytes, atomic_write_json

from .bundle import MANIFEST, Bundle, library_versions, save_bundle
from .folds import DEFAULT_VIEW_FOLDS, resolve_view_fold
from .reconstruct import RECONSTRUCT_BATCH, reconstruct_slices, write_volume
from .scaling import DataScaling, ScaledReconstructor, estimate_scaling, normalised_ei_losses
from .scores import PRIMARY_SCORE, ValidationScores, linear_reconstructor
from .sets import all_slices, open_measurement_set, training_data

__all__ = ["LearnConfig", "train", "sweep", "DEFAULT_ALPHA", "estimate_noise_sigma"]

#: Default weight of the EI term in the unit-free objective (see docs/learning.md).
DEFAULT_ALPHA = 0.1
NOISE_CHOICES = ("auto", "none", "gaussian")
TRANSFORM_CHOICES = ("rotate", "shift", "reflect", "dihedral")
PRECISION_CHOICES = ("none", "bf16", "fp16")
#: The scaling of the raw objective (``normalise=False``).
RAW_SCALING = DataScaling(1.0, 1.0)
VALIDATION = "validation.npy"
SCORES = "scores.json"
#: The fold run's folder inside a k-fold run's folder.
FOLD_RUN = "fold"
#: With k-fold validation, the share of ``minutes`` given to the fold run; the refit gets the
#: rest, so that the whole run keeps to ``minutes``.
FOLD_BUDGET_SHARE = 0.5


@dataclass(frozen=True)
class LearnConfig:
    r"""The settings of one training run (checked once, here).

    :param float alpha: weight of the EI term, unit-free (0: the data term alone).
    :param str transform: the group: ``"rotate"`` (CT default), ``"shift"``, ``"reflect"``,
        ``"dihedral"``.
    :param int n_trans: group elements per image and step.
    :param float minutes: wall-clock budget of the training (``None``: ``epochs`` only).
    :param int epochs: most epochs.
    :param int batch_size: slices per step.
    :param float lr: Adam's learning rate.
    :param int width: width of the UNet's first scale.
    :param int scales: scales of the UNet.
    :param str noise: ``"auto"`` (from the set's noise statistics), ``"none"`` (MC) or
        ``"gaussian"`` (needs ``sigma``).
    :param float sigma: Gaussian noise level of the line integrals (implies ``"gaussian"``).
    :param int patience: stop after this many evaluations without improvement (``None``: never).
    :param int seed: seed of the network, the batches, the group elements and the probes.
    :param str device: ``"cpu"`` or ``"cuda"``.
    :param int threads: torch intra-op threads (``None``: torch's default).
    :param bool normalise: the unit-free objective (default); ``False`` trains the raw
        objective :math:`\frac1m\|Af(y)-y\|^2 + \alpha\frac1n\|x_3-x_2\|^2` with
        :math:`f = G \circ A^\dagger` (:math:`s = E_y = 1`), whose :math:`\alpha` depends on the
        units, for comparison.
    :param int view_folds: k-fold validation on the kept views
        (:mod:`~deepinv_ei.training.folds`): ``None`` (default) uses
        :data:`~deepinv_ei.training.folds.DEFAULT_VIEW_FOLDS` folds when the set has no
        held-out views and none otherwise; ``0`` never; :math:`K \ge 2` that many (an error on
        a set with held-out views).
    :param int fold: the fold :math:`k` the score holds out, :math:`0 \le k < K`.
    :param str mixed_precision: ``"none"`` (float32), ``"bf16"`` or ``"fp16"``: the network
        runs under :func:`torch.autocast` (deepinv's ``Trainer``); the ray transforms and FBP
        stay in float32.
    """

    alpha: float = DEFAULT_ALPHA
    transform: str = "rotate"
    n_trans: int = 2
    minutes: float | None = 15.0
    epochs: int = 10_000
    batch_size: int = 4
    lr: float = 5e-4
    width: int = 16
    scales: int = 4
    noise: str = "auto"
    sigma: float | None = None
    patience: int | None = None
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    normalise: bool = True
    view_folds: int | None = None
    fold: int = 0
    mixed_precision: str = "none"

    def __post_init__(self):
        def number(name, low, integer=False, optional=False, strict=False):
            value = getattr(self, name)
            if value is None and optional:
                return
            kinds = (int,) if integer else (int, float)
            ok = not isinstance(value, bool) and isinstance(value, kinds)
            ok = ok and math.isfinite(value) and (value > low if strict else value >= low)
            if not ok:
                rel = ">" if strict else ">="
                kind = "an integer" if integer else "a number"
                raise ValueError(f"{name}: expected {kind} {rel} {low}, got {value!r}")

        number("alpha", 0)
        number("n_trans", 1, integer=True)
        number("minutes", 0, optional=True, strict=True)
        number("epochs", 1, integer=True)
        number("batch_size", 1, integer=True)
        number("lr", 0, strict=True)
        number("width", 1, integer=True)
        number("scales", 2, integer=True)
        number("sigma", 0, optional=True, strict=True)
        number("patience", 1, integer=True, optional=True)
        number("seed", 0, integer=True)
        number("threads", 1, integer=True, optional=True)
        if self.transform not in TRANSFORM_CHOICES:
            raise ValueError(
                f"transform: expected one of {TRANSFORM_CHOICES}, got {self.transform!r}"
            )
        self._check_folds()
        if not isinstance(self.normalise, bool):
            raise ValueError(f"normalise: expected a bool, got {self.normalise!r}")
        if self.noise not in NOISE_CHOICES:
            raise ValueError(f"noise: expected one of {NOISE_CHOICES}, got {self.noise!r}")
        if self.noise == "gaussian" and self.sigma is None:
            raise ValueError("noise='gaussian' needs sigma (the noise level of the line integrals)")
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda', got {self.device!r}")
        if self.mixed_precision not in PRECISION_CHOICES:
            raise ValueError(
                f"mixed_precision: expected one of {PRECISION_CHOICES}, got {self.mixed_precision!r}"
            )

    def _check_folds(self) -> None:
        k, fold = self.view_folds, self.fold
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0 or k == 1):
            raise ValueError(
                f"view_folds: expected 0 (no folds), None (automatic) or an integer >= 2, got {k!r}"
            )
        if isinstance(fold, bool) or not isinstance(fold, int) or fold < 0:
            raise ValueError(f"fold: expected an integer >= 0, got {fold!r}")
        if k == 0 and fold != 0:
            raise ValueError(f"fold: expected 0 with view_folds=0 (no folds), got {fold}")
        folds = DEFAULT_VIEW_FOLDS if k is None else k
        if k != 0 and fold >= folds:
            raise ValueError(
                f"fold: expected an integer from 0 to {folds - 1} (view_folds={folds}), got {fold}"
            )


def make_transform(name: str, n_trans: int, rng: torch.Generator | None = None):
    """The group action ``name`` of :mod:`deepinv_ei.transforms`, identity excluded."""
    from deepinv_ei import transforms

    if name == "rotate":
        return transforms.Rotate(multiples=1.0, nonzero=True, n_trans=n_trans, rng=rng)
    if name == "shift":
        return transforms.Shift(nonzero=True, n_trans=n_trans, rng=rng)
    return transforms.TRANSFORMS[name](n_trans=n_trans, rng=rng)


def estimate_noise_sigma(y: torch.Tensor, noise: dict) -> float | None:
    r"""Gaussian level of post-log data from the set's noise statistics (module docs), or
    ``None`` when the set records no counts (``noise`` without ``I0``)."""
    i0 = noise.get("I0")
    if i0 is None or noise.get("model", "none") == "none":
        return None
    i0 = torch.as_tensor(np.asarray(i0, dtype=np.float64))
    i0 = i0.reshape(-1, i0.shape[-1]).mean(0)  # per detector pixel
    if i0.shape[-1] != y.shape[-1] or bool((i0 <= 0).any()):
        raise ValueError(
            f"noise/I0 must be > 0 with one value per detector ({y.shape[-1]}), "
            f"got shape {tuple(i0.shape)}"
        )
    read = float(noise.get("read_noise", 0.0) or 0.0)
    transmission = torch.exp(-y.double())
    var = 1.0 / (i0 * transmission) + read**2 / (i0 * transmission) ** 2
    return float(var.mean().sqrt())


def _noise_setting(cfg: LearnConfig, y: torch.Tensor, noise_stats: dict) -> dict:
    if cfg.noise == "none":
        return {"model": "none"}
    if cfg.sigma is not None:
        return {"model": "gaussian", "sigma": float(cfg.sigma), "source": "user"}
    sigma = estimate_noise_sigma(y, noise_stats)
    if sigma is None:
        return {"model": "none"}
    return {"model": "gaussian", "sigma": sigma, "source": "I0 and read noise of the set"}


def _losses(cfg: LearnConfig, scaling: DataScaling, noise: dict, transform, rng, device):
    if noise["model"] == "none":
        return normalised_ei_losses(scaling, cfg.alpha, transform), None
    import deepinv as dinv

    from deepinv_ei.loss import robust_equivariant_imaging

    tau = 1e-2 * math.sqrt(scaling.measurement_energy)  # 1% of the measurements' RMS
    fresh = dinv.physics.GaussianNoise(sigma=noise["sigma"], rng=rng)
    sure, ei = robust_equivariant_imaging(transform, fresh, alpha=1.0, tau=tau, rng=rng)
    score_sure = robust_equivariant_imaging(
        transform, fresh, alpha=1.0, tau=tau, rng=torch.Generator(device=device)
    )[0]
    return normalised_ei_losses(scaling, cfg.alpha, None, sure, ei), score_sure


def _claim(out: Path, overwrite: bool, resume: bool) -> None:
    used = out.exists() and any(out.iterdir())
    if used and resume:
        if (out / MANIFEST).exists():
            raise FileExistsError(f"{out} holds a finished run (its {MANIFEST}); nothing to resume")
        return
    if used:
        if not overwrite:
            raise FileExistsError(
                f"{out} is not empty; choose a fresh --out, pass --resume to continue an "
                "interrupted run, or --overwrite to replace it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _fit(model, physics, losses, y, cfg, scores, select, device, out, info, **trainer_kwargs):
    """Train with the package's :class:`~deepinv_ei.training.Trainer`: Adam, shuffled batches of
    ``y`` alone, ``scores`` after every epoch, the best checkpoint by ``select`` loaded at the end."""
    import deepinv as dinv

    from .distributed import shuffled_loader, wrap_ddp
    from .trainer import Trainer

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=1e-8)
    dataset = dinv.datasets.TensorDataset(y=y, use_dict_output=True)
    trainer = Trainer(
        model=wrap_ddp(model, info, device),
        physics=physics,
        optimizer=optimizer,
        train_dataloader=shuffled_loader(dataset, cfg.batch_size, info),
        epochs=cfg.epochs,
        losses=losses,
        metrics=None,
        compute_train_metrics=False,
        online_measurements=False,
        device=device,
        checkpoint_dir=out / "checkpoints",
        scores=scores,
        select=select,
        patience=cfg.patience,
        minutes=cfg.minutes,
        threads=cfg.threads,
        mixed_precision=cfg.mixed_precision,
        show_progress_bar=False,
        non_blocking_transfers=device.type == "cuda",
        **trainer_kwargs,
    )
    trainer.train()
    if select is not None:
        trainer.load_best_model()
    return trainer


def plot_history(path: Path, history: list[dict], reference: dict[str, float]) -> None:
    """The scores per epoch as a PNG, FBP's value as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    names = [k for k in history[0] if k in reference]
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.0), squeeze=False)
    epochs = [e["epoch"] for e in history]
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot(epochs, [e[name] for e in history], label="model")
        ax.axhline(reference[name], color="k", ls="--", lw=1, label="FBP")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


@dataclass
class _Learned:
    """A trained model and what was measured to train and score it."""

    model: ScaledReconstructor
    backbone: torch.nn.Module
    architecture: dict
    scaling: DataScaling
    noise: dict
    scores: ValidationScores
    reference: dict[str, float]
    select: str | None
    trainer: Any


def _learn(cfg, data, noise_stats, folder, info, device, say, *, resume, metadata, extra_scores,
           verbose) -> _Learned:  # fmt: skip
    """Steps 3 and 4 of the module documentation on ``data`` (a
    :class:`~deepinv_ei.training.sets.TrainingData`), checkpoints in ``folder/checkpoints``."""
    from deepinv_ei.models import EIUNet

    from .distributed import barrier

    physics = data.physics
    scaling = estimate_scaling(data.y_train.to(device), physics) if cfg.normalise else RAW_SCALING
    noise = _noise_setting(cfg, data.y_train, noise_stats)
    say(f"data scaling: {scaling}; noise: {noise}")
    torch.manual_seed(cfg.seed)  # the initial network and the batch order
    architecture = {
        "name": "EIUNet",
        "kwargs": {"in_channels": 1, "width": cfg.width, "scales": cfg.scales, "batch_norm": True},
    }
    backbone = EIUNet(**architecture["kwargs"], zero_init=True)
    model = ScaledReconstructor(backbone, scaling.scale).to(device)
    generators = {
        "group": torch.Generator().manual_seed(cfg.seed * 1000 + 1 + info.rank),
        "probes": torch.Generator(device=device).manual_seed(cfg.seed * 1000 + 2 + info.rank),
    }
    transform = make_transform(cfg.transform, cfg.n_trans, generators["group"])
    losses, score_sure = _losses(cfg, scaling, noise, transform, generators["probes"], device)
    scores = ValidationScores(
        physics,
        data.y_val,
        data.held_physics,
        data.y_held,
        transform_factory=lambda rng: make_transform(cfg.transform, 1, rng),
        sure=score_sure,
        seed=cfg.seed,
    )
    select = PRIMARY_SCORE if data.y_held is not None else None
    reference = scores(linear_reconstructor)
    say(f"FBP scores: {reference}")
    logged = scores if extra_scores is None else (lambda m: scores(m) | extra_scores(m))
    trainer = _fit(
        model, physics, losses, data.y_train, cfg, logged, select, device, folder, info,
        resume=resume, metadata=metadata, generators=generators, verbose=verbose,
    )  # fmt: skip
    barrier(info)
    model.eval()
    return _Learned(model, backbone, architecture, scaling, noise, scores, reference, select,
                    trainer)  # fmt: skip


def _summary(cfg: LearnConfig, learned: _Learned, final: dict, mset: Any) -> dict:
    history = learned.trainer.history
    select = learned.select
    best = min(history, key=lambda r: r[select]) if select else history[-1]
    return {
        "settings": asdict(cfg),
        "scores": final,
        "fbp_scores": learned.reference,
        "select": select,
        "best_epoch": best["epoch"],
        "epochs": history[-1]["epoch"],
        "stop": learned.trainer.stop_reason,
        "train_seconds": round(learned.trainer.train_seconds(), 2),
        "val_slices": [int(i) for i in np.asarray(mset.val_slices)],
        "history": history,
        "loss": {k: [float(v) for v in h] for k, h in learned.trainer.loss_history.items()},
    }


def _write_bundle(out, set_path, mset, cfg, learned, physics, device, summary, validation):
    """``validation.npy``, ``scores.json``, ``scores.png`` and the bundle (last) in ``out``."""
    model = learned.model
    # the validation slices as `reconstruct` gives them: the whole set, batched alike
    y_all, order = all_slices(mset)
    volume = reconstruct_slices(model, physics, y_all.float(), RECONSTRUCT_BATCH, device)
    val_recon = volume[np.isin(order, np.asarray(mset.val_slices))]
    write_volume(out / VALIDATION, val_recon)
    atomic_write_json(out / SCORES, summary)
    plot_history(out / "scores.png", summary["history"], learned.reference)
    bundle = Bundle(
        architecture=learned.architecture,
        spec=mset.spec.to_dict(),
        spec_hash=mset.spec_hash,
        scaling=learned.scaling,
        transform={"name": cfg.transform, "n_trans": cfg.n_trans},
        alpha=cfg.alpha,
        noise=learned.noise,
        scores=summary["scores"],
        training_set={"path": str(Path(set_path).resolve()), "sha256": mset.sha256},
        state_dict={k: v.cpu() for k, v in learned.backbone.state_dict().items()},
        versions=library_versions(),
        validation=validation,
    )
    save_bundle(out, bundle)  # bundle.json last: the folder is complete


def _view_fold(cfg: LearnConfig, mset: Any):
    """The fold of ``mset``'s kept views that scores the run, or ``None`` (checked against the
    set: :func:`~deepinv_ei.training.folds.resolve_view_fold`)."""
    return resolve_view_fold(
        cfg.view_folds, cfg.fold, mset.spec.num_views, len(mset.heldout_angles)
    )


def _finished_fold_run(folder: Path, cfg: LearnConfig, mset: Any) -> dict | None:
    """The summary of the fold run in ``folder`` if it finished, checked against this run."""
    path = folder / SCORES
    if not path.exists():
        return None
    summary = json.loads(path.read_text("utf-8"))
    if summary.get("settings") != asdict(cfg) or summary.get("set_sha256") != mset.sha256:
        raise ValueError(
            f"{path} was written by another configuration or from another set; resume with "
            "the same settings and set, or train from scratch in another folder"
        )
    return summary


def train(
    set_path: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    verbose: bool = True,
    extra_scores: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    refit: bool = True,
    **settings: Any,
) -> dict:
    r"""Train :math:`f(y) = s\,G(A^\dagger y/s)` on the measurement set ``set_path`` and write
    the bundle to ``out`` (see the module documentation).

    A set without held-out views is validated on a fold of its views (``view_folds``,
    :mod:`~deepinv_ei.training.folds`): the fold run in ``out/fold/`` selects the epoch by the
    fold's held-out-view score, then the model is refit on every kept view for that many
    epochs and that refit is the bundle; ``minutes`` bounds the two together (half each, the
    refit also what the fold run left).

    :param set_path: a measurement set (``deepinv-ei ingest``).
    :param out: the run folder; must be empty or absent unless ``overwrite`` or ``resume``.
    :param bool overwrite: replace the contents of ``out``.
    :param bool resume: continue the interrupted run in ``out`` from its last checkpoint
        (refused if it was made with other settings or from another set); a k-fold run
        continues in the phase it was killed in.
    :param bool verbose: print the scores of every epoch.
    :param extra_scores: ``model -> {name: value}``, logged beside the scores at every epoch
        and never used to select (for studies, e.g. PSNR against a simulated truth).
    :param bool refit: with k-fold validation, ``False`` stops after the fold run (no bundle)
        and returns its summary (:func:`sweep` refits only the selected :math:`\alpha`).
    :param settings: the fields of :class:`LearnConfig` (``alpha``, ``transform``, ``minutes``,
        ``device``, ``sigma``, ``seed``, ``view_folds``, ``fold``, ...).
    :return: the run's summary (also in ``out/scores.json``).
    """
    from .distributed import barrier, init_distributed

    cfg = LearnConfig(**settings)
    out = Path(out)
    mset = open_measurement_set(set_path)  # data errors before the folder is touched
    fold = _view_fold(cfg, mset)
    info, device = init_distributed(cfg.device)
    data = training_data(mset, device, fold)
    if info.is_main:
        _claim(out, overwrite, resume)
    barrier(info)
    say = print if verbose and info.is_main else (lambda *a, **k: None)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    common = {"resume": resume, "extra_scores": extra_scores, "verbose": verbose}
    metadata = {"settings": asdict(cfg), "set_sha256": mset.sha256}
    if fold is None:
        learned = _learn(cfg, data, mset.noise, out, info, device, say, metadata=metadata,
                         **common)  # fmt: skip
        if not info.is_main:
            return {}
        summary = _summary(cfg, learned, learned.scores(learned.model), mset)
        validation = {
            "kind": "heldout_views" if data.y_held is not None else "none",
            "heldout_views": int(len(mset.heldout_angles)),
            "select": summary["select"],
            "best_epoch": summary["best_epoch"],
            "refit": False,
        }
        summary["validation"] = validation
        _write_bundle(out, set_path, mset, cfg, learned, data.physics, device, summary,
                      validation)  # fmt: skip
        say(f"best epoch {summary['best_epoch']}: {summary['scores']}; bundle in {out}")
        return summary

    # k-fold: the fold run (selection), then the refit on every kept view
    record = fold.to_dict(mset.spec.angles)
    folder = out / FOLD_RUN
    fold_summary = _finished_fold_run(folder, cfg, mset) if resume else None
    if fold_summary is None:
        say(
            f"no held-out views: scoring on fold {fold.fold} of a {fold.folds}-fold split of the "
            f"{fold.n_views} kept views (views {record['held_views']} held out), in {folder}; "
            "the bundle is then refit on every view (view_folds=0 turns this off)"
        )
        if info.is_main:
            folder.mkdir(exist_ok=True)
        barrier(info)
        fold_cfg = (
            cfg if cfg.minutes is None else replace(cfg, minutes=cfg.minutes * FOLD_BUDGET_SHARE)
        )
        learned = _learn(fold_cfg, data, mset.noise, folder, info, device, say,
                         metadata=metadata | {"view_fold": record}, **common)  # fmt: skip
        if not info.is_main:
            return {}
        fold_summary = _summary(cfg, learned, learned.scores(learned.model), mset)
        fold_summary |= {"set_sha256": mset.sha256, "view_fold": record}
        plot_history(folder / "scores.png", fold_summary["history"], learned.reference)
        atomic_write_json(folder / SCORES, fold_summary)  # last: the fold run is complete
        say(f"fold run: best epoch {fold_summary['best_epoch']}: {fold_summary['scores']}")
    if not refit:
        return fold_summary if info.is_main else {}
    epochs = fold_summary["best_epoch"]
    minutes = _refit_minutes(cfg.minutes, fold_summary["train_seconds"])
    say(
        f"refit on all {fold.n_views} views for {epochs} epochs (the fold run's best)"
        + ("" if minutes is None else f", within the budget's remaining {minutes:.3g} min")
    )
    refit_cfg = replace(cfg, epochs=epochs, minutes=minutes, patience=None)
    full = training_data(mset, device, heldout=False)
    learned = _learn(refit_cfg, full, mset.noise, out, info, device, say,
                     metadata={"settings": asdict(refit_cfg), "set_sha256": mset.sha256,
                               "refit_of": record}, **common)  # fmt: skip
    if not info.is_main:
        return {}
    summary = _summary(cfg, learned, learned.scores(learned.model), mset)
    validation = {
        "kind": "view_folds",
        **record,
        "select": PRIMARY_SCORE,
        "best_epoch": epochs,
        "fold_scores": fold_summary["scores"],
        "fold_fbp_scores": fold_summary["fbp_scores"],
        "refit": True,
    }
    validation["refit_epochs"] = summary["epochs"]  # fewer than best_epoch if the budget ended
    summary |= {"select": PRIMARY_SCORE, "best_epoch": epochs, "validation": validation}
    _write_bundle(out, set_path, mset, cfg, learned, full.physics, device, summary, validation)
    if summary["epochs"] < epochs:
        say(f"refit: the budget ended after {summary['epochs']} of its {epochs} epochs")
    say(f"refit: {summary['scores']}; bundle in {out}")
    return summary


def _refit_minutes(minutes: float | None, fold_seconds: float) -> float | None:
    """The refit's share of ``minutes``: what the fold run left (at least a twentieth)."""
    if minutes is None:
        return None
    return max(minutes - fold_seconds / 60, minutes / 20)


def sweep(
    set_path: str | Path,
    out: str | Path,
    alphas: Sequence[float],
    *,
    overwrite: bool = False,
    verbose: bool = True,
    **settings: Any,
) -> dict:
    r"""Train one model per :math:`\alpha` in ``out/alpha_<a>/`` and select the one with the
    lowest primary score (:data:`~deepinv_ei.training.PRIMARY_SCORE`); its bundle is also
    copied to ``out/`` itself, so that ``out`` is the selected model (``out/sweep.json`` lists
    every score).

    On a set without held-out views (k-fold validation, see :func:`train`) every
    ``out/alpha_<a>/`` holds a fold run only; the selected one is copied to ``out/fold/`` and
    refit on every view into ``out/`` (a killed refit continues with
    ``train(set_path, out, resume=True, alpha=<selected>, ...)``).
    """
    alphas = [float(a) for a in alphas]
    if not alphas or len(set(alphas)) != len(alphas):
        raise ValueError(f"alphas: expected distinct values, got {alphas}")
    for a in alphas:
        cfg = LearnConfig(**{**settings, "alpha": a})  # every setting checked before any training
    out = Path(out)
    mset = open_measurement_set(set_path)
    fold = _view_fold(cfg, mset)
    if fold is None and len(mset.heldout_angles) == 0:
        raise ValueError(
            f"{set_path} has no held-out views and view_folds=0: an alpha sweep needs a score "
            "to compare models (ingest with a view selection such as --keep-every, or use "
            "k-fold validation: view_folds >= 2)"
        )
    _claim(out, overwrite, resume=False)
    runs, values = {}, {}
    for a in alphas:
        sub = out / f"alpha_{a:g}"
        if verbose:
            print(f"--- alpha = {a:g} -> {sub}")
        values[f"{a:g}"] = a
        runs[f"{a:g}"] = train(
            set_path, sub, verbose=verbose, refit=False, **{**settings, "alpha": a}
        )
    chosen = min(runs, key=lambda a: runs[a]["scores"][PRIMARY_SCORE])
    if verbose:
        print(f"selected alpha = {chosen} by {PRIMARY_SCORE}")
    result = {
        "selected_alpha": values[chosen],
        "select": PRIMARY_SCORE,
        "scores": {a: r["scores"] for a, r in runs.items()},
        "fbp_scores": next(iter(runs.values()))["fbp_scores"],
    }
    if fold is None:
        for name in (VALIDATION, SCORES, "scores.png", "model.pth", MANIFEST):
            shutil.copy2(out / f"alpha_{chosen}" / name, out / f".{name}.copy")
            (out / f".{name}.copy").replace(out / name)
    else:
        shutil.copytree(out / f"alpha_{chosen}" / FOLD_RUN, out / f".{FOLD_RUN}.copy")
        (out / f".{FOLD_RUN}.copy").replace(out / FOLD_RUN)
        refit = train(set_path, out, verbose=verbose, resume=True,
                      **{**settings, "alpha": values[chosen]})  # fmt: skip
        result |= {"validation": refit["validation"], "refit_scores": refit["scores"]}
    atomic_write_json(out / "sweep.json", result)
    return result

"""One reproduction run: every setting checked and every task's data loaded first (errors before
any training), then each method, merging its entry into ``results.json`` after each so that
``--resume`` never redoes finished work and no run erases another's results (see
:mod:`.outputs`)."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import deepinv as dinv
import torch
from torch.utils.data import DataLoader

from deepinv_ei.models import EIUNet, ei_reconstructor
from deepinv_ei.utils import atomic_save_torch

from . import report
from .distributed import DistInfo, barrier, init_distributed, shutdown, wrap_ddp
from .error_split import format_split
from .methods import make_losses, noise_model
from .metrics import image_metrics
from .outputs import (
    RESULTS,
    check_output,
    claim_output,
    flag_non_finite,
    output_lock,
    read_json,
    restore_non_finite,
    run_identity,
    write_results,
)
from .profiles import (
    METHODS,
    TASKS,
    TaskProfile,
    apply_overrides,
    check_profile,
    describe_changes,
    get_profile,
)
from .tasks import TaskSetup, build_task, make_transform
from .training import (
    CHECKPOINT,
    EpochSampler,
    ReproTrainer,
    maybe_compile,
    mixed_precision_arg,
)


@dataclass(frozen=True)
class RunConfig:
    """What one reproduction run does: the options of the command line, as a frozen dataclass.

    :param tasks: tasks among :data:`TASKS` (``"ct"``, ``"inpainting"``, ``"cs"``).
    :param methods: methods among :data:`METHODS`, e.g. ``("pinv", "mc", "ei", "sup")``.
    :param profile: one of :data:`PROFILES`.
    :param out: the results folder (``results.json``, ``results.md``, figures, checkpoints).
    :param data_dir: the paper's data sets; ``None`` for the embedded data.
    :param device: torch device.
    :param seed: seed of the data, the networks and the group samplers.
    :param resume: continue an interrupted run from ``out``.
    :param verbose: print progress.
    :param overrides: ``(name, value)`` pairs that change a :class:`TaskProfile` field for
        every task (``--set name=value``).
    """

    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    profile: str = "quick"
    out: Path = Path("results/iccv")
    data_dir: str | None = None
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    overwrite: bool = False  # delete the outputs of another run in ``out`` first
    verbose: bool = True
    overrides: tuple[tuple[str, str], ...] = ()  # --set name=value, applied to every task


def versions() -> dict[str, str]:
    import numpy
    import odl

    import deepinv_ei

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "deepinv": dinv.__version__,
        "odl": odl.__version__,
        "numpy": numpy.__version__,
        "deepinv_ei": deepinv_ei.__version__,
    }
    with contextlib.suppress(Exception):
        import astra

        out["astra"] = astra.__version__
    return out


def measure(physics, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """``physics(x)`` in chunks, without gradients (the fixed measurements users hold)."""
    with torch.no_grad():
        return torch.cat([physics(x[i : i + batch]) for i in range(0, len(x), batch)])


@torch.no_grad()
def evaluate(reconstruct, x: torch.Tensor, y: torch.Tensor, batch: int = 8, physics=None) -> dict:
    """Per-image metrics of ``reconstruct(y)`` against ``x`` (with ``physics``, also the range /
    nullspace split of the error); keeps image 0 for the figure."""
    outs = [reconstruct(y[i : i + batch]) for i in range(0, len(x), batch)]
    x_hat = torch.cat(outs).to(x.device)
    return image_metrics(x, x_hat, physics) | {"first": x_hat[:1].cpu()}


def extra_test(s: TaskSetup, reconstruct) -> dict:
    """Metrics on the task's extra test set (CT: real slices), measured noise-free."""
    if s.x_extra is None:
        return {}
    x = s.x_extra.to(s.x_test.device)
    res = evaluate(reconstruct, x, measure(s.physics, x), physics=s.physics)
    res.pop("first")
    return {"extra_test": {"name": s.extra_name, "n_images": len(x)} | res}


@contextlib.contextmanager
def noisy(physics, noise):
    """Temporarily give ``physics`` a noise model (the ``rei`` experiment)."""
    before = physics.noise_model
    physics.noise_model = noise
    try:
        yield physics
    finally:
        physics.noise_model = before


def _loader(x, y, p: TaskProfile, info: DistInfo) -> DataLoader:
    ds = dinv.datasets.TensorDataset(x=x, y=y, use_dict_output=True)
    if info.enabled:
        sampler = EpochSampler(ds, num_replicas=info.world_size, rank=info.rank, shuffle=True)
        return DataLoader(ds, batch_size=p.batch_size, sampler=sampler)
    return DataLoader(ds, batch_size=p.batch_size, shuffle=True)


def train_method(
    method: str,
    s: TaskSetup,
    y_train: torch.Tensor,
    y_test: torch.Tensor,
    cfg: RunConfig,
    info: DistInfo,
    device: torch.device,
    ckpt_dir: Path,
) -> dict:
    """Train ``f = G(A^dagger y)`` with ``method``'s losses; returns its results entry."""
    p = s.profile
    torch.manual_seed(cfg.seed)  # the same initial G for every method
    backbone = EIUNet(p.channels, p.width, p.scales, p.batch_norm, p.zero_init)
    model = ei_reconstructor(maybe_compile(backbone, p)).to(device)
    n_params = sum(q.numel() for q in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(p.milestones), gamma=0.1)
    resume_from = ckpt_dir / CHECKPOINT
    # the group elements come from their own generator, saved in checkpoints (exact resume)
    group_rng = torch.Generator().manual_seed(cfg.seed * 1000 + 7 + info.rank)
    transform = make_transform(p.transform, p.n_trans, group_rng, p.interpolation)
    trainer = ReproTrainer(
        model=wrap_ddp(model, info, device),
        physics=s.physics,
        optimizer=optimizer,
        scheduler=scheduler,
        train_dataloader=_loader(s.x_train, y_train, p, info),
        eval_dataloader=DataLoader(
            dinv.datasets.TensorDataset(x=s.x_test, y=y_test, use_dict_output=True),
            batch_size=max(p.batch_size, 8),
        ),
        epochs=p.epochs,
        losses=make_losses(method, p, transform),
        generators={"group": group_rng},
        metrics=[dinv.loss.metric.PSNR()],
        eval_interval=p.eval_interval,
        compute_train_metrics=False,
        online_measurements=False,
        device=device,
        save_path=None,
        checkpoint_dir=ckpt_dir,
        ckpt_pretrained=str(resume_from) if cfg.resume and resume_from.exists() else None,
        metadata={"task": p.task, "method": method, "profile": p.to_dict(), "seed": cfg.seed},
        is_main=info.is_main,
        verbose=cfg.verbose and info.is_main,
        show_progress_bar=cfg.verbose and info.is_main,
        freq_update_progress_bar=5,
        non_blocking_transfers=device.type == "cuda",
        mixed_precision=mixed_precision_arg(p),
    )
    trainer.train()
    barrier(info)
    model.eval()
    entry = evaluate(lambda y: model(y, s.physics), s.x_test.to(device), y_test, physics=s.physics)
    entry |= extra_test(s, lambda y: model(y, s.physics))
    entry |= {
        "train_seconds": round(trainer.train_seconds(), 2),
        "epochs": p.epochs,
        "steps": p.epochs * len(trainer.train_dataloader[0]),
        "n_params": n_params,
        "resumed_from_epoch": trainer.resumed_from_epoch,
        "curve": trainer.curve,
        "loss_history": {k: [float(v) for v in h] for k, h in trainer.loss_history.items()},
        "checkpoint": str(ckpt_dir / "model_final.pth"),
    }
    if info.is_main:
        atomic_save_torch(ckpt_dir / "model_final.pth", model.state_dict())
    return entry


def _meta(cfg: RunConfig, info: DistInfo, device: torch.device) -> dict:
    return {
        "seed": cfg.seed,
        "profile": cfg.profile,
        "overrides": dict(cfg.overrides),
        "device": str(device) + (f" x{info.world_size} (DDP)" if info.enabled else ""),
        "data_dir": cfg.data_dir,
        "torch_threads": torch.get_num_threads(),
        # timings depend on how busy the machine was: keep the 1-minute load at the start
        "load_average_at_start": round(os.getloadavg()[0], 2)
        if hasattr(os, "getloadavg")
        else None,
        "versions": versions(),
    }


def check_config(cfg: RunConfig) -> dict[str, TaskProfile]:
    """Every task's profile with the overrides, checked, before any work: a
    :class:`ValueError` naming the bad setting otherwise."""
    if not cfg.tasks or any(t not in TASKS for t in cfg.tasks):
        raise ValueError(f"tasks: expected some of {TASKS}, got {cfg.tasks!r}")
    if not cfg.methods or any(m not in METHODS for m in cfg.methods):
        raise ValueError(f"methods: expected some of {METHODS}, got {cfg.methods!r}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {cfg.seed!r}")
    return {
        task: check_profile(apply_overrides(get_profile(task, cfg.profile), dict(cfg.overrides)))
        for task in cfg.tasks
    }


def run(cfg: RunConfig) -> dict:
    """Run ``cfg`` and write everything under ``cfg.out``; returns the results dictionary.

    :raises ValueError: for a bad setting, before any work.
    :raises deepinv_ei.experiments.reproduce.outputs.OutputConflict: if ``cfg.out`` holds
        another run (other profile, seed, data folder or overrides) and not ``cfg.overwrite``,
        or another process is writing to it.
    """
    profiles = check_config(cfg)
    info, device = init_distributed(cfg.device)
    try:
        lock = output_lock(cfg.out) if info.is_main else contextlib.nullcontext()
        with lock:
            return _run(cfg, profiles, info, device)
    finally:
        shutdown(info)


def _run(
    cfg: RunConfig, profiles: dict[str, TaskProfile], info: DistInfo, device: torch.device
) -> dict:
    say = print if (cfg.verbose and info.is_main) else (lambda *a, **k: None)
    identity = run_identity(cfg.profile, cfg.seed, cfg.data_dir, dict(cfg.overrides))
    check_output(cfg.out, identity, cfg.resume, cfg.overwrite)  # every process: same verdict
    barrier(info)
    if info.is_main:
        results = claim_output(cfg.out, identity, cfg.resume, cfg.overwrite, say)
    barrier(info)
    if not info.is_main:  # read what the main process kept
        results = read_json(cfg.out / RESULTS) if (cfg.out / RESULTS).exists() else {}
        restore_non_finite(results)
    results |= _meta(cfg, info, device)
    results.setdefault("dataset", {})
    results.setdefault("settings", {})
    # every task's data and physics first: a bad --data-dir fails before any training
    setups = {}
    for task, p in profiles.items():
        say(describe_changes(p))
        setups[task] = build_task(p, cfg.data_dir, cfg.seed, device)
    for task, s in setups.items():
        p = s.profile
        results["dataset"][task] = (
            f"{s.dataset_name} ({len(s.x_train)} train / {len(s.x_test)} test)"
        )
        results["settings"][task] = p.to_dict()
        task_res = results.setdefault(task, {})
        s.x_train, s.x_test = s.x_train.to(device), s.x_test.to(device)
        y_train, y_test = measure(s.physics, s.x_train), measure(s.physics, s.x_test)
        for method in cfg.methods:
            if cfg.resume and method in task_res:
                say(f"[{task}] {method}: finished in a previous run, kept")
                continue
            say(f"[{task}] {method} ...")
            t0 = time.perf_counter()
            if method == "pinv":
                entry = evaluate(s.physics.A_dagger, s.x_test, y_test, physics=s.physics)
                entry |= extra_test(s, s.physics.A_dagger)
                entry |= {"train_seconds": 0.0, "epochs": 0, "name": s.pinv_name}
            elif method == "rei":
                noise = noise_model(p)
                torch.manual_seed(cfg.seed + 1)
                with noisy(s.physics, noise):
                    yn_train, yn_test = measure(s.physics, s.x_train), measure(s.physics, s.x_test)
                    entry = train_method(
                        method,
                        s,
                        yn_train,
                        yn_test,
                        cfg,
                        info,
                        device,
                        cfg.out / "checkpoints" / task / method,
                    )
                    pinv = evaluate(s.physics.A_dagger, s.x_test, yn_test)
                entry |= {
                    "noise": f"{p.rei_noise} {p.rei_noise_level}",
                    "pinv_noisy_psnr": pinv["psnr"],
                }
            else:
                entry = train_method(
                    method,
                    s,
                    y_train,
                    y_test,
                    cfg,
                    info,
                    device,
                    cfg.out / "checkpoints" / task / method,
                )
            first = entry.pop("first")
            entry["wall_seconds"] = round(time.perf_counter() - t0, 2)
            bad = flag_non_finite(entry)
            if bad:
                say(
                    f"[{task}] {method}: WARNING non-finite values (training diverged?) in "
                    f"{', '.join(bad[:6])}; written as null in {RESULTS}, listed in 'non_finite'"
                )
            task_res[method] = entry
            say(
                f"[{task}] {method}: PSNR {entry['psnr']:.2f} dB, SSIM {entry['ssim']:.3f}, "
                f"{entry['train_seconds']:.0f} s training"
                + (f"; error {format_split(entry['split'])}" if "split" in entry else "")
            )
            if info.is_main:
                atomic_save_torch(cfg.out / "recon" / f"{task}_{method}.pt", first)
                write_results(cfg.out, results)
        if info.is_main:
            atomic_save_torch(cfg.out / "recon" / f"{task}_gt.pt", s.x_test[:1].cpu())
            report.task_figures(cfg.out, task, task_res, s.pinv_name)
    if info.is_main:
        write_results(cfg.out, results)
        report.write_markdown(cfg.out, results)
    barrier(info)
    return results

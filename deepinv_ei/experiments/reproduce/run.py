"""One reproduction run, read one way: settings → data → physics → training → report.

- **settings**: a :class:`RunConfig` is checked when it is made (tasks, methods, seed, flags,
  folders, every task's :class:`~.profiles.TaskProfile` with the ``--set`` overrides), so a bad
  setting fails before anything else;
- the **output folder** is claimed once, under its lock (:func:`~.outputs.claim_output`);
- **data and physics** of every task are built before any training (a bad ``--data-dir`` fails
  early);
- **training** of each method goes through :class:`deepinv_ei.training.Trainer`;
- the **report**: each method's entry is merged into ``results.json`` as soon as it is done, so
  that ``--resume`` never redoes finished work and no run erases another's results (see
  :mod:`.outputs`), then figures and ``results.md``.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import deepinv as dinv
import torch
from torch.utils.data import DataLoader

from deepinv_ei.training import (
    DistInfo,
    Trainer,
    barrier,
    broadcast_from_main,
    init_distributed,
    shuffled_loader,
    shutdown,
    wrap_ddp,
)
from deepinv_ei.training.bundle import library_versions
from deepinv_ei.utils import atomic_save_torch

from . import report
from .error_split import format_split
from .methods import make_losses, make_model, noise_model
from .metrics import image_metrics
from .outputs import (
    RESULTS,
    claim_output,
    flag_non_finite,
    output_lock,
    run_identity,
    write_results,
)
from .profiles import (
    METHODS,
    PROFILES,
    TASKS,
    TaskProfile,
    apply_overrides,
    describe_changes,
    get_profile,
)
from .tasks import TaskSetup, build_task, make_transform


@dataclass(frozen=True)
class RunConfig:
    """What one reproduction run does: the options of the command line, checked when made.

    :param tasks: tasks among :data:`TASKS` (``"ct"``, ``"inpainting"``, ``"cs"``).
    :param methods: methods among :data:`METHODS`, e.g. ``("pinv", "mc", "ei", "sup")``.
    :param profile: one of :data:`PROFILES`.
    :param out: the results folder (``results.json``, ``results.md``, figures, checkpoints).
    :param data_dir: an existing folder with the paper's data sets (stored absolute); ``None``
        for the embedded data.
    :param device: torch device.
    :param seed: seed of the data, the networks and the group samplers (an integer >= 0).
    :param resume: continue an interrupted run from ``out``.
    :param overwrite: delete the outputs of another run in ``out`` first (not with ``resume``).
    :param verbose: print progress.
    :param overrides: ``(name, value)`` pairs that change a :class:`TaskProfile` field for
        every task (``--set name=value``).
    :param threads: torch CPU threads for the run (``None``: torch's choice).
    :raises ValueError: naming the bad setting. :attr:`profiles` holds every task's profile.
    """

    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    profile: str = "quick"
    out: Path = Path("results/iccv")
    data_dir: str | None = None
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    overwrite: bool = False
    verbose: bool = True
    overrides: tuple[tuple[str, str], ...] = ()
    threads: int | None = None
    profiles: dict[str, TaskProfile] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not self.tasks or any(t not in TASKS for t in self.tasks):
            raise ValueError(f"tasks: expected some of {TASKS}, got {self.tasks!r}")
        if not self.methods or any(m not in METHODS for m in self.methods):
            raise ValueError(f"methods: expected some of {METHODS}, got {self.methods!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile: expected one of {PROFILES}, got {self.profile!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {self.seed!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(f"threads: expected a positive integer, got {self.threads!r}")
        if self.resume and self.overwrite:
            raise ValueError(
                "--resume continues the run in --out, --overwrite replaces it: pick one"
            )
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise ValueError(
                f"out {str(out)!r} is a file; expected a folder (new or of an earlier run)"
            )
        object.__setattr__(self, "out", out)
        if self.data_dir is not None:
            data_dir = Path(self.data_dir).expanduser()
            if not data_dir.is_dir():
                raise ValueError(f"data_dir {str(self.data_dir)!r} is not an existing folder")
            # absolute: one folder written two ways is one run (its identity in run.json)
            object.__setattr__(self, "data_dir", str(data_dir.resolve()))
        overrides = dict(self.overrides)
        profiles = {t: apply_overrides(get_profile(t, self.profile), overrides) for t in self.tasks}
        object.__setattr__(self, "profiles", profiles)

    @property
    def identity(self) -> dict:
        """What makes two runs' results comparable (recorded in ``run.json``)."""
        return run_identity(self.profile, self.seed, self.data_dir, dict(self.overrides))


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
    model = make_model(p).to(device)
    n_params = sum(q.numel() for q in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(p.milestones), gamma=0.1)
    # the group elements come from their own generator, saved in checkpoints (exact resume)
    group_rng = torch.Generator().manual_seed(cfg.seed * 1000 + 7 + info.rank)
    transform = make_transform(p.transform, p.n_trans, group_rng, p.interpolation)
    train_set = dinv.datasets.TensorDataset(x=s.x_train, y=y_train, use_dict_output=True)
    test_set = dinv.datasets.TensorDataset(x=s.x_test, y=y_test, use_dict_output=True)
    trainer = Trainer(
        model=wrap_ddp(model, info, device),
        physics=s.physics,
        optimizer=optimizer,
        scheduler=scheduler,
        train_dataloader=shuffled_loader(train_set, p.batch_size, info),
        eval_dataloader=DataLoader(test_set, batch_size=max(p.batch_size, 8)),
        epochs=p.epochs,
        losses=make_losses(method, p, transform),
        generators={"group": group_rng},
        metrics=[dinv.loss.metric.PSNR()],
        eval_interval=p.eval_interval,
        compute_train_metrics=False,
        online_measurements=False,
        device=device,
        checkpoint_dir=ckpt_dir,
        resume=cfg.resume,
        metadata={"task": p.task, "method": method, "profile": p.to_dict(), "seed": cfg.seed},
        verbose=cfg.verbose,
        show_progress_bar=cfg.verbose,
        freq_update_progress_bar=5,
        non_blocking_transfers=device.type == "cuda",
        mixed_precision=p.mixed_precision,
    )
    trainer.train()
    barrier(info)
    model.eval()
    entry = evaluate(lambda y: model(y, s.physics), s.x_test.to(device), y_test, physics=s.physics)
    entry |= extra_test(s, lambda y: model(y, s.physics))
    # like the paper we report the last model; the test PSNR at each evaluation is its curve
    curve = [[r["epoch"], r["train_seconds"], r["PSNR"]] for r in trainer.history if "PSNR" in r]
    entry |= {
        "train_seconds": round(trainer.train_seconds(), 2),
        "epochs": p.epochs,
        "steps": p.epochs * len(trainer.train_dataloader[0]),
        "n_params": n_params,
        "resumed_from_epoch": trainer.resumed_from_epoch,
        "curve": curve,
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
        "versions": library_versions(),
    }


def run(cfg: RunConfig) -> dict:
    """Run ``cfg`` and write everything under ``cfg.out``; returns the results dictionary.

    :raises deepinv_ei.experiments.reproduce.outputs.OutputConflict: if ``cfg.out`` holds
        another run (other profile, seed, data folder or overrides) and not ``cfg.overwrite``,
        or another process is writing to it.
    """
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    info, device = init_distributed(cfg.device)
    say = print if (cfg.verbose and info.is_main) else (lambda *a, **k: None)
    try:
        with contextlib.ExitStack() as lock:
            results = _claim_output(cfg, info, lock, say)
            return _run(cfg, results, info, device, say)
    finally:
        shutdown(info)


def _claim_output(cfg: RunConfig, info: DistInfo, lock: contextlib.ExitStack, say) -> dict:
    """The main process locks and claims ``cfg.out``; every process gets its verdict (the
    earlier results of this run, or the error), so that all stop together on a conflict."""
    outcome: dict | Exception | None = None
    if info.is_main:
        try:
            lock.enter_context(output_lock(cfg.out))
            outcome = claim_output(cfg.out, cfg.identity, cfg.resume, cfg.overwrite, say)
        except ValueError as err:  # OutputConflict, an unreadable results.json
            outcome = err
    outcome = broadcast_from_main(outcome)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _method_entry(
    method: str,
    s: TaskSetup,
    y_train: torch.Tensor,
    y_test: torch.Tensor,
    cfg: RunConfig,
    info: DistInfo,
    device: torch.device,
) -> dict:
    """The results entry of ``method`` on ``s``'s task (``pinv`` evaluates, others train)."""
    ckpt_dir = cfg.out / "checkpoints" / s.profile.task / method
    if method == "pinv":
        entry = evaluate(s.physics.A_dagger, s.x_test, y_test, physics=s.physics)
        entry |= extra_test(s, s.physics.A_dagger)
        return entry | {"train_seconds": 0.0, "epochs": 0, "name": s.pinv_name}
    if method != "rei":
        return train_method(method, s, y_train, y_test, cfg, info, device, ckpt_dir)
    p = s.profile
    torch.manual_seed(cfg.seed + 1)
    with noisy(s.physics, noise_model(p)):
        yn_train, yn_test = measure(s.physics, s.x_train), measure(s.physics, s.x_test)
        entry = train_method(method, s, yn_train, yn_test, cfg, info, device, ckpt_dir)
        pinv = evaluate(s.physics.A_dagger, s.x_test, yn_test)
    return entry | {"noise": f"{p.rei_noise} {p.rei_noise_level}", "pinv_noisy_psnr": pinv["psnr"]}


def _run(cfg: RunConfig, results: dict, info: DistInfo, device: torch.device, say) -> dict:
    results |= _meta(cfg, info, device)
    results.setdefault("dataset", {})
    results.setdefault("settings", {})
    # every task's data and physics first: a bad --data-dir fails before any training
    setups = {}
    for task, p in cfg.profiles.items():
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
            entry = _method_entry(method, s, y_train, y_test, cfg, info, device)
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

r"""A study of EI's gain over measurement consistency (MC) on sparse-view CT, sized for a CPU.

Each :class:`StudyRun` trains EI next to its MC twin (same phantoms, physics, seed, initial
network, batches and learning-rate schedule) and records test PSNR, SSIM and the range /
nullspace split of the error (:func:`deepinv_ei.experiments.reproduce.error_split.error_split`)
at the end, plus PSNR against training seconds along the way. MC twins depend only on the
settings MC sees (data, views, network, schedule), so runs that only change EI's settings
(:math:`\alpha`, transforms, interpolation, warm start) share one MC run.

The training loop is deliberately small (plain Adam steps on :math:`f = G(A^\dagger y)`, the
losses of :mod:`deepinv_ei.loss`) so that the knobs not in the reproduction's profiles can be
turned: an :math:`\alpha` schedule and warm-starting EI from the MC network part-way::

    python -m deepinv_ei.experiments.ct_study --plan core --out results/ct_study --threads 1
    python -m deepinv_ei.experiments.ct_study --only base,alpha10 --steps 200 --out /tmp/s

Results are appended to ``<out>/runs.jsonl`` (one line per run, MC twins under ``"mc"``) and
summarised in ``<out>/study.md``; finished runs are skipped when the command is repeated.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from deepinv_ei.utils import atomic_write_text

MC_FIELDS = (
    "size",
    "n_views",
    "phantoms",
    "n_train",
    "n_test",
    "width",
    "steps",
    "lr",
    "batch_size",
    "seed",
)


@dataclass(frozen=True)
class StudyRun:
    """One study point: EI with these settings, and its MC twin.

    :param str alpha_schedule: ``"constant"``, or ``"ramp"`` (:math:`\\alpha` grows linearly
        from 0 over the first half of the steps).
    :param float warm_start: fraction of the steps trained by MC first; EI continues from the MC
        twin's network and optimiser at that step (0: EI from scratch).
    """

    name: str
    size: int = 64
    n_views: int = 25
    phantoms: str = "ellipses"
    n_train: int = 90
    n_test: int = 10
    width: int = 16
    steps: int = 800
    lr: float = 1e-3
    batch_size: int = 4
    alpha: float = 100.0
    alpha_schedule: str = "constant"
    n_trans: int = 2
    interpolation: str = "fourier"
    warm_start: float = 0.0
    seed: int = 0
    eval_every: int = 100

    def mc_key(self) -> str:
        return json.dumps({k: getattr(self, k) for k in MC_FIELDS}, sort_keys=True)

    def warm_step(self) -> int:
        return int(round(self.warm_start * self.steps))


def plan(name: str, steps: int = 800) -> list[StudyRun]:
    """The study's runs, most informative first. ``core``: training length, :math:`\\alpha`, warm
    start, views, phantom family, transforms per step, interpolation, width."""
    r = lambda n, **kw: StudyRun(n, **({"steps": steps} | kw))  # noqa: E731
    core = [
        r("base"),
        r("alpha10", alpha=10.0),
        r("alpha1", alpha=1.0),
        r("warm50_alpha10", alpha=10.0, warm_start=0.5),
        r("views14_alpha10", n_views=14, alpha=10.0),
        r("textured_alpha10", phantoms="textured", alpha=10.0),
        r("views20_alpha10", n_views=20, alpha=10.0),
        r("views14_alpha100", n_views=14, alpha=100.0),
        r("ntrans4_alpha10", alpha=10.0, n_trans=4),
        r("views14_textured_alpha10", n_views=14, phantoms="textured", alpha=10.0),
        r("bilinear_alpha10", alpha=10.0, interpolation="bilinear"),
        r("views14_warm50_alpha10", n_views=14, alpha=10.0, warm_start=0.5),
        r("alpha_ramp100", alpha=100.0, alpha_schedule="ramp"),
        r("width32_alpha10", alpha=10.0, width=32),
        r("ntrans1_alpha10", alpha=10.0, n_trans=1),
        r("long3x_alpha10", alpha=10.0, steps=3 * steps, eval_every=300),
        r("views14_long3x", n_views=14, steps=3 * steps, eval_every=300),
    ]
    if name == "core":
        return core
    if name == "smoke":
        return [
            StudyRun(
                "smoke", size=16, n_views=8, n_train=4, n_test=2, width=4, steps=4, eval_every=2
            ),
            StudyRun(
                "smoke_warm",
                size=16,
                n_views=8,
                n_train=4,
                n_test=2,
                width=4,
                steps=4,
                eval_every=2,
                warm_start=0.5,
                alpha_schedule="ramp",
            ),
        ]
    raise ValueError(f"plan must be 'core' or 'smoke', got {name!r}")


# --- pieces -------------------------------------------------------------------------------


def _data(run: StudyRun):
    from deepinv_ei.data.phantoms import ct_phantom_family

    split = ct_phantom_family(run.phantoms, run.n_train, run.n_test, run.size, run.seed)
    return split.train.float(), split.test.float()


def _model(run: StudyRun):
    from deepinv_ei.models import EIUNet, ei_reconstructor

    torch.manual_seed(run.seed)
    return ei_reconstructor(EIUNet(1, run.width, 4, True, True))


@torch.no_grad()
def _reconstruct(model, physics, y: torch.Tensor, batch: int = 16) -> torch.Tensor:
    was = model.training
    model.eval()
    out = torch.cat([model(y[i : i + batch], physics) for i in range(0, len(y), batch)])
    model.train(was)
    return out


def _final_metrics(physics, x: torch.Tensor, x_hat: torch.Tensor) -> dict:
    from .reproduce.error_split import error_split
    from .reproduce.metrics import psnr, ssim, summarise

    out = {"psnr": summarise(psnr(x, x_hat))[0], "ssim": summarise(ssim(x, x_hat))[0]}
    out |= {"split": error_split(physics, x, x_hat)}
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def train(
    run: StudyRun,
    method: str,
    physics,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    start: dict | None = None,
    snapshot_at: int | None = None,
) -> tuple[dict, dict | None]:
    """Train ``method`` (``"mc"`` or ``"ei"``) for ``run.steps`` steps (from ``start``'s step
    with its network and optimiser when given); returns (entry, snapshot at ``snapshot_at``)."""
    from deepinv_ei import loss as ei_loss

    from .reproduce.metrics import psnr
    from .reproduce.tasks import make_transform

    model = _model(run)
    opt = torch.optim.Adam(model.parameters(), lr=run.lr, weight_decay=1e-8)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.8 * run.steps)], gamma=0.1)
    first = 0
    if start is not None:
        model.load_state_dict(start["model"])
        opt.load_state_dict(start["optimizer"])
        sched.load_state_dict(start["scheduler"])
        first = start["step"]
    group_rng = torch.Generator().manual_seed(run.seed * 1000 + 7)
    if method == "ei":
        transform = make_transform("rotate", run.n_trans, group_rng, run.interpolation)
        losses = ei_loss.equivariant_imaging(transform, alpha=run.alpha)
    elif method == "mc":
        losses = [ei_loss.MCLoss()]
    else:
        raise ValueError(f"method must be 'mc' or 'ei', got {method!r}")
    batch_rng = torch.Generator().manual_seed(run.seed + 1)
    order: list[int] = []
    for _ in range(first):  # the same batches as the twin from step 0
        if len(order) < run.batch_size:
            order += torch.randperm(len(x_train), generator=batch_rng).tolist()
        order = order[run.batch_size :]
    torch.manual_seed(run.seed + 2 + first)
    curve, seconds, snapshot = [], 0.0, None
    model.train()
    for step in range(first, run.steps):
        if snapshot_at is not None and step == snapshot_at:
            snapshot = {
                "model": {k: v.clone() for k, v in model.state_dict().items()},
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "step": step,
            }
        t = time.perf_counter()
        if len(order) < run.batch_size:
            order += torch.randperm(len(x_train), generator=batch_rng).tolist()
        idx, order = order[: run.batch_size], order[run.batch_size :]
        y = y_train[idx]
        if method == "ei" and run.alpha_schedule == "ramp":
            losses[1].weight = run.alpha * min(1.0, step / max(1, run.steps // 2))
        x1 = model(y, physics)
        total = sum(lo(y=y, x_net=x1, physics=physics, model=model).mean() for lo in losses)
        opt.zero_grad()
        total.backward()
        opt.step()
        sched.step()
        seconds += time.perf_counter() - t
        if (step + 1) % run.eval_every == 0 or step + 1 == run.steps:
            value = float(psnr(x_test, _reconstruct(model, physics, y_test)).mean())
            curve.append([step + 1, round(seconds, 2), round(value, 3)])
    entry = _final_metrics(physics, x_test, _reconstruct(model, physics, y_test))
    entry |= {"train_seconds": round(seconds, 1), "curve": curve, "start_step": first}
    return entry, snapshot


def run_study(runs: list[StudyRun], out: Path, verbose: bool = True) -> list[dict]:
    """Run ``runs`` one after the other (skipping those already in ``out/runs.jsonl``)."""
    from .reproduce.error_split import format_split
    from .reproduce.metrics import psnr, ssim
    from .reproduce.run import measure
    from .reproduce.tasks import ct_physics

    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["name"]] = rec
    mc_cache = {rec["mc_key"]: rec["mc"] for rec in done.values()}
    say = print if verbose else (lambda *a, **k: None)
    for run in runs:
        if run.name in done:
            say(f"{run.name}: done before, kept")
            continue
        t0 = time.perf_counter()
        physics = ct_physics(run.size, run.n_views)
        x_train, x_test = _data(run)
        y_train, y_test = measure(physics, x_train), measure(physics, x_test)
        fbp = physics.A_dagger(y_test)
        key = run.mc_key()
        snap_dir = out / "snapshots"
        snap_path = (
            snap_dir / f"mc_{hashlib.sha1(key.encode()).hexdigest()[:12]}_{run.warm_step()}.pt"
        )
        need_snap = run.warm_step() > 0 and not snap_path.exists()
        if key not in mc_cache or need_snap:
            say(f"{run.name}: MC twin ({run.steps} steps) ...")
            mc, snap = train(
                run,
                "mc",
                physics,
                x_train,
                y_train,
                x_test,
                y_test,
                snapshot_at=run.warm_step() if run.warm_step() > 0 else None,
            )
            mc_cache.setdefault(key, mc)
            if snap is not None:
                snap_dir.mkdir(exist_ok=True)
                torch.save(snap, snap_path)
        mc = mc_cache[key]
        start = torch.load(snap_path, weights_only=False) if run.warm_step() > 0 else None
        say(f"{run.name}: EI ...")
        ei, _ = train(run, "ei", physics, x_train, y_train, x_test, y_test, start=start)
        rec = {
            "name": run.name,
            "settings": dataclasses.asdict(run),
            "mc_key": key,
            "measurement_ratio": round(physics.A(x_test[:1]).numel() / x_test[0].numel(), 3),
            "fbp": {
                "psnr": round(float(psnr(x_test, fbp).mean()), 4),
                "ssim": round(float(ssim(x_test, fbp).mean()), 4),
            },
            "mc": mc,
            "ei": ei,
            "gap_psnr": round(ei["psnr"] - mc["psnr"], 3),
            "wall_seconds": round(time.perf_counter() - t0, 1),
        }
        with log.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        done[run.name] = rec
        say(
            f"{run.name}: FBP {rec['fbp']['psnr']:.2f}, MC {mc['psnr']:.2f} [{format_split(mc['split'])}], "
            f"EI {ei['psnr']:.2f} [{format_split(ei['split'])}], gap {rec['gap_psnr']:+.2f} dB "
            f"({rec['wall_seconds']:.0f} s)"
        )
        atomic_write_text(out / "study.md", summary(list(done.values())))
        curves_figure(list(done.values()), out / "study_curves.png")
    return list(done.values())


def summary(records: list[dict]) -> str:
    """The study table in Markdown (PSNR in dB, data range 1; split as PSNR-like dB)."""
    lines = [
        "| run | m/n | FBP | MC | EI | EI − MC | MC SSIM | EI SSIM | MC range / null dB | "
        "EI range / null dB | steps (EI) | EI s | MC s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        mc, ei = r["mc"], r["ei"]
        lines.append(
            f"| {r['name']} | {r['measurement_ratio']:.2f} | {r['fbp']['psnr']:.2f} | {mc['psnr']:.2f} "
            f"| {ei['psnr']:.2f} | {r['gap_psnr']:+.2f} | {mc['ssim']:.3f} | {ei['ssim']:.3f} "
            f"| {mc['split']['range_psnr']:.1f} / {mc['split']['null_psnr']:.1f} "
            f"| {ei['split']['range_psnr']:.1f} / {ei['split']['null_psnr']:.1f} "
            f"| {r['settings']['steps']} ({r['settings']['steps'] - ei.get('start_step', 0)}) "
            f"| {ei['train_seconds']:.0f} | {mc['train_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def curves_figure(records: list[dict], path: Path) -> None:
    """Test PSNR against training seconds of each run's MC twin and EI, one panel per run."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepinv_ei.utils import atomic_write_bytes

    if not records:
        return
    cols = min(4, len(records))
    rows = (len(records) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, r in zip(axes.flat, records, strict=False):
        offset = 0.0
        if r["ei"].get("start_step"):  # warm start: EI's clock starts after the MC steps
            before = [c for c in r["mc"]["curve"] if c[0] <= r["ei"]["start_step"]]
            offset = before[-1][1] if before else 0.0
        for method, extra in (("mc", 0.0), ("ei", offset)):
            curve = r[method]["curve"]
            ax.plot(
                [c[1] + extra for c in curve], [c[2] for c in curve], ".-", label=method.upper()
            )
        ax.axhline(r["fbp"]["psnr"], color="gray", ls="--", lw=0.8)
        ax.set_title(f"{r['name']} ({r['gap_psnr']:+.2f} dB)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(records) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("training seconds", fontsize=8)
    fig.supylabel("test PSNR (dB)", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m deepinv_ei.experiments.ct_study", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--plan", default="core", choices=("core", "smoke"))
    ap.add_argument("--only", default=None, help="comma list of run names of the plan")
    ap.add_argument("--steps", type=int, default=800, help="training steps of the plan's base runs")
    ap.add_argument("--out", default="results/ct_study")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.threads < 1 or args.steps < 1:
        ap.error(f"--threads and --steps must be positive, got {args.threads} and {args.steps}")
    torch.set_num_threads(args.threads)
    runs = plan(args.plan, args.steps)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - {r.name for r in runs})
        if unknown:
            ap.error(f"--only: unknown run(s) {unknown}; the plan has {[r.name for r in runs]}")
        runs = [r for r in runs if r.name in wanted]
    run_study(runs, Path(args.out), verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

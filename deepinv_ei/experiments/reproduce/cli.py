r"""Command line of the reproduction of Equivariant Imaging (Chen, Tachella & Davies, ICCV 2021).

Compares :math:`A^\dagger y`, measurement consistency only (MC), EI and supervised training of
:math:`f = G \circ A^\dagger` (the paper's residual UNet) on sparse-view CT, inpainting and
compressed sensing, and writes ``results.json``, ``results.md``, figures, curves and
checkpoints under ``--out``::

    python benchmarks/reproduce_iccv.py --task all --profile quick --out results/iccv/quick
    python -m deepinv_ei.experiments.reproduce --task ct --profile paper --device cuda
    torchrun --nproc_per_node 4 benchmarks/reproduce_iccv.py --task ct --profile paper --device cuda
    deepinv-ei-reproduce --task ct --profile quick --resume    # continue an interrupted run

One ``--out`` folder holds one run (profile, seed, data folder, ``--set`` overrides): runs of
other tasks or methods with the same settings are merged into it, a run with other settings
is refused unless ``--overwrite`` (see :mod:`deepinv_ei.experiments.reproduce.outputs`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .methods import parse_methods
from .outputs import OutputConflict
from .profiles import DEFAULT_METHODS, PROFILES, TASKS, apply_overrides, get_profile
from .run import RunConfig, run


def build_parser() -> argparse.ArgumentParser:
    """The command line's argument parser (``deepinv-ei-reproduce --help``)."""
    ap = argparse.ArgumentParser(
        prog="deepinv-ei-reproduce",
        description="Reproduce the ICCV 2021 Equivariant Imaging results (A†y, MC, EI, supervised).",
    )
    ap.add_argument("--task", default="all", choices=(*TASKS, "all"), help="task to run")
    ap.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma list from pinv,mc,ei,sup,rei,sup_ei (rei trains on noisy measurements)",
    )
    ap.add_argument(
        "--profile",
        default="quick",
        choices=PROFILES,
        help="smoke: seconds (tests); quick: <=10 min per task on a 2-core CPU; "
        "long: CT in <=90 min on a CPU; paper: the paper's full protocol (GPU)",
    )
    ap.add_argument(
        "--data-dir", default=None, help="folder with the real datasets (default: embedded data)"
    )
    ap.add_argument(
        "--out",
        default=None,
        help="output folder, one per run (default: results/iccv/<profile>-seed<seed>); runs of "
        "other tasks or methods with the same settings are merged into it",
    )
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ...")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the outputs of the run already in --out first (needed when its profile, "
        "seed, data folder or --set overrides differ from this run's)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 is much faster on a busy machine)",
    )
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a profile setting for every task, e.g. --set alpha=10 --set n_trans=5 "
        "(fields of deepinv_ei.experiments.reproduce.TaskProfile)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    return ap


def config_from_args(argv: list[str] | None = None) -> RunConfig:
    """Parse ``argv`` (default: ``sys.argv[1:]``) into a :class:`RunConfig`."""
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        methods = parse_methods(args.methods)
    except ValueError as e:
        ap.error(str(e))
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        ap.error(f"--data-dir {args.data_dir!r} is not an existing folder")
    overrides = []
    for item in args.overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            ap.error(f"--set expects NAME=VALUE, got {item!r}")
        overrides.append((name.strip(), value.strip()))
    tasks = TASKS if args.task == "all" else (args.task,)
    if args.seed < 0:
        ap.error(f"--seed must be an integer >= 0, got {args.seed}")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        ap.error(f"--out {args.out!r} is a file; expected a folder (new or of an earlier run)")
    if args.resume and args.overwrite:
        ap.error("--resume continues the run in --out, --overwrite replaces it: pick one")
    try:  # bad overrides are a usage error, before any data is loaded
        for task in tasks:
            apply_overrides(get_profile(task, args.profile), dict(overrides))
    except ValueError as e:
        ap.error(str(e))
    if args.threads is not None:
        if args.threads < 1:
            ap.error(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    return RunConfig(
        tasks=tasks,
        methods=methods,
        profile=args.profile,
        out=Path(args.out)
        if args.out
        else Path("results/iccv") / f"{args.profile}-seed{args.seed}",
        # absolute: one folder written two ways is one run (its identity in run.json)
        data_dir=None if args.data_dir is None else str(Path(args.data_dir).expanduser().resolve()),
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        overwrite=args.overwrite,
        verbose=not args.quiet,
        overrides=tuple(overrides),
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``deepinv-ei-reproduce``."""
    cfg = config_from_args(argv)
    try:
        run(cfg)
    except OutputConflict as err:  # nothing was written: a usage error
        print(f"deepinv-ei-reproduce: error: {err}", file=sys.stderr)
        return 2
    if cfg.verbose:
        print(f"results written to {cfg.out}/results.json and {cfg.out}/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

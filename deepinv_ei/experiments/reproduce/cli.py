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

from .methods import parse_methods
from .outputs import OutputConflict
from .profiles import DEFAULT_METHODS, PROFILES, TASKS
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
    """Parse ``argv`` (default: ``sys.argv[1:]``) into a :class:`RunConfig`, which checks the
    settings; a bad one exits with status 2 naming it, before any work."""
    ap = build_parser()
    args = ap.parse_args(argv)
    overrides = []
    for item in args.overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            ap.error(f"--set expects NAME=VALUE, got {item!r}")
        overrides.append((name.strip(), value.strip()))
    try:
        return RunConfig(
            tasks=TASKS if args.task == "all" else (args.task,),
            methods=parse_methods(args.methods),
            profile=args.profile,
            out=Path(args.out or Path("results/iccv") / f"{args.profile}-seed{args.seed}"),
            data_dir=args.data_dir,
            device=args.device,
            seed=args.seed,
            resume=args.resume,
            overwrite=args.overwrite,
            verbose=not args.quiet,
            overrides=tuple(overrides),
            threads=args.threads,
        )
    except ValueError as e:
        ap.error(str(e))


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

r"""Measurements behind docs/learning.md: does the held-out-view score rank models as the true
PSNR does, and do the units of the scanner description change what EI learns?

``ranking``: one run per alpha on a measurement set; at every epoch the held-out-view score and,
for this study only, the PSNR of the validation slices against the simulated truth (never used to
train or select). Every ``--every``-th epoch of every run is one model; reports Spearman's rank
correlation between the score and the PSNR, and the PSNR of the model the score selects against
the best. On a set without held-out views the runs are k-fold fold runs (``--view-folds``,
``--fold``, resolved as ``train`` resolves them): the scores are those of the fold's views, the
models those of the fold run (no refit), and the PSNR is that of the fold model. ``--jobs``
trains that many alphas at a time, one process each.

``units``: the same raw scan ingested with its pixel described in mm, m and px; each set trained
with the same alpha, seed and number of epochs, with the unit-free objective and with the raw one
(``normalise=False``); reports the validation PSNR of each.

    python benchmarks/learning_checks.py ranking SET TRUTH.npz OUT --alphas 0,0.01,0.1,1 --minutes 3
    python benchmarks/learning_checks.py ranking ALL_VIEWS.h5 TRUTH.npz OUT --view-folds 5 --jobs 2
    python benchmarks/learning_checks.py units RAW_DIR TRUTH.npz OUT --epochs 15
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from deepinv_ei.scan import MeasurementSet, ingest
from deepinv_ei.training import DEFAULT_ALPHA, PRIMARY_SCORE, train
from deepinv_ei.training.folds import ViewFold, resolve_view_fold
from deepinv_ei.training.scores import HELDOUT_SCORE
from deepinv_ei.training.sets import training_data
from deepinv_ei.utils import atomic_write_json


def psnr(x: np.ndarray, truth: np.ndarray) -> float:
    """Mean over slices of the PSNR with each slice's maximum as the peak."""
    return float(
        np.mean(
            [
                10 * np.log10(t.max() ** 2 / np.mean((r - t) ** 2))
                for r, t in zip(x, truth, strict=True)
            ]
        )
    )


def truth_psnr(set_path: Path, truth_path: Path, fold: ViewFold | None = None):
    """``model -> {"psnr": ...}`` on the validation slices of ``set_path``; with ``fold``, of a
    model of that fold's run."""
    mset = MeasurementSet(set_path)
    truth = np.load(truth_path)["attenuation"][mset.val_slices]
    # The model is f(y) = s G(physics.A_dagger(y) / s) and must be given the physics it is
    # trained with. Without a fold, that is every kept view and their FBP. In a fold run it is
    # the fold's FoldPhysics A_T (folds.fold_physics): the views T_k, with A_dagger the
    # trapezoid-weighted FBP of those views; the network never saw the FBP of all kept views,
    # whose input has fewer streaks, and the views F_k are the score's, not the model's input.
    # So the validation slices are reconstructed as the fold run's scores see them:
    # training_data(mset, fold=fold) gives A_T and y_T exactly as train builds them.
    # (A refit trains on every kept view and would need the full physics again: the ranking
    # runs the fold run alone, refit=False, so this callback only sees fold models.)
    data = training_data(mset, fold=fold, heldout=False)
    y, physics = data.y_val, data.physics

    def score(model) -> dict[str, float]:
        with torch.no_grad():
            return {"psnr": psnr(model(y, physics)[:, 0].numpy(), truth)}

    return score


def _view_fold(args) -> ViewFold | None:
    """The fold ``train`` validates on with ``args.view_folds`` and ``args.fold``, or ``None``."""
    mset = MeasurementSet(args.set)
    return resolve_view_fold(
        args.view_folds, args.fold, mset.spec.num_views, len(mset.heldout_angles)
    )


def _ranked_run(args, alpha: float) -> list[dict]:
    """Train one alpha (the fold run alone on a set without held-out views) and return every
    ``--every``-th epoch as one model."""
    fold = _view_fold(args)
    run = train(
        args.set, args.out / f"alpha_{alpha:g}", alpha=alpha, minutes=args.minutes,
        width=args.width, threads=args.threads, verbose=False, overwrite=True,
        view_folds=args.view_folds, fold=args.fold, refit=False,
        extra_scores=truth_psnr(args.set, args.truth, fold),
    )  # fmt: skip
    history = run["history"]
    picked = history[args.every - 1 :: args.every] or history[-1:]
    print(f"alpha {alpha:g}: {len(history)} epochs, last {history[-1]}", flush=True)
    return [
        {"alpha": alpha, "epoch": r["epoch"], "psnr": r["psnr"]}
        | {name: r[name] for name in (PRIMARY_SCORE, HELDOUT_SCORE)}
        for r in picked
    ]


def ranking(args) -> dict:
    from scipy.stats import spearmanr

    fold = _view_fold(args)
    if args.jobs > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            runs = list(pool.map(_ranked_run, [args] * len(args.alphas), args.alphas))
    else:
        runs = [_ranked_run(args, alpha) for alpha in args.alphas]
    models = [m for run in runs for m in run]
    best = max(models, key=lambda m: m["psnr"])
    result = {
        "validation": fold.to_dict() if fold else "heldout_views",
        "models": models,
        "best": best,
    }
    for name in (PRIMARY_SCORE, HELDOUT_SCORE):
        rho = spearmanr([-m[name] for m in models], [m["psnr"] for m in models]).statistic
        chosen = min(models, key=lambda m: m[name])
        result[name] = {
            "spearman": float(rho),
            "selected": chosen,
            "selected_minus_best_db": chosen["psnr"] - best["psnr"],
        }
    return result


UNITS = {"mm": 0.02, "m": 2e-5, "px": 1.0}


def units(args) -> dict:
    raw = args.raw
    out = {}
    for unit, pixel in UNITS.items():
        path = args.out / f"scan_{unit}.h5"
        ingest(
            path, projections=str(raw / "projections/*.tif"), flats=str(raw / "flats/*.tif"),
            darks=str(raw / "darks/*.tif"), angles=raw / "angles_deg.txt", angle_unit="deg",
            geometry="parallel", pixel_size=pixel, unit=unit, keep_every=40, overwrite=True,
        )  # fmt: skip
        # the truth is in 1/mm: in 1/unit it is (1/mm) * (mm per unit)
        to_unit = {"mm": 1.0, "m": 1e3, "px": 0.02}[unit]
        truth = np.load(args.truth)["attenuation"] * to_unit
        mset = MeasurementSet(path)
        for normalise in {"both": (True, False), "normalised": (True,), "raw": (False,)}[
            args.objective
        ]:
            name = f"{unit}_{'normalised' if normalise else 'raw'}"
            train(
                path, args.out / name, alpha=args.alpha, epochs=args.epochs, minutes=None,
                width=args.width, threads=args.threads, normalise=normalise, verbose=False,
                overwrite=True,
            )  # fmt: skip
            val = np.load(args.out / name / "validation.npy")
            out[name] = psnr(val, truth[mset.val_slices])
            print(name, out[name])
    return {"psnr": out, "alpha": args.alpha, "epochs": args.epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="check", required=True)
    r = sub.add_parser("ranking")
    r.add_argument("set", type=Path)
    r.add_argument("truth", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument(
        "--alphas", type=lambda s: [float(v) for v in s.split(",")], default=[0, 0.01, 0.1, 1]
    )
    r.add_argument(
        "--minutes",
        type=float,
        default=3.0,
        help="budget per alpha (k-fold: half of it per fold run)",
    )
    r.add_argument("--every", type=int, default=10, help="one model every this many epochs")
    r.add_argument(
        "--view-folds", type=int, default=None,
        help="as train's: on a set without held-out views, K-fold (default 5); 0: none",
    )  # fmt: skip
    r.add_argument("--fold", type=int, default=0, help="the fold held out (0 to K-1)")
    r.add_argument("--jobs", type=int, default=1, help="alphas trained at a time")
    u = sub.add_parser("units")
    u.add_argument("raw", type=Path, help="folder written by simulate_scan (parallel beam)")
    u.add_argument("truth", type=Path)
    u.add_argument("out", type=Path)
    u.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    u.add_argument("--epochs", type=int, default=15)
    u.add_argument("--objective", choices=("both", "normalised", "raw"), default="both")
    for p in (r, u):
        p.add_argument("--width", type=int, default=8)
        p.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result = ranking(args) if args.check == "ranking" else units(args)
    atomic_write_json(args.out / f"{args.check}.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "models"}, indent=1))


if __name__ == "__main__":
    main()

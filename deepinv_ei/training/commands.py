r"""The ``train``, ``sweep`` and ``reconstruct`` subcommands of ``deepinv-ei``.

::

    deepinv-ei train scan.h5 --out run/ [--alpha 0 | --alpha 1,10,100] [--minutes 15] [--device cuda]
    deepinv-ei sweep scan.h5 --out run/ --alpha 0.01,0.1,1
    deepinv-ei train all_views.h5 --out run/ --view-folds 5 --fold 0   # no held-out views
    deepinv-ei reconstruct run/ scan.h5 --out recon.npy      # also .h5 and a TIFF folder
    deepinv-ei reconstruct run/ 'raw/*.tif' --flats ... --out recon.h5  # a raw scan, ingest's options

``train`` with a comma list of :math:`\alpha` is ``sweep``. A set without held-out views is
scored on a fold of its views and the bundle refit on all of them
(:mod:`~deepinv_ei.training.folds`). The modules
``deepinv_ei.commands.{train,sweep,reconstruct}`` plug these parsers and runners into
:mod:`deepinv_ei.cli`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deepinv_ei.cli import guarded

__all__ = [
    "add_train_parser",
    "add_sweep_parser",
    "add_reconstruct_parser",
    "run_train",
    "run_reconstruct",
    "parse_alphas",
]


def parse_alphas(text: str) -> list[float]:
    """``"1,10,100"`` -> ``[1.0, 10.0, 100.0]``; each a finite number >= 0."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--alpha: expected a number or a comma list of numbers >= 0, got {text!r}"
        ) from None
    if not values or any(not (v >= 0 and v < float("inf")) for v in values):
        raise argparse.ArgumentTypeError(
            f"--alpha: expected a number or a comma list of numbers >= 0, got {text!r}"
        )
    return values


def _training_options(p: argparse.ArgumentParser, alpha_default: str) -> None:
    from .folds import DEFAULT_VIEW_FOLDS
    from .learn import (
        DEFAULT_ALPHA,
        NOISE_CHOICES,
        PRECISION_CHOICES,
        TRANSFORM_CHOICES,
        LearnConfig,
    )

    d = LearnConfig()
    p.add_argument("set", help="measurement set (.h5) written by `deepinv-ei ingest`")
    p.add_argument("--out", required=True, help="run folder (must be empty or absent)")
    p.add_argument(
        "--alpha",
        type=parse_alphas,
        default=parse_alphas(alpha_default),
        help=f"weight of the EI term, unit-free (default {DEFAULT_ALPHA:g}); 0 trains the "
        "data term alone (MC); a comma list trains each and selects by held-out views",
    )
    p.add_argument(
        "--view-folds",
        type=int,
        default=None,
        metavar="K",
        help="score on a K-fold split of the kept views (every K-th view held out), then refit "
        f"the bundle on all views for the best epoch count; default: {DEFAULT_VIEW_FOLDS} folds "
        "when the set has no held-out views, none otherwise (where K >= 2 is an error); "
        "0: never",
    )
    p.add_argument("--fold", type=int, default=d.fold, help="the fold held out (0 to K-1)")
    p.add_argument(
        "--minutes",
        type=float,
        default=d.minutes,
        help="training time budget in minutes (with view folds: half for the fold run, the "
        "rest for the refit)",
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help="most epochs")
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--transform", choices=TRANSFORM_CHOICES, default=d.transform)
    p.add_argument("--n-trans", type=int, default=d.n_trans, help="group elements per image")
    p.add_argument("--noise", choices=NOISE_CHOICES, default=d.noise)
    p.add_argument("--sigma", type=float, default=None, help="Gaussian noise level of y")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--width", type=int, default=d.width, help="UNet width")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--mixed-precision",
        choices=PRECISION_CHOICES,
        default=d.mixed_precision,
        help="run the network in bfloat16 or float16 (autocast); operators stay float32",
    )
    p.add_argument(
        "--no-normalise",
        dest="normalise",
        action="store_false",
        help="train the raw objective (alpha then depends on the units; for comparison)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the run folder")
    p.add_argument("--quiet", action="store_true")


def _settings(args: argparse.Namespace) -> dict:
    return {
        "minutes": args.minutes,
        "epochs": args.epochs,
        "device": args.device,
        "transform": args.transform,
        "n_trans": args.n_trans,
        "noise": "gaussian" if args.sigma is not None and args.noise == "auto" else args.noise,
        "sigma": args.sigma,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "width": args.width,
        "patience": args.patience,
        "threads": args.threads,
        "seed": args.seed,
        "normalise": args.normalise,
        "mixed_precision": args.mixed_precision,
        "view_folds": args.view_folds,
        "fold": args.fold,
    }


def run_train(args: argparse.Namespace) -> int:
    """``train`` (one alpha) or ``sweep`` (``train`` with a list, or ``sweep``)."""
    from .learn import sweep, train

    common = {"overwrite": args.overwrite, "verbose": not args.quiet, **_settings(args)}

    def runner() -> int:
        if len(args.alpha) == 1 and args.command == "train":
            resume = getattr(args, "resume", False)
            train(args.set, args.out, alpha=args.alpha[0], resume=resume, **common)
        else:
            sweep(args.set, args.out, args.alpha, **common)
        return 0

    return guarded(args.command, runner)


def run_reconstruct(args: argparse.Namespace) -> int:
    """``reconstruct``: a measurement set, or a raw scan with ingest's options."""
    from deepinv_ei.commands.scan_options import given_scan_options, scan_options

    from .reconstruct import reconstruct

    def runner() -> int:
        common = dict(fbp=args.fbp, batch=args.batch, device=args.device,
                      overwrite=args.overwrite, progress=not args.quiet)  # fmt: skip
        scan = scan_options(args)
        sources = [s for s in (args.input, scan["projections"], scan["sinograms"]) if s]
        if len(sources) != 1:
            raise ValueError(
                "give the scan once: INPUT (a measurement set, or projections), or "
                f"--projections or --sinograms as to ingest; got {len(sources)}"
            )
        given = given_scan_options(args)
        if args.input is not None and _names_a_set(args.input, given):
            if given:
                raise ValueError(
                    f"{args.input} is a measurement set, already ingested; the scan options "
                    f"{', '.join(given)} apply to a raw scan only"
                )
            reconstruct(args.run, args.input, args.out, **common)
        else:
            reconstruct(args.run, args.input, args.out, scan=scan, **common)
        return 0

    return guarded("reconstruct", runner, (ValueError, OSError))


def _names_a_set(path: str, given: list[str]) -> bool:
    """Whether ``reconstruct``'s INPUT is read as a measurement set: it is one, or it is an
    HDF5 name, not a Data Exchange file, with no scan options given (so that a missing or
    foreign file is reported as a measurement set)."""
    from deepinv_ei.scan import is_measurement_set
    from deepinv_ei.scan.readers import is_data_exchange

    if is_measurement_set(path):
        return True
    hdf5 = path.lower().endswith((".h5", ".hdf5"))
    return hdf5 and not given and not is_data_exchange(path)


#: ``(help, description)`` of the two training commands.
_TRAINING_COMMANDS = {
    "train": (
        "learn a reconstructor from a measurement set",
        "Learn f(y) = s G(A^+ y / s) from the set's sinograms alone (EI), keep the epoch with the "
        "lowest ramp-weighted held-out-view error and write a bundle. A set without held-out "
        "views is scored on a fold of its views (--view-folds), and the bundle is refit on "
        "every view for the chosen number of epochs.",
    ),
    "sweep": (
        "train one model per alpha and select one",
        "Train one model per alpha in RUN/alpha_<a>/ and select the alpha with the lowest "
        "ramp-weighted held-out-view error (RUN/sweep.json). On a set without held-out views "
        "every alpha trains on a fold of the views (--view-folds), and the selected alpha is "
        "refit on every view into RUN/.",
    ),
}


def _add_training_parser(subparsers, name: str, alpha_default: str) -> argparse.ArgumentParser:
    help_, description = _TRAINING_COMMANDS[name]
    p = subparsers.add_parser(name, help=help_, description=description)
    _training_options(p, alpha_default)
    return p


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` on ``subparsers``."""
    from .learn import DEFAULT_ALPHA

    p = _add_training_parser(subparsers, "train", f"{DEFAULT_ALPHA:g}")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    return p


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sweep`` on ``subparsers``."""
    return _add_training_parser(subparsers, "sweep", "0.01,0.1,1")


RECONSTRUCT_EXAMPLE = """\
examples:
  deepinv-ei reconstruct run/ scan.h5 --out recon.h5 --fbp
  deepinv-ei reconstruct run/ 'scan/projections/*.tif' --flats 'scan/flats/*.tif' \\
      --darks 'scan/darks/*.tif' --angles scan/angles_deg.txt --angle-unit deg \\
      --geometry parallel --pixel-size 0.02 --unit mm --keep-every 40 --out recon.h5
  deepinv-ei reconstruct run/ --sinograms fan.npy --geometry fan.toml --keep-every 40 \\
      --out recon.h5
"""


def add_reconstruct_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``reconstruct`` on ``subparsers``: the scan (a measurement set, or a raw scan
    with the options of ``ingest``, :mod:`deepinv_ei.commands.scan_options`) and the output."""
    from deepinv_ei.commands.scan_options import add_scan_options

    from .reconstruct import RECONSTRUCT_BATCH

    p = subparsers.add_parser(
        "reconstruct",
        help="reconstruct a scan with a trained bundle",
        description="Reconstruct every slice of a scan, in order, with a trained bundle: a\n"
        "measurement set, or a raw scan given with the options of `deepinv-ei ingest`\n"
        "(ingested into a temporary set beside --out, removed afterwards). The scanner\n"
        "after ingest (kept views, detector) must be the bundle's.",
        epilog=RECONSTRUCT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="bundle folder written by `deepinv-ei train`")
    p.add_argument(
        "input",
        metavar="INPUT",
        nargs="?",
        help="measurement set of the same scanner, or raw projections (as ingest's "
        "--projections); or give --projections or --sinograms instead",
    )
    add_scan_options(
        p,
        geometry_default=None,
        geometry_help="'parallel' (with --pixel-size, --unit) or a spec file (.toml, .json), "
        "as to ingest; default: 'parallel' if --pixel-size or --unit is given, else the "
        "bundle's scanner (the data then holds the kept views on the detector after ingest)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--out", required=True, help=".npy, .h5, or a folder (one TIFF per slice)")
    out.add_argument("--fbp", action="store_true", help="also write FBP of every slice")
    out.add_argument("--batch", type=int, default=RECONSTRUCT_BATCH, help="slices per forward pass")
    out.add_argument("--device", default="cpu", help="cpu or cuda")
    out.add_argument("--overwrite", action="store_true")
    out.add_argument("--quiet", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``deepinv-ei`` (see :mod:`deepinv_ei.cli`)."""
    from deepinv_ei.cli import main as cli_main

    return cli_main(None if argv is None else list(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

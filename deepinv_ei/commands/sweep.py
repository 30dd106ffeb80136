"""``deepinv-ei sweep SET --out RUN --alpha A,B,...``: one model per alpha, selected by held-out views."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    from deepinv_ei.training.commands import add_sweep_parser

    return add_sweep_parser(subparsers)


def run(args: argparse.Namespace) -> int:
    from deepinv_ei.training.commands import run_train

    return run_train(args)

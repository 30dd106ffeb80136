"""``deepinv-ei train SET --out RUN``: learn a reconstructor from a measurement set alone."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    from deepinv_ei.training.commands import add_train_parser

    return add_train_parser(subparsers)


def run(args: argparse.Namespace) -> int:
    from deepinv_ei.training.commands import run_train

    return run_train(args)

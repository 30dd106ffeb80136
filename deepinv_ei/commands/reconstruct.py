"""``deepinv-ei reconstruct RUN INPUT --out OUT``: every slice of a scan with a trained bundle."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    from deepinv_ei.training.commands import add_reconstruct_parser

    return add_reconstruct_parser(subparsers)


def run(args: argparse.Namespace) -> int:
    from deepinv_ei.training.commands import run_reconstruct

    return run_reconstruct(args)

"""``deepinv-ei reproduce ...``: the reproduction's command line, unchanged
(:func:`deepinv_ei.experiments.reproduce.main`; ``deepinv-ei reproduce --help`` lists its options)."""

from __future__ import annotations

import argparse

PASS_THROUGH = True


def add_parser(subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "reproduce",
        add_help=False,  # --help goes to the reproduction's own parser
        help="reproduce the ICCV 2021 EI results (options: deepinv-ei reproduce --help)",
    )


def run(args: argparse.Namespace) -> int:
    from deepinv_ei.experiments.reproduce import main

    return main(args.rest)

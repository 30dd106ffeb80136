"""The ``deepinv-ei`` command: one entry point, one subcommand per task.

Subcommands live in modules listed in :data:`COMMANDS`; each module defines
``add_parser(subparsers)`` (registers its sub-parser, with ``help``) and ``run(args)``
(returns the exit status). A module may set ``PASS_THROUGH = True`` to receive the arguments
it does not declare in ``args.rest`` (``reproduce`` hands them to the reproduction's own
command line). The modules are imported only when their subcommand runs or ``--help`` lists
them, so adding one is one line here. A ``run`` reports bad input as one line with exit
status 2 through :func:`guarded`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

#: Subcommand name -> module with ``add_parser(subparsers)`` and ``run(args)``.
COMMANDS: dict[str, str] = {
    "ingest": "deepinv_ei.commands.ingest",
    "inspect": "deepinv_ei.commands.inspect",
    "reproduce": "deepinv_ei.commands.reproduce",
    "train": "deepinv_ei.commands.train",
    "sweep": "deepinv_ei.commands.sweep",
    "reconstruct": "deepinv_ei.commands.reconstruct",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``deepinv-ei`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="deepinv-ei",
        description="Equivariant Imaging for DeepInverse and ODL: ingest measured scans, "
        "inspect measurement sets, learn from them and reconstruct new scans, reproduce the "
        "paper's results.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def guarded(
    name: str,
    runner: Callable[[], int],
    errors: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError),
) -> int:
    """``runner()``, with ``errors`` (in the settings or the files) printed as one line (exit 2)."""
    try:
        return runner()
    except BrokenPipeError:
        raise  # the reader of stdout went away (``| head``): the entry point ends quietly
    except errors as err:
        print(f"deepinv-ei {name}: error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``deepinv-ei``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(COMMANDS[args.command])
    if getattr(module, "PASS_THROUGH", False):
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return int(module.run(args) or 0)
    except BrokenPipeError:
        # the reader of stdout went away (``| head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

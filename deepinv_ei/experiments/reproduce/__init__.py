"""Reproduction of the ICCV 2021 EI results: profiles, tasks, methods, training, reports.

The public Python API behind ``benchmarks/reproduce_iccv.py`` and ``deepinv-ei-reproduce``::

    from deepinv_ei.experiments.reproduce import RunConfig, run
"""

from .cli import build_parser, config_from_args, main
from .methods import LABELS, parse_methods
from .outputs import OutputConflict
from .profiles import DEFAULT_METHODS, METHODS, PROFILES, TASKS, TaskProfile, get_profile
from .run import RunConfig, run

__all__ = [
    "DEFAULT_METHODS",
    "LABELS",
    "METHODS",
    "OutputConflict",
    "PROFILES",
    "RunConfig",
    "TASKS",
    "TaskProfile",
    "build_parser",
    "config_from_args",
    "get_profile",
    "main",
    "parse_methods",
    "run",
]

"""Pieces of ``benchmarks/reproduce_iccv.py``: profiles, tasks, methods, training, reports."""

from .methods import LABELS, parse_methods
from .profiles import DEFAULT_METHODS, METHODS, PROFILES, TASKS, TaskProfile, get_profile
from .run import RunConfig, run

__all__ = [
    "DEFAULT_METHODS",
    "LABELS",
    "METHODS",
    "PROFILES",
    "RunConfig",
    "TASKS",
    "TaskProfile",
    "get_profile",
    "parse_methods",
    "run",
]

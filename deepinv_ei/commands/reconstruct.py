"""``deepinv-ei reconstruct RUN INPUT --out OUT``: every slice of a scan with a trained bundle."""

from __future__ import annotations

from deepinv_ei.training.commands import add_reconstruct_parser as add_parser
from deepinv_ei.training.commands import run_reconstruct as run

__all__ = ["add_parser", "run"]

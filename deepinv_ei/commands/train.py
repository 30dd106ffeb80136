"""``deepinv-ei train SET --out RUN``: learn a reconstructor from a measurement set alone."""

from __future__ import annotations

from deepinv_ei.training.commands import add_train_parser as add_parser
from deepinv_ei.training.commands import run_train as run

__all__ = ["add_parser", "run"]

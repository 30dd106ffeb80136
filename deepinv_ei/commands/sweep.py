"""``deepinv-ei sweep SET --out RUN --alpha A,B,...``: one model per alpha, selected by held-out views."""

from __future__ import annotations

from deepinv_ei.training.commands import add_sweep_parser as add_parser
from deepinv_ei.training.commands import run_train as run

__all__ = ["add_parser", "run"]

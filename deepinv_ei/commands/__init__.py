"""Subcommands of the ``deepinv-ei`` command (see :mod:`deepinv_ei.cli`)."""

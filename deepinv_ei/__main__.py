"""``python -m deepinv_ei``: the ``deepinv-ei`` command (:func:`deepinv_ei.cli.main`)."""

import sys

from .cli import main

sys.exit(main())

"""``python -m deepinv_ei.experiments.reproduce``: the reproduction's command line."""

import sys

from .cli import main

sys.exit(main())

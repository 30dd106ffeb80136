"""Reproduce Equivariant Imaging (Chen, Tachella & Davies, ICCV 2021) from one command.

A thin script around :mod:`deepinv_ei.experiments.reproduce` (``--help`` for the options)::

    python benchmarks/reproduce_iccv.py --task all --profile quick --out results/iccv
"""

import sys

from deepinv_ei.experiments.reproduce import main

if __name__ == "__main__":
    sys.exit(main())

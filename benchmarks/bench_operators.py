"""Benchmark the CT operators against the anchors (``--help`` for the options).

A thin script around :mod:`deepinv_ei.experiments.bench_operators`::

    python benchmarks/bench_operators.py --json results/bench_operators.json
"""

import sys

from deepinv_ei.experiments.bench_operators import main

if __name__ == "__main__":
    sys.exit(main())

"""Experiments of deepinv-ei: the ICCV 2021 reproduction and the operator benchmark.

- :mod:`deepinv_ei.experiments.reproduce`: the paper's comparison (A†y, MC, EI, supervised) on
  CT, inpainting and compressed sensing (``RunConfig``, ``run``, the command line ``main``).
- :mod:`deepinv_ei.experiments.bench_operators`: speed and memory of the CT operators against
  ``odl.contrib.torch``, raw ASTRA and ``deepinv.physics.Tomography``.

The scripts ``benchmarks/reproduce_iccv.py`` and ``benchmarks/bench_operators.py`` in the
repository are thin wrappers around these modules.
"""

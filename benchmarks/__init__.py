"""Benchmarks and reproductions of deepinv-ei (``python -m benchmarks.reproduce_iccv``)."""

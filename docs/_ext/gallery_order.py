"""The order of the examples gallery: from a first training to the tools around it."""

from __future__ import annotations

from pathlib import Path

ORDER = (
    "plot_ei_inpainting.py",
    "plot_odl_fanbeam.py",
    "plot_measured_scan.py",
    "plot_transforms_mixing.py",
    "plot_identifiability.py",
    "plot_robust_ei.py",
    "plot_bench_operators.py",
    "plot_reproduce_results.py",
)


class ExampleOrder:
    """sphinx-gallery ``within_subsection_order``: the files of ``ORDER`` first, in that order."""

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self) -> str:  # a stable value for Sphinx's configuration cache
        return f"ExampleOrder({ORDER})"

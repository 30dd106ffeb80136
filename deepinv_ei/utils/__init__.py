"""Small shared utilities: the adjoint dot test, atomic file writes and safe loading."""

from .dottest import dottest
from .io import (
    atomic_path,
    atomic_save_figure,
    atomic_save_torch,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    clean_orphan_temp_files,
    non_finite_paths,
    safe_load_torch,
    strict_json,
)

__all__ = [
    "dottest",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_torch",
    "atomic_save_figure",
    "safe_load_torch",
    "clean_orphan_temp_files",
    "non_finite_paths",
    "strict_json",
]

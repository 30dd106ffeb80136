"""Small shared utilities: the adjoint dot test and atomic file writes."""

from .dottest import dottest
from .io import atomic_save_torch, atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = [
    "dottest",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_torch",
]

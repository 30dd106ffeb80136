"""Input checks of the ODL side: bad operators and tensors become errors naming what was expected and what came."""

from __future__ import annotations

from collections.abc import Sequence

import odl
import torch
from odl.core.space.base_tensors import TensorSpace

SUPPORTED_DTYPES = (torch.float32, torch.float64)


def _check_real_tensor_space(space: object, name: str) -> None:
    if not isinstance(space, TensorSpace):
        raise TypeError(
            f"expected the operator's {name} to be an odl TensorSpace or DiscretizedSpace, "
            f"got {type(space).__name__}"
        )
    if not space.is_real:
        raise TypeError(
            f"expected a real {name}, got dtype {space.dtype} (complex spaces are not supported)"
        )


def check_operator(op: object) -> odl.Operator:
    """Return ``op`` if it is an ODL operator from a real tensor space to a real tensor space or
    to the real numbers (a functional), else raise."""
    if not isinstance(op, odl.Operator):
        raise TypeError(f"expected an odl.Operator, got {type(op).__name__}")
    _check_real_tensor_space(op.domain, "domain")
    if not isinstance(op.range, odl.RealNumbers):
        _check_real_tensor_space(op.range, "range")
    return op


def is_fast_linear(op: odl.Operator) -> bool:
    """Whether ``op`` is linear between tensor spaces (the batched backends and ``.T`` apply)."""
    return bool(op.is_linear) and isinstance(op.range, TensorSpace)


def check_input(x: object, trailing_shape: Sequence[int], what: str) -> torch.Tensor:
    """``x`` if it is a float32/float64 tensor of shape ``(*batch, *trailing_shape)``, else raise.

    A float16/bfloat16 tensor comes back in float32: under mixed precision (autocast) the
    operators run in float32, as autocast does for precision-sensitive ops (the sparse, ASTRA and
    FFT kernels have no half types). The cast is part of the autograd graph, so gradients come
    back in the input's dtype.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor as {what}, got {type(x).__name__}")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"expected {what} of dtype float32 or float64, got {x.dtype}")
    k = len(trailing_shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != tuple(trailing_shape):
        raise ValueError(
            f"expected {what} of shape (*batch, {', '.join(map(str, trailing_shape))}), "
            f"got {tuple(x.shape)}"
        )
    return x

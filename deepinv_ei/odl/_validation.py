"""Checks that turn bad input into clear errors naming what was expected and what came."""

from __future__ import annotations

from collections.abc import Sequence

import odl
import torch
from odl.core.space.base_tensors import TensorSpace

SUPPORTED_DTYPES = (torch.float32, torch.float64)


def check_linear_tensor_operator(op: object) -> odl.Operator:
    """Return ``op`` if it is a linear ODL operator between real tensor spaces, else raise."""
    if not isinstance(op, odl.Operator):
        raise TypeError(f"expected an odl.Operator, got {type(op).__name__}")
    if not op.is_linear:
        raise ValueError(
            f"expected a linear odl.Operator, got the non-linear {type(op).__name__} "
            f"(op.is_linear is False); only linear operators have a transpose"
        )
    for name, space in (("domain", op.domain), ("range", op.range)):
        if not isinstance(space, TensorSpace):
            raise TypeError(
                f"expected the operator's {name} to be an odl TensorSpace or DiscretizedSpace, "
                f"got {type(space).__name__}"
            )
        if not space.is_real:
            raise TypeError(
                f"expected a real {name}, got dtype {space.dtype} (complex spaces are not supported)"
            )
    return op


def check_input(
    x: object,
    trailing_shape: Sequence[int],
    what: str,
) -> torch.Tensor:
    """Check that ``x`` is a float32/float64 tensor of shape ``(*batch, *trailing_shape)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor as {what}, got {type(x).__name__}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"expected {what} of dtype float32 or float64, got {x.dtype}")
    k = len(trailing_shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != tuple(trailing_shape):
        raise ValueError(
            f"expected {what} of shape (*batch, {', '.join(map(str, trailing_shape))}), "
            f"got {tuple(x.shape)}"
        )
    return x

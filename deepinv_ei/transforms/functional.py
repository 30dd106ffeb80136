r"""Stateless helpers of the group actions: tensor operations, draws, option checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from deepinv.transform.base import TransformParam


def as_plain_tensor(p: Any) -> torch.Tensor:
    """A parameter as a plain tensor (deepinv's ``TransformParam``, lists and numbers accepted)."""
    if isinstance(p, TransformParam):
        return p.as_subclass(torch.Tensor)
    if isinstance(p, torch.Tensor):
        return p
    return torch.as_tensor(p)


def as_images(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """View ``(L, ..., H, W)`` as ``(L, C', H, W)``; also return the original shape."""
    return x.reshape(x.shape[0], -1, *x.shape[-2:]), tuple(x.shape)


def check_square(shape: tuple[int, ...], what: str) -> None:
    """Raise unless the last two axes of ``shape`` have the same size."""
    H, W = shape[-2:]
    if H != W:
        raise ValueError(f"{what} needs square images, got H x W = {H} x {W}")


def by_code(
    x: torch.Tensor, codes: torch.Tensor, fn: Callable[[torch.Tensor, int], torch.Tensor]
) -> torch.Tensor:
    """``out[i] = fn(x[codes == c], c)[...]``: apply ``fn`` once per distinct integer code.

    Per-sample elements of a finite group take few distinct values, so each value's images are
    moved in one batched call (a single call, without copies, when all codes agree).
    """
    values = torch.unique(codes).tolist()
    if len(values) == 1:
        out = fn(x, values[0])
        return out.clone() if out is x else out  # never hand the input back
    out = torch.empty_like(x)
    for c in values:
        idx = (codes == c).nonzero().squeeze(1)
        out.index_copy_(0, idx, fn(x.index_select(0, idx), c).contiguous())
    return out


def rot90_where(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate ``x[i]`` by ``k[i]`` quarter turns (:func:`torch.rot90` on dims ``(-2, -1)``)."""
    return by_code(x, k % 4, lambda v, q: torch.rot90(v, q, dims=(-2, -1)) if q else v)


def check_bool(owner: str, key: str, value: Any) -> bool:
    """``value`` if it is a bool; raise a ``TypeError`` naming ``owner`` and ``key`` otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {key} must be a bool, got {value!r}")
    return value


def check_finite_number(owner: str, key: str, value: Any, minimum: float | None = None) -> float:
    """A finite real number (bools refused), at least ``minimum`` if given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {key} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {key} must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {key} must be >= {minimum}, got {value!r}")
    return float(value)


def is_multiple(value: float, base: float) -> bool:
    return math.isclose(value / base, round(value / base), abs_tol=1e-9)


def sample_uniform(values: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` i.i.d. uniform draws from the 1D tensor ``values``."""
    idx = torch.randint(len(values), (n,), generator=generator, device=generator.device)
    return values.to(generator.device)[idx].cpu()


def sample_without_replacement(
    values: torch.Tensor, n: int, generator: torch.Generator
) -> torch.Tensor:
    """The first ``n`` entries of a random permutation of ``values`` (deepinv's draw)."""
    perm = torch.randperm(len(values), generator=generator, device=generator.device)
    return values.to(generator.device)[perm][:n].cpu()


def cartesian(*columns: torch.Tensor) -> list[torch.Tensor]:
    """All combinations of the given 1D tensors, as aligned 1D tensors (first varies slowest)."""
    grids = torch.meshgrid(*columns, indexing="ij")
    return [g.reshape(-1) for g in grids]

"""Shared fixtures and test data: seeded generators, test images and the transform zoo.

Test modules import the plain helpers by name (``from conftest import seeded``): pytest puts
``tests/`` first on ``sys.path``, so this is the same module that holds the fixtures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
import torch

from deepinv_ei.transforms import Dihedral, GroupTransform, Product, Reflect, Rotate, Shift


@pytest.fixture
def one_thread():
    """One intra-op thread: on a loaded 2-core machine, two threads per process oversubscribe
    the cores and slow small tensors down several-fold (up to ~100x measured)."""
    with single_thread():
        yield


@contextlib.contextmanager
def single_thread():
    """One intra-op thread inside the block (for module-scoped fixtures; see one_thread), and
    results that do not depend on the machine's core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def seeded(seed: int) -> torch.Generator:
    """A CPU random generator in the state ``manual_seed(seed)``."""
    return torch.Generator().manual_seed(seed)


def distinct_image(
    shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The values ``0 .. numel - 1`` in a seeded random order, reshaped to ``shape``.

    Every pixel value occurs once, so a pixel permutation is identified by its output and two
    group elements that act differently give different images.
    """
    numel = torch.Size(shape).numel()
    return torch.randperm(numel, generator=seeded(seed)).to(dtype).reshape(shape)


# --------------------------------------------------------------------------- transform zoo

# Our exact group actions (pixel permutations), by name. Each factory takes the options every
# GroupTransform takes (n_trans, per_sample, rng). The "*" products let each factor draw its own
# copies (deepinv's layout); the "Product(...)" ones draw i.i.d. product elements themselves.
TransformFactory = Callable[..., GroupTransform]

EXACT_TRANSFORMS: dict[str, TransformFactory] = {
    "shift": lambda **kw: Shift(**kw),
    "shift-nonzero": lambda **kw: Shift(nonzero=True, **kw),
    "rotate90": lambda **kw: Rotate(multiples=90, **kw),
    "reflect": lambda **kw: Reflect(**kw),
    "reflect-cols": lambda **kw: Reflect(dim=-1, **kw),
    "dihedral": lambda **kw: Dihedral(**kw),
    "shift*reflect": lambda rng=None, **kw: Shift(rng=rng, **kw) * Reflect(rng=rng),
    "dihedral*shift": lambda rng=None, **kw: Dihedral(rng=rng, **kw) * Shift(rng=rng),
    "Product(shift, reflect)": lambda per_sample=True, **kw: Product(
        Shift(per_sample=per_sample), Reflect(per_sample=per_sample), **kw
    ),
    "Product(dihedral, shift)": lambda per_sample=True, **kw: Product(
        Dihedral(per_sample=per_sample), Shift(per_sample=per_sample), **kw
    ),
}


def exact_transform(name: str, **options) -> GroupTransform:
    """A fresh instance of the zoo's transform ``name`` with the given GroupTransform options."""
    return EXACT_TRANSFORMS[name](**options)

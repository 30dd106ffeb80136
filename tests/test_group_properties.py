"""Property-based tests (hypothesis) of the group laws of our exact transforms.

Random image shapes, batch sizes, dtypes, copy counts and both parameter conventions (one
element per copy, one per sample); every law is checked to the last bit.
"""

from __future__ import annotations

import pytest
import torch
from conftest import distinct_image, exact_transform, seeded
from hypothesis import given, settings
from hypothesis import strategies as st

from deepinv_ei.transforms import Dihedral, Rotate, Shift

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)
DTYPES = [torch.float32, torch.float64, torch.int64]


NAMES = ["shift", "shift-nonzero", "rotate90", "reflect", "reflect-cols", "dihedral"]
NAMES += ["shift*reflect", "dihedral*shift"]


@st.composite
def cases(draw):
    name = draw(st.sampled_from(NAMES))
    square = name.startswith(("rotate", "dihedral"))
    # On 2-pixel axes a shift by 1 is a flip: products of shifts and flips need 3 pixels to
    # act faithfully.
    low = 3 if "*" in name else 2
    h = draw(st.integers(low, 7))
    w = h if square else draw(st.integers(low, 7))
    batch = draw(st.integers(1, 3))
    channels = draw(st.integers(1, 2))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    x = distinct_image((batch, channels, h, w), seed, dtype)
    options = {"n_trans": draw(st.integers(1, 3)), "per_sample": draw(st.booleans())}
    return exact_transform(name, rng=seeded(seed), **options), x


def _copies(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.repeat(n, *([1] * (x.ndim - 1)))


@SETTINGS
@given(cases())
def test_inverse_identity_and_permutation(case):
    T, x = case
    p = T.get_params(x)
    y = T.transform(x, **p)
    n = len(y) // len(x)
    assert len(y) == n * len(x) and y.dtype == x.dtype
    assert torch.equal(T.inverse(y, batchwise=False, **p), _copies(x, n))
    assert torch.equal(T.identity(x), _copies(x, n))
    # Each output is a pixel permutation of its source image.
    assert torch.equal(y.flatten(1).sort(1).values, _copies(x, n).flatten(1).sort(1).values)
    # The set of elements holds the identity exactly once (never for nonzero shifts).
    support = T.group_elements(tuple(x.shape[1:]))
    images = T.transform(x[:1], **support)
    identities = int((images == x[:1]).flatten(1).all(1).sum())
    assert identities == (0 if getattr(T, "nonzero", False) else 1)


@SETTINGS
@given(cases())
def test_per_sample_elements(case):
    T, x = case
    p = T.get_params(x)
    y = T.transform(x, **p)
    n = len(y) // len(x)
    for t in range(n):
        for b in range(len(x)):
            elem = {
                k: v[t : t + 1, b] if v.ndim > 1 + _trail(T, k) else v[t : t + 1]
                for k, v in p.items()
            }
            assert torch.equal(T.transform(x[b : b + 1], **elem)[0], y[t * len(x) + b])


def _trail(T, key: str) -> int:
    return len(T.param_spec[key])


@SETTINGS
@given(cases())
def test_closure_under_composition_and_inversion(case):
    T, x = case
    x1 = x[:1]
    support = T.group_elements(tuple(x.shape[1:]))
    all_images = T.transform(x1, **support).flatten(1)
    G = len(all_images)
    assert len(torch.unique(all_images, dim=0)) == G  # distinct elements act distinctly
    if getattr(T, "nonzero", False):
        return  # shifts without 0 are not closed; the whole group is tested by "shift"
    pg, ph = T.get_params(x1), T.get_params(x1)
    g = {k: v[:1] for k, v in pg.items()}
    h = {k: v[:1] for k, v in ph.items()}
    gh = T.transform(T.transform(x1, **g), **h).flatten(1)
    assert int((all_images == gh).all(1).sum()) == 1
    inv = T.inverse(x1, **g).flatten(1)
    assert int((all_images == inv).all(1).sum()) == 1


@SETTINGS
@given(
    st.integers(2, 7),
    st.integers(2, 7),
    st.lists(st.integers(-20, 20), min_size=4, max_size=4),
    st.sampled_from(DTYPES),
)
def test_shift_is_a_homomorphism_of_z_h_times_z_w(h, w, s, dtype):
    x = torch.arange(h * w).to(dtype).reshape(1, 1, h, w)
    T = Shift()
    a = T.transform(T.transform(x, y_shift=[s[0]], x_shift=[s[1]]), y_shift=[s[2]], x_shift=[s[3]])
    b = T.transform(x, y_shift=[s[0] + s[2]], x_shift=[s[1] + s[3]])
    assert torch.equal(a, b)
    assert torch.equal(a, torch.roll(x, (s[0] + s[2], s[1] + s[3]), (-2, -1)))


@SETTINGS
@given(st.integers(1, 6), st.integers(-8, 8), st.integers(-8, 8), st.sampled_from(DTYPES))
def test_quarter_turns_are_a_homomorphism_of_z4(n, k1, k2, dtype):
    x = torch.arange(n * n).to(dtype).reshape(1, 1, n, n)
    R = Rotate(multiples=90)
    a = R.transform(R.transform(x, theta=[90.0 * k1]), theta=[90.0 * k2])
    assert torch.equal(a, R.transform(x, theta=[90.0 * (k1 + k2)]))
    assert torch.equal(a, torch.rot90(x, k1 + k2, (-2, -1)))


@SETTINGS
@given(
    st.integers(2, 6), st.integers(0, 3), st.integers(0, 1), st.integers(0, 3), st.integers(0, 1)
)
def test_dihedral_multiplication_table(n, k1, f1, k2, f2):
    # (k2, f2)(k1, f1) = R^k2 F^f2 R^k1 F^f1 = R^(k2 + (-1)^f2 k1) F^(f1 + f2).
    x = torch.arange(n * n, dtype=torch.float64).reshape(1, 1, n, n)
    D = Dihedral()
    a = D.transform(D.transform(x, k=[k1], flip=[f1]), k=[k2], flip=[f2])
    k = (k2 + (-1) ** f2 * k1) % 4
    assert torch.equal(a, D.transform(x, k=[k], flip=[(f1 + f2) % 2]))
    inv = D.invert_params({"k": torch.tensor([k1]), "flip": torch.tensor([f1])})
    assert torch.equal(D.transform(D.transform(x, k=[k1], flip=[f1]), **inv), x)

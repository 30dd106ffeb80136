"""deepinv's transform arithmetic (``*``, ``+``, ``|``, symmetrize, identity) with our transforms,
alone and mixed with deepinv's."""

from __future__ import annotations

import deepinv as dinv
import pytest
import torch
from conftest import distinct_image, exact_transform, seeded
from deepinv.transform import Transform

from deepinv_ei.transforms import Product, Reflect, Rotate, Shift

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


# Exact group actions (pixel permutations), ours from the zoo and deepinv's.
OURS = {
    "Shift": lambda n=1: exact_transform("shift", n_trans=n, rng=seeded(1)),
    "Rotate90": lambda n=1: exact_transform("rotate90", n_trans=n, rng=seeded(2)),
    "Reflect": lambda n=1: exact_transform("reflect", n_trans=n, rng=seeded(3)),
    "Dihedral": lambda n=1: exact_transform("dihedral", n_trans=n, rng=seeded(4)),
    "Shift-shared": lambda n=1: exact_transform(
        "shift", n_trans=n, per_sample=False, rng=seeded(5)
    ),
}
THEIRS = {
    "dinv.Shift": lambda n=1: dinv.transform.Shift(n_trans=n, rng=seeded(6)),
    "dinv.Rotate90": lambda n=1: dinv.transform.Rotate(multiples=90, n_trans=n, rng=seeded(7)),
    "dinv.Reflect": lambda n=1: dinv.transform.Reflect(dim=[-1], n_trans=n, rng=seeded(8)),
}
ALL = {**OURS, **THEIRS}
KEYS = {"Shift": "shift", "Shift-shared": "shift", "dinv.Shift": "shift"}
KEYS |= {"Rotate90": "theta", "dinv.Rotate90": "theta", "Reflect": "dims", "dinv.Reflect": "dims"}


def _clash(a: str, b: str) -> bool:
    # deepinv's arithmetic merges parameter dicts, so two transforms with the same parameter
    # names cannot be combined unless both are ours (our Product prefixes the names).
    return (a in THEIRS or b in THEIRS) and KEYS.get(a, a) == KEYS.get(b, b)


PAIRS = [(a, b) for a in OURS for b in ALL] + [(a, b) for a in THEIRS for b in OURS]
PAIRS = [(a, b) for a, b in PAIRS if not _clash(a, b)]


def image(batch=2, c=2, n=8, time=None):
    return distinct_image((batch, c, n, n) if time is None else (batch, c, time, n, n))


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_composition_shapes_and_exact_identity(a, b):
    T = ALL[a](2) * ALL[b](3)
    assert T.n_trans == 6
    x = image(batch=1 if "dinv" in a + b else 2)
    y = T(x)
    assert y.shape == (6 * len(x), *x.shape[1:])
    # A permutation of each image: pixel multisets are kept.
    xs = x.repeat(6, 1, 1, 1)
    assert torch.equal(y.flatten(1).sort(1).values, xs.flatten(1).sort(1).values)
    assert torch.equal(T.identity(x), xs)
    assert torch.equal(T.identity(x, average=True), x)
    assert torch.equal(T.symmetrize(lambda v: v**2, average=True)(x), x**2)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_stack_and_choice(a, b):
    x = image(batch=2)
    S = ALL[a]() + ALL[b]()
    y = S(x)
    assert y.shape == (4, *x.shape[1:])
    assert torch.equal(S.identity(x), x.repeat(2, 1, 1, 1))
    E = ALL[a]() | ALL[b]()
    for _ in range(3):
        z = E(x)
        assert z.shape == x.shape
        assert torch.equal(E.identity(x), x)


def test_composition_with_fixed_parameters_is_the_composed_action():
    x = image(batch=2)
    # ours then deepinv's: shift, then flip the columns.
    T = Shift() * dinv.transform.Reflect(dim=[-1])
    y = T(x, x_shift=[1], y_shift=[2], dims=torch.tensor([[-1.0]]))
    assert torch.equal(y, torch.flip(torch.roll(x, (2, 1), (-2, -1)), (-1,)))
    # deepinv's then ours: quarter turn, then shift.
    T = dinv.transform.Rotate(multiples=90) * Shift()
    y = T(x, theta=[90.0], x_shift=[3])
    assert torch.equal(y, torch.roll(torch.rot90(x, 1, (-2, -1)), 3, -1))
    # Stack: first T1's copies, then T2's.
    S = Shift() + Reflect()
    y = S(x, x_shift=[1], dims=torch.tensor([[-2.0, float("nan")]]))
    assert torch.equal(y[:2], torch.roll(x, 1, -1)) and torch.equal(y[2:], torch.flip(x, (-2,)))
    # Choice: one of the two actions.
    E = Shift() | dinv.transform.Reflect(dim=[-1])
    y = E(x, x_shift=[1], y_shift=[0], dims=torch.tensor([[-1.0]]))
    assert torch.equal(y, torch.roll(x, 1, -1)) or torch.equal(y, torch.flip(x, (-1,)))


def test_product_has_deepinv_composition_layout():
    # Our Product and deepinv's composition give the same images for the same shared elements.
    x = image(batch=3)
    a = Shift(n_trans=2, per_sample=False, rng=seeded(0))
    b = Reflect(n_trans=3, per_sample=False, rng=seeded(1))
    ours = a * b
    assert isinstance(ours, Product) and ours.n_trans == 6
    theirs = Transform.__mul__(a, b)  # deepinv's ChainTransform of the same factors
    assert not isinstance(theirs, Product)
    p = ours.get_params(x)
    pa = {k: p[k][[0, 1]] for k in ("x_shift", "y_shift")}  # copy i2*2 + i1: i1 varies first
    pb = {"dims": p["dims"][[0, 2, 4]]}
    assert torch.equal(ours(x, **p), theirs(x, **pa, **pb))
    # ... with an exact inverse where deepinv's composition needs batchwise=False.
    y = ours(x, **p)
    assert torch.equal(ours.inverse(y, batchwise=False, **p), x.repeat(6, 1, 1, 1))


def test_per_sample_elements_inside_a_deepinv_composition():
    # deepinv's Scale first (n=1), then our per-sample Shift: image j gets element j mod B.
    x = image(batch=1)
    T = dinv.transform.Reflect(dim=[-1], n_trans=2) * Shift(n_trans=3)
    p = T.get_params(x)
    assert p["x_shift"].shape == (3, 1)
    y = T(x, **p)
    assert y.shape == (6, *x.shape[1:])
    assert torch.equal(T.identity(x, average=True), x)
    x4 = image(batch=4)
    T = dinv.transform.Shift(n_trans=2) * Reflect(n_trans=1)
    assert torch.equal(T.identity(x4), x4.repeat(2, 1, 1, 1))


def test_fourier_rotation_mixed_with_deepinv_is_inverted_to_rounding():
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64, generator=seeded(0))
    T = dinv.transform.Shift(n_trans=2) * Rotate(n_trans=2, rng=seeded(1))
    torch.testing.assert_close(T.identity(x), x.repeat(4, 1, 1, 1), atol=1e-10, rtol=0)
    T = Rotate(rng=seeded(1)) | dinv.transform.Reflect()
    torch.testing.assert_close(T.identity(x), x, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", sorted(OURS))
def test_video_input_and_symmetrize_without_collation(name):
    x = image(batch=2, time=3)
    T = OURS[name](2)
    y = T(x)
    assert y.shape == (4, *x.shape[1:])
    # The time axis is folded into the channels: every frame moves with the same element.
    p = T.get_params(x)
    frames = T(x, **p)
    for t in range(3):
        assert torch.equal(frames[:, :, t], T.transform(x[:, :, t], **p))
    assert torch.equal(T.identity(x, average=True), x)
    f = T.symmetrize(lambda v: 3 * v, average=True, collate_batch=False)
    assert torch.equal(f(x[:, :, 0]), 3 * x[:, :, 0])


def test_non_square_quarter_turns_follow_deepinv():
    x = torch.randn(2, 1, 6, 10, generator=seeded(0))
    ours, theirs = Rotate(multiples=90), dinv.transform.Rotate(multiples=90)
    for theta in (0.0, 90.0, 180.0, 270.0, -90.0):
        assert torch.equal(ours(x, theta=[theta]), theirs(x, theta=[theta]))
    # 0 and 180 degrees stay exact permutations, so their inverse is exact.
    p = {"theta": torch.tensor([[0.0, 180.0]])}
    assert torch.equal(ours.inverse(ours(x, **p), **p), x)
    # deepinv's constant_shape=False: quarter turns swap H and W exactly.
    grow = Rotate(multiples=90, constant_shape=False)
    assert torch.equal(grow(x, theta=[90.0]), torch.rot90(x, 1, (-2, -1)))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda g: Shift(n_trans=3, per_sample=False, rng=g), dinv.transform.Shift),
        (
            lambda g: Shift(shift_max=0.3, n_trans=2, per_sample=False, rng=g),
            lambda rng, n_trans=2: dinv.transform.Shift(shift_max=0.3, n_trans=n_trans, rng=rng),
        ),
        (
            lambda g: Rotate(multiples=90, n_trans=3, per_sample=False, rng=g),
            lambda rng, n_trans=3: dinv.transform.Rotate(multiples=90, n_trans=n_trans, rng=rng),
        ),
        (
            lambda g: Rotate(
                limits=30,
                positive=True,
                interpolation_mode="nearest",
                n_trans=2,
                per_sample=False,
                rng=g,
            ),
            lambda rng, n_trans=2: dinv.transform.Rotate(
                limits=30, positive=True, n_trans=n_trans, rng=rng, interpolation_mode="nearest"
            ),
        ),
        (
            lambda g: Reflect(dim=[-2, -1], n_trans=3, per_sample=False, rng=g),
            lambda rng, n_trans=3: dinv.transform.Reflect(dim=[-2, -1], n_trans=n_trans, rng=rng),
        ),
    ],
)
def test_shared_elements_are_deepinvs_draws(ours, theirs):
    # per_sample=False: the same generator calls as deepinv, so the same elements and images.
    x = image(batch=2, n=12).float()
    a = ours(seeded(11))
    b = theirs(rng=seeded(11), n_trans=a.n_trans)
    for _ in range(3):
        pa, pb = a.get_params(x), b.get_params(x)
        assert pa.keys() == pb.keys()
        for k in pa:
            torch.testing.assert_close(
                pa[k].float(), torch.as_tensor(pb[k]).float(), equal_nan=True, rtol=0, atol=0
            )
        torch.testing.assert_close(a(x, **pa), b(x, **pb), rtol=0, atol=0)

"""Group axioms, orthogonality, layout and error handling of deepinv_ei.transforms."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import odl
import pytest
import torch

import deepinv_ei
from deepinv_ei.odl import GroupElementOperator
from deepinv_ei.transforms import (
    TRANSFORMS,
    Dihedral,
    GroupTransform,
    Product,
    Reflect,
    Rotate,
    Shift,
)
from deepinv_ei.utils import dottest

NAN = float("nan")

# One exact instance per registry entry, with the parameters of its identity element.
EXACT = {
    "shift": (lambda **kw: Shift(**kw), {"y_shift": [0], "x_shift": [0]}),
    "rotate": (lambda **kw: Rotate(multiples=90, **kw), {"theta": [0.0]}),
    "reflect": (lambda **kw: Reflect(**kw), {"dims": [[NAN, NAN]]}),
    "dihedral": (lambda **kw: Dihedral(**kw), {"k": [0], "flip": [0]}),
}
EXACT["shift*reflect"] = (
    lambda **kw: Product(Shift(), Reflect(), **kw),
    {"y_shift": [0], "x_shift": [0], "dims": [[NAN, NAN]]},
)
EXACT["dihedral*shift"] = (
    lambda **kw: Product(Dihedral(), Shift(), **kw),
    {"k": [0], "flip": [0], "y_shift": [0], "x_shift": [0]},
)


def test_transforms_need_neither_odl_nor_astra():
    code = "import sys, deepinv_ei.transforms; assert not {'odl', 'astra'} & set(sys.modules)"
    root = Path(deepinv_ei.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root)


def test_registry_covers_exact_cases():
    assert set(TRANSFORMS) <= set(EXACT)
    for cls in TRANSFORMS.values():
        assert issubclass(cls, GroupTransform)


def _image(batch=3, c=2, n=6, seed=0, dtype=torch.float64):
    # Distinct pixel values, so a permutation is identified by its output.
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(batch * c * n * n, generator=g).to(dtype).reshape(batch, c, n, n)


def _one(params, i):
    return {k: v[i : i + 1] for k, v in params.items()}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_identity_element(name):
    make, ident = EXACT[name]
    T = make()
    x = _image(batch=1)
    assert torch.equal(T.transform(x, **ident), x)


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_inverse_and_orthogonality(name):
    make, _ = EXACT[name]
    T = make(n_trans=4, rng=torch.Generator().manual_seed(1))
    assert T.exact and T.orthogonal
    x = _image()
    p = T.get_params(x)
    y = T.transform(x, **p)
    assert y.shape == (4 * 3, *x.shape[1:])
    assert torch.equal(T.inverse(y, batchwise=False, **p), x.repeat(4, 1, 1, 1))
    # apply: the same action and its inverse, without deepinv's wrapping.
    assert T.normalise_params(p)[1:] == (4, 3)
    assert torch.equal(T.apply(x, p), y)
    assert torch.equal(T.apply(y, p, inverse=True, batchwise=False), x.repeat(4, 1, 1, 1))
    assert torch.equal(T.apply(y[3:6], p, inverse=True)[3:6], x)  # copy 1 undone by element 1
    # A permutation keeps the multiset of pixel values of each image.
    xs = x.repeat(4, 1, 1, 1)
    assert torch.equal(y.flatten(1).sort(dim=1).values, xs.flatten(1).sort(dim=1).values)
    # transform: (3, ...) -> (12, ...); its transpose sums the copies' transposes.
    dottest(
        lambda v: T.transform(v, **p),
        lambda w: T.adjoint(w, batchwise=False, **p).reshape(4, 3, 2, 6, 6).sum(0),
        (3, 2, 6, 6),
        dtype=torch.float64,
    )

    # Orthogonality: copy by copy, the inverse is the transpose of the forward action.
    def stacked_forward(v):
        return torch.cat([T.transform(c, **_one(p, i)) for i, c in enumerate(v.split(3))])

    dottest(
        stacked_forward,
        lambda w: T.inverse(w, batchwise=False, **p),
        (12, 2, 6, 6),
        dtype=torch.float64,
    )


@pytest.mark.parametrize("name", sorted(EXACT))
def test_closure_composition_is_an_element(name):
    make, _ = EXACT[name]
    T = make(n_trans=5, rng=torch.Generator().manual_seed(2))
    x = _image(batch=1)
    support = T.group_elements(tuple(x.shape[1:]))
    G = len(next(iter(support.values())))
    all_images = T.transform(x, **support)  # (G, C, H, W): every element applied to x
    assert len(torch.unique(all_images.flatten(1), dim=0)) == G  # elements act distinctly
    pg, ph = T.get_params(x), T.get_params(x)
    for i in range(5):
        gh = T.transform(T.transform(x, **_one(pg, i)), **_one(ph, i))
        hits = (all_images == gh).flatten(1).all(dim=1)
        assert int(hits.sum()) == 1
        # ... and its inverse is an element too.
        inv = T.inverse(x, **_one(pg, i))
        assert int((all_images == inv).flatten(1).all(dim=1).sum()) == 1


def test_group_orders():
    shape = (1, 6, 6)
    assert len(Shift().group_elements(shape)["x_shift"]) == 36
    assert len(Shift(nonzero=True).group_elements(shape)["x_shift"]) == 25
    assert len(Shift(shift_max=1 / 6).group_elements(shape)["x_shift"]) == 4  # {-1, 0}^2
    assert len(Rotate(multiples=90).group_elements(shape)["theta"]) == 4
    assert len(Reflect().group_elements(shape)["dims"]) == 4
    assert len(Reflect(dim=-1).group_elements(shape)["dims"]) == 2
    assert len(Dihedral().group_elements(shape)["k"]) == 8
    assert len(Product(Dihedral(), Shift()).group_elements(shape)["k"]) == 8 * 36


def test_associativity_of_product_factors():
    # (R D) S and R (D S), each computed as two steps, are the flattened product R D S.
    x = _image(batch=2)
    R, D, S = Reflect(), Dihedral(), Shift()
    flat = R * D * S
    assert [type(f) for f in flat.factors] == [Reflect, Dihedral, Shift]
    p = flat.get_params(x)
    left = S.transform((R * D).transform(x, **p), **p)
    right = (D * S).transform(R.transform(x, **p), **p)
    stepwise = S.transform(D.transform(R.transform(x, **p), **p), **p)
    assert torch.equal(left, stepwise) and torch.equal(right, stepwise)
    assert torch.equal(flat.transform(x, **p), stepwise)
    assert not torch.equal(stepwise, R.transform(D.transform(S.transform(x, **p), **p), **p))
    assert torch.equal(flat.inverse(stepwise, **p), x)


def test_dihedral_relations():
    x = _image(batch=1)

    def el(k, f):
        return {"k": torch.tensor([k]), "flip": torch.tensor([f])}

    D = Dihedral()
    flip = D.transform(x, **el(0, 1))
    rot = D.transform(x, **el(1, 0))
    assert torch.equal(flip, torch.flip(x, (-1,)))
    assert torch.equal(rot, torch.rot90(x, 1, (-2, -1)))
    # F R F = R^{-1}
    frf = D.transform(D.transform(D.transform(x, **el(0, 1)), **el(1, 0)), **el(0, 1))
    assert torch.equal(frf, D.transform(x, **el(3, 0)))


def test_per_sample_parameters_and_stacking_order():
    T = Shift(n_trans=2, rng=torch.Generator().manual_seed(3))
    x = _image(batch=8)
    p = T.get_params(x)
    assert p["x_shift"].shape == (2, 8)  # (n_trans, B): one element per output image
    pairs = torch.stack([p["y_shift"].flatten(), p["x_shift"].flatten()], 1)
    assert len(torch.unique(pairs, dim=0)) > 4
    y = T.transform(x, **p)
    for t in range(2):
        for b in range(8):
            single = T.transform(x[b : b + 1], **{k: v[t, b] for k, v in p.items()})
            assert torch.equal(y[t * 8 + b], single[0])
    # Same layout as deepinv's x.repeat(n_trans, 1, 1, 1).
    ident = {"y_shift": torch.zeros(2, 8, dtype=torch.long), "x_shift": [[0] * 8] * 2}
    assert torch.equal(T.transform(x, **ident), x.repeat(2, 1, 1, 1))
    # deepinv's convention: one element per copy, shared by the batch.
    shared = Shift(n_trans=2, per_sample=False, rng=torch.Generator().manual_seed(3))
    q = shared.get_params(x)
    assert q["x_shift"].shape == (2,)
    z = shared.transform(x, **q)
    for t in range(2):
        roll = torch.roll(x, (int(q["y_shift"][t]), int(q["x_shift"][t])), (-2, -1))
        assert torch.equal(z[t * 8 : (t + 1) * 8], roll)
    # Per-sample parameters with K dividing the batch: image j gets element j mod K.
    w = Shift().transform(x, x_shift=[[0, 1]])
    assert torch.equal(w[0::2], x[0::2]) and torch.equal(w[1::2], torch.roll(x[1::2], 1, -1))


def test_determinism_given_seed():
    x = _image(batch=4)
    for name, (make, _) in EXACT.items():
        p1 = make(n_trans=3, rng=torch.Generator().manual_seed(7)).get_params(x)
        p2 = make(n_trans=3, rng=torch.Generator().manual_seed(7)).get_params(x)
        assert p1.keys() == p2.keys(), name
        for k in p1:
            torch.testing.assert_close(p1[k], p2[k], equal_nan=True, rtol=0, atol=0)


def test_shift_options():
    x = _image(batch=64, c=1, n=8)
    p = Shift(nonzero=True, rng=torch.Generator().manual_seed(0)).get_params(x)
    assert bool((p["x_shift"] % 8 != 0).all()) and bool((p["y_shift"] % 8 != 0).all())
    p = Shift(shift_max=0.25, rng=torch.Generator().manual_seed(0)).get_params(x)
    assert set(p["x_shift"].flatten().tolist()) == {-2, -1, 0, 1}  # deepinv's [-m, m)
    y = Shift().transform(x[:1], y_shift=[1], x_shift=[-2])
    assert torch.equal(y, torch.roll(x[:1], (1, -2), (-2, -1)))


def test_rotate_c4_matches_rot90_and_non_square_180():
    x = _image(batch=1)
    R = Rotate(multiples=90)
    for k in range(4):
        y = R.transform(x, theta=torch.tensor([90.0 * k]))
        assert torch.equal(y, torch.rot90(x, k, (-2, -1)))
    rect = torch.randn(1, 1, 4, 6)
    assert torch.equal(
        Rotate(angles=[180]).transform(rect, theta=[180.0]), torch.rot90(rect, 2, (-2, -1))
    )


def test_fourier_rotation_is_orthogonal_with_exact_inverse():
    T = Rotate(nonzero=True, n_trans=3, rng=torch.Generator().manual_seed(0))
    assert T.orthogonal and not T.exact
    for n in (16, 15):  # even size (Nyquist bin) and odd size
        x = torch.randn(2, 1, n, n, dtype=torch.float64)
        p = T.get_params(x)
        y = T.transform(x, **p)
        assert torch.allclose(
            y.flatten(1).norm(dim=1), x.repeat(3, 1, 1, 1).flatten(1).norm(dim=1), rtol=1e-12
        )
        assert torch.allclose(T.inverse(y, batchwise=False, **p), x.repeat(3, 1, 1, 1), atol=1e-12)
        dottest(
            lambda v, p=p: T.transform(v, **p),
            lambda w, p=p, n=n: T.inverse(w, batchwise=False, **p).reshape(3, 2, 1, n, n).sum(0),
            (2, 1, n, n),
            dtype=torch.float64,
        )


def test_fourier_rotation_agrees_with_interpolation_inside_disc():
    # A smooth blob inside the disc: all modes must agree on where it goes.
    n = 32
    u = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    uu, vv = torch.meshgrid(u, u, indexing="ij")
    x = torch.exp(-((uu - 6) ** 2 + (vv - 2) ** 2) / 8)[None, None]
    theta = torch.tensor([37.0])
    f = Rotate().transform(x, theta=theta)
    b = Rotate(interpolation_mode="bicubic").transform(x, theta=theta)
    assert (f - b).norm() / b.norm() < 0.02
    assert (f - x).norm() / x.norm() > 0.5  # it did move


def test_continuous_rotation_measured_norm_loss_bounds():
    # Documented figures (docs/transforms.md): fourier ~0, bilinear ~4.5% at 30 deg on a disc image.
    n = 32
    u = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
    uu, vv = torch.meshgrid(u, u, indexing="ij")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, n, n, generator=g) * ((uu**2 + vv**2) < (n / 2 - 2) ** 2)
    theta = torch.arange(1.0, 360.0, 7.0)
    xs = x.repeat(len(theta), 1, 1, 1)
    loss = {}
    for mode in ("fourier", "bilinear"):
        y = Rotate(interpolation_mode=mode).transform(xs, theta=theta[None])
        loss[mode] = (1 - y.flatten(1).norm(dim=1) / x.norm()).abs().max().item()
    assert loss["fourier"] < 1e-5
    assert loss["bilinear"] > 0.02  # white noise is what bilinear smoothing hurts most


def test_bilinear_rotation_transpose_by_autograd():
    T = Rotate(interpolation_mode="bilinear", n_trans=2, rng=torch.Generator().manual_seed(0))
    assert not T.orthogonal
    x = torch.randn(1, 1, 8, 10, dtype=torch.float64)  # non-square is fine here
    p = T.get_params(x)
    dottest(
        lambda v: T.transform(v, **p),
        lambda w: T.adjoint(w, batchwise=False, **p).reshape(2, 1, 1, 8, 10).sum(0),
        (1, 1, 8, 10),
        dtype=torch.float64,
    )


@pytest.mark.parametrize("name", sorted(EXACT))
def test_odl_operator_matches_torch(name):
    make, _ = EXACT[name]
    T = make(rng=torch.Generator().manual_seed(5))
    space = odl.uniform_discr([-1, -1], [1, 1], (6, 6))
    x = _image(batch=1, c=1)
    p = T.get_params(x)
    op = GroupElementOperator(T, space, p)
    assert op.is_linear and op.domain == space and op.range == space
    x_odl = space.element(x[0, 0].numpy())
    np.testing.assert_array_equal(op(x_odl).asarray(), T.transform(x, **p)[0, 0].numpy())
    np.testing.assert_array_equal(op.adjoint(op(x_odl)).asarray(), x[0, 0].numpy())
    np.testing.assert_array_equal(op.inverse(op(x_odl)).asarray(), x[0, 0].numpy())
    # ODL's weighted inner product: <T x, y> = <x, T^* y>.
    y_odl = space.element(np.random.default_rng(0).standard_normal((6, 6)))
    assert np.isclose(op(x_odl).inner(y_odl), x_odl.inner(op.adjoint(y_odl)), rtol=1e-12)


def test_odl_operator_continuous_rotation_adjoint():
    space = odl.uniform_discr([-1, -1], [1, 1], (8, 8))
    rng = np.random.default_rng(0)
    x, y = (space.element(rng.standard_normal((8, 8))) for _ in range(2))
    for mode in ("fourier", "bilinear"):
        op = GroupElementOperator(Rotate(interpolation_mode=mode), space, {"theta": 23.0})
        assert np.isclose(op(x).inner(y), x.inner(op.adjoint(y)), rtol=1e-10)


def test_deepinv_ei_loss_and_symmetrize_accept_our_transforms():
    import deepinv as dinv

    T = Shift(n_trans=2, rng=torch.Generator().manual_seed(0))
    physics = dinv.physics.Inpainting(
        img_size=(1, 8, 8), mask=0.6, rng=torch.Generator().manual_seed(0)
    )
    x = torch.randn(3, 1, 8, 8)

    def model(y, physics):
        return physics.A_adjoint(y)

    loss = dinv.loss.EILoss(T)(x_net=model(physics.A(x), physics), physics=physics, model=model)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert torch.equal(T.identity(x, average=True), x)
    sym = T.symmetrize(lambda v: 2 * v)(x)
    assert torch.equal(sym, 2 * x.repeat(2, 1, 1, 1))
    # deepinv steps through every combination of parameter rows when collate_batch=False.
    sym = T.symmetrize(lambda v: 2 * v, average=True, collate_batch=False)(x)
    assert torch.equal(sym, 2 * x)


def test_product_parameters_and_errors():
    P = Shift() * Shift()
    assert set(P.param_spec) == {"0_y_shift", "0_x_shift", "1_y_shift", "1_x_shift"}
    assert (Shift(n_trans=2) * Reflect(n_trans=3)).n_trans == 6
    with pytest.raises(TypeError, match="GroupTransform"):
        Product(Shift(), lambda x: x)
    with pytest.raises(ValueError, match="two factors"):
        Product(Shift())


def test_bad_inputs_raise_clear_errors():
    x = torch.randn(2, 1, 6, 6)
    with pytest.raises(ValueError, match="n_trans"):
        Shift(n_trans=0)
    with pytest.raises(ValueError, match="4D"):
        Shift()(torch.randn(6, 6))
    with pytest.raises(TypeError, match="torch.Tensor"):
        Shift()(np.zeros((1, 1, 6, 6)))
    with pytest.raises(ValueError, match="square"):
        Dihedral()(torch.randn(1, 1, 4, 6))
    with pytest.raises(ValueError, match="not invertible on non-square"):
        Rotate(multiples=90).group_elements((1, 4, 6))
    with pytest.raises(ValueError, match=r"must have shape \(N\) or \(N, K\)"):
        Shift().transform(x, y_shift=torch.zeros(2, 2, 2, dtype=torch.long))
    with pytest.raises(
        ValueError, match="3 elements per copy, which does not divide the batch of 2"
    ):
        Shift().transform(x, x_shift=[[1, 2, 3]])
    with pytest.raises(ValueError, match="expects parameters"):
        Shift().transform(x, theta=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"'dims' of Reflect must have shape \(N, 2\)"):
        Reflect().transform(x, dims=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="Shift offsets must be integers"):
        Shift().transform(x, x_shift=[0.5])
    with pytest.raises(ValueError, match="theta must be finite"):
        Rotate().transform(x, theta=[float("nan")])
    with pytest.raises(ValueError, match="interpolation_mode must be"):
        Rotate(interpolation_mode="lanczos")
    with pytest.raises(TypeError, match="Generator"):
        Shift(rng=0)
    with pytest.raises(TypeError, match="GroupTransform"):
        GroupElementOperator(lambda v: v, odl.uniform_discr([0, 0], [1, 1], (4, 4)), {})
    with pytest.raises(TypeError, match="uniform_discr"):
        GroupElementOperator(Shift(), odl.rn(4), {"y_shift": 0, "x_shift": 0})
    with pytest.raises(ValueError, match="ONE group element"):
        GroupElementOperator(
            Shift(),
            odl.uniform_discr([0, 0], [1, 1], (4, 4)),
            {"y_shift": [0, 1], "x_shift": [0, 1]},
        )


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Shift(max_shift=1), TypeError, "unexpected keyword argument 'max_shift'"),
        (lambda: Rotate(interpolation="bilinear"), TypeError, "unexpected keyword argument"),
        (lambda: Reflect(dims=(-1,)), TypeError, "unexpected keyword argument 'dims'"),
        (lambda: Dihedral(angle=3), TypeError, "unexpected keyword argument 'angle'"),
        (lambda: Shift(1), TypeError, "keyword arguments only"),
        (lambda: Shift(shift_max=float("nan")), ValueError, "shift_max must be finite, got nan"),
        (lambda: Shift(shift_max=-0.5), ValueError, r"shift_max must be >= 0.0, got -0.5"),
        (lambda: Shift(shift_max="1"), TypeError, "shift_max must be a real number, got str"),
        (lambda: Shift(nonzero=1), TypeError, "nonzero must be a bool"),
        (lambda: Rotate(limits=float("inf")), ValueError, "limits must be finite, got inf"),
        (lambda: Rotate(multiples=0), ValueError, "must be > 0"),
        (lambda: Rotate(angles=[1.0, float("nan")]), ValueError, "finite numbers"),
        (lambda: Rotate(multiples=360, nonzero=True), ValueError, "no angle left"),
        (lambda: Rotate(per_sample=True, constant_shape=False), ValueError, "per_sample=False"),
        (lambda: Reflect(dim=[-1, -1]), ValueError, "distinct integer axes"),
        (lambda: Reflect(dim=1.5), TypeError, "int or a list of ints"),
        (lambda: Shift(per_sample="yes"), TypeError, "per_sample must be a bool"),
        (lambda: Product(Shift(), Reflect(), n_trans=0), ValueError, "n_trans must be an integer"),
    ],
)
def test_constructors_reject_bad_options(make, error, message):
    with pytest.raises(error, match=message):
        make()

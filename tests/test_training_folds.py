"""k-fold validation on sets without held-out views: the fold's views never reach training,
the fold score is the held-out-view score of the same views held out at ingest, the refit is a
bundle of the full scanner, and bad options are clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import single_thread
from learning_sets import parallel_spec, phantoms, write_set

from deepinv_ei.cli import main
from deepinv_ei.scan import ray_transform_from_spec
from deepinv_ei.training import (
    CHECKPOINT,
    PRIMARY_SCORE,
    LearnConfig,
    load_bundle,
    load_checkpoint,
    reconstruct,
    sweep,
    train,
)
from deepinv_ei.training.folds import ViewFold, fold_physics, resolve_view_fold
from deepinv_ei.training.sets import open_measurement_set

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py

TINY = {"epochs": 2, "minutes": None, "width": 4, "scales": 2, "batch_size": 2, "n_trans": 1}
N_VIEWS = 12


def all_views_set(path: Path, **kw) -> Path:
    """8 slices of 24², 12 views over 180 degrees, every view kept (none held out)."""
    write_set(path, phantoms(8, 24, seed=5), n_views=N_VIEWS, keep_every=1, **kw)
    return path


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    return all_views_set(tmp_path_factory.mktemp("folds") / "all_views.h5")


@pytest.fixture(scope="module")
def run(scan):
    out = scan.parent / "run"
    with single_thread():
        summary = train(scan, out, verbose=False, view_folds=3, fold=1, **TINY)
    return out, summary


def perturbed_copy(scan: Path, to: Path, fold: ViewFold, splits: tuple[str, ...]) -> Path:
    """``scan`` with the fold's views of the slices of ``splits`` replaced by other values."""
    to.write_bytes(scan.read_bytes())
    rng = np.random.default_rng(1)
    with h5py.File(to, "r+") as f:
        for split in splits:
            y = f[f"y_{split}"][()]
            rows = fold.held
            y[:, :, rows] = rng.uniform(0, 10, y[:, :, rows].shape).astype(np.float32)
            f[f"y_{split}"][...] = y
    return to


def weights(checkpoint: Path) -> dict:
    return load_checkpoint(checkpoint)["state_dict"]


# ----------------------------------------------------------------------------- the split


def test_a_fold_holds_out_every_kth_view_and_weights_the_others():
    fold = ViewFold(12, 5, 2)
    assert fold.held.tolist() == [2, 7]
    assert sorted(fold.held.tolist() + fold.kept.tolist()) == list(range(12))
    # each training view stands for half of the gaps on either side, cyclically
    assert fold.weights().tolist() == [1, 1.5, 1.5, 1, 1, 1.5, 1.5, 1, 1, 1]
    for k, f in [(2, 0), (3, 1), (5, 4), (12, 11)]:
        assert ViewFold(12, k, f).weights().sum() == 12
    assert ViewFold(12, 2, 1).weights().tolist() == [2.0] * 6
    folds = [ViewFold(12, 5, f).held for f in range(5)]
    assert sorted(np.concatenate(folds).tolist()) == list(range(12))  # the folds partition


def test_the_fold_physics_is_the_full_scanner_restricted_to_its_views():
    spec = parallel_spec(24, np.linspace(0, np.pi, N_VIEWS, endpoint=False))
    full = ray_transform_from_spec(spec)
    x = torch.from_numpy(phantoms(2, 24))[:, None]
    y = full.A(x)
    for k, f in [(2, 1), (3, 0), (5, 2)]:
        fold = ViewFold(N_VIEWS, k, f)
        train_physics, held_physics = fold_physics(spec, full, fold)
        y_train, y_held = fold.split(y)
        assert torch.equal(train_physics.A(x), y_train)
        assert torch.equal(held_physics.A(x), y_held)
        assert abs(float(train_physics.adjointness_test(x))) < 1e-5
    # K = 2: the weighted FBP is the FBP of the evenly spaced training views themselves
    fold = ViewFold(N_VIEWS, 2, 1)
    train_physics, _ = fold_physics(spec, full, fold)
    own = ray_transform_from_spec(spec.select_views(fold.kept))
    y_train = fold.split(y)[0]
    torch.testing.assert_close(train_physics.A_dagger(y_train), own.A_dagger(y_train))


# ----------------------------------------------------------------------------- the options


@pytest.mark.parametrize(
    "settings,message",
    [
        (
            {"view_folds": 1},
            r"view_folds: expected 0 \(no folds\), None \(automatic\) or an integer >= 2, got 1",
        ),
        ({"view_folds": -2}, "view_folds: expected"),
        ({"view_folds": 2.0}, "view_folds: expected"),
        ({"fold": -1}, r"fold: expected an integer >= 0, got -1"),
        ({"fold": 5}, r"fold: expected an integer from 0 to 4 \(view_folds=5\), got 5"),
        ({"view_folds": 3, "fold": 3}, r"from 0 to 2 \(view_folds=3\), got 3"),
        ({"view_folds": 0, "fold": 1}, r"fold: expected 0 with view_folds=0"),
    ],
)
def test_bad_fold_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        LearnConfig(**settings)


@pytest.mark.parametrize(
    "args,message",
    [
        (
            (13, 0, 12, 0),
            r"view_folds: expected an integer from 2 to the set's 12 kept views, got 13",
        ),
        ((2, 0, 3, 0), r"leaves 1 for training; expected at least 2"),
        ((3, 0, 12, 6), r"the set has 6 views held out at ingest"),
    ],
)
def test_a_split_that_does_not_fit_the_set_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        resolve_view_fold(*args)


def test_automatic_folds_only_without_held_out_views():
    assert resolve_view_fold(None, 0, 18, 0) == ViewFold(18, 5, 0)
    assert resolve_view_fold(None, 2, 4, 0) == ViewFold(4, 4, 2)  # at most one fold per view
    assert resolve_view_fold(None, 0, 18, 6) is None  # the held-out views score
    assert resolve_view_fold(0, 0, 18, 0) is None


def test_train_refuses_folds_before_touching_the_folder(tmp_path, scan):
    held = tmp_path / "held.h5"
    write_set(held, phantoms(4, 24, seed=5), n_views=6, keep_every=2)
    with pytest.raises(ValueError, match="views held out at ingest"):
        train(held, tmp_path / "a", verbose=False, view_folds=3, **TINY)
    with pytest.raises(ValueError, match="got 13"):
        train(scan, tmp_path / "b", verbose=False, view_folds=13, **TINY)
    with pytest.raises(ValueError, match="view_folds=0"):
        sweep(scan, tmp_path / "c", [0.0, 1.0], verbose=False, view_folds=0, **TINY)
    assert not any((tmp_path / n).exists() for n in "abc")


def test_command_line_errors_name_expected_and_got(scan, tmp_path, capsys):
    base = ["train", str(scan), "--out", str(tmp_path / "r"), "--quiet"]
    assert main(base + ["--view-folds", "1"]) == 2
    assert "view_folds: expected 0 (no folds), None (automatic) or an integer >= 2, got 1" in (
        capsys.readouterr().err
    )
    assert main(base + ["--view-folds", "3", "--fold", "3"]) == 2
    assert "fold: expected an integer from 0 to 2 (view_folds=3), got 3" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- the properties


def test_the_fold_views_never_reach_training(scan, tmp_path):
    """Other values at the fold's views: of the training slices, nothing changes; of every
    slice, the training is still bit-identical and only the fold score differs."""
    fold = ViewFold(N_VIEWS, 3, 1)
    settings = {"view_folds": 3, "fold": 1, **TINY}
    runs = {}
    for name, splits in [("same", ()), ("train", ("train",)), ("all", ("train", "test"))]:
        data = perturbed_copy(scan, tmp_path / f"{name}.h5", fold, splits)
        runs[name] = train(data, tmp_path / name, verbose=False, refit=False, **settings)
    ckp = {name: weights(tmp_path / name / "fold" / "checkpoints" / CHECKPOINT) for name in runs}
    for name in ("train", "all"):
        assert runs[name]["loss"] == runs["same"]["loss"]
        assert all(torch.equal(ckp[name][k], v) for k, v in ckp["same"].items())
    strip = ("train_seconds",)
    history = [{k: v for k, v in r.items() if k not in strip} for r in runs["same"]["history"]]
    assert [
        {k: v for k, v in r.items() if k not in strip} for r in runs["train"]["history"]
    ] == history
    assert runs["train"]["scores"] == runs["same"]["scores"]
    assert runs["all"]["scores"][PRIMARY_SCORE] != runs["same"]["scores"][PRIMARY_SCORE]
    assert not (tmp_path / "same" / "bundle.json").exists()  # refit=False: the fold run only


def test_the_fold_score_is_the_held_out_view_score_of_the_same_views(scan, tmp_path):
    """The odd views held out by fold 1 of 2, or held out at ingest: the same training, the
    same scores."""
    ingested = tmp_path / "ingested.h5"
    write_set(ingested, phantoms(8, 24, seed=5), n_views=N_VIEWS // 2, keep_every=2)
    assert open_measurement_set(ingested).heldout_angles.tolist() == pytest.approx(
        np.linspace(0, np.pi, N_VIEWS, endpoint=False)[1::2].tolist()
    )
    by_fold = train(
        scan, tmp_path / "fold", verbose=False, refit=False, view_folds=2, fold=1, **TINY
    )
    by_ingest = train(ingested, tmp_path / "ingest", verbose=False, **TINY)
    for key in ("fbp_scores", "scores"):
        assert by_fold[key].keys() == by_ingest[key].keys()
        for name, value in by_ingest[key].items():
            assert by_fold[key][name] == pytest.approx(value, rel=1e-6), (key, name)
    assert by_fold["best_epoch"] == by_ingest["best_epoch"]
    for name, losses in by_ingest["loss"].items():
        assert by_fold["loss"][name] == pytest.approx(losses, rel=1e-6)
    for a, b in zip(by_fold["history"], by_ingest["history"], strict=True):
        assert a[PRIMARY_SCORE] == pytest.approx(b[PRIMARY_SCORE], rel=1e-6)


def test_the_refit_bundle_fits_the_full_scanner_and_records_the_fold(run, scan, tmp_path):
    out, summary = run
    mset = open_measurement_set(scan)
    bundle = load_bundle(out)
    assert bundle.spec_hash == mset.spec_hash and bundle.spec == mset.spec.to_dict()
    fold_run = json.loads((out / "fold" / "scores.json").read_text())
    v = bundle.validation
    assert v["kind"] == "view_folds" and v["refit"] is True
    assert (v["view_folds"], v["fold"], v["held_views"]) == (3, 1, [1, 4, 7, 10])
    assert v["held_angles"] == pytest.approx(mset.spec.angles[[1, 4, 7, 10]].tolist())
    assert v["fold_scores"] == fold_run["scores"] and v["best_epoch"] == fold_run["best_epoch"]
    assert summary["validation"] == v and summary["select"] == PRIMARY_SCORE
    # the refit trained the chosen epochs on every view, and its scores need no held-out views
    history = json.loads((out / "checkpoints" / "history.json").read_text())["history"]
    assert history[-1]["epoch"] == fold_run["best_epoch"] == summary["best_epoch"]
    assert PRIMARY_SCORE not in bundle.scores and "mc_residual" in bundle.scores
    assert load_checkpoint(out / "checkpoints" / CHECKPOINT)["metadata"]["refit_of"]["fold"] == 1
    reconstruct(out, scan, tmp_path / "recon.npy", progress=False)
    volume = np.load(tmp_path / "recon.npy")
    assert volume.shape == (8, 24, 24)
    assert np.array_equal(volume[mset.val_slices], np.load(out / "validation.npy"))


def test_resume_continues_in_the_phase_that_was_killed(run, tmp_path):
    out, summary = run
    weights_file = (out / "model.pth").read_bytes()
    settings = {"view_folds": 3, "fold": 1, **TINY}
    scan = Path(load_bundle(out).training_set["path"])
    killed = tmp_path / "killed"
    # killed in the refit, before its bundle: the fold run is not repeated
    shutil.copytree(out, killed)
    (killed / "bundle.json").unlink()
    fold_checkpoint = (killed / "fold" / "checkpoints" / CHECKPOINT).stat().st_mtime_ns
    again = train(scan, killed, verbose=False, resume=True, **settings)
    assert (killed / "model.pth").read_bytes() == weights_file
    assert (killed / "fold" / "checkpoints" / CHECKPOINT).stat().st_mtime_ns == fold_checkpoint
    assert again["validation"] == summary["validation"]
    # killed in the fold run, before it was complete: both phases continue
    shutil.rmtree(killed)
    shutil.copytree(out, killed)
    for name in ("bundle.json", "scores.json", "checkpoints", "fold/scores.json"):
        path = killed / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    again = train(scan, killed, verbose=False, resume=True, **settings)
    assert (killed / "model.pth").read_bytes() == weights_file
    with pytest.raises(ValueError, match="another configuration"):
        (killed / "bundle.json").unlink()
        train(scan, killed, verbose=False, resume=True, **{**settings, "lr": 1e-3})


def test_automatic_folds_and_the_command_line(scan, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["train", str(scan), "--out", str(out), "--epochs", "1", "--width", "4",
            "--minutes", "5", "--fold", "4"]  # fmt: skip
    assert main(args) == 0
    log = capsys.readouterr().out
    assert "no held-out views: scoring on fold 4 of a 5-fold split of the 12 kept views" in log
    assert load_bundle(out).validation["held_views"] == [4, 9]
    off = tmp_path / "off"
    assert main(["train", str(scan), "--out", str(off), "--epochs", "1", "--width", "4",
                 "--view-folds", "0", "--quiet"]) == 0  # fmt: skip
    assert load_bundle(off).validation == {
        "kind": "none", "heldout_views": 0, "select": None, "best_epoch": 1, "refit": False,
    }  # fmt: skip
    assert not (off / "fold").exists()


def test_sweep_without_held_out_views_selects_by_the_fold_and_refits(scan, tmp_path):
    out = tmp_path / "sweep"
    result = sweep(scan, out, [0.0, 10.0], verbose=False, view_folds=4, **TINY)
    scores = {a: s[PRIMARY_SCORE] for a, s in result["scores"].items()}
    assert result["selected_alpha"] == float(min(scores, key=scores.get))
    bundle = load_bundle(out)
    assert bundle.alpha == result["selected_alpha"]
    assert bundle.spec_hash == open_measurement_set(scan).spec_hash
    assert bundle.validation["kind"] == "view_folds" and bundle.validation["view_folds"] == 4
    chosen = f"{result['selected_alpha']:g}"
    assert bundle.validation["fold_scores"] == result["scores"][chosen]
    for a in ("0", "10"):  # the fold runs only: one refit, of the selected alpha
        assert sorted(p.name for p in (out / f"alpha_{a}").iterdir()) == ["fold"]
    assert json.loads((out / "sweep.json").read_text())["validation"] == bundle.validation


def test_the_budget_bounds_the_fold_run_and_the_refit_together(scan, tmp_path):
    out = tmp_path / "budget"
    settings = {**TINY, "epochs": 10_000, "minutes": 0.05}
    with single_thread():
        summary = train(scan, out, verbose=False, view_folds=3, **settings)
    fold = json.loads((out / "fold" / "scores.json").read_text())
    assert fold["stop"] == "time budget of 0.025 min"  # half of it
    refit = summary["validation"]
    assert 1 <= refit["refit_epochs"] <= refit["best_epoch"] == fold["best_epoch"]
    if refit["refit_epochs"] < refit["best_epoch"]:  # stopped by the rest of the budget
        assert summary["stop"].startswith("time budget of")

"""train -> bundle -> reconstruct: fresh-process reproduction, output formats, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import single_thread
from learning_sets import phantoms, write_set

from deepinv_ei.cli import main
from deepinv_ei.scan import ScannerSpec
from deepinv_ei.training import (
    PRIMARY_SCORE,
    BundleError,
    ScannerMismatch,
    load_bundle,
    reconstruct,
    sweep,
    train,
)
from deepinv_ei.training.sets import all_slices, open_measurement_set

TINY = {"epochs": 2, "minutes": None, "width": 4, "scales": 2, "batch_size": 2, "n_trans": 1}
VAL = np.array([2, 5])  # validation slices inside the volume, to check the slice order


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("learn")
    path = folder / "set.h5"
    write_set(path, phantoms(8, 24, seed=5), n_views=6, keep_every=2, val=VAL)
    return path


@pytest.fixture(scope="module")
def run(scan):
    out = scan.parent / "run"
    with single_thread():
        train(scan, out, verbose=False, alpha=1.0, **TINY)
    return out


def test_the_bundle_holds_what_reconstruction_needs(run, scan):
    bundle = load_bundle(run)
    mset = open_measurement_set(scan)
    assert bundle.spec_hash == mset.spec_hash and bundle.spec == mset.spec.to_dict()
    assert bundle.training_set["sha256"] == mset.sha256
    assert bundle.alpha == 1.0 and bundle.transform == {"name": "rotate", "n_trans": 1}
    assert bundle.architecture["kwargs"]["width"] == 4
    assert set(bundle.scores) >= {PRIMARY_SCORE, "mc_residual", "equivariance_error"}
    assert bundle.scaling.scale > 0 and "torch" in bundle.versions
    summary = json.loads((run / "scores.json").read_text())
    assert len(summary["history"]) == 2 and (run / "scores.png").stat().st_size > 0
    assert summary["scores"] == bundle.scores


@pytest.mark.slow  # a fresh interpreter imports torch, ODL and ASTRA
def test_fresh_process_reproduces_validation_bit_for_bit(run, scan, tmp_path):
    out = tmp_path / "recon.npy"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    code = (
        "import sys, torch; torch.set_num_threads(1); "
        "from deepinv_ei.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "reconstruct", str(run), str(scan), "--out", str(out),
         "--quiet"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    volume = np.load(out)
    assert volume.dtype == np.float32 and volume.shape == (8, 24, 24)
    assert np.array_equal(volume[VAL], np.load(run / "validation.npy"))


def test_reconstruction_keeps_the_slice_order_and_units(run, scan, tmp_path):
    out = tmp_path / "recon.h5"
    reconstruct(run, scan, out, fbp=True, progress=False)
    mset = open_measurement_set(scan)
    y, order = all_slices(mset)
    assert list(order) == list(range(8))
    physics = mset.physics()
    model = load_bundle(run).build_model()
    with h5py.File(out) as f:
        recon, fbp = f["recon"][()], f["fbp"][()]
    with torch.no_grad():
        expected = model(y, physics)[:, 0].numpy()
    np.testing.assert_allclose(recon, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(fbp, physics.A_dagger(y)[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    # physical units: the network output is rescaled, so it is close to FBP, not to G's input
    assert np.abs(recon - fbp).max() < 0.5 * np.abs(fbp).max()


def test_tiff_folder_output(run, scan, tmp_path):
    import tifffile

    out = tmp_path / "tiffs"
    reconstruct(run, scan, out, fbp=True, progress=False)
    files = sorted(out.glob("*.tif"))
    assert [f.name for f in files[:2]] == ["slice_00000.tif", "slice_00001.tif"] and len(files) == 8
    assert len(list((out / "fbp").glob("*.tif"))) == 8
    reconstruct(run, scan, tmp_path / "r.npy", progress=False)
    np.testing.assert_array_equal(tifffile.imread(files[3]), np.load(tmp_path / "r.npy")[3])
    with pytest.raises(FileExistsError, match="overwrite"):
        reconstruct(run, scan, out, progress=False)
    with pytest.raises(ValueError, match="folder"):
        reconstruct(run, scan, tmp_path / "r.tif", progress=False)


def test_a_scan_of_another_scanner_is_refused(run, tmp_path):
    other = tmp_path / "other.h5"
    write_set(other, phantoms(4, 24, seed=6), n_views=7, keep_every=2)
    expected = ScannerSpec.from_dict(load_bundle(run).spec).slice_hash
    found = open_measurement_set(other).spec.slice_hash
    with pytest.raises(ScannerMismatch, match=found) as err:
        reconstruct(run, other, tmp_path / "r.npy", progress=False)
    assert expected in str(err.value)


def _copy(run: Path, to: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, to))


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda r: (r / "model.pth").unlink(), "model.pth: missing"),
        (lambda r: (r / "model.pth").write_bytes((r / "model.pth").read_bytes()[:100]), "SHA-256"),
        (lambda r: (r / "bundle.json").write_text("{"), "bundle.json: damaged"),
        (lambda r: (r / "bundle.json").unlink(), "not a trained-model bundle"),
        (
            lambda r: (r / "bundle.json").write_text(
                json.dumps(
                    {
                        k: v
                        for k, v in json.loads((r / "bundle.json").read_text()).items()
                        if k != "scaling"
                    }
                    | {"extra": 1}
                )  # fmt: skip
            ),
            r"wrong keys: missing \['scaling'\], unknown \['extra'\]",
        ),
    ],
)
def test_a_damaged_bundle_is_a_clear_error(run, scan, tmp_path, damage, message):
    broken = _copy(run, tmp_path / "broken")
    damage(broken)
    with pytest.raises(BundleError, match=message):
        reconstruct(broken, scan, tmp_path / "r.npy", progress=False)


def test_weights_that_do_not_fit_the_architecture(run, tmp_path):
    broken = _copy(run, tmp_path / "arch")
    manifest = json.loads((broken / "bundle.json").read_text())
    manifest["architecture"]["kwargs"]["width"] = 8
    (broken / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="do not fit"):
        load_bundle(broken).build_model()


def test_train_refuses_a_used_folder_and_bad_settings(run, scan):
    with pytest.raises(FileExistsError, match="not empty"):
        train(scan, run, verbose=False, **TINY)
    with pytest.raises(ValueError, match="alpha"):
        train(scan, run.parent / "new", verbose=False, alpha=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        train(scan, run.parent / "new", verbose=False, noise="gaussian")
    assert not (run.parent / "new").exists()


@pytest.mark.usefixtures("one_thread")
def test_sweep_selects_the_lowest_held_out_view_error(scan, tmp_path):
    result = sweep(scan, tmp_path / "sweep", [0.0, 10.0], verbose=False, **TINY)
    scores = {a: s[PRIMARY_SCORE] for a, s in result["scores"].items()}
    assert result["selected_alpha"] == float(min(scores, key=scores.get))
    assert load_bundle(tmp_path / "sweep").alpha == result["selected_alpha"]
    assert load_bundle(tmp_path / "sweep" / "alpha_0").alpha == 0.0


@pytest.mark.usefixtures("one_thread")
def test_command_line(scan, tmp_path, capsys):
    out = tmp_path / "mc"
    args = ["train", str(scan), "--out", str(out), "--alpha", "0", "--epochs", "1", "--width",
            "4", "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert load_bundle(out).alpha == 0.0
    summary = json.loads((out / "scores.json").read_text())
    assert list(summary["loss"]) == ["MC/Ey"] and len(summary["loss"]["MC/Ey"]) == 1
    assert main(args) == 2 and "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", str(scan), "--out", str(out), "--alpha", "1,x"])


@pytest.mark.usefixtures("one_thread")
def test_raw_objective_and_extra_scores(scan, tmp_path):
    summary = train(
        scan, tmp_path / "raw", verbose=False, normalise=False, **{**TINY, "epochs": 1},
        extra_scores=lambda model: {"probe": 1.5},
    )  # fmt: skip
    assert summary["history"][0]["probe"] == 1.5 and summary["select"] == PRIMARY_SCORE
    scaling = load_bundle(tmp_path / "raw").scaling
    assert (scaling.scale, scaling.measurement_energy) == (1.0, 1.0)


@pytest.mark.usefixtures("one_thread")
def test_resume_an_interrupted_run(scan, tmp_path):
    out = tmp_path / "resumed"
    first = train(scan, out, verbose=False, **TINY)
    weights = (out / "model.pth").read_bytes()
    with pytest.raises(FileExistsError, match="finished run"):
        train(scan, out, verbose=False, resume=True, **TINY)
    (out / "bundle.json").unlink()  # as if killed before the bundle was written
    again = train(scan, out, verbose=False, resume=True, **TINY)
    assert again["history"] == first["history"] and (out / "model.pth").read_bytes() == weights
    with pytest.raises(ValueError, match="another configuration"):
        (out / "bundle.json").unlink()
        train(scan, out, verbose=False, resume=True, **{**TINY, "lr": 1e-3})


@pytest.mark.usefixtures("one_thread")
def test_mixed_precision_trains_the_network_in_bfloat16_and_is_recorded(scan, run, tmp_path):
    out = tmp_path / "bf16"
    train(scan, out, verbose=False, alpha=1.0, mixed_precision="bf16", **TINY)
    summary = json.loads((out / "scores.json").read_text())
    assert summary["settings"]["mixed_precision"] == "bf16"
    logged = json.loads((out / "checkpoints" / "history.json").read_text())
    assert all(np.isfinite(v).all() for v in logged["loss"].values())
    assert all(np.isfinite(r["heldout_view_error_ramp"]) for r in logged["history"])
    # Autocast changed the arithmetic: not the float32 run's weights.
    a, b = load_bundle(run).state_dict, load_bundle(out).state_dict
    assert any(not torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="mixed_precision: expected one of"):
        train(scan, tmp_path / "x", verbose=False, mixed_precision="half", **TINY)


@pytest.mark.slow
def test_torchrun_trains_and_reconstructs_with_two_gloo_processes(scan, tmp_path):
    def torchrun(port: int, *args: str) -> None:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(port), "-m", "deepinv_ei", *args, "--quiet"]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]

    run = tmp_path / "run"
    torchrun(29551, "train", str(scan), "--out", str(run), "--epochs", "2", "--width", "4",
             "--batch-size", "2", "--n-trans", "1", "--minutes", "5")  # fmt: skip
    torchrun(29552, "reconstruct", str(run), str(scan), "--out", str(tmp_path / "r.npy"))
    # The two shards gathered in slice order equal one process's reconstruction.
    alone = reconstruct(run, scan, tmp_path / "one.npy", progress=False)
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), np.load(alone))

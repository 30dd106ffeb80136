"""``reconstruct`` of a raw scan with ingest's options: the same volume as through a
measurement set, the slice order, the scanner check, ingest's errors, inputs left alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from conftest import single_thread

from deepinv_ei.cli import main
from deepinv_ei.scan import ScannerSpec, ingest, save_spec, simulate_scan
from deepinv_ei.scan.readers import sha256_file
from deepinv_ei.training import (
    BundleError,
    ScannerMismatch,
    load_bundle,
    reconstruct,
    train,
)

TINY = {"epochs": 2, "minutes": None, "width": 4, "scales": 2, "batch_size": 2, "n_trans": 1}
KEEP_EVERY = 3  # 24 views: 8 kept, 16 held out


def scan_kwargs(scan) -> dict:
    return dict(projections=str(scan.projections), flats=str(scan.flats), darks=str(scan.darks),
                angles=str(scan.angles), angle_unit="deg", geometry="parallel", pixel_size=0.02,
                unit="mm", keep_every=KEEP_EVERY)  # fmt: skip


def scan_flags(scan) -> list[str]:
    return ["--flats", str(scan.flats), "--darks", str(scan.darks), "--angles", str(scan.angles),
            "--angle-unit", "deg", "--geometry", "parallel", "--pixel-size", "0.02", "--unit",
            "mm", "--keep-every", str(KEEP_EVERY)]  # fmt: skip


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A raw parallel-beam scan: 24 views of 6 slices of 16 x 16, flats and darks."""
    root = tmp_path_factory.mktemp("rawrecon")
    return simulate_scan(root / "scan", n_views=24, n_slices=6, size=16, n_flats=2, n_darks=2)


@pytest.fixture(scope="module")
def trained(scan):
    """(measurement set of ``scan``, bundle trained on it); validation slices 2 and 3."""
    folder = scan.folder.parent
    with single_thread():
        ingest(folder / "set.h5", **scan_kwargs(scan), n_val=2)
        train(folder / "set.h5", folder / "run", verbose=False, alpha=1.0, **TINY)
    return folder / "set.h5", folder / "run"


@pytest.fixture(scope="module")
def expected(trained, tmp_path_factory):
    """The measurement set's reconstruction and FBP, one thread."""
    out = tmp_path_factory.mktemp("expected") / "set.h5"
    mset, run = trained
    with single_thread():
        reconstruct(run, mset, out, fbp=True, progress=False)
    with h5py.File(out) as f:
        return f["recon"][()], f["fbp"][()]


def trained_slices(run: Path) -> str:
    """The slice-scanner hash of the bundle's training scan."""
    return ScannerSpec.from_dict(load_bundle(run).spec).slice_hash


@pytest.mark.usefixtures("one_thread")
def test_a_scan_with_other_slices_of_the_same_scanner_is_reconstructed(trained, tmp_path):
    # The next sample: more slices, other content, the same scanner and options.
    other = simulate_scan(tmp_path / "next", n_views=24, n_slices=9, size=16, n_flats=2,
                          n_darks=2, seed=3)  # fmt: skip
    out = reconstruct(trained[1], None, tmp_path / "r.npy", progress=False, scan=scan_kwargs(other))
    recon = np.load(out)
    assert recon.shape == (9, 16, 16) and recon.dtype == np.float32
    assert np.isfinite(recon).all()
    assert (
        ingest(tmp_path / "n.h5", **scan_kwargs(other)).spec.hash
        != load_bundle(trained[1]).spec_hash
    )  # the stacks differ; their slices' scanner is the same


def snapshot(*folders: Path) -> dict:
    files = [p for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()]
    return {p: (sha256_file(p), os.stat(p).st_mtime_ns) for p in files}


@pytest.mark.usefixtures("one_thread")
def test_a_raw_scan_reconstructs_as_its_measurement_set(scan, trained, expected, tmp_path):
    mset, run = trained
    before = snapshot(scan.folder, run)
    out = tmp_path / "raw.h5"
    args = ["reconstruct", str(run), str(scan.projections), *scan_flags(scan), "--out", str(out),
            "--fbp", "--quiet"]  # fmt: skip
    assert main(args) == 0
    with h5py.File(out) as f:
        recon, fbp = f["recon"][()], f["fbp"][()]
        assert f.attrs["units"] == "1/mm"
    assert recon.dtype == np.float32 and recon.shape == (6, 16, 16)
    assert np.array_equal(recon, expected[0]) and np.array_equal(fbp, expected[1])
    # Every slice once, in the original order: the validation slices are where training put them.
    assert np.array_equal(recon[[2, 3]], np.load(run / "validation.npy"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.h5"]  # the temporary set is gone
    assert snapshot(scan.folder, run) == before  # inputs never modified


@pytest.mark.usefixtures("one_thread")
def test_python_api_and_a_tiff_folder(scan, trained, expected, tmp_path):
    out = reconstruct(trained[1], None, tmp_path / "tiffs", progress=False, scan=scan_kwargs(scan))
    files = sorted(out.glob("slice_*.tif"))
    assert len(files) == 6
    np.testing.assert_array_equal(np.stack([tifffile.imread(f) for f in files]), expected[0])
    with pytest.raises(TypeError, match="n_val"):
        reconstruct(trained[1], None, tmp_path / "r.npy", scan={**scan_kwargs(scan), "n_val": 1})


@pytest.mark.usefixtures("one_thread")
def test_a_matching_geometry_file_is_accepted_another_refused(scan, trained, expected, tmp_path):
    run = trained[1]
    kwargs = {**scan_kwargs(scan), "pixel_size": None, "unit": None}
    save_spec(scan.spec, tmp_path / "same.toml")
    out = reconstruct(run, None, tmp_path / "r.npy", progress=False,
                      scan={**kwargs, "geometry": tmp_path / "same.toml"})  # fmt: skip
    np.testing.assert_array_equal(np.load(out), expected[0])
    other = tmp_path / "other.toml"
    save_spec(scan.spec.with_detector(pitch=0.03), other)
    found = ingest(tmp_path / "o.h5", **{**kwargs, "geometry": other}).spec.slice_hash
    with pytest.raises(ScannerMismatch, match=found) as err:
        reconstruct(
            run, None, tmp_path / "x.npy", progress=False, scan={**kwargs, "geometry": other}
        )
    assert trained_slices(run) in str(err.value)
    assert not (tmp_path / "x.npy").exists()


def test_a_scan_of_another_scanner_is_refused_naming_both_hashes(trained, tmp_path, capsys):
    run = trained[1]
    fan = simulate_scan(tmp_path / "fan", kind="fan", n_views=24, n_slices=2, size=16)
    found = ingest(tmp_path / "fan.h5", sinograms=fan.sinograms, geometry=fan.spec_file,
                   keep_every=KEEP_EVERY, n_val=0).spec.slice_hash  # fmt: skip
    args = ["reconstruct", str(run), "--sinograms", str(fan.sinograms), "--geometry",
            str(fan.spec_file), "--keep-every", str(KEEP_EVERY), "--out",
            str(tmp_path / "r.npy"), "--quiet"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert found in err and trained_slices(run) in err and "fan2d, 8 views" in err
    assert not (tmp_path / "r.npy").exists() and not list(tmp_path.glob(".r.npy*"))


@pytest.mark.usefixtures("one_thread")
def test_without_a_scanner_the_data_is_read_with_the_bundle_s(scan, trained, expected, tmp_path):
    # A scan of the kept views alone (as a sparse-view acquisition at the training views).
    frames = sorted(Path(scan.folder, "projections").glob("*.tif"))[::KEEP_EVERY]
    np.save(tmp_path / "kept.npy", np.stack([tifffile.imread(f) for f in frames]))
    out = tmp_path / "r.npy"
    args = ["reconstruct", str(trained[1]), str(tmp_path / "kept.npy"), "--flats", str(scan.flats),
            "--darks", str(scan.darks), "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    np.testing.assert_array_equal(np.load(out), expected[0])
    with pytest.raises(ValueError, match="--bin, --keep-every without a scanner"):
        reconstruct(trained[1], tmp_path / "kept.npy", tmp_path / "x.npy", scan=dict(
            flats=scan.flats, darks=scan.darks, binning=2, keep_every=2))  # fmt: skip


BAD = {
    "binning 0": ["--bin", "0"],
    "rows outside": ["--rows", "2:99"],
    "no unit": ["--unit", None],
    "bad int": ["--keep-every", "x"],
    "two view selections": ["--keep-count", "4"],
    "bad centre": ["--centre-offset", "left"],
}


def _with(flags: list[str], change: list) -> list[str]:
    flag, value = change
    out = list(flags)
    if flag in out:
        i = out.index(flag)
        del out[i : i + 2]
    return out + ([flag, value] if value is not None else [])


def _error(args: list[str], capsys) -> tuple[int, str]:
    try:
        status = main(args)
    except SystemExit as exit:  # argparse
        status = exit.code
    return status, capsys.readouterr().err.strip().splitlines()[-1].split(": error: ", 1)[1]


@pytest.mark.parametrize("change", list(BAD.values()), ids=list(BAD))
def test_bad_scan_options_give_ingest_s_errors(scan, trained, tmp_path, capsys, change):
    if change[0] == "--keep-count":  # alongside --keep-every
        flags = scan_flags(scan) + change
    else:
        flags = _with(scan_flags(scan), change)
    common = [str(scan.projections), *flags, "--quiet", "--out"]
    by_ingest = _error(["ingest", "--projections", *common, str(tmp_path / "o.h5")], capsys)
    by_reconstruct = _error(["reconstruct", str(trained[1]), *common, str(tmp_path / "r.npy")],
                            capsys)  # fmt: skip
    assert by_ingest[0] == by_reconstruct[0] == 2
    assert by_reconstruct[1] == by_ingest[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_scan_is_given_once_and_a_set_takes_no_scan_options(scan, trained, tmp_path, capsys):
    mset, run = trained
    out = ["--out", str(tmp_path / "r.npy")]
    assert main(["reconstruct", str(run), str(mset), "--keep-every", "3", *out]) == 2
    assert "already ingested; the scan options --keep-every apply to a raw scan only" in (
        capsys.readouterr().err
    )
    for scan_args in ([], [str(mset), "--sinograms", "x.npy"]):
        assert main(["reconstruct", str(run), *scan_args, *out]) == 2
        assert "give the scan once" in capsys.readouterr().err
    assert main(["reconstruct", str(run), str(tmp_path / "missing.h5"), *out]) == 2
    assert "missing.h5: no such measurement set" in capsys.readouterr().err


def test_a_damaged_bundle_fails_before_the_scan_is_read(scan, trained, tmp_path):
    broken = Path(shutil.copytree(trained[1], tmp_path / "broken"))
    (broken / "bundle.json").unlink()
    with pytest.raises(BundleError, match="not a trained-model bundle"):
        reconstruct(broken, None, tmp_path / "r.npy", progress=False, scan=scan_kwargs(scan))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]

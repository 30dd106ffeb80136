"""Ingest of measured scans: the parallel- and fan-beam checks, training from a set, bad input."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

from deepinv_ei.scan import MeasurementSet, ingest, simulate_scan
from deepinv_ei.scan.readers import sha256_file


@pytest.fixture(scope="module")
def small_scan(tmp_path_factory):
    """A small raw parallel-beam scan: 180 views of 8 slices, 32 x 32."""
    folder = tmp_path_factory.mktemp("scan")
    return simulate_scan(folder / "scan", n_views=180, n_slices=8, size=32, n_flats=4, n_darks=4)


def raw_args(scan, **kw):
    return dict(projections=scan.projections, flats=scan.flats, darks=scan.darks,
                angles=scan.angles, angle_unit="deg", geometry="parallel", pixel_size=0.02,
                unit="mm", **kw)  # fmt: skip


def psnr(x, ref):
    return float(10 * np.log10(ref.max() ** 2 / np.mean((x - ref) ** 2)))


def check_parallel(scan, path, keep_every):
    """The parallel-beam checks: the flat/dark/log chain has no bias; FBP as good as noiseless."""
    summary = ingest(path, **raw_args(scan, keep_every=keep_every))
    truth = scan.load_ground_truth()
    with MeasurementSet(path) as ms:
        order = np.concatenate([ms.train_slices, ms.val_slices])
        y = torch.cat([ms.y("train"), ms.y("test")]).numpy()
        noiseless = truth["line_integrals"][order][:, None][:, :, ms.kept_views]
        assert y.shape == noiseless.shape
        bias = abs(float((y - noiseless).mean()))
        assert bias < 0.01 * float(noiseless.mean())
        physics = ms.physics()
        with torch.no_grad():
            fbp = physics.A_dagger(torch.from_numpy(y)).numpy()
            fbp_clean = physics.A_dagger(torch.from_numpy(noiseless.astype(np.float32))).numpy()
        x = truth["attenuation"][order][:, None]
        assert psnr(fbp, x) > psnr(fbp_clean, x) - 1.0
        n_views = len(scan.spec.angles)
        held = np.setdiff1d(np.arange(n_views), np.arange(0, n_views, keep_every))
        np.testing.assert_array_equal(ms.heldout_views, held)
        assert ms.heldout("train").shape == (len(ms.train_slices), 1, len(held), y.shape[-1])
        np.testing.assert_allclose(ms.heldout_angles, scan.spec.angles[held])
        heldout_truth = truth["line_integrals"][ms.train_slices][:, None][:, :, held]
        assert (
            abs(float((ms.heldout("train").numpy() - heldout_truth).mean()))
            < 0.01 * heldout_truth.mean()
        )
        assert ms.heldout_physics().operator.out_shape[-2] == len(held)
        noise = ms.noise
        assert noise["model"] == "poisson_gaussian" and noise["I0"].shape == (
            len(order),
            y.shape[-1],
        )
        np.testing.assert_allclose(noise["I0"].mean(), scan.params["I0"], rtol=0.02)
        np.testing.assert_allclose(noise["read_noise"], scan.params["read_noise"], rtol=0.25)
        assert [s["step"] for s in ms.steps][:3] == ["read", "flat_dark", "minus_log"]
        assert len(ms.sources) == n_views + scan.params["n_flats"] + scan.params["n_darks"] + 1
        assert ms.units["sinogram"].startswith("line integral")
    return summary


def test_parallel_beam_check_small(small_scan, tmp_path):
    before = {p: sha256_file(p) for p in small_scan.folder.rglob("*") if p.is_file()}
    mtimes = {p: os.stat(p).st_mtime_ns for p in before}
    summary = check_parallel(small_scan, tmp_path / "scan.h5", keep_every=10)
    assert len(summary.kept_views) == 18 and len(summary.heldout_views) == 162
    # Ingest never modifies its inputs.
    assert {p: sha256_file(p) for p in before} == before
    assert {p: os.stat(p).st_mtime_ns for p in before} == mtimes


def test_parallel_beam_check_full(tmp_path):
    scan = simulate_scan(tmp_path / "scan", n_views=720, n_slices=40, size=64, I0=2e4)
    check_parallel(scan, tmp_path / "scan.h5", keep_every=40)


def test_hdf5dataset_and_trainer_without_x(small_scan, tmp_path):
    import deepinv as dinv

    from deepinv_ei.loss import equivariant_imaging
    from deepinv_ei.models import EIUNet, ei_reconstructor
    from deepinv_ei.transforms import Rotate

    path = tmp_path / "scan.h5"
    ingest(path, **raw_args(small_scan, keep_every=10))
    import h5py

    with h5py.File(path) as f:
        assert not [k for k in f if k.startswith("x")]
    train = dinv.datasets.HDF5Dataset(path, split="train")
    x0, y0 = train[0]
    assert y0.shape == (1, 18, 32) and torch.isnan(x0).all()
    with MeasurementSet(path) as ms:
        physics = ms.physics()
        np.testing.assert_array_equal(train[2][1].numpy(), ms.y("train")[2].numpy())
    torch.manual_seed(0)
    model = ei_reconstructor(EIUNet(1, width=4, scales=2, batch_norm=False))
    before = [p.detach().clone() for p in model.parameters()]
    trainer = dinv.Trainer(
        model=model, physics=physics, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        train_dataloader=torch.utils.data.DataLoader(train, batch_size=4),
        losses=equivariant_imaging(Rotate(nonzero=True, rng=torch.Generator().manual_seed(0)), alpha=1.0),
        epochs=1, online_measurements=False, metrics=None, save_path=None, device="cpu",
        verbose=False, show_progress_bar=False, non_blocking_transfers=False,
    )  # fmt: skip
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_fan_beam_check_and_transposed(tmp_path):
    import odl
    from odl.applications.tomo import FanBeamGeometry

    from deepinv_ei.odl import ray_transform_physics

    scan = simulate_scan(tmp_path / "fan", kind="fan", n_views=60, n_slices=3, size=32)
    out = tmp_path / "fan.h5"
    ingest(out, sinograms=scan.sinograms, axes="slice,angle,detector", geometry=scan.spec_file)
    # The same scanner built by hand in ODL: 32 x 32 pixels of 0.5 mm, 60 views over 360
    # degrees from 0, 48 detector pixels of 1 mm, source and detector 100 mm from the axis.
    space = odl.uniform_discr([-8, -8], [8, 8], (32, 32), dtype="float32")
    step = 2 * np.pi / 60
    angles = odl.uniform_partition(-step / 2, 2 * np.pi - step / 2, 60)
    geometry = FanBeamGeometry(angles, odl.uniform_partition(-24, 24, 48), 100.0, 100.0)
    by_hand = ray_transform_physics((space, geometry))
    x = torch.rand(2, 1, 32, 32)
    with MeasurementSet(out) as ms:
        assert ms.spec.unit == "mm" and ms.noise["model"] == "none"
        torch.testing.assert_close(ms.physics().A(x), by_hand.A(x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            torch.cat([ms.y("train"), ms.y("test")]).numpy()[np.argsort(np.concatenate([ms.train_slices, ms.val_slices]))][:, 0],
            np.load(scan.sinograms), rtol=0, atol=0,
        )  # fmt: skip
    transposed = tmp_path / "fan_T.npy"
    np.save(transposed, np.load(scan.sinograms).transpose(0, 2, 1))
    with pytest.raises(ValueError, match="looks transposed"):
        ingest(
            tmp_path / "t.h5",
            sinograms=transposed,
            axes="slice,angle,detector",
            geometry=scan.spec_file,
        )
    assert not (tmp_path / "t.h5").exists()


def test_square_transposed_sinograms_refused_by_content(tmp_path):
    scan = simulate_scan(tmp_path / "fan", kind="fan", n_views=48, n_slices=2, size=32)
    assert np.load(scan.sinograms).shape[1:] == (48, 48)
    ingest(tmp_path / "ok.h5", sinograms=scan.sinograms, geometry=scan.spec_file)
    transposed = tmp_path / "fan_T.npy"
    np.save(transposed, np.load(scan.sinograms).transpose(0, 2, 1))
    with pytest.raises(ValueError, match="look transposed"):
        ingest(tmp_path / "t.h5", sinograms=transposed, geometry=scan.spec_file)


def test_centre_offset_given_and_estimated(tmp_path):
    scan = simulate_scan(tmp_path / "scan", n_views=90, n_slices=4, size=32, n_flats=2,
                         n_darks=2, centre_offset=2.0, angle_range_deg=180.0 + 2.0)  # fmt: skip
    truth = scan.load_ground_truth()["line_integrals"]
    for offset in (2.0, "auto"):
        out = tmp_path / f"s{offset}.h5"
        summary = ingest(out, **raw_args(scan, centre_offset=offset, n_val=1))
        assert abs(summary.centre_offset - 2.0) < 0.3
        with MeasurementSet(out) as ms:
            y = ms.y("train").numpy()[:, 0]
            ref = truth[ms.train_slices]
            inner = slice(4, -4)  # the resampled edge columns repeat the edge value
            assert np.abs(y[..., inner] - ref[..., inner]).mean() < 0.05 * ref.mean()
            assert ms.spec.det_shift == 0.0 and ms.steps[-3]["step"] == "centre_of_rotation"


def test_binning_and_row_crop(small_scan, tmp_path):
    summary = ingest(tmp_path / "b.h5", **raw_args(small_scan, binning=2, rows=(2, 6), n_val=1))
    with MeasurementSet(tmp_path / "b.h5") as ms:
        assert ms.spec.det_count == 16 and ms.spec.det_pitch == pytest.approx(0.04)
        assert ms.spec.image_shape == (16, 16) and ms.spec.det_rows == 2
        assert summary.shapes["y_train"] == (1, 1, 180, 16)
        np.testing.assert_allclose(ms.noise["I0"].mean(), 4 * small_scan.params["I0"], rtol=0.02)


# --- bad input ----------------------------------------------------------------------------


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".h5")


def test_angle_count_mismatch(small_scan, tmp_path):
    angles = tmp_path / "angles.txt"
    angles.write_text("\n".join(small_scan.angles.read_text().split()[:-1]))
    with pytest.raises(
        ValueError, match=r"180 projection files match, but .*angles\.txt lists 179 angles"
    ):
        ingest(tmp_path / "o.h5", **{**raw_args(small_scan), "angles": angles})


def test_detector_count_contradicts_spec(tmp_path):
    scan = simulate_scan(tmp_path / "fan", kind="fan", n_views=30, n_slices=2, size=16)
    cut = tmp_path / "cut.npy"
    np.save(cut, np.load(scan.sinograms)[..., :-2])
    with pytest.raises(ValueError, match="detector has length 22, expected 24"):
        ingest(tmp_path / "o.h5", sinograms=cut, geometry=scan.spec_file)


def test_flats_not_above_darks_via_ingest(small_scan, tmp_path):
    with pytest.raises(ValueError, match="expected flats above darks"):
        ingest(tmp_path / "o.h5", **{**raw_args(small_scan), "flats": small_scan.darks})


def test_output_exists_refused_unless_overwrite(small_scan, tmp_path):
    out = tmp_path / "o.h5"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        ingest(out, **raw_args(small_scan, keep_every=10))
    assert out.read_bytes() == b"keep me"
    ingest(out, **raw_args(small_scan, keep_every=10), overwrite=True)
    MeasurementSet(out).close()


def test_nothing_half_written_on_error_or_interrupt(small_scan, tmp_path, monkeypatch):
    # NaN in a late chunk: the error names the file, and no output or temporary file stays.
    sino = np.load(
        simulate_scan(tmp_path / "fan", kind="fan", n_views=30, n_slices=6, size=16).sinograms
    )
    sino[5, 3, 4] = np.inf
    bad = tmp_path / "bad.npy"
    np.save(bad, sino)
    with pytest.raises(ValueError, match=r"bad\.npy: expected finite numbers"):
        ingest(
            tmp_path / "o.h5", sinograms=bad, geometry=tmp_path / "fan" / "fan.toml", chunk_size=2
        )
    assert leftovers(tmp_path) == []
    module = sys.modules["deepinv_ei.scan.ingest"]  # the package's `ingest` is the function

    calls = []

    def interrupt(y, offset):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return y

    monkeypatch.setattr(module, "shift_detector", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ingest(tmp_path / "o.h5", **raw_args(small_scan, chunk_size=16))
    assert leftovers(tmp_path) == []


def test_truncated_tiff_via_ingest(small_scan, tmp_path):
    import shutil

    copy = tmp_path / "scan"
    shutil.copytree(small_scan.folder, copy)
    victim = copy / "projections" / "proj_00007.tif"
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"proj_00007\.tif: truncated TIFF"):
        ingest(
            tmp_path / "o.h5",
            **{**raw_args(small_scan), "projections": str(copy / "projections" / "*.tif")},
        )


def test_parallel_needs_unit_and_pixel_size(small_scan, tmp_path):
    with pytest.raises(ValueError, match="needs the length unit"):
        ingest(tmp_path / "o.h5", **{**raw_args(small_scan), "unit": None})
    with pytest.raises(ValueError, match="needs the detector pitch"):
        ingest(tmp_path / "o.h5", **{**raw_args(small_scan), "pixel_size": None})

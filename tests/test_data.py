"""deepinv_ei.data: embedded data sets, the real-data loaders on files written here, errors."""

from __future__ import annotations

import bz2
import warnings

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from conftest import seeded
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from deepinv_ei.data import (
    NATURAL_IMAGES,
    NATURAL_TRAIN,
    TASK_DATA,
    Ellipse,
    ImageSplit,
    center_crop,
    ct_phantoms,
    digits,
    load_ct100,
    load_dataset,
    load_urban100,
    load_usps,
    natural_images,
    pydicom_ct_slices,
    rasterize_ellipses,
    read_dicom_hu,
    read_libsvm,
    read_mat_stack,
)


def assert_images(x: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert x.dtype == torch.float32 and tuple(x.shape) == shape
    assert x.min() >= 0 and x.max() <= 1


# --------------------------------------------------------------------------- file writers


def write_ct_dicom(path, stored: np.ndarray | None, slope: float = 2.0, intercept: float = -1024.0):
    """A minimal CT DICOM slice; ``stored=None`` writes one without pixel data."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if stored is not None:
        ds.set_pixel_data(stored.astype(np.int16), "MONOCHROME2", 16)
    ds.save_as(path, enforce_file_format=True)


def stored_slices(n: int, side: int = 8) -> list[np.ndarray]:
    # Slice i has values 10 i + 0..side^2-1: distinct ranges reveal the order.
    base = np.arange(side * side, dtype=np.int16).reshape(side, side)
    return [base + 10 * i for i in range(n)]


def write_libsvm(path, features: np.ndarray, labels: np.ndarray, compress: bool) -> None:
    lines = "".join(
        f"{int(lab)} " + " ".join(f"{j + 1}:{v:.6f}" for j, v in enumerate(row)) + "\n"
        for lab, row in zip(labels, features, strict=True)
    )
    if compress:
        path.write_bytes(bz2.compress(lines.encode()))
    else:
        path.write_text(lines)


def usps_values(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 256))


def write_urban(folder, colours: list[tuple[int, int, int]], shape=(20, 24)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, colour in enumerate(colours, start=1):
        image = np.broadcast_to(np.array(colour, np.uint8), (*shape, 3))
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"img_{k:03d}.png")


# --------------------------------------------------------------------------- ImageSplit


def test_image_split_validates_and_serves_datasets():
    from deepinv.datasets import check_dataset
    from deepinv.physics import Inpainting

    split = ImageSplit(torch.rand(5, 1, 8, 8), torch.rand(2, 1, 8, 8), "r", "rand")
    assert split.image_shape == (1, 8, 8) and split.channels == 1
    head = split.head(3, 1)
    assert torch.equal(head.train, split.train[:3]) and torch.equal(head.test, split.test[:1])
    with pytest.raises(ValueError, match="only 2"):
        split.head(n_test=3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ImageSplit(torch.rand(2, 1, 8, 8) + 1, torch.rand(1, 1, 8, 8), "r", "rand")
    with pytest.raises(ValueError, match="float32"):
        ImageSplit(torch.rand(2, 1, 8, 8).double(), torch.rand(1, 1, 8, 8), "r", "rand")
    with pytest.raises(ValueError, match="same"):
        ImageSplit(torch.rand(2, 1, 8, 8), torch.rand(1, 3, 8, 8), "r", "rand")
    with pytest.raises(TypeError, match="torch.Tensor"):
        ImageSplit(np.zeros((2, 1, 8, 8), np.float32), torch.rand(1, 1, 8, 8), "r", "rand")

    train, test = split.datasets()
    check_dataset(train)
    assert len(train) == 5 and torch.equal(train[4]["x"], split.train[4]) and "y" not in train[0]
    physics = Inpainting((1, 8, 8), mask=0.5, rng=seeded(0))
    train, test = split.datasets(physics, batch_size=2)
    check_dataset(test)
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=5)))
    assert torch.allclose(batch["y"], physics(split.train))


def test_center_crop_pads_like_torchvision():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert torch.equal(center_crop(x, 2), x[..., 0:2, 1:3])
    padded = center_crop(x, 5)
    assert padded.shape[-2:] == (5, 5) and torch.equal(padded[..., 1:4, 0:4], x)
    assert padded[..., 0, :].abs().sum() == 0 and padded[..., :, 4].abs().sum() == 0


# --------------------------------------------------------------------------- phantoms


def test_rasterized_ellipse_known_answers():
    disc = rasterize_ellipses([Ellipse(1.0, 0.5, 0.5)], 128)
    assert abs(disc.sum() * (2 / 128) ** 2 - np.pi * 0.25) < 5e-3  # area pi r^2
    # Rotating by 90 degrees swaps the axes: the image is the transpose (exactly, on the grid).
    e = Ellipse(0.7, 0.6, 0.2, x0=0.1, y0=-0.3, theta=0.0)
    rotated = Ellipse(0.7, 0.6, 0.2, x0=-0.3, y0=0.1, theta=np.pi / 2)
    assert np.allclose(rasterize_ellipses([e], 32).T, rasterize_ellipses([rotated], 32))
    # Intensities add.
    two = rasterize_ellipses([e, Ellipse(0.2, 0.9, 0.9)], 32)
    assert np.allclose(
        two, rasterize_ellipses([e], 32) + rasterize_ellipses([Ellipse(0.2, 0.9, 0.9)], 32)
    )


def test_ct_phantoms_shapes_determinism_and_support():
    split = ct_phantoms(n_train=4, n_test=2, size=32, seed=1)
    assert_images(split.train, (4, 1, 32, 32))
    assert_images(split.test, (2, 1, 32, 32))
    again = ct_phantoms(n_train=4, n_test=2, size=32, seed=1)
    assert torch.equal(split.train, again.train) and torch.equal(split.test, again.test)
    assert not torch.equal(split.train, ct_phantoms(n_train=4, n_test=2, size=32, seed=2).train)
    fewer = ct_phantoms(n_train=2, n_test=2, size=32, seed=1)
    assert torch.equal(fewer.train, split.train[:2]) and torch.equal(fewer.test, split.test)
    assert not torch.equal(split.train[0], split.train[1])
    assert not any(torch.equal(a, b) for a in split.train for b in split.test)
    # Zero outside the unit disc: rotations keep the object in the field of view.
    c = (torch.arange(32) + 0.5) / 16 - 1
    outside = c[None, :] ** 2 + c[:, None] ** 2 > 1
    assert (
        split.train[:, :, outside].abs().max() == 0 and split.train.amax(dim=(1, 2, 3)).min() > 0.5
    )


# --------------------------------------------------------------------------- embedded real images


def test_pydicom_ct_slices_apply_rescale_and_window():
    import pydicom
    from pydicom.data import get_testdata_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an undecodable J2K slice is skipped with a warning
        x = pydicom_ct_slices(size=128)
        small = pydicom_ct_slices(size=32)
    assert_images(x, (len(x), 1, 128, 128))
    assert_images(small, (len(x), 1, 32, 32))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = np.clip((hu + 1000.0) / 2000.0, 0, 1)  # 128x128 already: no resize
    assert float(ds.RescaleIntercept) != 0
    assert np.allclose(x[0, 0].numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("name", sorted(NATURAL_IMAGES))
def test_natural_images_registry_loads_offline(name):
    image = NATURAL_IMAGES[name]()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] >= 3
    assert min(image.shape[:2]) >= 256


def test_natural_images_split_and_seeded_crops():
    split = natural_images(size=24)
    assert_images(split.train, (len(NATURAL_TRAIN), 3, 24, 24))
    assert_images(split.test, (2, 3, 24, 24))
    more = natural_images(size=24, n_train=7, n_test=3, seed=5)
    assert_images(more.train, (7, 3, 24, 24))
    assert torch.equal(more.train[:5], split.train) and torch.equal(more.test[:2], split.test)
    assert torch.equal(more.train, natural_images(size=24, n_train=7, n_test=3, seed=5).train)
    assert not torch.equal(more.train[5:], natural_images(size=24, n_train=7, seed=6).train[5:])
    with pytest.raises(ValueError, match="crop_scale"):
        natural_images(size=8, crop_scale=(0.0, 1.0))


def test_digits_known_answer_and_split():
    from sklearn.datasets import load_digits

    raw = load_digits().images / 16.0
    split = digits(size=8, n_test=100, seed=3)
    assert_images(split.test, (100, 1, 8, 8))
    assert_images(split.train, (len(raw) - 100, 1, 8, 8))
    order = np.random.default_rng(3).permutation(len(raw))
    assert np.allclose(split.test[:, 0].numpy(), raw[order[:100]], atol=1e-6)
    assert np.allclose(split.train[:, 0].numpy(), raw[order[100:]], atol=1e-6)
    big = digits(n_train=50, n_test=10)
    assert_images(big.train, (50, 1, 16, 16))
    assert torch.equal(big.train, digits(n_train=50, n_test=10).train)
    with pytest.raises(ValueError, match="n_train"):
        digits(n_train=1797, n_test=10)


# --------------------------------------------------------------------------- CT100


def test_ct100_dicom_folder_applies_rescale_sorts_and_splits(tmp_path):
    folder = tmp_path / "kaggle" / "dicom_dir"
    folder.mkdir(parents=True)
    slices = stored_slices(5)
    for i in (3, 0, 4, 1, 2):  # written out of order: loaded sorted by file name
        write_ct_dicom(folder / f"ID_{i:04d}_AGE_0060_CONTRAST_1_CT.dcm", slices[i])
    hu = read_dicom_hu(folder / "ID_0002_AGE_0060_CONTRAST_1_CT.dcm")
    assert np.array_equal(hu, slices[2] * 2.0 - 1024.0)

    window = (-1024.0, -900.0)
    split = load_ct100(tmp_path / "kaggle", size=8, n_train=3, n_test=2, window=window)
    assert_images(split.train, (3, 1, 8, 8))
    assert_images(split.test, (2, 1, 8, 8))
    x = torch.cat([split.train, split.test])[:, 0].numpy()
    for i in range(5):
        assert np.allclose(
            x[i], np.clip((slices[i] * 2.0 - 1024.0 + 1024.0) / 124.0, 0, 1), atol=1e-6
        )
    per_image = load_ct100(folder, size=4, n_train=4, n_test=1)  # min-max, then resized
    assert_images(per_image.train, (4, 1, 4, 4))
    assert per_image.source.startswith("dicom")


def test_ct100_mat_v5_and_v73(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.uniform(-5, 5, size=(6, 8, 8))
    scipy.io.savemat(tmp_path / "CT100_128x128.mat", {"DATA": data})
    split = load_dataset("ct", tmp_path, size=8, n_train=4, n_test=2)
    lo, hi = data.min(axis=(1, 2), keepdims=True), data.max(axis=(1, 2), keepdims=True)
    expected = (data - lo) / (hi - lo)
    assert split.name == "ct100"
    assert np.allclose(torch.cat([split.train, split.test])[:, 0].numpy(), expected, atol=1e-6)

    v73 = tmp_path / "v73" / "CT100_128x128.mat"
    v73.parent.mkdir()
    with h5py.File(v73, "w", userblock_size=512) as f:
        f["DATA"] = data.T  # MATLAB is column-major: h5py sees the axes reversed
    again = load_ct100(v73, size=8, n_train=4, n_test=2)
    assert torch.allclose(again.train, split.train) and torch.allclose(again.test, split.test)


def test_ct100_tiff_folder(tmp_path):
    folder = tmp_path / "tiff_images"
    folder.mkdir()
    for i, s in enumerate(stored_slices(3)):
        Image.fromarray(s.astype(np.int32) * 50 - 1500).save(folder / f"ID_{i:04d}.tif")
    split = load_ct100(tmp_path, size=8, n_train=2, n_test=1)
    assert split.source.startswith("tiff")
    expected = np.arange(64).reshape(8, 8) / 63.0  # every slice is a ramp: per-image min-max
    assert np.allclose(split.test[0, 0].numpy(), expected, atol=1e-6)


def test_ct100_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ct100(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("no images")
    with pytest.raises(FileNotFoundError, match=r"notes\.txt"):
        load_ct100(tmp_path)
    for i, s in enumerate(stored_slices(3)):
        write_ct_dicom(tmp_path / f"{i}.dcm", s)
    with pytest.raises(ValueError, match="at least n_train \\+ n_test = 100.*found 3"):
        load_ct100(tmp_path)
    write_ct_dicom(tmp_path / "3.dcm", None)
    with pytest.raises(ValueError, match="no Pixel Data"):
        load_ct100(tmp_path, n_train=3, n_test=1)
    (tmp_path / "4.dcm").write_bytes(b"not a dicom file at all")
    with pytest.raises(ValueError, match=r"4\.dcm"):
        read_dicom_hu(tmp_path / "4.dcm")
    bad = tmp_path / "mat" / "CT100.mat"
    bad.parent.mkdir()
    scipy.io.savemat(bad, {"X": np.zeros((3, 4, 4))})
    with pytest.raises(ValueError, match="'DATA'.*X"):
        load_ct100(bad)
    with pytest.raises(ValueError, match="format"):
        load_ct100(tmp_path, format="png")


# --------------------------------------------------------------------------- Urban100


def test_urban100_png_folder(tmp_path):
    colours = [(10 * k, 200 - 10 * k, 7 * k) for k in range(1, 6)]
    write_urban(tmp_path / "Urban100" / "HR", colours)
    Image.new("RGB", (5, 5), (255, 255, 255)).save(
        tmp_path / "Urban100" / "HR" / "img_001_SRF_4_LR.png"
    )
    split = load_dataset("inpainting", tmp_path, size=8, crop=16, n_train=3, n_test=2, seed=1)
    assert_images(split.train, (3, 3, 8, 8))
    assert_images(split.test, (2, 3, 8, 8))
    x = torch.cat([split.train, split.test])
    for k, colour in enumerate(colours):  # constant images stay constant, in number order
        assert torch.allclose(x[k], torch.tensor(colour).float().view(3, 1, 1) / 255, atol=1e-6)
    # A crop larger than the image zero-pads (torchvision's CenterCrop): dark borders.
    padded = load_urban100(tmp_path, size=32, crop=32, n_train=3, n_test=2)
    assert padded.train[0, :, 0, 0].abs().max() == 0 and padded.train[0, :, 16, 16].max() > 0


def test_urban100_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_urban100(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="empty folder"):
        load_urban100(tmp_path)
    write_urban(tmp_path, [(1, 2, 3)] * 4)
    with pytest.raises(ValueError, match="= 100 PNG images, found 4"):
        load_urban100(tmp_path)
    (tmp_path / "img_005.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"img_005\.png"):
        load_urban100(tmp_path, n_train=3, n_test=2)


# --------------------------------------------------------------------------- USPS


@pytest.mark.parametrize("compress", [True, False])
def test_usps_libsvm(tmp_path, compress):
    suffix = ".bz2" if compress else ""
    train, test = usps_values(6, 0), usps_values(3, 1)
    write_libsvm(tmp_path / f"usps{suffix}", train, np.arange(1, 7), compress)
    write_libsvm(tmp_path / f"usps.t{suffix}", test, np.arange(1, 4), compress)
    features, labels = read_libsvm(tmp_path / f"usps{suffix}", 256)
    assert np.allclose(features, train, atol=1e-6) and np.array_equal(labels, np.arange(1, 7))
    split = load_dataset("cs", tmp_path, seed=0)
    assert_images(split.train, (6, 1, 16, 16))
    assert_images(split.test, (3, 1, 16, 16))
    assert np.allclose(split.train[:, 0].numpy(), ((train + 1) / 2).reshape(6, 16, 16), atol=1e-6)
    small = load_usps(tmp_path / f"usps{suffix}", size=8, n_train=2, n_test=1)
    assert_images(small.train, (2, 1, 8, 8))


def test_usps_hdf5(tmp_path):
    train, test = (usps_values(5, 2) + 1) / 2, (usps_values(2, 3) + 1) / 2
    with h5py.File(tmp_path / "usps.h5", "w") as f:
        for part, values in (("train", train), ("test", test)):
            f.create_dataset(f"{part}/data", data=values)
            f.create_dataset(f"{part}/target", data=np.zeros(len(values)))
    split = load_usps(tmp_path, n_test=2)
    assert np.allclose(split.test[:, 0].numpy(), test.reshape(2, 16, 16), atol=1e-6)
    assert_images(split.train, (5, 1, 16, 16))
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.create_dataset("train/data", data=train)
    with pytest.raises(ValueError, match="test/data"):
        load_usps(tmp_path / "bad.h5")


def test_usps_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_usps(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="usps.bz2"):
        load_usps(tmp_path)
    write_libsvm(tmp_path / "usps.bz2", usps_values(2, 0), np.ones(2), True)
    with pytest.raises(FileNotFoundError, match="usps.t"):
        load_usps(tmp_path)
    bad = tmp_path / "usps.t"
    bad.write_text("1 1:0.5 2:0.1\n2 0:0.3 2:0.2\n")
    with pytest.raises(ValueError, match="line 2.*index 0"):
        load_usps(tmp_path)
    bad.write_text("1 1:0.5 257:0.1\n")
    with pytest.raises(ValueError, match="line 1.*257"):
        read_libsvm(bad, 256)
    bad.write_text("1 1:abc\n")
    with pytest.raises(ValueError, match="line 1"):
        read_libsvm(bad, 256)
    write_libsvm(bad, usps_values(1, 1) * 3, np.ones(1), False)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        load_usps(tmp_path)
    write_libsvm(bad, usps_values(1, 1), np.ones(1), False)
    with pytest.raises(ValueError, match="at least 5 test images, found 1"):
        load_usps(tmp_path, n_test=5)


# --------------------------------------------------------------------------- dispatcher


@pytest.mark.parametrize("task", sorted(TASK_DATA))
def test_load_dataset_embedded_defaults_and_missing_paths(task, tmp_path):
    split = load_dataset(task, None, size=16, n_train=2, n_test=1, seed=None)
    assert_images(split.train, (2, split.channels, 16, 16))
    assert_images(split.test, (1, split.channels, 16, 16))
    assert split.channels == (3 if task == "inpainting" else 1)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset(task, tmp_path / "nowhere", size=16)
    with pytest.raises(FileNotFoundError, match="expected"):
        load_dataset(task, tmp_path)
    with pytest.raises(TypeError, match="str or pathlib.Path"):
        load_dataset(task, 3)


def test_load_dataset_unknown_task():
    with pytest.raises(ValueError, match="inpainting"):
        load_dataset("deblur")


# --------------------------------------------------------------------------- damaged and ambiguous files


def test_a_ct_slice_with_one_nan_pixel_is_refused_naming_the_file(tmp_path):
    folder = tmp_path / "tiff_images"
    folder.mkdir()
    for i in range(3):
        image = np.random.default_rng(i).uniform(-1000, 1000, (8, 8)).astype(np.float32)
        if i == 1:
            image[2, 5] = np.nan
        Image.fromarray(image).save(folder / f"ID_{i:04d}.tif")
    with pytest.raises(ValueError, match=r"ID_0001\.tif: 1 of 64 pixel values are not finite"):
        load_ct100(tmp_path, size=8, n_train=2, n_test=1)
    data = np.random.default_rng(0).uniform(0, 1, (4, 8, 8))
    data[2, 0, 0] = np.inf
    scipy.io.savemat(tmp_path / "CT100.mat", {"DATA": data})
    with pytest.raises(ValueError, match=r"CT100\.mat: 'DATA' image 2: 1 of 64 .*1 infinite"):
        load_ct100(tmp_path / "CT100.mat", size=8, n_train=2, n_test=1)


def test_a_libsvm_file_cut_mid_line_is_refused(tmp_path):
    rows = np.random.default_rng(0).uniform(-1, 1, (3, 256))
    text = "".join(
        "1 " + " ".join(f"{j + 1}:{v:.4f}" for j, v in enumerate(r)) + "\n" for r in rows
    )
    (tmp_path / "usps").write_text(text)
    (tmp_path / "usps.t").write_text(text[: len(text) - 900])  # cut inside the last record
    with pytest.raises(ValueError, match=r"usps\.t, line 3: the last record .* cut short"):
        load_usps(tmp_path)
    assert read_libsvm(tmp_path / "usps", 256)[0].shape == (3, 256)
    (tmp_path / "usps.t.bz2").write_bytes(bz2.compress(text.encode())[:-20])
    with pytest.raises(ValueError, match=r"usps\.t\.bz2: expected a LIBSVM .*could not read"):
        read_libsvm(tmp_path / "usps.t.bz2", 256)


def test_a_mat_stack_says_which_axis_order_it_assumed(tmp_path):
    data = np.random.default_rng(0).uniform(0, 1, (20, 20, 30))
    path = tmp_path / "CT100.mat"
    scipy.io.savemat(path, {"DATA": data})
    with pytest.warns(UserWarning, match=r"30 images of 20x20 \(axis_order='HWN'\)"):
        split = load_ct100(path, size=20, n_train=20, n_test=10)
    assert "DATA read as HWN (30 images of 20x20)" in split.source
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen = load_ct100(path, size=20, n_train=20, n_test=10, axis_order="HWN")
        stack = read_mat_stack(path, axis_order="NHW")
    assert torch.equal(chosen.train, split.train) and stack.shape == (20, 20, 30)
    scipy.io.savemat(path, {"DATA": np.zeros((8, 8, 8))})
    with pytest.raises(ValueError, match=r"CT100\.mat.*cannot tell the axis order.*axis_order="):
        load_ct100(path, size=8, n_train=4, n_test=2)
    with pytest.raises(ValueError, match="axis_order: expected one of"):
        load_ct100(path, axis_order="WHN")


def test_a_truncated_v73_mat_names_the_file(tmp_path):
    path = tmp_path / "CT100_128x128.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["DATA"] = np.random.default_rng(0).uniform(0, 1, (64, 64, 6))
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(ValueError, match=r"CT100_128x128\.mat: expected a MATLAB v7\.3"):
        load_ct100(path, size=8, n_train=4, n_test=2)


def test_a_usps_hdf5_with_datasets_instead_of_groups_is_explained(tmp_path):
    with h5py.File(tmp_path / "usps.h5", "w") as f:
        f["train"] = np.zeros((4, 256))
        f["test"] = np.zeros((2, 256))
    with pytest.raises(
        ValueError,
        match=r"usps\.h5: expected groups train and test .*"
        r"found test \(dataset\), train \(dataset\)",
    ):
        load_usps(tmp_path / "usps.h5")


_ROWS = np.random.default_rng(5).uniform(-1, 1, (4, 256))
_TEXT = "".join("7 " + " ".join(f"{j + 1}:{v:.3f}" for j, v in enumerate(r)) + "\n" for r in _ROWS)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=1, max_value=len(_TEXT)))
def test_any_cut_of_a_libsvm_file_is_refused_or_whole_records(cut, tmp_path_factory):
    """No cut of a file yields a half-filled image: either an error naming the file, or
    exactly the complete records before the cut."""
    path = tmp_path_factory.mktemp("cut") / "usps.t"
    text = _TEXT[:cut]
    path.write_text(text)
    try:
        features, _ = read_libsvm(path, 256)
    except ValueError as err:
        assert str(path) in str(err)
        assert not text.endswith("\n")
        return
    assert text.endswith("\n")
    n = text.count("\n")
    assert features.shape == (n, 256)
    assert np.allclose(features, np.round(_ROWS[:n], 3))

"""Readers of projection and sinogram stacks: formats, named axes, lazy chunks, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile

from deepinv_ei.scan.readers import (
    data_exchange,
    natural_key,
    open_stack,
    read_angles,
    sha256_file,
)

RNG = np.random.default_rng(0)
DATA = RNG.integers(0, 60000, size=(5, 3, 4)).astype(np.uint16)  # (angle, row, col)


def write_tiffs(folder, data, names=None):
    folder.mkdir(exist_ok=True)
    names = names or [f"p{i}.tif" for i in range(len(data))]
    for name, frame in zip(names, data, strict=True):
        tifffile.imwrite(folder / name, frame, photometric="minisblack")


def test_tiff_glob_natural_order_and_chunks(tmp_path):
    # p2 before p10: natural order, not the lexicographic p10 < p2.
    names = ["p0.tif", "p1.tif", "p2.tif", "p10.tif", "p11.tif"]
    write_tiffs(tmp_path, DATA, names)
    stack = open_stack(str(tmp_path / "p*.tif"))
    assert stack.shape == (5, 3, 4) and stack.dtype == np.uint16
    assert [p.name for p in stack.sources] == names
    np.testing.assert_array_equal(stack.read(1, 4), DATA[1:4])
    assert [a for a, _, _ in stack.chunks(2)] == [0, 2, 4]
    assert natural_key("a10") > natural_key("a9")


def test_multipage_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", DATA, photometric="minisblack")
    stack = open_stack(tmp_path / "stack.tif")
    assert stack.shape == DATA.shape
    np.testing.assert_array_equal(stack.read(0, 5), DATA)


def test_mixed_shapes_and_dtypes_refused(tmp_path):
    write_tiffs(tmp_path, DATA)
    tifffile.imwrite(tmp_path / "p3.tif", DATA[3, :2])
    with pytest.raises(ValueError, match=r"mixed shapes or dtypes.*p3\.tif"):
        open_stack(str(tmp_path / "*.tif"))
    tifffile.imwrite(tmp_path / "p3.tif", DATA[3].astype(np.float32))
    with pytest.raises(ValueError, match=r"mixed shapes or dtypes.*float32"):
        open_stack(str(tmp_path / "*.tif"))


def test_truncated_tiff_refused(tmp_path):
    write_tiffs(tmp_path, DATA)
    path = tmp_path / "p2.tif"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"p2\.tif: truncated TIFF"):
        open_stack(str(tmp_path / "*.tif"))
    path.write_bytes(b"II*\x00\x08")  # a header cut short
    with pytest.raises(ValueError, match=r"p2\.tif: expected a TIFF image"):
        open_stack(str(tmp_path / "*.tif"))


def test_no_match_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no file matches"):
        open_stack(str(tmp_path / "*.tif"))
    with pytest.raises(ValueError, match="no such file"):
        open_stack(tmp_path / "none.npy")


def test_npy_memory_mapped_with_named_axes(tmp_path):
    np.save(tmp_path / "p.npy", DATA.transpose(1, 0, 2))  # stored (row, angle, col)
    stack = open_stack(tmp_path / "p.npy", "row,angle,col")
    assert isinstance(stack.array, np.memmap)
    assert stack.shape == (5, 3, 4) and stack.stored_axes == ("row", "angle", "col")
    np.testing.assert_array_equal(stack.read(2, 5), DATA[2:5])


def test_axes_names_checked(tmp_path):
    np.save(tmp_path / "p.npy", DATA)
    with pytest.raises(ValueError, match="expected each of angle,row,col once"):
        open_stack(tmp_path / "p.npy", "angle,row,x")
    with pytest.raises(ValueError, match="3 axes but 2 axis names"):
        open_stack(tmp_path / "p.npy", "angle,row")


def test_npz_stored_member_memory_mapped(tmp_path):
    np.savez(tmp_path / "s.npz", sino=DATA.astype(np.float32), other=np.zeros(2))
    stack = open_stack(f"{tmp_path / 's.npz'}:sino", kind="sinograms")
    assert isinstance(stack.array, np.memmap)
    np.testing.assert_array_equal(stack.read(0, 5), DATA)
    np.savez_compressed(tmp_path / "c.npz", sino=DATA)
    np.testing.assert_array_equal(open_stack(tmp_path / "c.npz").read(0, 5), DATA)
    with pytest.raises(ValueError, match=r"no array 'nope'.*'sino'"):
        open_stack(f"{tmp_path / 's.npz'}:nope")


def test_hdf5_dataset_and_missing_path_lists_contents(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["entry/proj"] = DATA
    stack = open_stack(f"{tmp_path / 'd.h5'}:/entry/proj")
    np.testing.assert_array_equal(stack.read(0, 2), DATA[:2])
    with pytest.raises(
        ValueError, match=r"'/entry/data' does not exist; the file holds /entry/proj \(5, 3, 4\)"
    ):
        open_stack(f"{tmp_path / 'd.h5'}:/entry/data")
    with pytest.raises(ValueError, match="name the dataset"):
        open_stack(tmp_path / "d.h5")


def test_data_exchange_layout(tmp_path):
    path = tmp_path / "dx.h5"
    with h5py.File(path, "w") as f:
        f["exchange/data"] = DATA
        f["exchange/data_white"] = DATA[:2] + 1
        f["exchange/data_dark"] = DATA[:1] * 0
        f["exchange/theta"] = np.array([0.0, 45, 90, 135, 180])
    dx = data_exchange(path)
    assert dx["projections"].shape == DATA.shape and len(dx["flats"]) == 2 and len(dx["darks"]) == 1
    np.testing.assert_allclose(dx["angles"], np.deg2rad([0, 45, 90, 135, 180]))


def test_mat_v5_and_v73(tmp_path):
    scipy.io.savemat(tmp_path / "v5.mat", {"sino": DATA.astype(np.float64)})
    stack = open_stack(f"{tmp_path / 'v5.mat'}:sino", kind="sinograms")
    np.testing.assert_array_equal(stack.read(0, 5), DATA)
    # v7.3 is HDF5 with the axes reversed (MATLAB is column-major): the reader undoes it.
    with h5py.File(tmp_path / "v73.mat", "w") as f:
        f["sino"] = DATA.astype(np.float64).transpose()
    stack = open_stack(tmp_path / "v73.mat", kind="sinograms")
    assert stack.shape == DATA.shape
    np.testing.assert_array_equal(stack.read(1, 3), DATA[1:3])


def test_nan_or_inf_in_float_data_refused(tmp_path):
    data = DATA.astype(np.float32)
    data[3, 1, 2] = np.nan
    np.save(tmp_path / "s.npy", data)
    stack = open_stack(tmp_path / "s.npy", kind="sinograms")
    stack.read(0, 3)  # the chunks before are fine
    with pytest.raises(
        ValueError, match=r"s\.npy: expected finite numbers.*slice 3, angle 1, detector 2"
    ):
        stack.read(2, 5)


def test_2d_sinogram_is_one_slice(tmp_path):
    np.save(tmp_path / "s.npy", DATA[0].astype(np.float32))
    stack = open_stack(tmp_path / "s.npy", "detector,angle", kind="sinograms")
    assert stack.shape == (1, 4, 3)
    np.testing.assert_array_equal(stack.read(0, 1)[0], DATA[0].T)


def test_read_angles_and_checksum(tmp_path):
    (tmp_path / "a.txt").write_text("# degrees\n0\n90, 180  # the last two\n")
    np.testing.assert_allclose(read_angles(tmp_path / "a.txt", "deg"), [0, np.pi / 2, np.pi])
    np.save(tmp_path / "a.npy", np.array([0.0, 1.0]))
    np.testing.assert_allclose(read_angles(tmp_path / "a.npy", "rad"), [0, 1])
    (tmp_path / "b.txt").write_text("0 ninety")
    with pytest.raises(ValueError, match=r"b\.txt, line 1: 'ninety' is not a number"):
        read_angles(tmp_path / "b.txt", "deg")
    (tmp_path / "c.bin").write_bytes(b"abc")
    assert sha256_file(tmp_path / "c.bin") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_stacks_close_their_files(tmp_path):
    # h5py refuses to reopen for writing a file this process still holds open read-only.
    path = tmp_path / "dx.h5"
    with h5py.File(path, "w") as f:
        f["exchange/data"] = DATA
    with open_stack(f"{path}:/exchange/data") as stack:
        np.testing.assert_array_equal(stack.read(0, 1), DATA[:1])
    h5py.File(path, "a").close()
    with pytest.raises(ValueError, match="does not exist"):
        open_stack(f"{path}:/exchange/nothing")
    h5py.File(path, "a").close()  # the error path closed it too
    pages = tmp_path / "pages.tif"
    tifffile.imwrite(pages, DATA, photometric="minisblack")
    stack = open_stack(pages)
    stack.close()
    assert stack._tif.filehandle.closed

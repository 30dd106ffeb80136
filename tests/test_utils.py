import json

import pytest
import torch
from conftest import seeded

from deepinv_ei.utils import atomic_save_torch, atomic_write_json, dottest, safe_load_torch


def test_dottest_accepts_true_transpose_and_rejects_wrong_one():
    gen = seeded(1)
    M = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    err = dottest(lambda x: x @ M.T, lambda y: y @ M, (3, 4), dtype=torch.float64)
    assert err < 1e-12
    with pytest.raises(AssertionError, match="dot test failed"):
        dottest(lambda x: x @ M.T, lambda y: 2 * (y @ M), (3, 4), dtype=torch.float64)


def test_dottest_reports_shape_mismatch():
    with pytest.raises(ValueError, match="adjoint returned shape"):
        dottest(lambda x: x, lambda y: y[..., :1], (2, 3))


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "r.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    atomic_save_torch(tmp_path / "ck.pt", {"w": torch.ones(2)})
    assert torch.load(tmp_path / "ck.pt")["w"].sum() == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ck.pt", "r.json", "sub"]


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    import os

    atomic_write_json(tmp_path / "a.json", {})
    (tmp_path / "b.json").write_text("{}")
    assert os.stat(tmp_path / "a.json").st_mode == os.stat(tmp_path / "b.json").st_mode


def test_atomic_write_json_refuses_non_finite_numbers_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"ok": 1.5})
    with pytest.raises(ValueError, match=r"r\.json: refusing .* at a\.psnr, a\.curve\[1\]"):
        atomic_write_json(target, {"a": {"psnr": float("nan"), "curve": [1.0, float("-inf")]}})
    assert json.loads(target.read_text()) == {"ok": 1.5}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_clean_orphan_temp_files_removes_only_interrupted_atomic_writes(tmp_path):
    from deepinv_ei.utils import clean_orphan_temp_files

    orphan = tmp_path / "sub" / ".ckp.pth.ab_12xyz.tmp"
    orphan.parent.mkdir()
    orphan.write_bytes(b"half")
    keep = [tmp_path / "a.tmp", tmp_path / ".a.tmp", tmp_path / ".a.TOOLONG99.tmp"]
    for p in keep:
        p.write_text("x")
    assert clean_orphan_temp_files(tmp_path) == [orphan]
    assert all(p.exists() for p in keep) and not orphan.exists()
    assert clean_orphan_temp_files(tmp_path / "missing") == []


def test_clean_orphan_temp_files_can_be_limited_to_target_names(tmp_path):
    from deepinv_ei.utils import clean_orphan_temp_files

    ours, theirs = tmp_path / ".ckp_last.pth.tar.abcd1234.tmp", tmp_path / ".notes.abcd1234.tmp"
    for p in (ours, theirs):
        p.write_text("x")
    assert clean_orphan_temp_files(tmp_path, ("*.pth.tar", "results.json")) == [ours]
    assert theirs.exists()


def test_safe_load_torch_names_a_corrupt_file(tmp_path):
    (tmp_path / "noise.pth").write_bytes(b"\x80\x02garbage" * 10)
    with pytest.raises(ValueError, match=r"noise\.pth.*corrupt or truncated"):
        safe_load_torch(tmp_path / "noise.pth")

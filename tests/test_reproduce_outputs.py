"""Hostile input to the reproduction's output folder and checkpoints: each case gives a clear
error naming the file or setting, or a correct result; nothing is lost and nothing executed."""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepinv_ei.experiments.reproduce import OutputConflict, RunConfig, run
from deepinv_ei.experiments.reproduce.cli import config_from_args, main
from deepinv_ei.experiments.reproduce.outputs import (
    flag_non_finite,
    output_lock,
    restore_non_finite,
)
from deepinv_ei.training import CHECKPOINT, load_checkpoint
from deepinv_ei.utils import atomic_save_torch
from deepinv_ei.utils.io import strict_json as to_strict

run_module = importlib.import_module("deepinv_ei.experiments.reproduce.run")
ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, out: Path) -> int:
    return main([*args, "--profile", "smoke", "--out", str(out), "--quiet"])


def strict_json(path: Path):
    """Parse like a strict JSON reader: NaN / Infinity are errors."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- data loss


def test_runs_of_other_tasks_and_methods_merge_into_results_json(tmp_path):
    out = tmp_path / "o"
    assert cli("--task", "ct", "--methods", "pinv,mc", out=out) == 0
    first = strict_json(out / "results.json")
    assert cli("--task", "inpainting", "--methods", "pinv", out=out) == 0
    both = strict_json(out / "results.json")
    assert both["ct"] == first["ct"]  # ct kept, unchanged
    assert set(both["inpainting"]) == {"pinv"}
    assert cli("--task", "ct", "--methods", "pinv", out=out) == 0  # same run: pinv redone
    again = strict_json(out / "results.json")
    assert set(again["ct"]) == {"pinv", "mc"} and again["ct"]["mc"] == first["ct"]["mc"]
    assert (out / "checkpoints" / "ct" / "mc" / CHECKPOINT).exists()
    assert "inpainting" in again and "| MC |" in (out / "results.md").read_text()


def test_a_run_with_other_settings_is_refused_and_nothing_is_deleted(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli("--task", "cs", "--methods", "pinv,mc", out=out) == 0
    before = snapshot(out)
    assert cli("--task", "cs", "--methods", "pinv", "--seed", "1", out=out) == 2
    err = capsys.readouterr().err
    assert "seed=0 there, 1 here" in err and "--overwrite" in err
    assert snapshot(out) == before  # checkpoints, recon and results untouched
    with pytest.raises(OutputConflict, match="overrides"):
        run(
            RunConfig(
                ("cs",), ("pinv",), "smoke", out=out, overrides=(("alpha", "3"),), verbose=False
            )
        )
    with pytest.raises(OutputConflict, match="--resume"):
        run(RunConfig(("cs",), ("pinv",), "smoke", out=out, seed=2, resume=True, verbose=False))
    assert snapshot(out) == before


def test_overwrite_deletes_only_the_earlier_runs_outputs(tmp_path):
    out = tmp_path / "o"
    assert cli("--task", "cs", "--methods", "pinv,mc", out=out) == 0
    (out / "notes.txt").write_text("mine")
    assert cli("--task", "cs", "--methods", "pinv", "--seed", "1", "--overwrite", out=out) == 0
    res = strict_json(out / "results.json")
    assert res["seed"] == 1 and set(res["cs"]) == {"pinv"}
    assert not (out / "checkpoints").exists() and not (out / "recon" / "cs_mc.pt").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert strict_json(out / "run.json")["seed"] == 1


def test_results_json_of_an_older_version_identifies_its_run(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"profile": "quick", "seed": 0}))
    with pytest.raises(OutputConflict, match="profile='quick' there, 'smoke' here"):
        run(RunConfig(("cs",), ("pinv",), "smoke", out=out, verbose=False))


def test_a_second_writer_of_the_same_folder_is_refused(tmp_path):
    with output_lock(tmp_path), pytest.raises(OutputConflict, match="another run"):
        run(RunConfig(("cs",), ("pinv",), "smoke", out=tmp_path, verbose=False))


def test_the_default_out_is_one_folder_per_profile_and_seed():
    cfg = config_from_args(["--task", "cs", "--profile", "smoke", "--seed", "3"])
    assert cfg.out == Path("results/iccv/smoke-seed3")
    with pytest.raises(SystemExit):
        config_from_args(["--resume", "--overwrite"])
    with pytest.raises(SystemExit):
        config_from_args(["--seed", "-1"])


# --------------------------------------------------------------------------- code execution


class _Exec:
    """Unpickles as ``exec(code)``: what a crafted checkpoint would run."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def crafted_checkpoint(path: Path, marker: Path) -> None:
    payload = _Exec(f"open({str(marker)!r}, 'w').write('code ran')")
    torch.save({"epoch": 0, "state_dict": {}, "payload": payload}, path)


def test_a_crafted_checkpoint_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    crafted_checkpoint(tmp_path / "evil.pth", marker)
    torch.load(tmp_path / "evil.pth", weights_only=False)  # the danger is real ...
    assert marker.read_text() == "code ran"
    marker.unlink()
    with pytest.raises(ValueError, match=r"evil\.pth: refused to load"):
        load_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()  # ... and gone

    out = tmp_path / "o"  # through --resume
    assert cli("--task", "cs", "--methods", "pinv", out=out) == 0
    ckpt = out / "checkpoints" / "cs" / "mc" / CHECKPOINT
    ckpt.parent.mkdir(parents=True)
    crafted_checkpoint(ckpt, marker)
    with pytest.raises(ValueError, match=f"{CHECKPOINT}: refused to load"):
        cli("--task", "cs", "--methods", "mc", "--resume", out=out)
    assert not marker.exists()


# --------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    "setting, message",
    [
        ("epochs=-1", "setting epochs=-1 .*integer >= 1"),
        ("alpha=inf", "setting alpha=inf .*finite number >= 0"),
        ("eval_interval=0", "setting eval_interval=0 .*integer >= 1"),
        ("lr=nan", "setting lr=nan .*finite number > 0"),
        ("milestones=5,2", "milestones=\\(5, 2\\).*increasing"),
    ],
)
def test_bad_settings_are_refused_before_any_work(setting, message, tmp_path, capsys):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        cli("--task", "cs", "--methods", "pinv,mc", "--set", setting, out=out)
    assert exc.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()  # nothing ran, nothing written
    name, value = setting.split("=")
    with pytest.raises(ValueError, match=f"setting {name}="):
        run(RunConfig(("cs",), ("pinv",), "smoke", out=out, overrides=((name, value),)))
    assert not out.exists()


def test_non_finite_metrics_are_null_in_strict_json_with_a_flag(tmp_path, monkeypatch):
    real = run_module.evaluate

    def diverged(*args, **kwargs):
        return real(*args, **kwargs) | {"psnr": math.nan, "ssim": math.inf}

    monkeypatch.setattr(run_module, "evaluate", diverged)
    res = run(RunConfig(("cs",), ("pinv",), "smoke", out=tmp_path, verbose=False))
    assert math.isnan(res["cs"]["pinv"]["psnr"])
    entry = strict_json(tmp_path / "results.json")["cs"]["pinv"]
    assert entry["psnr"] is None and entry["ssim"] is None
    assert entry["non_finite"] == ["psnr", "ssim"]
    assert "| nan ± " in (tmp_path / "results.md").read_text()
    # a later run of the same settings reads the nulls back and keeps the file strict
    monkeypatch.setattr(run_module, "evaluate", real)
    run(RunConfig(("inpainting",), ("pinv",), "smoke", out=tmp_path, verbose=False))
    assert strict_json(tmp_path / "results.json")["cs"]["pinv"]["psnr"] is None


# --------------------------------------------------------------------------- unclear errors


def test_a_truncated_or_foreign_checkpoint_names_the_file(tmp_path):
    good = tmp_path / "ck.pth"
    atomic_save_torch(good, {"epoch": 1, "state_dict": {"w": torch.ones(100)}})
    data = good.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.pth \(\d+ bytes\) is corrupt or truncated"):
        load_checkpoint(tmp_path / "cut.pth")
    atomic_save_torch(tmp_path / "other.pth", {"weights": torch.ones(2)})
    with pytest.raises(ValueError, match=r"other\.pth: expected a training checkpoint"):
        load_checkpoint(tmp_path / "other.pth")
    assert load_checkpoint(good)["epoch"] == 1


def test_a_truncated_results_json_names_the_file(tmp_path):
    assert cli("--task", "cs", "--methods", "pinv", out=tmp_path) == 0
    text = (tmp_path / "results.json").read_text()
    (tmp_path / "run.json").unlink()
    (tmp_path / "results.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"results\.json: this results file is not valid JSON"):
        cli("--task", "cs", "--methods", "pinv", out=tmp_path)


# --------------------------------------------------------------------------- leftovers


def test_temporary_files_of_a_killed_write_are_cleaned_at_start(tmp_path):
    out = tmp_path / "o"
    target = out / "checkpoints" / "cs" / "mc" / CHECKPOINT
    script = tmp_path / "die.py"
    script.write_text(
        "import os, signal, sys, torch\n"
        "from deepinv_ei.utils import atomic_save_torch\n"
        "class Die:\n"
        "    def __reduce__(self):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"atomic_save_torch({str(target)!r}, {{'w': torch.ones(1000), 'x': Die()}})\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
    )
    assert proc.returncode == -signal.SIGKILL
    orphans = list(target.parent.glob(f".{CHECKPOINT}.*.tmp"))
    assert len(orphans) == 1 and not target.exists()
    decoys = [out / "notes.tmp", out / ".notes.tmp", out / ".a.ABCDEFGH.tmp"]
    decoys.append(out / ".notes.txt.abcd1234.tmp")  # the pattern, but not a name we write
    for p in decoys:
        p.write_text("not ours")
    run(RunConfig(("cs",), ("pinv",), "smoke", out=out, verbose=False))
    assert not orphans[0].exists()
    assert all(p.read_text() == "not ours" for p in decoys)


# --------------------------------------------------------------------------- properties


_NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.none())


@settings(max_examples=80, deadline=None)
@given(
    entry=st.dictionaries(st.sampled_from(["psnr", "ssim", "train_seconds"]), _NUMBERS, min_size=1),
    curve=st.lists(st.lists(_NUMBERS, min_size=3, max_size=3), max_size=4),
)
def test_results_are_strict_json_and_nulls_read_back_as_nan(entry, curve):
    entry = dict(entry, curve=curve)
    flagged = flag_non_finite(entry)
    text = json.dumps(to_strict({"cs": {"ei": entry}}), allow_nan=False)  # never raises
    back = json.loads(text)
    restore_non_finite(back)
    for path in flagged:
        assert path in back["cs"]["ei"]["non_finite"]
    for key, value in entry.items():
        if key in ("curve", "non_finite"):
            continue
        got = back["cs"]["ei"][key]
        if isinstance(value, float) and not math.isfinite(value):
            assert math.isnan(got)
        else:
            assert got == value
    for row, row_back in zip(curve, back["cs"]["ei"]["curve"], strict=True):
        for v, w in zip(row, row_back, strict=True):
            assert math.isnan(w) if isinstance(v, float) and not math.isfinite(v) else w == v

"""The ``deepinv-ei`` command: the command-line contract of ingest and inspect, reproduce."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepinv_ei.cli import COMMANDS, build_parser, main
from deepinv_ei.scan import MeasurementSet, simulate_scan


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    simulate_scan(root / "scan", n_views=120, n_slices=6, size=32, n_flats=3, n_darks=3)
    fan = simulate_scan(root / "fanscan", kind="fan", n_views=40, n_slices=3, size=16)
    shutil.copy(fan.sinograms, root / "fan.npy")
    shutil.copy(fan.spec_file, root / "fan.toml")
    return root


PARALLEL = (
    "ingest --projections 'scan/projections/*.tif' --flats 'scan/flats/*.tif' "
    "--darks 'scan/darks/*.tif' --angles scan/angles_deg.txt --angle-unit deg "
    "--geometry parallel --pixel-size 0.02 --unit mm --keep-every 40 --out scan.h5"
)
FAN = "ingest --sinograms fan.npy --axes slice,angle,detector --geometry fan.toml --out fan.h5"


def test_contract_commands_as_written(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    for f in ("scan.h5", "fan.h5", "scan.png"):
        (workdir / f).unlink(missing_ok=True)
    assert main(shlex.split(PARALLEL)) == 0
    out = capsys.readouterr().out
    for expected in ("y_train (5, 1, 3, 32)", "3 kept, 117 held out", "I0 estimate", "clipped: 0"):
        assert expected in out
    with MeasurementSet(workdir / "scan.h5") as ms:
        assert (
            ms.spec.unit == "mm" and ms.spec.det_pitch == 0.02 and ms.spec.image_shape == (32, 32)
        )
    assert main(shlex.split(FAN)) == 0
    assert main(["inspect", "scan.h5"]) == 0
    out = capsys.readouterr().out
    assert "parallel3d, 3 views x 32 detectors" in out and "flat_dark" in out
    png = (workdir / "scan.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # An existing output is refused (exit status 2, a message), and kept.
    before = (workdir / "fan.h5").read_bytes()
    assert main(shlex.split(FAN)) == 2
    assert "already exists" in capsys.readouterr().err
    assert (workdir / "fan.h5").read_bytes() == before
    assert main(shlex.split(FAN) + ["--overwrite", "--quiet"]) == 0


def test_errors_are_messages_not_tracebacks(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    status = main(["ingest", "--sinograms", "fan.npy", "--axes", "slice,detector,angle",
                   "--geometry", "fan.toml", "--out", "t.h5"])  # fmt: skip
    assert status == 2 and "looks transposed" in capsys.readouterr().err
    assert not (workdir / "t.h5").exists()
    assert main(["inspect", "missing.h5"]) == 2
    # A spec whose angles file is missing: a message naming it, not a traceback.
    (workdir / "no_angles.toml").write_text(
        (workdir / "fan.toml").read_text().split("[angles]")[0]
        + '[angles]\nunit = "deg"\nfile = "missing_angles.txt"\n'
        + "[detector]"
        + (workdir / "fan.toml").read_text().split("[detector]")[1]
    )
    status = main(["ingest", "--sinograms", "fan.npy", "--geometry", "no_angles.toml",
                   "--out", "t.h5"])  # fmt: skip
    assert status == 2 and "missing_angles.txt: no such file" in capsys.readouterr().err


def test_python_dash_m_runs_the_command(workdir):
    proc = subprocess.run(
        [sys.executable, "-m", "deepinv_ei", "inspect", str(workdir / "missing.h5")],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
    )  # fmt: skip
    assert proc.returncode == 2 and "deepinv-ei inspect: error: " in proc.stderr


def test_reproduce_delegates_unchanged(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--help"])
    assert exc.value.code == 0
    assert "--profile" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["reproduce", "--task", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_registry_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in COMMANDS)
    with pytest.raises(SystemExit):
        main(["ingest", "--out", "x.h5", "--bogus"])
    assert np.isin(["ingest", "inspect", "reproduce"], list(COMMANDS)).all()


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    # `deepinv-ei inspect SET | head`: the reader is gone before the command writes.
    import subprocess
    import sys

    from learning_sets import phantoms, write_set

    write_set(tmp_path / "set.h5", phantoms(4, 16, seed=1), n_views=6, keep_every=2)
    cmd = [sys.executable, "-m", "deepinv_ei", "inspect", str(tmp_path / "set.h5"), "--no-png"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "error:" not in err

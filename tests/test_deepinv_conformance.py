"""deepinv's own tests, run with our classes substituted for deepinv's namesakes.

deepinv's installed ``tests/test_transform.py`` and ``tests/test_loss.py`` (with the
``conftest.py`` and ``dummy.py`` they import) are copied at test time into a temporary folder,
twice: once unmodified (the baseline) and once with a ``conftest.py`` that replaces
``deepinv.transform.Shift``/``Rotate``/``Reflect``, ``deepinv.loss.EILoss``/``MCLoss`` and
``deepinv.loss.SureGaussianLoss``/``SurePoissonLoss``/``SurePGLoss`` by ours. Both copies run in their own pytest process; every case that passes with deepinv's
classes must pass with ours. Nothing of deepinv's test suite is stored in this repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import deepinv
import pytest

import deepinv_ei

DEEPINV_TESTS = Path(deepinv.__file__).parent / "tests"
REPO_ROOT = Path(deepinv_ei.__file__).resolve().parent.parent

TRANSFORMS = {"Shift": "deepinv_ei.transforms", "Rotate": "deepinv_ei.transforms"}
TRANSFORMS["Reflect"] = "deepinv_ei.transforms"
# deepinv's name -> the module of ours, and ":name" where ours is called otherwise.
LOSSES = {"EILoss": "deepinv_ei.loss", "MCLoss": "deepinv_ei.loss"}
LOSSES["SureGaussianLoss"] = "deepinv_ei.loss:SureGaussian"
LOSSES["SurePoissonLoss"] = "deepinv_ei.loss:SurePoisson"
LOSSES["SurePGLoss"] = "deepinv_ei.loss:SurePoissonGaussian"

SUBSTITUTE = """

# --- added by deepinv_ei's conformance test: our classes in place of deepinv's ---
import importlib as _importlib

import deepinv as _dinv

for _module, _names in {table!r}.items():
    for _name, _source in _names.items():
        _path, _, _ours = _source.partition(":")
        _class = getattr(_importlib.import_module(_path), _ours or _name)
        setattr(getattr(_dinv, _module), _name, _class)
"""

CHECK = """
import importlib

import deepinv as dinv


def test_zz_classes_are_substituted():
    for module, names in {table!r}.items():
        for name, source in names.items():
            path, _, our_name = source.partition(":")
            ours = getattr(importlib.import_module(path), our_name or name)
            assert getattr(getattr(dinv, module), name) is ours, (module, name)
"""

# Fast subset of test_transform.py: cases built from Shift, Rotate or Reflect alone, and
# one arithmetic case of each operator.
FAST_TRANSFORM_CASES = (
    [
        f"test_transforms[device0-{time}-{name}]"
        for time in ("False", "True")
        for name in ("shift", "rotate", "rotate-bilinear", "reflect")
    ]
    + [
        f"test_transform_identity[device0-False-{name}]"
        for name in ("shift", "rotate", "rotate-bilinear", "reflect")
    ]
    + [
        "test_transform_identity[device0-False-shift+scale]",
        "test_transform_identity[device0-False-shift*scale]",
        "test_transform_identity[device0-False-rotate|scale]",
        "test_rotate_90",
        "test_batch_size[1]",
        "test_batch_size[2]",
        "test_shift_time",
    ]
)

# The cases of test_loss.py that build an EILoss, an MCLoss or a SURE loss.
SURE_NOISES = (
    "Gaussian",
    "Poisson",
    "PoissonGaussian",
    "GaussianUnknown",
    "PoissonGaussianUnknown",
)
LOSS_CASES = [
    "test_losses[device0-mcei]",
    "test_losses[device0-mcei-scale]",
    "test_losses[device0-mcei-homography]",
    "test_losses[device0-es]",
    "test_stacked_loss[device0]",
    *(f"test_sure[device0-{noise}]" for noise in SURE_NOISES),
]
FAST_LOSS_CASES = ["test_stacked_loss[device0]", "test_sure[device0-PoissonGaussian]"]


def _prepare(folder: Path, test_files: list[str], table: dict | None) -> None:
    folder.mkdir()
    for name in ("conftest.py", "dummy.py", *test_files):
        shutil.copy(DEEPINV_TESTS / name, folder / name)
    if table is not None:
        with open(folder / "conftest.py", "a") as f:
            f.write(SUBSTITUTE.format(table=table))
        (folder / "test_zz_substitution.py").write_text(CHECK.format(table=table))


def _start(folder: Path, targets: list[str]) -> subprocess.Popen:
    env = {**os.environ, "DEEPINV_TEST_DEVICE": "cpu", "PYTHONPATH": str(REPO_ROOT)}
    targets = list(targets)
    if (folder / "test_zz_substitution.py").exists():
        targets.append("test_zz_substitution.py")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:odl_plugins",
        "-p",
        "no:cacheprovider",
        "-q",
        "-W",
        "ignore",
        f"--junitxml={folder / 'report.xml'}",
        *targets,
    ]
    return subprocess.Popen(
        cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _outcomes(folder: Path, proc: subprocess.Popen) -> dict[str, str]:
    output, _ = proc.communicate(timeout=1800)
    report = folder / "report.xml"
    assert report.exists(), f"pytest wrote no report in {folder}:\n{output[-3000:]}"
    result = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        outcome = (
            "failed"
            if tags & {"failure", "error"}
            else "skipped"
            if "skipped" in tags
            else "passed"
        )
        result[case.get("name")] = outcome
    return result


def _targets(test_file: str, cases: list[str] | None) -> list[str]:
    return [f"{test_file}::{c}" for c in cases] if cases else [test_file]


def _compare(tmp_path: Path, test_file: str, table: dict, cases: list[str] | None):
    """Run deepinv's copy and ours side by side; return both outcome maps."""
    _prepare(tmp_path / "deepinv", [test_file], None)
    _prepare(tmp_path / "ours", [test_file], table)
    procs = {
        which: _start(tmp_path / which, _targets(test_file, cases)) for which in ("deepinv", "ours")
    }
    theirs = _outcomes(tmp_path / "deepinv", procs["deepinv"])
    ours = _outcomes(tmp_path / "ours", procs["ours"])
    assert ours.pop("test_zz_classes_are_substituted") == "passed"
    if cases:
        assert set(theirs) == set(cases), f"unexpected case ids: {sorted(theirs)}"
    passing = sorted(c for c, o in theirs.items() if o == "passed")
    assert passing, "no case passes with deepinv's own classes"
    regressions = sorted(c for c in passing if ours.get(c) != "passed")
    assert not regressions, f"pass with deepinv's classes, not with ours: {regressions}"
    return theirs, ours


def test_deepinv_tests_fast_subset_with_our_classes(tmp_path):
    """Ours only (one process): cases that the slow tests show passing with deepinv's classes."""
    table = {"loss": LOSSES, "transform": TRANSFORMS}
    files = ["test_transform.py", "test_loss.py"]
    _prepare(tmp_path / "ours", files, table)
    targets = _targets("test_transform.py", FAST_TRANSFORM_CASES)
    targets += _targets("test_loss.py", FAST_LOSS_CASES)
    ours = _outcomes(tmp_path / "ours", _start(tmp_path / "ours", targets))
    assert ours.pop("test_zz_classes_are_substituted") == "passed"
    assert ours == dict.fromkeys(FAST_TRANSFORM_CASES + FAST_LOSS_CASES, "passed")


@pytest.mark.slow
def test_deepinv_transform_tests_all(tmp_path):
    theirs, ours = _compare(tmp_path, "test_transform.py", {"transform": TRANSFORMS}, None)
    counts = {
        which: sum(o == "passed" for o in r.values())
        for which, r in (("deepinv", theirs), ("ours", ours))
    }
    assert counts["ours"] >= counts["deepinv"] >= 80, counts
    assert set(FAST_TRANSFORM_CASES) <= {c for c, o in theirs.items() if o == "passed"}


@pytest.mark.slow
def test_deepinv_loss_tests_ei_mc_cases(tmp_path):
    table = {"loss": LOSSES, "transform": TRANSFORMS}
    theirs, ours = _compare(tmp_path, "test_loss.py", table, LOSS_CASES)
    assert set(FAST_LOSS_CASES) <= {c for c, o in theirs.items() if o == "passed"}
    assert sum(o == "passed" for o in ours.values()) >= 9

"""Our OperatorModule/OperatorFunction in place of ``odl.contrib.torch``'s, under ODL's own tests.

ODL's installed test module and docstring examples are copied (at test time, into a temporary
directory) with their imports rewritten to use ``deepinv_ei.odl``, then run unchanged.
"""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import odl
import pytest
import torch

import deepinv_ei.odl as ours

pytest.importorskip("odl.contrib.torch")
from odl.contrib.torch import operator as odl_torch_operator  # noqa: E402

ODL_TEST = Path(odl_torch_operator.__file__).parent / "test" / "test_operator.py"
ODL_IMPORT = "from odl.contrib import torch as odl_torch"

# ODL's pytest plugin cannot be loaded by pytest >= 9 (pytest_ignore_collect(path)); its fixture
# and parametrisation hooks are taken from the same module.
CONFTEST = """from odl.core.util.pytest_config import (  # noqa: F401
    odl_impl_device_pairs,
    pytest_addoption,
    pytest_configure,
    pytest_generate_tests,
)
"""


def test_odl_contrib_torch_test_suite_passes_with_our_classes(tmp_path):
    source = ODL_TEST.read_text()
    assert source.count(ODL_IMPORT) == 1, "ODL's test module changed: update the substitution"
    (tmp_path / "test_operator.py").write_text(
        source.replace(ODL_IMPORT, "import deepinv_ei.odl as odl_torch")
    )
    (tmp_path / "conftest.py").write_text(CONFTEST)
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:odl_plugins",
            "-p",
            "no:cacheprovider",
            "-rA",
            "test_operator.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert "deepinv_ei.odl as odl_torch" in (tmp_path / "test_operator.py").read_text()
    passed = [line for line in out.splitlines() if line.startswith("PASSED")]
    print(out[-3000:])
    assert proc.returncode == 0, out[-5000:]
    assert len(passed) >= 18, out[-3000:]  # 18 cases on a CPU-only machine


def test_odl_contrib_torch_doctests_pass_with_our_classes():
    globs = {
        "np": np,
        "odl": odl,
        "torch": torch,
        "nn": torch.nn,
        "OperatorFunction": ours.OperatorFunction,
        "OperatorModule": ours.OperatorModule,
    }
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(odl_torch_operator, globs=globs) if t.examples]
    names = {t.name.rsplit(".", 1)[-1] for t in tests}
    assert {"OperatorFunction", "OperatorModule"} <= names
    for t in tests:
        t.globs.update(globs)  # ours, not the module's own classes
        runner.run(t)
    results = runner.summarize(verbose=False)
    assert results.attempted >= 30 and results.failed == 0, results

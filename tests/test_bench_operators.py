"""The operator benchmark's machinery on a tiny problem: every method times the operator it
claims to, and the table, the targets and the JSON report the same numbers (no timing is
asserted)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import seeded

from deepinv_ei.experiments import bench_operators as bench
from deepinv_ei.utils import dottest

SIZE, VIEWS = 16, 6


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.reshape(b.shape) - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def anchor():
    return bench.build_operators(bench.ANCHOR, SIZE, VIEWS, "cpu", threads=1)


@pytest.mark.parametrize("method", bench.METHODS)
def test_every_method_times_the_anchors_operator(method, anchor):
    forward, transpose, fwd_bwd, sino_shape = bench.build_operators(
        method, SIZE, VIEWS, "cpu", threads=1
    )
    x = torch.rand(2, 1, SIZE, SIZE, generator=seeded(0))
    y = torch.rand(2, 1, *sino_shape, generator=seeded(1))
    if method == "deepinv-tomography":
        # deepinv's own discretisation: not ODL's operator, so checked against itself.
        assert dottest(forward, transpose, tuple(x.shape), rtol=1e-4) <= 1e-4
        torch.testing.assert_close(fwd_bwd(x), 2 * transpose(forward(x)), rtol=1e-4, atol=1e-5)
        return
    a_forward, a_transpose, a_fwd_bwd, a_sino_shape = anchor
    assert tuple(sino_shape) == tuple(a_sino_shape)
    assert _relative_error(forward(x), a_forward(x)) < 1e-5
    assert _relative_error(transpose(y), a_transpose(y)) < 1e-5
    # fwd+bwd is the gradient of |A x|^2, 2 A^T A x; astra-raw (no autograd) runs FP then BP.
    factor = 1.0 if method == "astra-raw" else 2.0
    assert _relative_error(fwd_bwd(x), factor * a_transpose(a_forward(x))) < 1e-5


def _result(method: str, size: int, views: int, speed: float, peak: float = 100.0) -> dict:
    entry = {"forward": 10 * speed, "transpose": 20 * speed, "fwd+bwd": 5 * speed}
    return {
        "method": method,
        "size": size,
        "views": views,
        "setup_s": 0.0,
        "batches": {"32": entry | {"peak_mib": peak}},
    }


def _table_rows(table: str) -> dict[tuple[int, str, int], list[str]]:
    """(size, method, batch) -> the cells after method and batch, for rows of measured values."""
    rows, size = {}, None
    for line in table.splitlines():
        cells = line.split()
        if line.startswith("## "):
            size = int(cells[1].split("x")[0])
        elif len(cells) > 2 and cells[0] in bench.METHODS and cells[1].isdigit():
            rows[size, cells[0], int(cells[1])] = cells[2:]
    return rows


def test_table_ratios_and_targets_follow_the_results():
    results = [
        _result("ours-matrix", 128, 50, 40.0),
        _result(bench.ANCHOR, 128, 50, 1.0),
        _result(bench.SCIPY_ANCHOR, 128, 50, 16.0),
        {"method": "astra-raw", "size": 128, "views": 50, "error": "astra failed"},
        _result("ours-matrix", 256, 180, 3.0, peak=2048.0),
    ]
    table = bench.format_table(results, [32])
    # ratio = images/s of the method / images/s of the anchor, mode by mode; then peak MiB.
    assert _table_rows(table) == {
        (128, "ours-matrix", 32): [
            "400.0",
            "(40.0x)",
            "800.0",
            "(40.0x)",
            "200.0",
            "(40.0x)",
            "100",
        ],
        (128, bench.ANCHOR, 32): ["10.0", "(1.0x)", "20.0", "(1.0x)", "5.0", "(1.0x)", "100"],
        (128, bench.SCIPY_ANCHOR, 32): [
            "160.0",
            "(16.0x)",
            "320.0",
            "(16.0x)",
            "80.0",
            "(16.0x)",
            "100",
        ],
        (256, "ours-matrix", 32): ["30.0", "60.0", "15.0", "2048"],  # no anchor: no ratios
    }
    assert "astra-raw            failed: astra failed" in table
    targets = {t["what"]: t for t in bench.check_targets(results)}
    speed = targets[f"fwd+bwd 128^2/50 views, batch 32, vs {bench.ANCHOR}"]
    assert (speed["value"], speed["target"], speed["met"]) == (40.0, 40.0, True)
    scipy = targets[f"slowest ratio vs {bench.SCIPY_ANCHOR} 128^2/50 views, any batch/mode"]
    assert (scipy["value"], scipy["met"]) == (2.5, True)
    memory = targets["peak MiB 256^2/180 views, batch 32, fwd+bwd"]
    assert (memory["value"], memory["target"], memory["met"]) == (2048.0, 1024.0, False)
    assert len(targets) == 3  # no anchor at 256^2: no speed target there


def test_cli_json_holds_the_rows_the_table_prints(tmp_path, capsys):
    out = tmp_path / "b.json"
    argv = ["--sizes", "16x6", "--batches", "1", "2", "--repeats", "1"]
    assert bench.main([*argv, "--methods", "ours-matrix", "--json", str(out)]) == 0
    printed = {(m, b): cells for (_, m, b), cells in _table_rows(capsys.readouterr().out).items()}
    (result,) = json.loads(out.read_text())["results"]
    assert (result["method"], result["size"], result["views"]) == ("ours-matrix", 16, 6)
    assert sorted(result["batches"]) == ["1", "2"]
    assert sorted(printed) == [("ours-matrix", 1), ("ours-matrix", 2)]
    for batch, entry in result["batches"].items():
        assert set(entry) == {*bench.MODES, "peak_mib"}
        expected = [f"{entry[m]:.1f}" for m in bench.MODES] + [f"{entry['peak_mib']:.0f}"]
        assert printed["ours-matrix", int(batch)] == expected
    bench.plot([result], tmp_path / "p.png", batch=2)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"

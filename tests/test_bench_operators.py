"""The operator benchmark's machinery on a tiny problem (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from deepinv_ei.experiments import bench_operators as bench


@pytest.mark.parametrize("method", ["ours-matrix", "ours-astra", "odl-contrib", "astra-raw"])
def test_worker_measures_every_mode(method):
    res = bench.run_worker(
        method, size=16, views=6, batches=[1, 3], repeats=1, device="cpu", threads=1
    )
    for b in ("1", "3"):
        entry = res["batches"][b]
        assert all(entry[m] > 0 for m in bench.MODES)
        assert entry["peak_mib"] >= 0


def test_table_targets_plot_and_cli(tmp_path):
    results = [
        bench.run_worker(m, size=16, views=6, batches=[32], repeats=1, device="cpu", threads=1)
        for m in ("ours-matrix", bench.ANCHOR)
    ]
    for r in results:  # pretend the tiny problem is one with a target
        r["size"], r["views"] = 128, 50
    table = bench.format_table(results, [32])
    assert "ours-matrix" in table and "x)" in table
    (target,) = bench.check_targets(results)
    assert target["target"] == 40.0 and target["value"] > 0
    bench.plot(results, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    out = tmp_path / "b.json"
    rc = bench.main(
        [
            "--sizes",
            "16x6",
            "--batches",
            "2",
            "--repeats",
            "1",
            "--methods",
            "ours-matrix",
            "--json",
            str(out),
        ]
    )
    assert rc == 0 and json.loads(out.read_text())["results"][0]["method"] == "ours-matrix"

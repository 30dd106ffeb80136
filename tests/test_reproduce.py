"""benchmarks/reproduce_iccv.py: smoke runs of every task, exact resume, bad input."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepinv_ei.experiments.reproduce import RunConfig, get_profile, parse_methods, run
from deepinv_ei.experiments.reproduce.cli import config_from_args, main
from deepinv_ei.experiments.reproduce.metrics import psnr, psnr_seed_convention
from deepinv_ei.experiments.reproduce.profiles import (
    PROFILES,
    TASKS,
    apply_overrides,
    describe_changes,
    paper_profile,
)
from deepinv_ei.training import Trainer

run_module = importlib.import_module("deepinv_ei.experiments.reproduce.run")
ROOT = Path(__file__).resolve().parents[1]
KEYS = {"psnr", "psnr_std", "psnr_seed", "ssim", "train_seconds", "epochs"}


@pytest.mark.parametrize("task", TASKS)
def test_smoke_profile_writes_every_output(task, tmp_path):
    cfg = RunConfig(
        tasks=(task,),
        methods=("pinv", "mc", "ei", "sup"),
        profile="smoke",
        out=tmp_path,
        verbose=False,
    )
    res = run(cfg)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk[task].keys() == {"pinv", "mc", "ei", "sup"}
    for method, entry in on_disk[task].items():
        assert KEYS <= entry.keys(), method
        assert torch.isfinite(torch.tensor(entry["psnr"]))
    assert on_disk["seed"] == 0 and on_disk["profile"] == "smoke"
    assert {"torch", "deepinv", "odl"} <= on_disk["versions"].keys()
    assert on_disk[task]["ei"]["epochs"] == get_profile(task, "smoke").epochs
    assert len(on_disk[task]["ei"]["curve"]) == get_profile(task, "smoke").epochs
    for name in (f"fig1_{task}.png", f"curves_{task}.png", "results.md"):
        assert (tmp_path / name).stat().st_size > 0
    for method in ("mc", "ei", "sup"):
        assert (tmp_path / "checkpoints" / task / method / "ckp_last.pth.tar").exists()
    assert "| EI |" in (tmp_path / "results.md").read_text()
    assert res[task]["pinv"]["psnr"] == on_disk[task]["pinv"]["psnr"]


def test_pinv_entry_is_the_psnr_of_a_dagger_y(tmp_path):
    run(RunConfig(tasks=("cs",), methods=("pinv",), profile="smoke", out=tmp_path, verbose=False))
    res = json.loads((tmp_path / "results.json").read_text())["cs"]["pinv"]
    from deepinv_ei.experiments.reproduce.tasks import build_task

    s = build_task(get_profile("cs", "smoke"))
    x_hat = s.physics.A_dagger(s.physics(s.x_test))
    assert res["psnr"] == pytest.approx(psnr(s.x_test, x_hat).mean().item(), abs=1e-3)


def test_robust_ei_and_supervised_ei_methods(tmp_path):
    cfg = RunConfig(
        tasks=("inpainting",),
        methods=("pinv", "rei", "sup_ei"),
        profile="smoke",
        out=tmp_path,
        verbose=False,
    )
    res = run(cfg)["inpainting"]
    # rei trains on noisy measurements: its A†y baseline is the noisy one, worse than the clean one
    assert res["rei"]["noise"].startswith("poisson")
    assert res["rei"]["pinv_noisy_psnr"] < res["pinv"]["psnr"] - 0.5
    assert len(res["rei"]["loss_history"]) == 2  # SURE and EI logged separately
    assert any("Sup" in name for name in res["sup_ei"]["loss_history"])
    assert any("EI" in name for name in res["sup_ei"]["loss_history"])
    assert "REI (poisson" in (tmp_path / "results.md").read_text()


def _interrupt_after(method: str, epoch: int, monkeypatch):
    original = Trainer.save_model

    def save_then_die(self, filename, ep, state=None):
        original(self, filename, ep, state)
        if self.metadata["method"] == method and ep == epoch:
            raise KeyboardInterrupt  # a kill right after a checkpoint was written

    monkeypatch.setattr(Trainer, "save_model", save_then_die)


def test_resume_after_interruption_continues_exactly(tmp_path, monkeypatch):
    three = dataclasses.replace(get_profile("cs", "smoke"), epochs=3, milestones=(2,))
    monkeypatch.setattr(run_module, "get_profile", lambda task, profile: three)
    kw = dict(tasks=("cs",), methods=("pinv", "mc", "ei"), profile="smoke", verbose=False)

    reference = run(RunConfig(out=tmp_path / "ref", **kw))["cs"]

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after("ei", 1, m)
        with pytest.raises(KeyboardInterrupt):
            run(RunConfig(out=out, **kw))
    partial = json.loads((out / "results.json").read_text())["cs"]
    assert set(partial) == {"pinv", "mc"}  # ei was interrupted

    trained = []
    original_train = Trainer.train
    monkeypatch.setattr(
        Trainer,
        "train",
        lambda self: trained.append(self.metadata["method"]) or original_train(self),
    )
    resumed = run(RunConfig(out=out, resume=True, **kw))["cs"]
    assert trained == ["ei"]  # mc was finished: loaded, not retrained
    assert resumed["mc"] == partial["mc"]
    assert resumed["ei"]["resumed_from_epoch"] == 2
    assert len(resumed["ei"]["loss_history"]["MCLoss"]) == 3  # history kept across the restart
    # RNG states travel with the checkpoint: the resumed run is the uninterrupted one
    assert resumed["ei"]["psnr"] == pytest.approx(reference["ei"]["psnr"], abs=1e-4)
    assert [c[2] for c in resumed["ei"]["curve"]] == pytest.approx(
        [c[2] for c in reference["ei"]["curve"]], abs=1e-4
    )


def test_resume_refuses_other_settings(tmp_path):
    run(RunConfig(tasks=("cs",), methods=("pinv",), profile="smoke", out=tmp_path, verbose=False))
    with pytest.raises(ValueError, match="seed"):
        run(
            RunConfig(
                tasks=("cs",),
                methods=("pinv",),
                profile="smoke",
                out=tmp_path,
                seed=1,
                resume=True,
                verbose=False,
            )
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--methods", "pinv,foo"], "unknown method"),
        (["--methods", ","], "at least one"),
        (["--task", "mri"], "invalid choice"),
        (["--profile", "huge"], "invalid choice"),
        (["--data-dir", "/nonexistent/ei-data"], "not an existing folder"),
        (["--threads", "0"], "positive integer"),
        (["--set", "alpha"], "expects NAME=VALUE"),
        (["--set", "alpha=x"], "expected a value like"),
        (["--set", "colour=red"], "unknown setting 'colour'"),
        (["--set", "task=cs"], "unknown setting 'task'"),
    ],
)
def test_bad_arguments_are_clear_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        config_from_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_malformed_data_dir_fails_before_any_training(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("no images here")
    with pytest.raises((ValueError, FileNotFoundError)):
        main(
            [
                "--task",
                "cs",
                "--profile",
                "smoke",
                "--data-dir",
                str(data),
                "--out",
                str(tmp_path / "out"),
                "--quiet",
            ]
        )
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_parse_methods_keeps_order_and_drops_duplicates():
    assert parse_methods("ei, pinv,ei") == ("ei", "pinv")
    with pytest.raises(ValueError, match="unknown"):
        parse_methods(["sup", "dip"])


def test_profiles_cover_every_task_and_paper_holds_the_papers_settings():
    for task in TASKS:
        for profile in PROFILES:
            assert get_profile(task, profile).task == task
    ct, inp, cs = (paper_profile(t) for t in TASKS)
    assert (ct.image_size, ct.n_views, ct.alpha, ct.n_trans, ct.batch_size, ct.lr, ct.epochs) == (
        128,
        50,
        100.0,
        5,
        2,
        5e-4,
        5000,
    )
    assert ct.milestones == (2000, 3000, 4000) and ct.transform == "rotate"
    assert (inp.image_size, inp.channels, inp.missing_rate, inp.n_trans, inp.alpha) == (
        256,
        3,
        0.3,
        3,
        1.0,
    )
    assert (inp.batch_size, inp.lr, inp.epochs, inp.milestones) == (
        1,
        1e-3,
        2000,
        (500, 1000, 1500),
    )
    assert (cs.image_size, cs.n_measurements, cs.alpha, cs.batch_size, cs.epochs) == (
        16,
        64,
        10.0,
        8,
        300,
    )
    with pytest.raises(ValueError, match="task"):
        get_profile("mri", "quick")


def test_quick_ct_is_under_determined_at_most_as_densely_as_the_paper():
    # 128^2 with 50 views has m/n ~ 0.55; the quick 64^2 uses 14 views (m/n ~ 0.31), where EI's
    # nullspace gain shows within minutes (the CT study in docs/results.md); the change is printed.
    def ratio(p):
        return p.n_views * int(torch.tensor(2.0).sqrt().item() * p.image_size + 1) / p.image_size**2

    assert 0.25 < ratio(get_profile("ct", "quick")) <= ratio(paper_profile("ct"))
    assert "n_views: paper 50 -> 14" in describe_changes(get_profile("ct", "quick"))


def test_seed_convention_psnr_is_standard_minus_10log10_channels_for_unit_peak():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    x[:, :, 0, 0] = 1.0  # peak max|x| = 1
    x_hat = x + 0.1 * torch.randn_like(x)
    gap = psnr(x, x_hat) - psnr_seed_convention(x, x_hat)
    assert torch.allclose(
        gap, torch.full((2,), 10 * torch.log10(torch.tensor(3.0)).item()), atol=1e-3
    )


def test_module_and_console_entry_points_answer_help():
    proc = subprocess.run(
        [sys.executable, "-m", "deepinv_ei.experiments.reproduce", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "--resume" in proc.stdout


@pytest.mark.slow
def test_torchrun_two_gloo_processes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        str(ROOT / "benchmarks" / "reproduce_iccv.py"),
        "--task",
        "cs",
        "--profile",
        "smoke",
        "--methods",
        "pinv,ei",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert "DDP" in res["device"] and "x2" in res["device"]
    assert res["cs"]["ei"]["epochs"] == get_profile("cs", "smoke").epochs


def test_set_overrides_parse_by_field_type_and_reach_the_run(tmp_path):
    p = apply_overrides(
        get_profile("ct", "quick"),
        {
            "alpha": "10",
            "n_trans": "4",
            "milestones": "5,9",
            "batch_norm": "false",
            "n_test": "None",
        },
    )
    assert (p.alpha, p.n_trans, p.milestones, p.batch_norm, p.n_test) == (
        10.0,
        4,
        (5, 9),
        False,
        None,
    )
    cfg = config_from_args(
        [
            "--task",
            "cs",
            "--profile",
            "smoke",
            "--methods",
            "pinv",
            "--set",
            "n_test=3",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    assert cfg.overrides == (("n_test", "3"),)
    res = run(cfg)
    assert res["overrides"] == {"n_test": "3"} and res["settings"]["cs"]["n_test"] == 3


def test_every_built_in_profile_passes_its_own_checks():
    from deepinv_ei.experiments.reproduce.profiles import check_profile

    for task in TASKS:
        for profile in PROFILES:
            p = get_profile(task, profile)
            assert check_profile(p) is p

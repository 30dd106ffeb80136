"""The CT study driver, the error split in the reproduction's outputs, the new profile
settings (phantom family, interpolation) and the GPU speed options (autocast, compile)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from deepinv_ei.experiments import ct_study
from deepinv_ei.experiments.reproduce import RunConfig, get_profile, run
from deepinv_ei.experiments.reproduce.methods import make_model
from deepinv_ei.experiments.reproduce.profiles import apply_overrides
from deepinv_ei.experiments.reproduce.tasks import build_task
from deepinv_ei.models import EIUNet

SPLIT_KEYS = {"range_norm", "null_norm", "range_rel", "null_rel", "range_psnr", "null_psnr"}


@pytest.mark.parametrize("task", ["ct", "inpainting", "cs"])
def test_results_have_the_error_split_of_every_method(task, tmp_path, one_thread):
    res = run(
        RunConfig(
            tasks=(task,),
            methods=("pinv", "mc", "ei"),
            profile="smoke",
            out=tmp_path,
            verbose=False,
        )
    )[task]
    on_disk = json.loads((tmp_path / "results.json").read_text())[task]
    for method in ("pinv", "mc", "ei"):
        s = on_disk[method]["split"]
        assert SPLIT_KEYS <= s.keys()
        # orthogonal parts: their squared norms add up to the squared error (CT: up to the
        # components along singular values that CG at tol 1e-6 does not resolve)
        assert s["range_fraction"] + s["null_fraction"] == pytest.approx(1.0, abs=1e-2)
        assert s == res[method]["split"]
    if task == "inpainting":  # A†y and MC keep every measured pixel: no range error at all
        assert on_disk["pinv"]["split"]["range_norm"] == 0.0
        assert on_disk["mc"]["split"]["range_norm"] == 0.0
    if task == "ct":
        assert on_disk["ei"]["split"]["cg_iterations"] > 0
        assert "split" in on_disk["ei"]["extra_test"]
    text = (tmp_path / "results.md").read_text()
    assert "null share" in text and (tmp_path / f"split_{task}.png").stat().st_size > 0


def test_study_smoke_plan_runs_twins_and_skips_finished_runs(tmp_path, one_thread):
    records = ct_study.run_study(ct_study.plan("smoke"), tmp_path, verbose=False)
    assert [r["name"] for r in records] == ["smoke", "smoke_warm"]
    for r in records:
        assert r["gap_psnr"] == pytest.approx(r["ei"]["psnr"] - r["mc"]["psnr"], abs=1e-3)
        assert SPLIT_KEYS <= r["mc"]["split"].keys() and SPLIT_KEYS <= r["ei"]["split"].keys()
        assert r["mc"]["curve"][-1][0] == r["settings"]["steps"]
    # the warm-started EI continues from the MC twin's step 2 of 4
    assert records[0]["ei"]["start_step"] == 0 and records[1]["ei"]["start_step"] == 2
    assert [c[0] for c in records[1]["ei"]["curve"]] == [4]
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    again = ct_study.run_study(ct_study.plan("smoke"), tmp_path, verbose=False)
    assert (tmp_path / "runs.jsonl").read_text().splitlines() == lines  # nothing rerun
    assert [r["name"] for r in again] == ["smoke", "smoke_warm"]
    assert "| smoke_warm |" in (tmp_path / "study.md").read_text()


def test_study_mc_twin_ignores_ei_only_settings():
    a = ct_study.StudyRun("a", alpha=1.0, n_trans=1, interpolation="bilinear", warm_start=0.5)
    b = ct_study.StudyRun("b")
    assert a.mc_key() == b.mc_key()
    assert ct_study.StudyRun("c", n_views=14).mc_key() != b.mc_key()


def test_study_cli_rejects_unknown_runs(capsys):
    with pytest.raises(SystemExit):
        ct_study.main(["--plan", "smoke", "--only", "nope", "--out", "/nonexistent/x"])
    assert "unknown run" in capsys.readouterr().err


def test_textured_phantoms_and_interpolation_settings():
    p = apply_overrides(
        get_profile("ct", "smoke"), {"phantoms": "textured", "interpolation": "bilinear"}
    )
    s = build_task(p)
    assert s.dataset_name == "ct_phantoms_textured" and s.x_train.shape[1:] == (1, 16, 16)
    ellipses = build_task(get_profile("ct", "smoke"))
    assert not torch.equal(s.x_train, ellipses.x_train)
    for bad in ({"phantoms": "forbild"}, {"interpolation": "cubic"}, {"mixed_precision": "fp8"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            build_task(apply_overrides(get_profile("ct", "smoke"), bad))


def test_bf16_autocast_trains_in_bfloat16_on_cpu(tmp_path, monkeypatch, one_thread):
    """The paper profile's speed options at smoke size: autocast really runs the convolutions
    in bfloat16 during training, and the run finishes with finite results."""
    from deepinv_ei.models import unet

    seen = []
    original = unet.EIUNet.forward

    def spy(self, x, *args, **kwargs):
        out = original(self, x, *args, **kwargs)
        if self.training:
            seen.append(self.Conv_1x1(torch.zeros(1, self.Conv_1x1.in_channels, 2, 2)).dtype)
        return out

    monkeypatch.setattr(unet.EIUNet, "forward", spy)
    cfg = RunConfig(
        tasks=("ct",),
        methods=("ei",),
        profile="smoke",
        out=tmp_path,
        verbose=False,
        overrides=(("mixed_precision", "bf16"),),
    )
    res = run(cfg)["ct"]["ei"]
    assert seen and all(d == torch.bfloat16 for d in seen)
    assert torch.isfinite(torch.tensor(res["psnr"]))
    assert (
        json.loads((tmp_path / "results.json").read_text())["settings"]["ct"]["mixed_precision"]
        == "bf16"
    )


def test_fp16_grad_scaler_state_is_checkpointed_and_resumed(tmp_path, one_thread):
    overrides = (("mixed_precision", "fp16"),)
    cfg = RunConfig(
        tasks=("cs",),
        methods=("mc",),
        profile="smoke",
        out=tmp_path,
        verbose=False,
        overrides=overrides,
    )
    run(cfg)
    ckp = torch.load(
        tmp_path / "checkpoints" / "cs" / "mc" / "ckp_last.pth.tar", weights_only=False
    )
    assert ckp["scaler"] is not None and ckp["scaler"]["scale"] > 0
    # resuming a finished method keeps it; resuming an unfinished one restores the scaler
    res = json.loads((tmp_path / "results.json").read_text())
    del res["cs"]["mc"]
    (tmp_path / "results.json").write_text(json.dumps(res))
    again = run(dataclasses.replace(cfg, resume=True))["cs"]["mc"]
    assert again["resumed_from_epoch"] == get_profile("cs", "smoke").epochs


def test_speed_option_wiring(monkeypatch):
    p = get_profile("ct", "paper")
    with pytest.raises(ValueError, match="mixed_precision"):
        dataclasses.replace(p, mixed_precision="half")
    calls = []
    # the wiring, not inductor
    monkeypatch.setattr(EIUNet, "compile", lambda self, *a, **k: calls.append(True))
    make_model(dataclasses.replace(p, width=4))
    assert calls == []
    compiled = make_model(dataclasses.replace(p, width=4, compile=True))
    assert calls == [True] and isinstance(compiled.backbone_net, EIUNet)
    # neither option is a difference from the paper's protocol
    assert dataclasses.replace(p, compile=True, mixed_precision="bf16").changes_from(p) == {}


@pytest.mark.slow
def test_compiled_network_trains_and_checkpoints_like_the_eager_one(tmp_path, one_thread):
    """A real ``torch.compile`` (inductor on the CPU: minutes to compile)."""
    base = RunConfig(
        tasks=("cs",), methods=("mc",), profile="smoke", out=tmp_path / "eager", verbose=False
    )
    eager = run(base)["cs"]["mc"]
    compiled = run(
        dataclasses.replace(base, out=tmp_path / "compiled", overrides=(("compile", "true"),))
    )["cs"]["mc"]
    assert compiled["psnr"] == pytest.approx(eager["psnr"], abs=0.05)
    state = torch.load(tmp_path / "compiled" / "checkpoints" / "cs" / "mc" / "model_final.pth")
    assert not any("_orig_mod" in k for k in state)

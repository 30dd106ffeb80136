"""deepinv_ei.training.Trainer on tiny problems: exact resume after a kill, atomic checkpoints,
best-checkpoint selection and early stopping by a score, the time budget, training from y
only."""

from __future__ import annotations

import json

import deepinv as dinv
import pytest
import torch

from deepinv_ei import loss as ei_loss
from deepinv_ei import transforms
from deepinv_ei.training import (
    BEST_CHECKPOINT,
    CHECKPOINT,
    CURVES,
    HISTORY,
    Trainer,
    load_checkpoint,
    shuffled_loader,
)
from deepinv_ei.training import trainer as trainer_module


def problem(seed: int = 0):
    """Measurements only: 12 sinogram-like vectors of a 4x4 compressed-sensing problem."""
    gen = torch.Generator().manual_seed(seed)
    physics = dinv.physics.CompressedSensing(m=10, img_size=(1, 4, 4), rng=gen)
    y = physics(torch.rand(12, 1, 4, 4, generator=gen))
    return physics, y


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.out = torch.nn.Conv2d(4, 1, 1)

    def forward(self, x, *args):  # ArtifactRemoval also passes a noise level
        return x + self.out(torch.relu(self.conv(x)))


def make_trainer(physics, y, folder, seed: int = 0, **kw) -> Trainer:
    """A fresh model, optimiser and EI losses; the same seed gives the same start."""
    torch.manual_seed(seed)
    model = dinv.models.ArtifactRemoval(TinyNet(), mode="pinv")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    group_rng = torch.Generator().manual_seed(7)
    shift = transforms.Shift(nonzero=True, n_trans=1, rng=group_rng)
    defaults = dict(
        model=model,
        physics=physics,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.MultiStepLR(optimizer, [2], gamma=0.5),
        train_dataloader=shuffled_loader(
            dinv.datasets.TensorDataset(y=y, use_dict_output=True), batch_size=4
        ),
        losses=list(ei_loss.equivariant_imaging(shift, alpha=1.0)),
        generators={"group": group_rng},
        metrics=None,
        compute_train_metrics=False,
        online_measurements=False,
        epochs=4,
        device="cpu",
        checkpoint_dir=folder,
        verbose=False,
        show_progress_bar=False,
    )
    return Trainer(**(defaults | kw))


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def mc_residual(physics, y):
    """A score without x: the relative measurement residual."""
    return lambda model: {"mc": (physics.A(model(y, physics)) - y).norm().item() / y.norm().item()}


def test_resume_after_a_kill_gives_the_uninterrupted_weights_bit_for_bit(tmp_path, monkeypatch):
    physics, y = problem()
    straight = make_trainer(physics, y, tmp_path / "a", scores=mc_residual(physics, y))
    straight.train()
    reference = weights(straight)

    original = Trainer.save_model

    def save_then_die(self, filename, epoch, state=None):
        original(self, filename, epoch, state)
        if epoch == 1:
            raise KeyboardInterrupt  # killed right after the epoch-2 checkpoint

    with monkeypatch.context() as m:
        m.setattr(Trainer, "save_model", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            make_trainer(physics, y, tmp_path / "b", scores=mc_residual(physics, y)).train()
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["epoch"] == 1

    torch.manual_seed(123)  # the new process's RNGs start elsewhere: the checkpoint restores them
    resumed = make_trainer(physics, y, tmp_path / "b", seed=5, resume=True)
    resumed.scores = mc_residual(physics, y)
    resumed.train()
    assert resumed.resumed_from_epoch == 2
    for k, v in reference.items():
        assert torch.equal(resumed.model.state_dict()[k], v), k
    # the history continues across the kill, with the very same scores
    assert [(r["epoch"], r["mc"]) for r in resumed.history] == [
        (r["epoch"], r["mc"]) for r in straight.history
    ]
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert resumed.loss_history == straight.loss_history


def test_resume_refuses_a_checkpoint_of_another_configuration(tmp_path):
    physics, y = problem()
    make_trainer(physics, y, tmp_path, epochs=1, metadata={"alpha": 1}).train()
    other = make_trainer(physics, y, tmp_path, epochs=2, metadata={"alpha": 2}, resume=True)
    with pytest.raises(ValueError, match="another configuration"):
        other.train()


def test_a_failed_checkpoint_write_leaves_the_previous_one_and_no_partial_file(
    tmp_path, monkeypatch
):
    physics, y = problem()
    make_trainer(physics, y, tmp_path, epochs=2).train()
    good = (tmp_path / CHECKPOINT).read_bytes()
    original = Trainer.checkpoint_state

    def unpicklable(self, epoch):
        return original(self, epoch) | {"oops": lambda: None}  # torch.save fails mid-write

    monkeypatch.setattr(Trainer, "checkpoint_state", unpicklable)
    with pytest.raises(Exception, match="pickle|lambda"):
        make_trainer(physics, y, tmp_path, epochs=4, resume=True).train()
    assert (tmp_path / CHECKPOINT).read_bytes() == good
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_lowest_score_keeps_the_best_checkpoint_and_patience_stops(tmp_path):
    physics, y = problem()
    script = iter([5.0, 3.0, 4.0, 2.0, 2.5, 2.2, 1.0, 0.5])  # best at the 4th evaluation
    seen = []

    def scores(model):
        assert not model.training and not torch.is_grad_enabled()
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"score": next(script), "other": 1.0}

    tr = make_trainer(physics, y, tmp_path, epochs=10, scores=scores, select="score", patience=2)
    tr.train()
    assert [r["score"] for r in tr.history] == [5.0, 3.0, 4.0, 2.0, 2.5, 2.2]
    assert tr.stop_reason == "score not improved in 2 evaluations"
    best, last = load_checkpoint(tmp_path / BEST_CHECKPOINT), load_checkpoint(tmp_path / CHECKPOINT)
    assert best["epoch"] == 3 and last["epoch"] == 5  # the stop epoch is checkpointed
    for k, v in seen[3].items():
        assert torch.equal(best["state_dict"][k], v)
    assert not torch.equal(
        best["state_dict"]["backbone_net.conv.weight"], seen[5]["backbone_net.conv.weight"]
    )
    tr.load_best_model()
    assert torch.equal(
        tr.model.state_dict()["backbone_net.conv.weight"], seen[3]["backbone_net.conv.weight"]
    )
    on_disk = json.loads((tmp_path / HISTORY).read_text())
    assert [r["score"] for r in on_disk["history"]] == [5.0, 3.0, 4.0, 2.0, 2.5, 2.2]
    assert on_disk["stop"] == tr.stop_reason and (tmp_path / CURVES).stat().st_size > 0
    assert tr.epochs == 10  # the stop shortened the loop, not the setting


def test_the_time_budget_stops_before_an_epoch_would_overrun_it(tmp_path, monkeypatch):
    physics, y = problem()
    now = [0.0]
    monkeypatch.setattr(trainer_module, "_clock", lambda: now[0])

    def slow_mc(model):
        return {"mc": 0.0}

    tr = make_trainer(physics, y, tmp_path, epochs=10, minutes=5.0, scores=slow_mc)
    original = tr.losses[0].forward

    def one_minute_per_batch(*args, **kwargs):
        now[0] += 60.0  # 3 batches: 3 minutes an epoch
        return original(*args, **kwargs)

    tr.losses[0].forward = one_minute_per_batch
    tr.train()
    # after epoch 1: 3 + 3 <= 5? no -> it stops after epoch 1, evaluated and checkpointed
    assert tr.stop_reason == "time budget of 5 min"
    assert len(tr.loss_history["MCLoss"]) == 1 and [r["epoch"] for r in tr.history] == [1]
    assert load_checkpoint(tmp_path / CHECKPOINT)["epoch"] == 0
    assert tr.wall_seconds() == pytest.approx(180.0)


def test_trains_from_measurements_alone_and_default_metrics_say_why_they_cannot(tmp_path):
    physics, y = problem()
    eval_loader = torch.utils.data.DataLoader(
        dinv.datasets.TensorDataset(y=y[:4], use_dict_output=True), batch_size=2
    )
    tr = make_trainer(
        physics, y, tmp_path, eval_dataloader=eval_loader, scores=mc_residual(physics, y[:4])
    )
    tr.train()
    assert [r["epoch"] for r in tr.history] == [1, 2, 3, 4]
    assert all(0 < r["mc"] < 2 for r in tr.history)
    with pytest.raises(ValueError, match=r"metrics \['PSNR'\].*metrics=None"):
        make_trainer(
            physics,
            y,
            tmp_path / "psnr",
            metrics=dinv.loss.metric.PSNR(),
            eval_dataloader=eval_loader,
        ).train()


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"select": "mc"}, "scores is None"),
        ({"patience": 2}, "select"),
        ({"minutes": 0.0}, "finite number > 0"),
        ({"threads": 0}, "positive integer"),
        ({"checkpoint_dir": None, "resume": True}, "checkpoint_dir"),
        ({"mixed_precision": "half"}, "Mixed precision"),
    ],
)
def test_bad_settings_are_refused_at_construction(kw, message, tmp_path):
    physics, y = problem()
    with pytest.raises(ValueError, match=message):
        make_trainer(physics, y, tmp_path, **kw)


def test_mixed_precision_none_is_float32():
    physics, y = problem()
    assert make_trainer(physics, y, None, mixed_precision="none").mixed_precision is False
    tr = make_trainer(physics, y, None, mixed_precision="bf16")
    assert tr.mixed_precision == torch.bfloat16

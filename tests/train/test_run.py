"""The lifecycle pretraining and fine-tuning share: the run folder guard on every rank, Ctrl-C /
SIGTERM leaving a resumable checkpoint, and a NaN stopping the run with one line."""

from __future__ import annotations

import csv
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

import geopre.train.finetune as finetune_module
import geopre.train.pretrain as pretrain_module
from geopre.errors import UserError
from geopre.synth.kitti import write_kitti
from geopre.train.checkpoint import Checkpointer, TrainingDiverged
from geopre.train.finetune import FinetuneConfig, finetune
from geopre.train.pretrain import PretrainConfig, pretrain
from geopre.train.run import RunInterrupted, claim_run_dir
from geopre.train.runtime import Runtime


@pytest.fixture(scope="module")
def kitti_tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("run-kitti")
    write_kitti(out, drives=4, test_drives=1, frames=12, width=128, height=64, seed=1)
    return out


def pretrain_run(shards, out, **kw):
    base = dict(shards=str(shards), out=out, size=(64, 32), batch_size=2, workers=0, max_steps=6, log_every=1,
                val_every=6, visual_every=6, checkpoint_every=2, device="cpu", init="scratch")
    return pretrain(PretrainConfig(**{**base, **kw}), echo=lambda _: None)


def finetune_run(root, run_dir, **kw):
    # fraction 0.4: 8 of the 20 frames, 4 steps per epoch.
    base = dict(data_root=root, run_dir=run_dir, mode="M", size=(128, 64), batch_size=2, epochs=2, fraction=0.4,
                init="scratch", workers=0, device="cpu", log_every=1, val_gt_frames=0)
    return finetune(FinetuneConfig(**{**base, **kw}))


def final_weights(kind, run):
    """The weights a run ends with: pretraining's last checkpoint, fine-tuning's last model."""
    return load_file(str(Checkpointer(run).latest() / "model.safetensors" if kind == "pretrain"
                         else run / "model.safetensors"))


def logged_steps(run):
    with (run / "metrics.csv").open() as f:
        return [int(float(row["step"])) for row in csv.DictReader(f)]


@pytest.mark.parametrize("is_main", [True, False])
def test_a_fresh_run_into_a_folder_with_a_checkpoint_is_refused_on_every_rank(tmp_path, is_main):
    run = tmp_path / "run"
    assert claim_run_dir(run, resume=False, is_main=True, name="finetune") == run  # empty: a fresh run may start
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    Checkpointer(run).save(3, 0, model, torch.optim.Adam(model.parameters()))
    with pytest.raises(UserError, match=f"{run} already holds a finetune run: add --resume"):
        claim_run_dir(run, resume=False, is_main=is_main, name="finetune")
    assert claim_run_dir(run, resume=True, is_main=is_main, name="finetune") == run


def signal_in_step(monkeypatch, step, signum):
    """``signum`` sent to this process inside the ``step``-th optimiser step, where a real Ctrl-C
    is most likely to land (and where raising would save half-updated weights)."""
    real_step, calls = Runtime.optimizer_step, []

    def step_and_signal(loss, optimizer, scaler):
        calls.append(1)
        if len(calls) == step:
            os.kill(os.getpid(), signum)
        real_step(loss, optimizer, scaler)

    monkeypatch.setattr(Runtime, "optimizer_step", staticmethod(step_and_signal))


@pytest.mark.parametrize("kind,signum", [("pretrain", signal.SIGINT), ("finetune", signal.SIGINT),
                                         ("finetune", signal.SIGTERM)])
def test_a_stopped_run_saves_closes_and_resumes_to_the_same_weights(kind, signum, pretrain_shards, kitti_tree,
                                                                   tmp_path, monkeypatch):
    train = (lambda out, **kw: pretrain_run(pretrain_shards, out, **kw)) if kind == "pretrain" else \
        (lambda out, **kw: finetune_run(kitti_tree, out, **kw))
    straight = train(tmp_path / "straight")
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with monkeypatch.context() as patch:
        signal_in_step(patch, 3, signum)  # between checkpoints (pretrain) and inside an epoch (finetune)
        with pytest.raises(RunInterrupted) as stopped:
            train(tmp_path / "stopped")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    run = tmp_path / "stopped"
    saved = run / "checkpoints" / "step_00000003"  # the step the signal landed in, finished
    assert str(stopped.value) == f"{kind} stopped by {signum.name} (checkpoint {saved}; add --resume to continue)"
    assert Checkpointer(run).latest() == saved and not (run / "summary.json").exists()
    assert logged_steps(run) == [1, 2, 3]  # the log was flushed and closed with the checkpoint
    resumed = train(run, resume=True)
    assert resumed["steps"] == straight["steps"] and logged_steps(run) == logged_steps(tmp_path / "straight")
    a, b = final_weights(kind, tmp_path / "straight"), final_weights(kind, run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_ctrl_c_stops_mid_step_and_saves_nothing(pretrain_shards, tmp_path, monkeypatch):
    real_step = Runtime.optimizer_step

    def step_twice_interrupted(loss, optimizer, scaler):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        real_step(loss, optimizer, scaler)

    monkeypatch.setattr(Runtime, "optimizer_step", staticmethod(step_twice_interrupted))
    with pytest.raises(RunInterrupted, match="pretrain interrupted mid-step, nothing saved \\(no checkpoint"):
        pretrain_run(pretrain_shards, tmp_path / "run")
    assert Checkpointer(tmp_path / "run").latest() is None


def nan_at_call(monkeypatch, module, name, call):
    """``module.name`` (a loss function) returning a NaN loss at its ``call``-th call."""
    real, calls = getattr(module, name), []

    def loss(*args, **kwargs):
        value, parts = real(*args, **kwargs)
        calls.append(1)
        return (value * float("nan"), parts) if len(calls) == call else (value, parts)

    monkeypatch.setattr(module, name, loss)


@pytest.mark.parametrize("kind", ["pretrain", "finetune"])
def test_a_nan_loss_stops_the_run_with_one_line_naming_the_step_and_the_last_good_checkpoint(
        kind, pretrain_shards, kitti_tree, tmp_path, monkeypatch):
    run = tmp_path / "run"
    if kind == "pretrain":
        nan_at_call(monkeypatch, pretrain_module, "pretrain_loss", 3)
        train = lambda **kw: pretrain_run(pretrain_shards, run, **kw)
    else:
        nan_at_call(monkeypatch, finetune_module, "depth_loss", 3)
        train = lambda **kw: finetune_run(kitti_tree, run, checkpoint_every=2, **kw)
    with pytest.raises(TrainingDiverged) as stopped:
        train()
    message = str(stopped.value)
    assert message.startswith(f"loss is nan at step 3; stopped (last good checkpoint: {run}/checkpoints/step_00000002)")
    assert "\n" not in message and logged_steps(run) == [1, 2]


def test_a_nan_between_log_steps_stops_at_its_step(pretrain_shards, tmp_path, monkeypatch):
    # Checked only at log steps, step 3's NaN weights would reach step 4's warp, whose backward
    # pass crashes the process (grid_sample with NaN coordinates).
    nan_at_call(monkeypatch, pretrain_module, "pretrain_loss", 3)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=f"loss is nan at step 3; stopped "
                                               f"\\(last good checkpoint: {run}/checkpoints/step_00000002\\)"):
        pretrain_run(pretrain_shards, run, log_every=6)


def test_weights_that_diverge_in_a_checkpoint_step_are_not_saved(pretrain_shards, tmp_path, monkeypatch):
    real_step, calls = Runtime.optimizer_step, []

    def step_then_poison(loss, optimizer, scaler):
        real_step(loss, optimizer, scaler)
        calls.append(1)
        if len(calls) == 4:  # the loss was finite; the update was not
            with torch.no_grad():
                optimizer.param_groups[0]["params"][0].fill_(float("inf"))

    monkeypatch.setattr(Runtime, "optimizer_step", staticmethod(step_then_poison))
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=f"weights are NaN or infinite at step 4; stopped "
                                               f"\\(last good checkpoint: {run}/checkpoints/step_00000002\\)"):
        pretrain_run(pretrain_shards, run)
    assert Checkpointer(run).latest() == run / "checkpoints" / "step_00000002"

"""Fine-tuning on a small synthetic KITTI tree: it learns, it loads starting weights, it resumes exactly."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import torchvision
from safetensors.torch import load_file

from geopre.errors import UserError
from geopre.synth.kitti import write_kitti
from geopre.train.finetune import FinetuneConfig, finetune


@pytest.fixture(scope="module")
def kitti_tree(tmp_path_factory):
    """4 drives (2 train, 1 val, 1 test) of 12 frames at 128x64: 20 Zhou train and 10 val frames."""
    out = tmp_path_factory.mktemp("finetune-kitti")
    write_kitti(out, drives=4, test_drives=1, frames=12, width=128, height=64, seed=1)
    return out


def small(root, run_dir, **overrides) -> FinetuneConfig:
    base = dict(data_root=root, run_dir=run_dir, mode="M", size=(128, 64), batch_size=2, epochs=3,
                init="scratch", workers=0, device="cpu", log_every=5, val_gt_frames=3)
    base.update(overrides)
    return FinetuneConfig(**base)


@pytest.fixture(scope="module")
def m_run(kitti_tree, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("m-run")
    return run_dir, finetune(small(kitti_tree, run_dir))


def test_monocular_finetune_beats_its_first_epoch_and_records_the_best(m_run):
    run_dir, summary = m_run
    history = summary["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3] and summary["steps"] == 3 * 10
    # The val drive is a street of its own (own textures, sensor noise), so 30 steps on 20 frames lower
    # its photometric error only a little (0.0938 -> 0.0921 here); the training loss shows the learning.
    first, last = history[0]["val/photometric"], history[-1]["val/photometric"]
    assert last < first, (first, last)
    rows = [row for row in csv.DictReader((run_dir / "metrics.csv").open()) if row.get("train/photometric")]
    train = [float(row["train/photometric"]) for row in rows]
    assert sum(train[-3:]) / 3 < 0.95 * train[0], train
    assert all(math.isfinite(h["val/abs_rel"]) and 0 <= h["val/a1"] <= 1 for h in history)
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["best"]["criterion"] == "val/abs_rel"
    assert written["best"]["epoch"] == min(history, key=lambda h: h["val/abs_rel"])["epoch"]
    for name in ("model.safetensors", "best.safetensors", "config.json", "model_info.json", "metrics.csv"):
        assert (run_dir / name).is_file(), name
    weights = load_file(str(run_dir / "model.safetensors"))
    assert any(k.startswith("depth.encoder.") for k in weights) and any(k.startswith("pose.") for k in weights)


def test_starting_from_a_weights_file_changes_the_first_epoch(kitti_tree, tmp_path):
    torch.manual_seed(123)
    encoder_file = tmp_path / "resnet18-torchvision.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), encoder_file)
    losses = {}
    for init in ("scratch", str(encoder_file)):
        summary = finetune(small(kitti_tree, tmp_path / f"run-{len(losses)}", init=init, epochs=1, fraction=0.3))
        losses[init] = summary["history"][0]["val/loss"]
        assert summary["init"] == init
    assert losses["scratch"] != pytest.approx(losses[str(encoder_file)], rel=1e-3)


def test_a_stopped_and_resumed_run_ends_with_the_same_weights(kitti_tree, tmp_path, monkeypatch, capsys):
    # fraction 0.4: 8 of the 20 frames, 4 steps per epoch; stop inside the second epoch.
    straight = finetune(small(kitti_tree, tmp_path / "straight", epochs=2, fraction=0.4))
    monkeypatch.setenv("GEOPRE_PROGRESS_SECONDS", "0")  # a progress line at every step (stderr is no terminal)
    capsys.readouterr()
    finetune(small(kitti_tree, tmp_path / "resumed", epochs=2, fraction=0.4, max_steps=5))
    with pytest.raises(UserError, match="--resume"):
        finetune(small(kitti_tree, tmp_path / "resumed", epochs=2, fraction=0.4))
    resumed = finetune(small(kitti_tree, tmp_path / "resumed", epochs=2, fraction=0.4, resume=True))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"finetune: {n}/5 steps ({20 * n}%)" for n in range(1, 6)] + [
        f"finetune: {n}/8 steps ({25 * n / 2:.0f}%)" for n in range(6, 9)]
    assert lines[0].endswith("epoch 1, loss " + lines[0].rsplit(" ", 1)[-1]) and "left" in lines[0]
    assert resumed["steps"] == straight["steps"] == 8
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["history"] == straight["history"]


@pytest.mark.parametrize("overrides,message", [
    (dict(mode="X"), "--mode must be S, M or MS"),
    (dict(size=(100, 64)), "multiples of 32"),
    (dict(init="/nonexistent/encoder.pth"), "no such file"),
    (dict(batch_size=64), "cannot fill one batch"),
    (dict(start_depth=500.0), "--start-depth must lie between"),
    (dict(mode="S", pose_start=1.0), "S mode has none"),
    (dict(mode="S", pose_lr_factor=10.0), "S mode has none"),
    (dict(pose_start=0.0), "--pose-start must be positive"),
    (dict(val_every_epochs=0), "--val-every-epochs must be at least 1"),
])
def test_bad_settings_are_user_errors(kitti_tree, tmp_path, overrides, message):
    with pytest.raises(UserError, match=message):
        finetune(small(kitti_tree, tmp_path / "run", **overrides))


def test_pose_start_makes_the_pose_network_start_moving_forward(kitti_tree, tmp_path):
    finetune(small(kitti_tree, tmp_path / "run", epochs=1, max_steps=1, start_depth=10.0, pose_start=1.0,
                   pose_lr_factor=10.0, val_gt_frames=0))
    bias = load_file(str(tmp_path / "run" / "model.safetensors"))["pose.decoder.out.bias"]
    # 1.0 forward per frame is -100 before the output scale of 0.01; one Adam step moves a bias by about
    # the learning rate: 1e-3 here, the pose network's 10x.
    assert bias[5].item() == pytest.approx(-100.0, abs=1e-2) and bias[3:5].abs().max() < 1e-2
    assert abs(bias[5].item() + 100.0) == pytest.approx(1e-3, rel=0.1)


def test_val_every_validates_every_nth_epoch_and_always_the_last(kitti_tree, tmp_path):
    summary = finetune(small(kitti_tree, tmp_path / "run", mode="S", epochs=3, val_every_epochs=2, val_gt_frames=0,
                             start_depth=10.0))
    assert [h["epoch"] for h in summary["history"]] == [2, 3]
    assert all("val/abs_rel" not in h for h in summary["history"])  # --val-gt-frames 0: photometric only


def test_keep_validated_keeps_every_validated_model(kitti_tree, tmp_path):
    run = tmp_path / "run"
    summary = finetune(small(kitti_tree, run, mode="S", epochs=3, val_every_epochs=2, val_gt_frames=0, start_depth=10.0,
                             keep_validated=True))
    kept = sorted(p.name for p in (run / "validated").iterdir())
    assert kept == [f"step_{h['step']:06d}.safetensors" for h in summary["history"]]
    last = load_file(run / "validated" / kept[-1])
    assert all(torch.equal(last[k], v) for k, v in load_file(run / "model.safetensors").items())


def test_seeds_pair_across_inits_only_the_encoders_differ(kitti_tree, tmp_path):
    """The study pairs an init with scratch by seed: same subset, order and decoder start. With a
    learning rate too small to move a float32 weight, one step leaves each run's start visible."""
    torch.manual_seed(123)
    encoder_file = tmp_path / "encoder.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), encoder_file)
    starts = []
    for k, init in enumerate(("scratch", str(encoder_file))):
        finetune(small(kitti_tree, tmp_path / f"run{k}", init=init, max_steps=1, lr=1e-30, fraction=0.5))
        starts.append(load_file(tmp_path / f"run{k}" / "model.safetensors"))
    # convolutions: a fresh batch norm starts at weight 1, bias 0 in every init
    encoders = [k for k in starts[0] if ".encoder." in k and ("conv" in k or "downsample.0" in k)]
    others = [k for k in starts[0] if ".encoder." not in k and "running" not in k and "num_batches" not in k]
    assert encoders and others
    assert all(not torch.equal(starts[0][k], starts[1][k]) for k in encoders)
    assert all(torch.equal(starts[0][k], starts[1][k]) for k in others), [
        k for k in others if not torch.equal(starts[0][k], starts[1][k])]

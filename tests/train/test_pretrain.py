"""Pretraining end to end on shards of a synthetic KITTI-style tree, at 64x32 so it runs on a CPU."""

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision

from geopre.errors import UserError
from geopre.train.export import export_encoder
from geopre.train.pretrain import PretrainConfig, pretrain
from geopre.train.runtime import Runtime
from tests.shards.test_read import corrupt_member


@pytest.fixture(scope="module")
def shards(pretrain_shards):
    return pretrain_shards


def config(shards, out, **kw):
    base = dict(shards=str(shards), out=out, size=(64, 32), batch_size=2, workers=0, max_steps=4, log_every=1,
                val_every=4, visual_every=4, checkpoint_every=2, device="cpu")
    base.update(kw)
    return PretrainConfig(**base)


def losses(run):
    with (run / "metrics.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_run_writes_checkpoint_logs_visuals_and_summary(shards, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEOPRE_PROGRESS_SECONDS", "0")  # a progress line at every step (stderr is no terminal)
    summary = pretrain(config(shards, tmp_path / "run"), echo=lambda _: None)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"pretrain: {n}/4 steps ({25 * n}%)" for n in range(1, 5)]
    assert all(", loss " in line for line in lines)
    run = tmp_path / "run"
    assert summary["steps"] == 4 and summary["val_photometric"] > 0
    assert (run / "checkpoints" / "step_00000004" / "model.safetensors").exists()
    assert len(losses(run)) == 4 and all(v > 0 for v in losses(run))
    assert (run / "visuals" / "step_00000004.png").exists() and any((run / "tensorboard").iterdir())
    with pytest.raises(UserError, match="--resume"):
        pretrain(config(shards, run), echo=lambda _: None)


class StoppedClock:
    """Stands in for pretrain's ``time`` module: ``perf_counter`` moves only when the test moves it,
    so the measured shares are exact however loaded the machine is."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now

    def __getattr__(self, name):  # the rest of the time module as it is
        return getattr(time, name)


def test_time_spent_waiting_for_batches_is_logged(shards, tmp_path, monkeypatch):
    import geopre.train.pretrain as module

    clock = StoppedClock()
    real_loader, real_step = module.train_loader, Runtime.optimizer_step

    class Late:
        """The real loader, 0.5 s late with every batch."""

        def __init__(self, *args):
            self.loader = real_loader(*args)
            self.skips = self.loader.skips

        def __len__(self):
            return len(self.loader)

        def __iter__(self):
            for batch in self.loader:
                clock.now += 0.5
                yield batch

    def quarter_second_step(*args):
        clock.now += 0.25
        real_step(*args)

    monkeypatch.setattr(module, "time", clock)
    monkeypatch.setattr(module, "train_loader", Late)
    monkeypatch.setattr(Runtime, "optimizer_step", staticmethod(quarter_second_step))
    summary = pretrain(config(shards, tmp_path / "run"), echo=lambda _: None)
    with (tmp_path / "run" / "metrics.csv").open() as f:
        logged = [float(row["data_wait"]) for row in csv.DictReader(f)]
    # Each step's window: 0.5 s waiting for the batch, 0.25 s stepping; validation takes no time here.
    assert logged == pytest.approx([0.5 / 0.75] * 4)
    assert summary["seconds"] == 3.0 and summary["data_wait_fraction"] == round(2.0 / 3.0, 4)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["data_wait_fraction"] == \
        summary["data_wait_fraction"]


@pytest.mark.parametrize("workers", [dict(workers=0), dict(workers=2, worker_kind="thread")])
def test_resume_continues_the_loss_curve_exactly(shards, tmp_path, workers):
    pretrain(config(shards, tmp_path / "straight", max_steps=6, **workers), echo=lambda _: None)
    pretrain(config(shards, tmp_path / "stopped", max_steps=3, **workers), echo=lambda _: None)
    pretrain(config(shards, tmp_path / "stopped", max_steps=6, resume=True, **workers), echo=lambda _: None)
    assert losses(tmp_path / "stopped") == losses(tmp_path / "straight")


def test_export_loads_strictly_into_torchvision_and_as_monodepth2(shards, tmp_path):
    pretrain(config(shards, tmp_path / "run", max_steps=2), echo=lambda _: None)
    monodepth2, plain = export_encoder(tmp_path / "run", tmp_path / "encoder.pth")
    resnet = torchvision.models.resnet18()
    resnet.fc = torch.nn.Identity()
    resnet.load_state_dict(torch.load(plain), strict=True)
    md2 = torch.load(monodepth2)
    assert md2["height"] == 32 and md2["width"] == 64 and md2["use_stereo"] is False
    assert torch.equal(md2["encoder.conv1.weight"], resnet.conv1.weight)
    from geopre.model.resnet import ResnetEncoder, load_encoder_file
    encoder = ResnetEncoder("resnet18")
    load_encoder_file(encoder, monodepth2)
    assert torch.equal(encoder.conv1.weight, resnet.conv1.weight)


class Monodepth2ResnetEncoder(torch.nn.Module):
    """The parameter layout of monodepth2's ResnetEncoder: a whole torchvision ResNet (fc included) as
    ``.encoder``."""

    def __init__(self):
        super().__init__()
        self.encoder = torchvision.models.resnet18()


def test_export_writes_what_monodepth2_save_model_writes_and_loads_strictly(shards, tmp_path):
    pretrain(config(shards, tmp_path / "run", max_steps=2), echo=lambda _: None)
    monodepth2, _ = export_encoder(tmp_path / "run", tmp_path / "encoder.pth")
    saved = torch.load(monodepth2)
    model = Monodepth2ResnetEncoder()
    weights = {k: v for k, v in saved.items() if k not in ("height", "width", "use_stereo")}
    assert set(weights) == set(model.state_dict())
    model.load_state_dict(weights, strict=True)
    # monodepth2's evaluate_depth.py / test_simple.py: keep the keys the model has, then a strict load.
    model.load_state_dict({k: v for k, v in saved.items() if k in model.state_dict()})
    assert torch.equal(model.encoder.conv1.weight, saved["encoder.conv1.weight"])
    assert saved["encoder.fc.weight"].shape == (1000, 512) and saved["encoder.fc.bias"].shape == (1000,)


def test_diverging_loss_stops_and_keeps_the_last_good_checkpoint(shards, tmp_path):
    from geopre.train.checkpoint import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        pretrain(config(shards, tmp_path / "run", lr=1e20, max_steps=40, checkpoint_every=1), echo=lambda _: None)
    assert (tmp_path / "run" / "checkpoints" / "latest").exists()


def test_bad_size_is_a_user_error(shards, tmp_path):
    with pytest.raises(UserError, match="multiples of 32"):
        pretrain(config(shards, tmp_path / "run", size=(100, 30)), echo=lambda _: None)


def test_a_partly_corrupt_shard_set_trains_on_the_good_data_and_counts_the_bad(shards, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(shards, broken)
    data = (broken / "train-000000.tar").read_bytes()
    (broken / "train-000000.tar").write_bytes(data[: len(data) // 2])  # one shard of three cut short
    corrupt_member(broken / "train-000001.tar", ".json", seed=0)  # and random bytes inside another
    summary = pretrain(config(broken, tmp_path / "run"), echo=lambda _: None)
    assert summary["steps"] == 4 and summary["skipped_shards"] >= 1 and summary["skipped_samples"] >= 1
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["skipped_shards"] == summary["skipped_shards"]
    clean = pretrain(config(shards, tmp_path / "clean"), echo=lambda _: None)
    assert clean["skipped_shards"] == clean["skipped_samples"] == 0


def test_a_set_of_only_truncated_shards_stops_with_one_line(shards, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(shards, broken)
    for tar in broken.glob("train-*.tar"):
        tar.write_bytes(tar.read_bytes()[:700])  # not even one whole file left
    args = ["--shards", str(broken), "--out", str(tmp_path / "run"), "--size", "64x32", "--batch-size", "2",
            "--steps", "2", "--device", "cpu", "--init", "scratch", "--workers", "2", "--worker-kind", "process"]
    done = subprocess.run([sys.executable, "-m", "geopre.cli", "pretrain", *args], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).parents[2])
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert lines[-1].startswith("geopre: error: gave up reading shards: 1000 tries in a row failed"), lines[-1]
    assert len(lines) < 20  # the skips' warnings, rate-limited across the worker processes

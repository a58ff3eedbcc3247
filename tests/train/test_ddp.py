"""Data-parallel training with real processes: two CPU ranks on gloo, started by the launcher that
`--nproc` uses (torchrun's, elastic). That every train sample is read once per epoch over
2 ranks x 2 workers is tests/shards/test_read.py::test_two_ranks_times_two_workers_see_each_train_sample_once.
"""

import csv
import json

import pytest
import torch

from geopre.errors import UserError
from geopre.io import ensure_writable_dir
from geopre.model.flow import GeometricPretrainNet, PretrainModelConfig
from geopre.model.losses import pretrain_loss
from geopre.shards.augment import AugmentConfig, prepare_batch
from geopre.shards.read import LoaderConfig, train_loader
from geopre.train.pretrain import PretrainConfig, flow_pairs, pretrain
from geopre.train.runtime import Runtime, launch, unwrap

SIZE = (64, 32)
PER_RANK = 2  # B
STEPS = 2


def fixed_batches(shards, count, batch_size):
    """``count`` loader batches of ``batch_size``: real augmentation, drawn once, fed to every run."""
    config = LoaderConfig(batch_size=batch_size, workers=0, augment=AugmentConfig(size=SIZE), seed=5)
    torch.manual_seed(5)  # without workers the augmentation draws come from the global generator
    loader = iter(train_loader(shards, config))
    return [{k: v for k, v in next(loader).items() if isinstance(v, torch.Tensor)} for _ in range(count)]


def train_steps(batches, halves: int = 1):
    """Pretraining's step (flow_pairs, pretrain_loss, optimizer_step) on fixed batches, on this
    process's share of each (its rank's slice); returns the losses (averaged over ranks) and a
    sample of the final weights. ``halves=2`` in one process: the batch's two halves go through
    the network separately, as two ranks would."""
    torch.set_num_threads(1)
    runtime = Runtime.create("cpu", amp=False)
    torch.manual_seed(0)
    net = GeometricPretrainNet(PretrainModelConfig())
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    scaler = runtime.grad_scaler()
    model = runtime.prepare(net)
    losses = []
    for whole in batches:
        shares = [{k: v.chunk(runtime.world_size)[runtime.rank] for k, v in whole.items()}]
        if halves == 2:
            shares = [{k: v.chunk(2)[h] for k, v in whole.items()} for h in range(2)]
        loss = sum(pretrain_loss(*flow_pairs(model, prepare_batch(share), runtime))[0] for share in shares) / len(shares)
        runtime.optimizer_step(loss, optimizer, scaler)
        losses.append(runtime.sum_across_ranks(loss.item())[0] / runtime.world_size)
    weights = torch.cat([p.detach().flatten()[:200] for p in unwrap(model).parameters()])
    runtime.close()
    return losses, weights


def test_two_ranks_of_batch_b_step_like_one_process_of_batch_2b(pretrain_shards):
    batches = fixed_batches(pretrain_shards, STEPS, 2 * PER_RANK)
    ddp_losses, ddp_weights = launch(train_steps, 2, batches)
    # Batch norm normalises each rank's B triplets apart (as on GPUs, no SyncBatchNorm), so the
    # exact one-process equivalent runs the two halves through the network separately...
    split_losses, split_weights = train_steps(batches, halves=2)
    assert ddp_losses == pytest.approx(split_losses, rel=1e-5)
    assert torch.allclose(ddp_weights, split_weights, rtol=0, atol=1e-6)
    # ...and a plain batch of 2B differs only by those statistics (by up to a few % here).
    whole_losses, _ = train_steps(batches)
    assert ddp_losses == pytest.approx(whole_losses, rel=0.1)


def rank_means():
    runtime = Runtime.create("cpu", amp=False)
    means = runtime.mean_across_ranks({"loss": float(runtime.rank + 1), "smoothness": 10.0 * runtime.rank})
    runtime.close()
    return means


def test_logged_losses_are_the_mean_over_ranks_not_rank_0s():
    assert launch(rank_means, 2) == {"loss": 1.5, "smoothness": 5.0}
    assert Runtime.create("cpu", amp=False).mean_across_ranks({"loss": 3.0}) == {"loss": 3.0}


def one_thread_pretrain(config):
    torch.set_num_threads(1)  # two ranks share the test machine's cores
    return pretrain(config, echo=lambda _: None)


def ddp_config(shards, out, **kw):
    base = dict(shards=str(shards), out=out, size=SIZE, batch_size=PER_RANK, workers=0, max_steps=2, log_every=1,
                val_every=2, visual_every=2, checkpoint_every=2, device="cpu", init="scratch")
    return PretrainConfig(**{**base, **kw})


def test_only_rank_0_writes_and_a_ddp_run_resumes_at_its_step(pretrain_shards, tmp_path):
    run = tmp_path / "run"
    first = launch(one_thread_pretrain, 2, ddp_config(pretrain_shards, run))
    assert first["steps"] == 2 and first["val_photometric"] > 0
    resumed = launch(one_thread_pretrain, 2, ddp_config(pretrain_shards, run, max_steps=4, resume=True))
    assert resumed["steps"] == 4
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(float(r["step"])) for r in rows] == [1, 2, 3, 4]  # one writer, continued after step 2
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one per run, rank 0's
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step_00000002", "step_00000004"]
    assert sorted(p.name for p in (run / "visuals").iterdir()) == ["step_00000002.png", "step_00000004.png"]
    assert json.loads((run / "config.json").read_text())["world_size"] == 2


def test_a_user_error_in_the_ranks_is_one_user_error(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(UserError, match="cannot write to"):  # a cheap function: the ranks import little
        launch(ensure_writable_dir, 2, not_a_folder / "run")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="already running under torchrun"):
        launch(ensure_writable_dir, 2, tmp_path)

"""Geometric pretraining (paper section III): learn structure by reconstructing optical flow.

The whole loop is :func:`pretrain`, top to bottom: build the network, restore a checkpoint if
resuming, then for each batch of triplets predict the flow from I_t to I_{t+1} and to I_{t-1},
warp, and minimise photometric error + alpha * edge-aware smoothness (eq. 3-5) with Adam at a
constant 1e-4 (III-D). Device, mixed precision and DDP come from :mod:`geopre.train.runtime`; the
run folder, logs, checkpoints, NaN checks and Ctrl-C / SIGTERM from :mod:`geopre.train.run`,
shared with fine-tuning.

Data order is a function of (seed, epoch, rank): each epoch builds its loader from that seed, so a
run resumed mid-epoch rebuilds the epoch's loader and skips the batches it had already used, and
its loss curve continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geopre.errors import UserError, check_minimums
from geopre.io import save_png
from geopre.model.flow import GeometricPretrainNet, PretrainModelConfig
from geopre.model.geometry import upsample_flow, warp_with_flow
from geopre.model.init import initialise_encoders
from geopre.model.losses import photometric_error, pretrain_loss
from geopre.shards.augment import AugmentConfig, prepare_batch
from geopre.shards.read import LoaderConfig, train_loader, val_loader
from geopre.train.run import TrainingRun
from geopre.train.runtime import Runtime, unwrap
from geopre.train import visuals

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    shards: str  # a shard folder (with index.json), a brace pattern or a URL list
    out: Path
    arch: str = "resnet18"  # structure encoder, paper III-A-1 (resnet50 for the 1024x320 "hd" model)
    motion_dim: int = 128  # latent motion vector, paper III-A-2
    size: tuple[int, int] = (640, 192)  # training resolution W x H, paper III-D
    batch_size: int = 20  # triplets per step at 640x192, paper III-D (8 at 1024x320)
    lr: float = 1e-4  # Adam, constant throughout, paper III-D
    alpha: float = 0.001  # smoothness weight, paper III-B
    beta: float = 0.85  # SSIM weight in the photometric term, paper III-B
    max_steps: int | None = None  # the run ends after this many optimiser steps (may exceed --epochs);
    # default: epochs x batches per epoch
    epochs: int = 10
    samples_per_epoch: int | None = None  # default: the train split's size from index.json
    init: str = "auto"  # auto (imagenet if its file is cached, else scratch) | scratch | imagenet | a weights
    # file (ImageNet -> geometric pretraining is the paper's second-order transfer, Table I)
    imagenet_weights: Path | None = None
    workers: int = 4
    worker_kind: str = "auto"  # loader workers: "process", "thread" or "auto" (threads on few cores; docs/shards.md)
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    log_every: int = 10
    val_every: int = 1000
    visual_every: int = 1000
    checkpoint_every: int = 1000
    seed: int = 0
    resume: bool = False

    def validate(self) -> None:
        width, height = self.size
        if width % 32 or height % 32:
            raise UserError(f"--size {width}x{height}: width and height must be multiples of 32 (e.g. 640x192)")
        check_minimums(self, {"batch_size": 1, "epochs": 1, "log_every": 1, "val_every": 1, "visual_every": 1,
                              "checkpoint_every": 1, "max_steps": 1, "samples_per_epoch": 1, "motion_dim": 1,
                              "workers": 0, "seed": 0})
        if not self.lr > 0:
            raise UserError("--lr must be positive")


def flow_pairs(model: torch.nn.Module, batch: dict, runtime: Runtime):
    """Both pairs of a triplet in one forward pass: t -> t+1 and t -> t-1 (the network sees the
    colour-jittered frames). Returns the flows (fp32) and the matching clean targets/sources."""
    prev, ref, nxt = batch["images"].unbind(1)
    prev_aug, ref_aug, nxt_aug = batch["images_aug"].unbind(1)
    with runtime.autocast():
        flows = model(ref_aug, [nxt_aug, prev_aug])
    flows = {scale: flow.float() for scale, flow in flows.items()}
    return flows, torch.cat([ref, ref]), torch.cat([nxt, prev])


def _loader_config(config: PretrainConfig, epoch: int, rank: int) -> LoaderConfig:
    return LoaderConfig(batch_size=config.batch_size, workers=config.workers, worker_kind=config.worker_kind,
                        augment=AugmentConfig(size=config.size),
                        samples_per_epoch=config.samples_per_epoch, seed=config.seed * 100003 + epoch * 7919 + rank)


@torch.no_grad()
def validate(model: torch.nn.Module, config: PretrainConfig, runtime: Runtime) -> float | None:
    """Mean photometric error (both pairs, finest scale) over every validation triplet, each rank
    scoring its share of the val shards. ``model`` is the plain module: DDP's forward would start
    collectives that a rank with fewer (or no) val batches never joins."""
    try:
        loader = val_loader(config.shards, _loader_config(config, 0, 0))
    except UserError:
        return None  # no val split in this shard set
    model.eval()
    total, count = 0.0, 0
    for raw in loader:
        batch = prepare_batch(raw, runtime.device)
        flows, target, source = flow_pairs(model, batch, runtime)
        error = photometric_error(warp_with_flow(source, flows[0]), target, beta=config.beta)
        total += float(error.mean()) * target.shape[0]
        count += target.shape[0]
    model.train()
    total, count = runtime.sum_across_ranks(total, count)
    return total / count if count else None


def visual(flows: dict, target: torch.Tensor, source: torch.Tensor, beta: float) -> np.ndarray:
    """I_t, I_t+1, warped I^_t, flow colour wheel and per-pixel error of the first pair."""
    flow = upsample_flow(flows[0][:1], tuple(target.shape[-2:]))
    warped = warp_with_flow(source[:1], flow)
    error = photometric_error(warped, target[:1], beta=beta)
    tiles = [visuals.to_uint8(target[0]), visuals.to_uint8(source[0]), visuals.to_uint8(warped[0]),
             visuals.flow_to_colour(flow[0].detach().cpu().numpy()), visuals.error_map(error[0])]
    return visuals.grid(tiles, columns=1)


def pretrain(config: PretrainConfig, echo=print) -> dict:
    config.validate()
    runtime = Runtime.create(config.device, config.amp)
    run = TrainingRun("pretrain", config.out, config.resume, runtime)

    torch.manual_seed(config.seed)  # identical initial weights on every rank
    net = GeometricPretrainNet(PretrainModelConfig(arch=config.arch, motion_dim=config.motion_dim))
    init = initialise_encoders([net.structure_encoder, net.motion_encoder.encoder], config.init, config.imagenet_weights)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    scaler = runtime.grad_scaler()
    step = 0
    if config.resume:
        step = run.checkpoints.load(net, optimizer, scaler, restore_rng=False).step
    model = runtime.prepare(net, config.compile)

    batches_per_epoch = len(train_loader(config.shards, _loader_config(config, 0, runtime.rank)))
    total_steps = config.max_steps or config.epochs * batches_per_epoch
    if runtime.is_main:
        echo(f"pretrain: {config.arch} from {init}, {batches_per_epoch} batches of {config.batch_size} per epoch, "
             f"{total_steps} steps on {runtime.device}" + (f" x {runtime.world_size} ranks" if runtime.distributed else ""))
    run.start(config, step, total_steps, init_loaded=init, world_size=runtime.world_size)
    last_val = None
    started = time.perf_counter()
    samples_seen = 0
    window = (started, 0, 0.0)  # time, samples seen, seconds waited for batches
    waited = 0.0  # seconds the training loop spent waiting for its next batch
    skipped = [0, 0]  # training shards and samples the loaders skipped as unreadable (counted, warned)
    with run.training(save=lambda: run.save(step, step // batches_per_epoch, model, optimizer, scaler)):
        while step < total_steps:
            epoch = step // batches_per_epoch
            torch.manual_seed(config.seed * 100003 + epoch * 7919 + runtime.rank)  # augmentation draws
            loader = train_loader(config.shards, _loader_config(config, epoch, runtime.rank))
            skip = step - epoch * batches_per_epoch
            step_before = step
            asked = time.perf_counter()  # the epoch's loader start-up counts as waiting for data
            for index, raw in enumerate(loader):
                if index < skip:
                    asked = time.perf_counter()
                    continue  # batches this epoch used before the run was resumed
                waited += time.perf_counter() - asked
                batch = prepare_batch(raw, runtime.device)
                flows, target, source = flow_pairs(model, batch, runtime)
                loss, parts = pretrain_loss(flows, target, source, alpha=config.alpha, beta=config.beta)
                run.check(loss, step + 1)
                logging_step = (step + 1) % config.log_every == 0 or step + 1 == total_steps
                runtime.optimizer_step(loss, optimizer, scaler)
                step += 1
                samples_seen += batch["images"].shape[0] * runtime.world_size

                if logging_step:
                    now = time.perf_counter()
                    rate = (samples_seen - window[1]) / max(now - window[0], 1e-9)  # since the last log
                    # Share of the wall time the loop waited for batches: ~0 when the loader keeps up.
                    data_wait = (waited - window[2]) / max(now - window[0], 1e-9)
                    window = (now, samples_seen, waited)
                    losses = runtime.mean_across_ranks({"loss": loss.item(), "photometric": float(parts["photometric"]),
                                                        "smoothness": float(parts["smoothness"])})
                    run.log.scalars(step, {**losses, "samples_per_s": rate, "data_wait": data_wait})
                    if run.bar is not None:
                        run.bar.set_postfix(loss=f"{losses['loss']:.4f}", samples_s=f"{rate:.1f}",
                                            data_wait=f"{data_wait:.0%}")
                if step % config.val_every == 0 or step == total_steps:
                    last_val = validate(unwrap(model), config, runtime)
                    run.log.scalars(step, {"val_photometric": last_val})
                if runtime.is_main and (step % config.visual_every == 0 or step == total_steps):
                    picture = visual(flows, target, source, config.beta)
                    save_png(run.out / "visuals" / f"step_{step:08d}.png", picture)
                    run.log.image(step, "pretrain/visual", picture)
                if step % config.checkpoint_every == 0 or step == total_steps:
                    run.save(step, epoch, model, optimizer, scaler)
                run.step_done()
                if step >= total_steps or step % batches_per_epoch == 0:
                    break
                asked = time.perf_counter()
            skipped = [skipped[0] + loader.skips.shards, skipped[1] + loader.skips.samples]
            if step == step_before:
                raise UserError(f"no training batch could be read from {config.shards} "
                                f"({loader.skips.shards} shards skipped as unreadable)")
    seconds = time.perf_counter() - started
    skipped_shards, skipped_samples = runtime.sum_across_ranks(*skipped)
    rows = run.log.rows()
    return run.finish({"steps": step, "final_loss": rows[-1].get("loss") if rows else None,
                       "val_photometric": last_val, "seconds": round(seconds, 1),
                       "samples_per_s": round(samples_seen / max(seconds, 1e-9), 2),
                       "data_wait_fraction": round(waited / max(seconds, 1e-9), 4), "init": init,
                       "checkpoint": str(run.checkpoints.latest()),
                       "skipped_shards": int(skipped_shards), "skipped_samples": int(skipped_samples)})


def load_run_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a pretraining run (no config.json); give the --out of `geopre pretrain`")
    return json.loads(path.read_text())

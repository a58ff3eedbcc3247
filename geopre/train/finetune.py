"""``geopre finetune``: monodepth2's self-supervised depth training from any initialisation (paper IV).

Read :func:`finetune` top to bottom: build data and model, then for every epoch set the learning
rate, train on shuffled batches (loss: :func:`~geopre.model.losses.depth_loss`), validate, save.
A run folder holds ``config.json``, ``model_info.json``, ``checkpoints/`` (resumable),
``metrics.csv`` + ``tensorboard/``, ``model.safetensors`` (last epoch), ``best.safetensors``
(best validation epoch), ``summary.json`` (every epoch's validation and the best one) and, with
``keep_validated``, ``validated/step_<N>.safetensors`` (every validated model). The run folder, logs,
checkpoints, NaN checks and Ctrl-C / SIGTERM are pretraining's too (:mod:`geopre.train.run`).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from geopre.data import kitti
from geopre.data.depth_dataset import DepthDataConfig, KittiDepthDataset, frame_ids_for
from geopre.errors import UserError, check_minimums
from geopre.io import ensure_writable_dir
from geopre.model.depth import depth_to_disp
from geopre.model.losses import SMOOTHNESS_WEIGHT, depth_loss
from geopre.model.resnet import INPUT_MULTIPLE
from geopre.train.depth_model import (BEST_FILE, INFO_FILE, MODEL_FILE, DepthModel, ModelInfo,
                                      initialise_model, predict_disparity, save_model)
from geopre.train.evaluate import kitti_protocol, score
from geopre.train.run import TrainingRun
from geopre.train.runtime import Runtime, unwrap
from geopre.train.schedule import epoch_indices, set_lr, step_decay_lr, steps_per_epoch

# monodepth2 trains S on the Eigen full split and M / MS on Zhou's split (static frames removed).
DEFAULT_SPLIT = {"S": "eigen_full", "M": "eigen_zhou", "MS": "eigen_zhou"}
VALIDATED_DIR = "validated"


@dataclass(frozen=True)
class FinetuneConfig:
    data_root: Path  # KITTI raw tree
    run_dir: Path
    mode: str = "M"  # S (stereo), M (monocular), MS (both); paper IV
    split_dir: Path | None = None  # folder with train_files.txt / val_files.txt; default DATA_ROOT/splits/<split>
    arch: str = "resnet18"  # paper's main table uses ResNet-18, as monodepth2
    size: tuple[int, int] = (640, 192)  # training resolution W x H, monodepth2 / paper IV
    batch_size: int = 12  # monodepth2 default
    lr: float = 1e-4  # Adam, monodepth2 default
    epochs: int = 20  # monodepth2 default
    decay_epochs: int = 15  # learning rate x decay_factor after this many epochs (monodepth2)
    decay_factor: float = 0.1
    min_depth: float = 0.1  # disparity range of disp_to_depth (monodepth2)
    max_depth: float = 100.0
    smoothness: float = SMOOTHNESS_WEIGHT  # 1e-3, monodepth2's disparity smoothness
    scales: int = 4
    start_depth: float | None = None  # bias the disparity heads to start here (None: monodepth2's ~0.2 m)
    pose_start: float | None = None  # M, MS: bias the pose network to start at this forward motion per frame
    # (in the depth's units; None: monodepth2's ~1e-3), see geopre.model.depth.PoseDecoder.start_moving
    pose_lr_factor: float = 1.0  # M, MS: the pose network learns at lr times this (its outputs are scaled by
    # 0.01, so at the depth's rate its translations move ~100x slower than the depth's output)
    init: str = "auto"  # auto (imagenet if its file is cached, else scratch) | scratch | imagenet | PATH
    imagenet_weights: Path | None = None
    fraction: float = 1.0  # few-shot study (paper V-B): deterministic subset of the train split
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    workers: int = 4
    checkpoint_every: int = 0  # steps; 0 = at the end of every epoch only
    max_steps: int | None = None  # the run ends after this many optimiser steps, at most the epochs' (the
    # learning-rate schedule is in epochs); default: every epoch. Smoke tests, time-boxed runs; resumable
    val_gt_frames: int = 16  # val frames scored with Eigen metrics after each validation (if velodyne exists)
    val_every_epochs: int = 1  # validations (and model saves) in epochs, as monodepth2; the last epoch always
    # validates
    keep_validated: bool = False  # also keep each validated model as validated/step_<N>.safetensors
    log_every: int = 50
    resume: bool = False

    def validate(self) -> None:
        frame_ids_for(self.mode)
        width, height = self.size
        if width % INPUT_MULTIPLE or height % INPUT_MULTIPLE:
            raise UserError(f"--size {width}x{height}: both sides must be multiples of {INPUT_MULTIPLE}")
        check_minimums(self, {"batch_size": 1, "epochs": 1, "scales": 1, "val_every_epochs": 1, "log_every": 1,
                              "max_steps": 1, "workers": 0, "checkpoint_every": 0, "val_gt_frames": 0,
                              "decay_epochs": 0, "seed": 0})
        if not 0 < self.fraction <= 1:
            raise UserError(f"--fraction must be in (0, 1] (got {self.fraction})")
        if not self.lr > 0:
            raise UserError(f"--lr must be positive (got {self.lr})")
        if not self.min_depth > 0 or not self.max_depth > self.min_depth:
            raise UserError(f"need 0 < --min-depth < --max-depth (got {self.min_depth}, {self.max_depth})")
        if self.start_depth is not None and not self.min_depth < self.start_depth < self.max_depth:
            raise UserError(f"--start-depth must lie between --min-depth and --max-depth (got {self.start_depth})")
        if self.pose_start is not None and not self.pose_start > 0:
            raise UserError(f"--pose-start must be positive (got {self.pose_start})")
        if not self.pose_lr_factor > 0:
            raise UserError(f"--pose-lr-factor must be positive (got {self.pose_lr_factor})")
        if self.mode == "S" and (self.pose_start is not None or self.pose_lr_factor != 1.0):
            raise UserError("--pose-start and --pose-lr-factor set the pose network, and S mode has none")


def _loader(dataset, indices: list[int], config: FinetuneConfig, runtime: Runtime):
    return torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, sampler=indices,
                                       num_workers=config.workers, pin_memory=runtime.device.type == "cuda",
                                       drop_last=False, persistent_workers=False)


def _parameter_groups(model: DepthModel, pose_lr_factor: float) -> list[dict]:
    """One Adam group (monodepth2), or the pose network apart when it learns at its own rate (set_lr
    applies the factor). One group by default keeps checkpoints of earlier runs resumable."""
    if model.pose is None or pose_lr_factor == 1.0:
        return [{"params": list(model.parameters())}]
    return [{"params": list(model.depth.parameters())},
            {"params": list(model.pose.parameters()), "lr_factor": pose_lr_factor}]


def compute_loss(model, batch: dict, config: FinetuneConfig, runtime: Runtime | None = None):
    """Forward both networks on a batch and return monodepth2's loss and its parts.

    The networks run under the runtime's mixed precision; the loss runs in float32, because
    bf16 pixel coordinates would be off by whole pixels at 640 px and blur the warps.
    """
    with runtime.autocast() if runtime is not None else contextlib.nullcontext():
        disps, poses = model(batch["inputs"], batch["stereo_tx"])
    disps = {scale: disp.float() for scale, disp in disps.items()}
    poses = {frame: pose.float() for frame, pose in poses.items()}
    sources = {key: image for key, image in batch["images"].items() if key != "0"}
    return depth_loss(disps, batch["images"]["0"], sources, batch["K"], poses, config.min_depth,
                      config.max_depth, config.smoothness)


def val_ground_truth(dataset: KittiDepthDataset, count: int) -> list[np.ndarray] | None:
    """Velodyne depth of the first ``count`` val frames, or None when there are none to score."""
    if count < 1:
        return None
    gts = []
    for entry in dataset.entries[:count]:
        try:
            scan = dataset.tree.velodyne_path(entry.folder, entry.frame_index)
        except UserError:
            return None
        gts.append(kitti.velodyne_depth_map(dataset.tree.calibration_dir(entry.folder), scan, cam=entry.camera))
    return gts


@torch.no_grad()
def validate(model: DepthModel, loader, runtime: Runtime, config: FinetuneConfig, info: ModelInfo,
             dataset: KittiDepthDataset, gts: list[np.ndarray] | None) -> dict[str, float]:
    """Photometric loss over the val split and, with ground truth, Eigen metrics on its first frames."""
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    disps: list[np.ndarray] = []
    for batch in loader:
        batch = runtime.to_device(batch)
        loss, parts = compute_loss(model, batch, config, runtime)
        size = batch["K"].shape[0]
        for key, value in {"loss": loss, **parts}.items():
            totals[key] = totals.get(key, 0.0) + float(value) * size
        count += size
        if gts is not None and len(disps) < len(gts):
            disps.extend(predict_disparity(model.depth, batch["inputs"]["0"], info))
    model.train()
    result = {f"val/{key}": value / count for key, value in totals.items()}
    if gts is not None:
        protocols = [kitti_protocol(info, dataset.calibration(e.folder).stereo_baseline) for e in dataset.entries]
        scored = score(gts, disps[:len(gts)], protocols[:len(gts)])
        result.update({f"val/{name}": value for name, value in scored["metrics"].items()})
    return result


def best_epoch(history: list[dict]) -> dict:
    """The epoch with the lowest val abs_rel when ground truth exists, else the lowest val loss."""
    key = "val/abs_rel" if all("val/abs_rel" in h for h in history) else "val/loss"
    return min(history, key=lambda h: h[key]) | {"criterion": key}


def finetune(config: FinetuneConfig) -> dict:
    """Train a depth model as monodepth2 does; return (and write as summary.json) the run summary."""
    config.validate()
    runtime = Runtime.create(config.device, config.amp)
    run = TrainingRun("finetune", config.run_dir, config.resume, runtime)
    torch.manual_seed(config.seed)

    # Data: monodepth2's split for the mode, a deterministic few-shot subset of it, val unaugmented.
    split_dir = Path(config.split_dir or Path(config.data_root) / "splits" / DEFAULT_SPLIT[config.mode])
    width, height = config.size
    train_set = KittiDepthDataset(DepthDataConfig(config.data_root, split_dir / "train_files.txt", width, height,
                                                  config.mode, train=True, fraction=config.fraction, seed=config.seed))
    val_set = KittiDepthDataset(DepthDataConfig(config.data_root, split_dir / "val_files.txt", width, height,
                                                config.mode, train=False))
    steps_in_epoch = steps_per_epoch(len(train_set), config.batch_size, runtime.world_size)
    if steps_in_epoch == 0:
        raise UserError(f"{len(train_set)} training frames cannot fill one batch of {config.batch_size} "
                        f"per process; lower --batch-size or raise --fraction")
    baseline = train_set.calibration(train_set.entries[0].folder).stereo_baseline
    info = ModelInfo(config.arch, config.scales, config.mode, width, height, config.min_depth, config.max_depth,
                     baseline)

    # Model and optimiser: Adam over depth and pose networks together (monodepth2).
    model = DepthModel(config.arch, config.scales, config.mode)
    init_source = initialise_model(model, config.init, config.imagenet_weights)
    if config.start_depth is not None:
        model.depth.decoder.start_at(depth_to_disp(config.start_depth, config.min_depth, config.max_depth))
    if config.pose_start is not None:
        model.pose.decoder.start_moving(config.pose_start)
    model = runtime.prepare(model)
    optimizer = torch.optim.Adam(_parameter_groups(unwrap(model), config.pose_lr_factor), lr=config.lr)
    scaler = runtime.grad_scaler()
    step, epoch, history = 0, 0, []
    if config.resume:
        resumed = run.checkpoints.load(unwrap(model), optimizer, scaler)
        step, epoch, history = resumed.step, resumed.epoch, resumed.extra.get("history", [])
    max_steps = min(config.max_steps or math.inf, config.epochs * steps_in_epoch)
    run.start(config, step, max_steps)
    run.write_json(INFO_FILE, asdict(info))
    val_gts = val_ground_truth(val_set, config.val_gt_frames) if runtime.is_main else None
    val_loader = _loader(val_set, list(range(len(val_set))), config, runtime)

    def save() -> Path | None:
        # ``epoch`` is the epoch being trained (or validated): a resume redoes what it had left.
        return run.save(step, epoch, model, optimizer, scaler, extra={"history": history})

    model.train()
    samples_per_s = float("nan")
    with run.training(save):
        while step < max_steps:
            lr = step_decay_lr(config.lr, epoch, config.decay_epochs, config.decay_factor)
            set_lr(optimizer, lr)
            train_set.set_epoch(epoch)
            # Resume mid-epoch: the epoch's order is recomputed and the batches already done skipped.
            done = step - epoch * steps_in_epoch
            indices = epoch_indices(len(train_set), config.batch_size, config.seed, epoch, runtime.rank,
                                    runtime.world_size)[done * config.batch_size:]
            started, seen = time.perf_counter(), 0
            for batch in _loader(train_set, indices, config, runtime):
                batch = runtime.to_device(batch)
                loss, parts = compute_loss(model, batch, config, runtime)
                run.check(loss, step + 1)
                logging_step = (step + 1) % config.log_every == 0 or step == 0
                runtime.optimizer_step(loss, optimizer, scaler)
                step += 1
                seen += batch["K"].shape[0] * runtime.world_size
                if logging_step:
                    samples_per_s = seen / (time.perf_counter() - started)
                    losses = runtime.mean_across_ranks({"train/loss": float(loss.detach()),
                                                        **{f"train/{k}": float(v) for k, v in parts.items()}})
                    run.log.scalars(step, {**losses, "train/lr": lr, "train/samples_per_s": samples_per_s})
                    if run.bar is not None:
                        run.bar.set_postfix(epoch=epoch + 1, loss=f"{losses['train/loss']:.4f}")
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    save()
                run.step_done()
                if step >= max_steps:
                    break
            if step < (epoch + 1) * steps_in_epoch:
                save()  # stopped by max_steps inside the epoch; resume continues it
                if runtime.is_main:  # a time-boxed run still leaves a model to evaluate or predict with
                    save_model(run.out / MODEL_FILE, unwrap(model), info)
                break
            if (epoch + 1) % config.val_every_epochs == 0 or epoch + 1 == config.epochs:
                run.check_weights(model, step)  # a diverged epoch is never saved as the last or best model
                if runtime.is_main:
                    val = validate(unwrap(model), val_loader, runtime, config, info, val_set, val_gts)
                    run.log.scalars(step, val)
                    history = [*history, {"epoch": epoch + 1, "step": step, "lr": lr, **val}]
                    save_model(run.out / MODEL_FILE, unwrap(model), info)
                    if config.keep_validated:  # test scores along training (the study's gain-vs-steps curves)
                        save_model(ensure_writable_dir(run.out / VALIDATED_DIR) / f"step_{step:06d}.safetensors",
                                   unwrap(model), info)
                    if best_epoch(history)["epoch"] == epoch + 1:
                        save_model(run.out / BEST_FILE, unwrap(model), info)
            epoch += 1
            save()

    return run.finish({"run_dir": str(run.out), "mode": config.mode, "init": init_source, "steps": step,
                       "epochs_done": len(history), "train_frames": len(train_set), "val_frames": len(val_set),
                       "samples_per_s": samples_per_s if math.isfinite(samples_per_s) else None,
                       "history": history, "best": best_epoch(history) if history else None})

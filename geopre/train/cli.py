"""CLI for training and transfer: `geopre pretrain`, `geopre export` (paper III) and
`geopre finetune`, `geopre evaluate`, `geopre predict` (paper IV-V).

Thin: each command builds a config, calls one library function and prints a summary; the library
checks the values and raises one-line UserErrors.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from geopre.cliutil import (ARCHS, CITYSCAPES_SPLITS, DATASETS, DEVICE, FRACTION, GT_MASKS, GT_SOURCES, IMAGE_SIZE,
                            MODES, NON_NEGATIVE_FLOAT, NON_NEGATIVE_INT, OUT_DIR, OUTPUT_FILE, POSITIVE_FLOAT,
                            POSITIVE_INT, SEED, choice, deprecated_alias, out_dir_or_positional)


def _echo(message: str) -> None:
    """Print from the first torchrun process only (every rank runs the same command)."""
    if os.environ.get("RANK", "0") == "0":
        click.echo(message)


_PATH = click.Path(path_type=Path)
_FILE = click.Path(dir_okay=False, path_type=Path)

_NPROC = click.option("--nproc", default=1, show_default=True, type=POSITIVE_INT,
                      help="Processes on this machine, one per GPU, trained as one DDP group (what "
                           "`torchrun --nproc-per-node N` does). Several machines: launch with torchrun.")


def _run(function, nproc: int, *args):
    """``function(*args)`` here, or in ``nproc`` processes as one DDP group (rank 0's result)."""
    if nproc == 1:
        return function(*args)
    from geopre.train.runtime import launch

    return launch(function, nproc, *args)


@click.command()
@click.option("--shards", required=True, help="Shard folder from `geopre shard` (with index.json), a brace "
              "pattern like 'shards/train-{000000..000009}.tar', or an http(s)/fsspec URL pattern.")
@click.option("--out", "-o", required=True, type=OUT_DIR,
              help="Run folder: checkpoints, metrics.csv, TensorBoard logs, visuals, summary.json.")
@click.option("--arch", default="resnet18", show_default=True, type=choice(ARCHS),
              help="Structure encoder (paper: resnet18; resnet50 for the 1024x320 'hd' model).")
@click.option("--size", default="640x192", show_default=True, type=IMAGE_SIZE,
              help="Training resolution WxH, multiples of 32 (paper: 640x192 or 1024x320).")
@click.option("--batch-size", default=20, show_default=True, type=POSITIVE_INT,
              help="Triplets per step and GPU (paper: 20 at 640x192, 8 at 1024x320).")
@click.option("--lr", default=1e-4, show_default=True, type=POSITIVE_FLOAT, help="Adam learning rate, constant (paper III-D).")
@click.option("--steps", type=POSITIVE_INT, help="Total optimiser steps (overrides --epochs).")
@click.option("--epochs", default=10, show_default=True, type=POSITIVE_INT, help="Epochs over the training split.")
@click.option("--samples-per-epoch", type=POSITIVE_INT, help="Epoch length in triplets (default: the split's size).")
@click.option("--motion-dim", default=128, show_default=True, type=POSITIVE_INT, help="Latent motion vector size (paper: 128).")
@click.option("--alpha", default=0.001, show_default=True, type=NON_NEGATIVE_FLOAT, help="Smoothness weight (paper eq. 3).")
@click.option("--beta", default=0.85, show_default=True, type=click.FloatRange(0, 1), help="SSIM weight in the photometric term (eq. 4).")
@click.option("--init", default="auto", show_default=True,
              help="Encoder initialisation: auto (imagenet when torchvision's file is cached, else scratch), "
                   "scratch, imagenet (never downloaded) or a weights file.")
@click.option("--imagenet-weights", type=_FILE,
              help="torchvision ImageNet weights file for --init imagenet. [default: the torch hub cache]")
@click.option("--workers", default=4, show_default=True, type=NON_NEGATIVE_INT,
              help="Data-loader workers per training process (0: load in the training process).")
@click.option("--worker-kind", default="auto", show_default=True, type=choice(["auto", "process", "thread"]),
              help="Loader workers as processes, or as threads of the training process (no hand-off between "
                   "processes; faster on few cores). auto: threads on up to 4 cores.")
@click.option("--device", default="auto", show_default=True, type=DEVICE, help="auto (CUDA if present), cpu, cuda or cuda:N.")
@click.option("--amp/--no-amp", default=True, show_default=True, help="Mixed precision on CUDA (bf16, else fp16).")
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the network (CUDA; slow first step).")
@click.option("--log-every", default=10, show_default=True, type=POSITIVE_INT, help="Steps between logged losses.")
@click.option("--val-every", default=1000, show_default=True, type=POSITIVE_INT, help="Steps between validation passes.")
@click.option("--visual-every", default=1000, show_default=True, type=POSITIVE_INT, help="Steps between visual PNGs.")
@click.option("--checkpoint-every", default=1000, show_default=True, type=POSITIVE_INT, help="Steps between checkpoints.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed for weights, data order and augmentation.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its latest checkpoint.")
@_NPROC
def pretrain(shards, out, arch, size, batch_size, lr, steps, epochs, samples_per_epoch, motion_dim, alpha, beta,
             init, imagenet_weights, workers, worker_kind, device, amp, compile_model, log_every, val_every,
             visual_every, checkpoint_every, seed, resume, nproc):
    """Geometric pretraining: learn a structure encoder by reconstructing optical flow (paper III).

    Several GPUs: `--nproc N`; several machines: `torchrun --nnodes M --nproc-per-node N ... -m geopre.cli
    pretrain ...` (docs/pretrain.md). Shards split by rank and worker, only rank 0 writes. Ctrl-C saves
    a checkpoint; --resume continues.
    """
    from geopre.train.pretrain import PretrainConfig, pretrain as run

    summary = _run(run, nproc, PretrainConfig(
        shards=shards, out=out, arch=arch, motion_dim=motion_dim, size=size, batch_size=batch_size, lr=lr,
        alpha=alpha, beta=beta, max_steps=steps, epochs=epochs, samples_per_epoch=samples_per_epoch, init=init,
        imagenet_weights=imagenet_weights, workers=workers, worker_kind=worker_kind, device=device, amp=amp,
        compile=compile_model, log_every=log_every, val_every=val_every, visual_every=visual_every,
        checkpoint_every=checkpoint_every, seed=seed, resume=resume), _echo)
    _echo(f"pretrain done: {summary['steps']} steps, loss {summary['final_loss']}, val photometric "
               f"{summary['val_photometric']}, {summary['samples_per_s']} triplets/s; checkpoint {summary['checkpoint']}")
    _echo(f"export the encoder with: geopre export {out} --output {out}/encoder.pth")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--output", "-o", type=OUTPUT_FILE,
              help="monodepth2-style encoder file to write (a torchvision state dict goes beside it as *_torchvision.pth).")
@deprecated_alias("--out", "output", "--output", type=OUTPUT_FILE)
def export(run_dir, output):
    """Export the structure encoder of a pretraining run (RUN_DIR) for transfer."""
    from geopre.errors import UserError
    from geopre.train.export import export_encoder

    if output is None:  # not required=True: the deprecated --out may give it instead
        raise UserError("missing --output FILE: the encoder file to write")
    monodepth2, plain = export_encoder(run_dir, output)
    click.echo(f"wrote {monodepth2} (monodepth2 encoder.pth layout) and {plain} (torchvision state dict, no fc)")
    click.echo(f"fine-tune with: geopre finetune --init {monodepth2} ...")


@click.command("finetune")
@click.argument("data_root", type=_PATH)
@click.argument("run_dir_positional", metavar="", required=False, type=OUT_DIR)
@click.option("--out", "-o", type=OUT_DIR,
              help="Run folder: model.safetensors, best.safetensors, checkpoints, metrics.csv, TensorBoard logs, "
                   "summary.json.")
@click.option("--mode", default="M", show_default=True, type=choice(MODES),
              help="Supervision: S (stereo pairs), M (monocular triplets) or MS (both).")
@click.option("--split-dir", type=_PATH,
              help="Folder with train_files.txt and val_files.txt. [default: DATA_ROOT/splits/eigen_full for S, "
                   "eigen_zhou for M and MS]")
@click.option("--init", default="auto", show_default=True,
              help="Encoder start: auto (imagenet when torchvision's file is cached, else scratch), scratch, imagenet, or a weights file (geopre export, torchvision state dict, "
                   "monodepth2 encoder.pth).")
@click.option("--imagenet-weights", type=_FILE,
              help="torchvision ImageNet weights file for --init imagenet. [default: the torch hub cache]")
@click.option("--arch", default="resnet18", show_default=True, type=choice(ARCHS), help="Depth encoder.")
@click.option("--size", default="640x192", show_default=True, type=IMAGE_SIZE,
              help="Training size WxH; both multiples of 32.")
@click.option("--batch-size", default=12, show_default=True, type=POSITIVE_INT, help="Frames per batch and process.")
@click.option("--lr", default=1e-4, show_default=True, type=POSITIVE_FLOAT, help="Adam learning rate.")
@click.option("--epochs", default=20, show_default=True, type=POSITIVE_INT, help="Training epochs.")
@click.option("--decay-epochs", default=15, show_default=True, type=NON_NEGATIVE_INT,
              help="Multiply the learning rate by 0.1 after this many epochs (0: never).")
@click.option("--min-depth", default=0.1, show_default=True, type=POSITIVE_FLOAT, help="Smallest depth the network predicts.")
@click.option("--max-depth", default=100.0, show_default=True, type=POSITIVE_FLOAT, help="Largest depth the network predicts.")
@click.option("--smoothness", default=1e-3, show_default=True, type=NON_NEGATIVE_FLOAT, help="Disparity smoothness weight.")
@click.option("--scales", default=4, show_default=True, type=click.IntRange(1, 5), help="Output scales in the loss.")
@click.option("--start-depth", type=POSITIVE_FLOAT,
              help="Start the untrained depth decoder at about this depth instead of monodepth2's ~0.2 m "
                   "(e.g. 10): short schedules then skip the initial plateau.")
@click.option("--pose-start", type=POSITIVE_FLOAT,
              help="M, MS: start the untrained pose network at this forward motion per frame, in the depth's "
                   "units, instead of monodepth2's ~0.001 (e.g. a tenth of --start-depth: a car at 10 Hz). "
                   "With --start-depth 10 the default pose is ~1000x too small for the warps to move.")
@click.option("--pose-lr-factor", default=1.0, show_default=True, type=POSITIVE_FLOAT,
              help="M, MS: the pose network learns at --lr times this. Its outputs are scaled by 0.01, so at "
                   "the depth's rate its motion changes ~100x slower than the depth does.")
@click.option("--fraction", default=1.0, show_default=True, type=FRACTION,
              help="Train on this fraction of the split (few-shot study), a fixed subset per --seed.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed for the subset, order and augmentation.")
@click.option("--device", default="auto", show_default=True, type=DEVICE, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp/--no-amp", default=True, show_default=True, help="Mixed precision on CUDA.")
@click.option("--workers", default=4, show_default=True, type=NON_NEGATIVE_INT,
              help="Data-loader workers per training process (0: load in the training process).")
@click.option("--checkpoint-every", default=0, show_default=True, type=NON_NEGATIVE_INT,
              help="Also checkpoint every N steps (0: only at the end of each epoch).")
@click.option("--max-steps", type=POSITIVE_INT,
              help="Stop after this many steps in total, at least 1 (resume continues). [default: the full schedule]")
@click.option("--val-gt-frames", default=16, show_default=True, type=NON_NEGATIVE_INT,
              help="Val frames scored with Eigen metrics at each validation (when velodyne scans exist).")
@click.option("--val-every", default=1, show_default=True, type=POSITIVE_INT,
              help="Validate (and save the model) every N epochs; the last epoch always validates.")
@click.option("--log-every", default=50, show_default=True, type=POSITIVE_INT, help="Log training scalars every N steps.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its latest checkpoint.")
@_NPROC
def finetune(data_root, run_dir_positional, out, mode, split_dir, init, imagenet_weights, arch, size, batch_size, lr,
             epochs, decay_epochs, min_depth, max_depth, smoothness, scales, start_depth, pose_start, pose_lr_factor,
             fraction, seed, device, amp, workers, checkpoint_every, max_steps, val_gt_frames, val_every, log_every, resume,
             nproc):
    """Train a depth network on a KITTI raw tree as monodepth2 does, from any encoder initialisation.

    Writes --out/model.safetensors (last epoch), best.safetensors (best validation epoch),
    summary.json, metrics.csv, tensorboard/ and resumable checkpoints/. Several GPUs: --nproc N (or
    torchrun, also across machines); --batch-size is per process.
    """
    from geopre.train.finetune import FinetuneConfig, finetune as run

    run_dir = out_dir_or_positional(out, run_dir_positional, "RUN_DIR")
    config = FinetuneConfig(
        data_root=data_root, run_dir=run_dir, mode=mode.upper(), split_dir=split_dir, arch=arch, size=size,
        batch_size=batch_size, lr=lr, epochs=epochs, decay_epochs=decay_epochs,
        min_depth=min_depth, max_depth=max_depth, smoothness=smoothness, scales=scales, start_depth=start_depth,
        pose_start=pose_start, pose_lr_factor=pose_lr_factor, init=init, imagenet_weights=imagenet_weights,
        fraction=fraction, seed=seed, device=device, amp=amp, workers=workers, checkpoint_every=checkpoint_every,
        max_steps=max_steps, val_gt_frames=val_gt_frames, val_every_epochs=val_every, log_every=log_every,
        resume=resume)
    summary = _run(run, nproc, config)
    best = summary["best"]
    _echo(f"{summary['steps']} steps, {summary['epochs_done']} epochs in {summary['run_dir']}")
    if best:
        _echo(f"best epoch {best['epoch']} by {best['criterion']} = {best[best['criterion']]:.4f}")


@click.command("evaluate")
@click.argument("model", type=_PATH)
@click.argument("data_root", type=_PATH)
@click.option("--dataset", default="kitti", show_default=True, type=choice(DATASETS),
              help="kitti (Eigen split) or cityscapes.")
@click.option("--split-file", type=_PATH, help="KITTI split file. [default: DATA_ROOT/splits/eigen/test_files.txt]")
@click.option("--split", default="test", show_default=True, type=choice([*CITYSCAPES_SPLITS, "all"]),
              help="Cityscapes split folder to score, or 'all' (every split, for a tree kept only for testing).")
@click.option("--gt-file", type=_PATH,
              help="KITTI ground truth .npz (geopre or monodepth2 format); made once if missing. "
                   "[default: gt_depths.npz beside the split file]")
@click.option("--gt-source", default="velodyne", show_default=True, type=choice(GT_SOURCES),
              help="KITTI ground truth: velodyne (Eigen) or dense (KITTI depth annotations).")
@click.option("--dense-root", type=_PATH, help="Folder of KITTI's data_depth_annotated, for --gt-source dense.")
@click.option("--gt-mask", type=choice(GT_MASKS),
              help="KITTI pixels scored: eigen-crop (1e-3 < gt < 80 m inside the Garg crop, monodepth2's "
                   "eigen split) or positive (every gt > 0, monodepth2's eigen_benchmark). "
                   "[default: eigen-crop for velodyne, positive for dense]")
@click.option("--median-scaling/--no-median-scaling", default=None,
              help="Scale each prediction by median(gt) / median(pred). [default: on for M models, off for S and MS]")
@click.option("--stereo-scale", type=POSITIVE_FLOAT,
              help="Fixed scale without median scaling; 5.4 reproduces monodepth2's tables. "
                   "[default: baseline / 0.1 from each drive's calibration, 5.327 on KITTI 2011_09_26]")
@click.option("--best", is_flag=True, help="Use the run's best epoch (best.safetensors) instead of its last.")
@click.option("--out", "-o", "out_dir", type=OUT_DIR, help="Output folder. [default: the run folder]")
@click.option("--save-predictions", is_flag=True, help="Also write the predicted disparities as one .npy.")
@click.option("--post-process", is_flag=True,
              help="monodepth2's post-processing: also predict each mirrored image and blend the two (twice the work).")
@click.option("--batch-size", default=8, show_default=True, type=POSITIVE_INT, help="Images per forward pass.")
@click.option("--device", default="auto", show_default=True, type=DEVICE, help="auto, cpu, cuda or cuda:N.")
def evaluate(model, data_root, dataset, split_file, split, gt_file, gt_source, dense_root, gt_mask, median_scaling,
             stereo_scale, best, out_dir, save_predictions, post_process, batch_size, device):
    """Score MODEL (run folder, checkpoint folder or .safetensors) on DATA_ROOT with the Eigen protocol.

    Writes eval_<dataset>_<split>.json and .md (a markdown table row) and prints the row.
    """
    from geopre.train.evaluate import EvaluateConfig, describe_stereo_scale, evaluate as run
    from geopre.train.metrics import markdown_header

    result = run(EvaluateConfig(
        model=model, data_root=data_root, dataset=dataset, split_file=split_file, split=split, gt_file=gt_file,
        gt_source=gt_source, dense_root=dense_root, gt_mask=gt_mask, median_scaling=median_scaling,
        stereo_scale=stereo_scale,
        best=best, out_dir=out_dir, save_predictions=save_predictions, post_process=post_process,
        batch_size=batch_size, device=device))
    click.echo(markdown_header())
    click.echo(result["markdown"])
    if "scale_ratio" in result:
        click.echo(f"scaling ratios | med: {result['scale_ratio']['median']:.3f} | std: {result['scale_ratio']['std']:.3f}")
    stereo_scale_line = describe_stereo_scale(result)
    if stereo_scale_line:
        click.echo(stereo_scale_line)
    click.echo(f"{result['images']} images; written {result['json']}")


@click.command("predict")
@click.argument("model", type=_PATH)
@click.argument("inputs", nargs=-1, required=True, type=_PATH)
@click.option("--out", "-o", "out_dir", required=True, type=OUT_DIR, help="Folder for the depth images.")
@click.option("--save-depth", is_flag=True,
              help="Also write <name>_depth.npy (metres for S/MS models, relative scale for M).")
@click.option("--best", is_flag=True, help="Use the run's best epoch (best.safetensors) instead of its last.")
@click.option("--video-stride", default=1, show_default=True, type=POSITIVE_INT, help="Keep every N-th video frame.")
@click.option("--post-process", is_flag=True,
              help="monodepth2's post-processing: also predict each mirrored frame and blend the two (twice the work).")
@click.option("--device", default="auto", show_default=True, type=DEVICE, help="auto, cpu, cuda or cuda:N.")
def predict(model, inputs, out_dir, save_depth, best, video_stride, post_process, device):
    """Depth for INPUTS (images, folders of images, videos) as magma PNGs, from MODEL."""
    from geopre.train.predict import PredictConfig, predict as run

    summary = run(PredictConfig(model=model, inputs=tuple(inputs), out_dir=out_dir, save_depth=save_depth,
                                best=best, video_stride=video_stride, post_process=post_process, device=device))
    click.echo(f"{summary['frames']} depth maps in {summary['out_dir']}")
    if save_depth and not summary["metric_depth"]:
        click.echo(f"note: a {summary['mode']} model's depth is relative (unknown scale), not metres")

"""CLI for training: `geopre pretrain` and `geopre export`."""

from __future__ import annotations

from pathlib import Path

import click

from geopre.cliutil import IMAGE_SIZE


@click.command()
@click.option("--shards", required=True, help="Shard folder from `geopre shard` (with index.json), a brace "
              "pattern like 'shards/train-{000000..000009}.tar', or an http(s)/fsspec URL pattern.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: checkpoints, metrics.csv, TensorBoard logs, visuals, summary.json.")
@click.option("--arch", default="resnet18", show_default=True, type=click.Choice(["resnet18", "resnet34", "resnet50"]),
              help="Structure encoder (paper: resnet18; resnet50 for the 1024x320 'hd' model).")
@click.option("--size", default="640x192", show_default=True, type=IMAGE_SIZE,
              help="Training resolution WxH, multiples of 32 (paper: 640x192 or 1024x320).")
@click.option("--batch-size", default=20, show_default=True, type=int,
              help="Triplets per step and GPU (paper: 20 at 640x192, 8 at 1024x320).")
@click.option("--lr", default=1e-4, show_default=True, type=float, help="Adam learning rate, constant (paper III-D).")
@click.option("--steps", type=int, help="Total optimiser steps (overrides --epochs).")
@click.option("--epochs", default=10, show_default=True, type=int, help="Epochs over the training split.")
@click.option("--samples-per-epoch", type=int, help="Epoch length in triplets (default: the split's size).")
@click.option("--motion-dim", default=128, show_default=True, type=int, help="Latent motion vector size (paper: 128).")
@click.option("--alpha", default=0.001, show_default=True, type=float, help="Smoothness weight (paper eq. 3).")
@click.option("--beta", default=0.85, show_default=True, type=float, help="SSIM weight in the photometric term (eq. 4).")
@click.option("--init", default="scratch", show_default=True,
              help="Encoder initialisation: scratch, imagenet (torchvision's file, never downloaded) or a weights file.")
@click.option("--imagenet-weights", type=click.Path(dir_okay=False, path_type=Path),
              help="torchvision ImageNet weights file for --init imagenet (default: the torch hub cache).")
@click.option("--workers", default=4, show_default=True, type=int, help="DataLoader worker processes per GPU.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA if present), cpu, cuda or cuda:N.")
@click.option("--amp/--no-amp", default=True, show_default=True, help="Mixed precision on CUDA (bf16, else fp16).")
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the network (CUDA; slow first step).")
@click.option("--log-every", default=10, show_default=True, type=int, help="Steps between logged losses.")
@click.option("--val-every", default=1000, show_default=True, type=int, help="Steps between validation passes.")
@click.option("--visual-every", default=1000, show_default=True, type=int, help="Steps between visual PNGs.")
@click.option("--checkpoint-every", default=1000, show_default=True, type=int, help="Steps between checkpoints.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for weights, data order and augmentation.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its latest checkpoint.")
def pretrain(shards, out, arch, size, batch_size, lr, steps, epochs, samples_per_epoch, motion_dim, alpha, beta,
             init, imagenet_weights, workers, device, amp, compile_model, log_every, val_every, visual_every,
             checkpoint_every, seed, resume):
    """Geometric pretraining: learn a structure encoder by reconstructing optical flow (paper III).

    Multi-GPU / multi-machine: launch with `torchrun --nproc-per-node N -m geopre.cli pretrain ...`;
    shards split by node and worker, only rank 0 writes. Ctrl-C saves a checkpoint; --resume continues.
    """
    from geopre.train.pretrain import PretrainConfig, pretrain as run

    summary = run(PretrainConfig(
        shards=shards, out=out, arch=arch, motion_dim=motion_dim, size=size, batch_size=batch_size, lr=lr,
        alpha=alpha, beta=beta, steps=steps, epochs=epochs, samples_per_epoch=samples_per_epoch, init=init,
        imagenet_weights=imagenet_weights, workers=workers, device=device, amp=amp, compile=compile_model,
        log_every=log_every, val_every=val_every, visual_every=visual_every, checkpoint_every=checkpoint_every,
        seed=seed, resume=resume), echo=click.echo)
    click.echo(f"pretrain done: {summary['steps']} steps, loss {summary['final_loss']}, val photometric "
               f"{summary['val_photometric']}, {summary['samples_per_s']} triplets/s; checkpoint {summary['checkpoint']}")
    click.echo(f"export the encoder with: geopre export {out} --out {out}/encoder.pth")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="monodepth2-style encoder file to write (a torchvision state dict goes beside it as *_torchvision.pth).")
def export(run_dir, out):
    """Export the structure encoder of a pretraining run (RUN_DIR) for transfer."""
    from geopre.train.export import export_encoder

    monodepth2, plain = export_encoder(run_dir, out)
    click.echo(f"wrote {monodepth2} (monodepth2 encoder.pth layout) and {plain} (torchvision state dict, no fc)")
    click.echo(f"fine-tune with: geopre finetune --init {monodepth2} ...")

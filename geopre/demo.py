"""`geopre demo`: the whole pipeline, run small on the embedded synthetic world.

A new user's first command after `make install`: it renders the offline stand-ins for YouTube,
KITTI and Cityscapes, serves the videos on loopback and ingests them through yt-dlp, shards the
"kcd" mixture (paper Table I), pretrains a structure encoder for a few steps, exports it, fine-tunes
depth from it, evaluates on the Eigen test split and prints what every stage made. Sizes and
schedules are tiny so it runs in minutes on a laptop CPU: it shows the pipeline works, not that
pretraining helps (that is `make reproduce`). Every stage's output is cached, so a rerun is quick.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import click

from geopre.cliutil import POSITIVE_FLOAT, POSITIVE_INT, SEED
from geopre.errors import UserError


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("demo")
    videos: int = 3
    seconds: float = 8.0
    seed: int = 0
    video_sizes: tuple[tuple[int, int], ...] = ((960, 540), (854, 480))
    ingest_size: tuple[int, int] = (416, 128)
    kitti_drives: int = 3
    kitti_frames: int = 20
    kitti_size: tuple[int, int] = (416, 128)
    city_sequences: int = 3
    city_size: tuple[int, int] = (512, 256)
    train_size: tuple[int, int] = (192, 64)  # multiples of 32, small enough for a CPU
    pretrain_steps: int = 30
    finetune_steps: int = 30
    batch_size: int = 4
    port: int = 8766  # loopback port for serving the videos (a free one if taken)


def list_playlist(url: str) -> list[str]:
    """The video URLs yt-dlp's generic extractor finds on a page (nothing is downloaded)."""
    import yt_dlp

    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "extract_flat": "in_playlist"}) as ydl:
        info = ydl.extract_info(url, download=False)
    return [entry.get("url") for entry in info.get("entries") or []]


def run_demo(config: DemoConfig, echo=click.echo) -> dict:
    from geopre.ingest.config import IngestConfig, SubsampleConfig
    from geopre.ingest.pipeline import run_ingest
    from geopre.ingest.sources import expand_sources
    from geopre.shards.sources import SourceSpec
    from geopre.shards.write import WriteConfig, write_shards
    from geopre.synth import cityscapes, kitti, videos
    from geopre.synth.serve import serving
    from geopre.train.evaluate import EvaluateConfig, evaluate
    from geopre.train.export import export_encoder
    from geopre.train.finetune import FinetuneConfig, finetune
    from geopre.train.pretrain import PretrainConfig, pretrain

    out = Path(config.out)
    timings: dict[str, float] = {}
    results: dict = {}

    def stage(name, fn):
        echo(f"[demo] {name} ...")
        start = time.perf_counter()
        results[name] = fn()
        timings[name] = time.perf_counter() - start

    stage("render videos", lambda: videos.write_videos(
        out / "videos", config.videos, config.seconds, config.seed, sizes=config.video_sizes, render_scale=0.5,
        workers=min(2, os.cpu_count() or 1)))

    def ingest():
        with serving(out / "videos", port=config.port, any_port_if_taken=True) as base:
            playlist = list_playlist(base + "index.html")
            stats = run_ingest(expand_sources([base + "index.html"]), IngestConfig(
                out=out / "ingest", subsample=SubsampleConfig(size=config.ingest_size)))
        return {"playlist": playlist, "stats": stats}

    stage("serve + yt-dlp ingest", ingest)
    stage("render KITTI-style tree", lambda: kitti.write_kitti(
        out / "kitti", config.kitti_drives, 1, config.kitti_frames, *config.kitti_size, seed=config.seed))
    stage("render Cityscapes-style tree", lambda: cityscapes.write_cityscapes(
        out / "cityscapes", config.city_sequences, *config.city_size, seed=config.seed))
    stage("shard kcd mixture", lambda: write_shards(
        [SourceSpec("ingest", out / "ingest"), SourceSpec("kitti", out / "kitti"),
         SourceSpec("cityscapes", out / "cityscapes")],
        WriteConfig(out / "shards", maxcount=64, val_fraction=0.2, seed=config.seed)))

    def pretrain_stage():
        run = out / "pretrain"
        resume = (run / "checkpoints" / "latest").exists()
        summary = pretrain(PretrainConfig(
            shards=str(out / "shards"), out=run, size=config.train_size, batch_size=config.batch_size,
            steps=config.pretrain_steps, workers=0, init="scratch", log_every=5,
            val_every=config.pretrain_steps, visual_every=config.pretrain_steps,
            checkpoint_every=config.pretrain_steps, resume=resume), echo=lambda _: None)
        export_encoder(run, run / "encoder.pth")
        return summary

    stage("pretrain + export", pretrain_stage)

    def finetune_stage():
        run = out / "finetune"
        if (run / "summary.json").exists():
            return json.loads((run / "summary.json").read_text())
        return finetune(FinetuneConfig(
            data_root=out / "kitti", run_dir=run, mode="S", width=config.train_size[0], height=config.train_size[1],
            batch_size=config.batch_size, epochs=50, max_steps=config.finetune_steps,
            init=str(out / "pretrain" / "encoder.pth"), workers=0, log_every=5))

    stage("fine-tune depth (S) from the export", finetune_stage)
    stage("evaluate (Eigen protocol)", lambda: evaluate(EvaluateConfig(model=out / "finetune", data_root=out / "kitti")))

    ingested = results["serve + yt-dlp ingest"]["stats"]
    shards = results["shard kcd mixture"]
    metrics = results["evaluate (Eigen protocol)"]["metrics"]
    echo("")
    echo(f"geopre demo: outputs under {out}/")
    echo(f"  videos      {len(results['render videos']['videos'])} mp4; yt-dlp found "
         f"{len(results['serve + yt-dlp ingest']['playlist'])} on the served page")
    frames = ingested["frames"]
    echo(f"  ingest      {ingested['videos']['ok'] + ingested['videos']['skipped']} videos, {ingested['triplets']} "
         f"triplets ({frames['decoded'] - frames['kept']} of {frames['decoded']} frames dropped as static)")
    counts = {split: info.get("samples", 0) for split, info in shards.get("splits", {}).items()}
    per_split = ", ".join(f"{split} {n}" for split, n in counts.items())
    echo(f"  shards      {sum(counts.values())} triplets from ingest + KITTI + Cityscapes ({per_split})")
    echo(f"  pretrain    {results['pretrain + export']['steps']} steps, loss {results['pretrain + export']['final_loss']:.4f}; "
         f"encoder exported to {out / 'pretrain' / 'encoder.pth'}")
    echo(f"  finetune    S mode, {config.finetune_steps} steps at {config.train_size[0]}x{config.train_size[1]}")
    echo(f"  evaluate    abs_rel {metrics['abs_rel']:.3f}, a1 {metrics['a1']:.3f} on "
         f"{results['evaluate (Eigen protocol)']['images']} Eigen test frames")
    echo("              (a few CPU steps: depth has not left its starting plateau; S mode needs a few hundred)")
    echo("  stage timings:")
    for name, seconds in timings.items():
        echo(f"    {name:<38} {seconds:7.1f} s")
    if len(results["serve + yt-dlp ingest"]["playlist"]) != len(results["render videos"]["videos"]):
        raise UserError("yt-dlp did not list every demo video on the served page")
    return {**results, "timings": timings}


@click.command()
@click.option("--out", default="demo", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for everything the demo makes (reused by reruns).")
@click.option("--videos", default=3, show_default=True, type=POSITIVE_INT, help="Synthetic internet videos to render.")
@click.option("--seconds", default=8.0, show_default=True, type=POSITIVE_FLOAT, help="Length of each video.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed for every synthetic source.")
def demo(out, videos, seconds, seed):
    """Run the pipeline end to end, small, on the embedded synthetic world (no internet needed)."""
    run_demo(DemoConfig(out=out, videos=videos, seconds=seconds, seed=seed))

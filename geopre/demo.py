"""`geopre demo`: the whole pipeline, run small on the embedded synthetic world.

A new user's first command after `make install`. It runs the stages of `geopre reproduce`
(:func:`geopre.reproduce.study.plan`) for one cell, the :data:`~geopre.reproduce.presets.DEMO`
preset: render the offline stand-ins for YouTube, KITTI and Cityscapes, serve the videos on
loopback and ingest them through yt-dlp, shard the "kcd" mixture (paper Table I), pretrain a
structure encoder and export it, fine-tune depth from it in S mode, evaluate on the Eigen test split.
It then prints what every stage made, the test metrics beside those of a constant depth on the same
frames, and the path of a picture (input | prediction | true depth). Sizes and schedules fit a few
CPU minutes: it shows the pipeline works and depth is learned, not that pretraining helps (that is
`make reproduce`). Every stage is cached, so a rerun is quick.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from geopre.cliutil import OUT_DIR, POSITIVE_FLOAT, POSITIVE_INT, SEED
from geopre.errors import UserError
from geopre.io import ensure_writable_dir
from geopre.reproduce.presets import DEMO, Preset


def run_demo(preset: Preset = DEMO, out: Path = Path("demo"), echo=click.echo) -> dict:
    """Run the demo's stages (cached) and print its summary; return the numbers it printed."""
    from geopre.reproduce.collect import collect, constant_baseline
    from geopre.reproduce.figures import depth_grid
    from geopre.reproduce.layout import KITTI_EVAL, Study
    from geopre.reproduce.stages import StageRunner
    from geopre.reproduce.study import PRIOR_RATES, plan

    study = Study(preset, Path(out))
    ensure_writable_dir(study.cache)
    timings = StageRunner(study.out, PRIOR_RATES, echo, label="demo").run(plan(study))

    (cell,) = study.cells()
    run, mixture = study.run_dir(cell), preset.mixtures[0]
    ingested = json.loads((study.cache / "ingest" / "ingest_stats.json").read_text())
    shards = json.loads((study.cache / "shards" / mixture / "index.json").read_text())
    pretrained = json.loads((study.cache / "pretrain" / mixture / "summary.json").read_text())
    finetuned = json.loads((run / "summary.json").read_text())
    evaluated = json.loads((run / KITTI_EVAL).read_text())
    metrics, constant = evaluated["metrics"], constant_baseline(study)
    picture = study.out / "figures" / "depth_grid.png"
    columns = depth_grid(study, collect(study), picture)

    echo("")
    echo(f"geopre demo: outputs under {study.out}/ (the world, shards and runs in {study.cache}/)")
    videos = ingested["videos"]
    echo(f"  ingest      yt-dlp listed {videos['total']} videos on the served page; {ingested['triplets']} triplets "
         f"({ingested['frames']['decoded'] - ingested['frames']['kept']} of {ingested['frames']['decoded']} "
         "frames dropped as static)")
    counts = {split: info.get("samples", 0) for split, info in shards.get("splits", {}).items()}
    echo(f"  shards      {sum(counts.values())} triplets from ingest + KITTI + Cityscapes "
         f"({', '.join(f'{split} {n}' for split, n in counts.items())})")
    echo(f"  pretrain    {pretrained['steps']} steps, loss {pretrained['final_loss']:.4f}; "
         f"encoder exported to {study.encoder(mixture)}")
    echo(f"  finetune    S mode from that encoder, {finetuned['steps']} steps on {finetuned['train_frames']} frames "
         f"at {preset.train_size[0]}x{preset.train_size[1]}, depth starting at {preset.start_depth:g} m")
    echo(f"  evaluate    abs_rel {metrics['abs_rel']:.3f}, a1 {metrics['a1']:.3f} on {evaluated['images']} "
         "Eigen test frames")
    echo(f"  baseline    abs_rel {constant['abs_rel']:.3f}, a1 {constant['a1']:.3f}: a constant depth at each "
         "frame's true median, same frames")
    if metrics["abs_rel"] < constant["abs_rel"]:
        echo("              the network beats it: it learned where things are, not only how far they are")
    else:
        echo("              the network does not beat it yet: train longer (geopre finetune, or make reproduce)")
    echo(f"  picture     {picture} ({' | '.join(columns)})")
    echo("  stage timings:")
    for name, record in timings.items():
        echo(f"    {name:<42} {record['seconds']:7.1f} s")
    if videos["total"] != preset.videos:
        raise UserError(f"yt-dlp listed {videos['total']} of the {preset.videos} demo videos on the served page")
    return {"metrics": metrics, "constant_baseline": constant, "picture": picture, "timings": timings,
            "videos_listed": videos["total"]}


@click.command()
@click.option("--out", "-o", default="demo", show_default=True, type=OUT_DIR,
              help="Folder for everything the demo makes (reused by reruns).")
@click.option("--videos", default=DEMO.videos, show_default=True, type=POSITIVE_INT, help="Synthetic internet videos to render.")
@click.option("--seconds", default=DEMO.video_seconds, show_default=True, type=POSITIVE_FLOAT, help="Length of each video.")
@click.option("--seed", default=DEMO.world_seed, show_default=True, type=SEED, help="Seed for every synthetic source.")
def demo(out, videos, seconds, seed):
    """Run the pipeline end to end, small, on the embedded synthetic world (no internet needed)."""
    run_demo(replace(DEMO, videos=videos, video_seconds=seconds, world_seed=seed), out)

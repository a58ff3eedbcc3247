"""``geopre reproduce``: run the whole study for a preset and write ``OUT/REPORT.md``."""

from __future__ import annotations

from pathlib import Path

import click

from geopre.cliutil import DEVICE, OUT_DIR, POSITIVE_INT, choice
from geopre.reproduce.presets import PRESETS


@click.command()
@click.option("--preset", default="small", show_default=True, type=choice(PRESETS),
              help="Sizes and schedules: tiny (smoke test, minutes), small (2-core CPU, <= 2 h), "
                   "paper (640x192, GPU), hd (1024x320, ResNet-50, GPU).")
@click.option("--out", "-o", default="results", show_default=True, type=OUT_DIR,
              help="Folder for REPORT.md and figures/; its cache/ holds the world, shards and runs, and a rerun "
                   "reuses every finished stage.")
@click.option("--imagenet-weights", type=click.Path(dir_okay=False, path_type=Path),
              help="A torchvision ResNet weights file: adds ImageNet-initialised fine-tuning to every cell.")
@click.option("--bench-results", type=click.Path(dir_okay=False, path_type=Path),
              help="A bench/gpu.py result JSON to show in the report, apart from this run's numbers.")
@click.option("--device", default="auto", show_default=True, type=DEVICE, help="auto, cpu, cuda or cuda:N.")
@click.option("--jobs", "-j", type=POSITIVE_INT,
              help="Training runs at once, each in its own process with cores/jobs threads. "
                   "[default: 2 on a CPU with at least 2 cores, 1 with a GPU]")
def reproduce(preset, out, imagenet_weights, bench_results, device, jobs):
    """Measure the paper's three claims (accuracy, few-shot, generalisation) on the synthetic world.

    Renders the world, ingests the videos through yt-dlp from a loopback server, shards each
    pretraining mixture, pretrains and exports encoders, fine-tunes depth from every initialisation
    over several seeds, evaluates on the KITTI-style and Cityscapes-style test sets and writes
    OUT/REPORT.md with tables, plots and a verdict per claim. Interrupt it at any time: the next
    run continues from the stage it stopped in.
    """
    from geopre.reproduce.layout import Study
    from geopre.reproduce.presets import get_preset
    from geopre.reproduce.study import default_jobs, run_study

    study = Study(get_preset(preset), out, imagenet_weights=imagenet_weights, device=device,
                  jobs=jobs or default_jobs(device), bench_results=bench_results)
    report = run_study(study, echo=click.echo)
    click.echo(f"report: {report}")

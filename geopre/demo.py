"""`geopre demo`: every stage that exists so far, run on the embedded synthetic world.

A new user's first command after `make install`: it renders the offline stand-ins for YouTube,
KITTI and Cityscapes, serves the videos on loopback, checks that yt-dlp sees the playlist, and
prints what was made. Each stage's output is cached, so a rerun is quick.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("demo")
    videos: int = 3
    seconds: float = 8.0
    seed: int = 0
    video_sizes: tuple[tuple[int, int], ...] = ((960, 540), (854, 480))
    kitti_drives: int = 3
    kitti_frames: int = 20
    kitti_size: tuple[int, int] = (416, 128)
    city_sequences: int = 3
    city_size: tuple[int, int] = (512, 256)


def list_playlist(url: str) -> list[str]:
    """The video URLs yt-dlp's generic extractor finds on a page (nothing is downloaded)."""
    import yt_dlp

    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "extract_flat": "in_playlist"}) as ydl:
        info = ydl.extract_info(url, download=False)
    return [entry.get("url") for entry in info.get("entries") or []]


def run_demo(config: DemoConfig, echo=click.echo) -> dict:
    from geopre.synth import cityscapes, kitti, videos
    from geopre.synth.serve import serving

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    video_dir = config.out / "videos"
    summary = videos.write_videos(video_dir, config.videos, config.seconds, config.seed,
                                  sizes=config.video_sizes, render_scale=0.5, workers=min(2, os.cpu_count() or 1))
    timings["render videos"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with serving(video_dir) as base:
        entries = list_playlist(base + "index.html")
    timings["serve + yt-dlp playlist"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    kitti_summary = kitti.write_kitti(config.out / "kitti", config.kitti_drives, 1, config.kitti_frames,
                                      *config.kitti_size, seed=config.seed)
    timings["render KITTI-style tree"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    city_summary = cityscapes.write_cityscapes(config.out / "cityscapes", config.city_sequences,
                                               *config.city_size, seed=config.seed)
    timings["render Cityscapes-style tree"] = time.perf_counter() - t0

    echo("")
    echo(f"geopre demo: outputs under {config.out}/")
    echo(f"  videos      {len(summary['videos'])} mp4 ({sum(v['frames'] for v in summary['videos'])} frames); "
         f"yt-dlp found {len(entries)} videos on the served index.html")
    echo(f"  kitti       {len(kitti_summary['train_drives'])} train + {len(kitti_summary['test_drives'])} test drives, "
         f"eigen test {kitti_summary['splits']['eigen_test']} frames")
    echo(f"  cityscapes  {len(city_summary['sequences'])} sequences")
    echo("  stage timings:")
    for name, seconds in timings.items():
        echo(f"    {name:<30} {seconds:7.1f} s")
    if len(entries) != len(summary["videos"]):
        from geopre.errors import UserError

        raise UserError(f"yt-dlp listed {len(entries)} videos on the demo page, expected {len(summary['videos'])}")
    return {"videos": summary, "playlist": entries, "kitti": kitti_summary, "cityscapes": city_summary,
            "timings": timings}


@click.command()
@click.option("--out", default="demo", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for everything the demo makes (reused by reruns).")
@click.option("--videos", default=3, show_default=True, type=int, help="Synthetic internet videos to render.")
@click.option("--seconds", default=8.0, show_default=True, type=float, help="Length of each video.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for every synthetic source.")
def demo(out, videos, seconds, seed):
    """Run the pipeline end to end on the embedded synthetic world (no internet needed)."""
    run_demo(DemoConfig(out=out, videos=videos, seconds=seconds, seed=seed))

"""`make bench`: run every benchmark, write bench/results/<machine>-<date>.json, print a table.

Benchmarks are modules of this package with a ``run(out_dir) -> dict`` function; each measures
its ratios inside one run so the numbers compare on the same machine. The JSON keeps every number;
the table (markdown, as README shows it) keeps each benchmark's headline measures and ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import re
import tempfile
import time
from pathlib import Path

from geopre.machine import describe

BENCHMARKS = ("render", "world", "ingest", "shards", "train", "evaluate", "peers")
RESULTS = Path(__file__).parent / "results"

# The table: per benchmark, (measure, value key, ratio key or None, target). Keys may hold a "*"
# for the device part that differs between CPU and CUDA runs (the first match is shown).
TABLE = {
    "render": [("ray caster 320x96, frames/s", "render_320x96_fps", None, ">= 20 frames/s"),
               ("ray caster 640x192, frames/s", "render_640x192_fps", None, ""),
               ("KITTI frame: stereo pair + LiDAR 416x128, frames/s", "kitti_frame_stereo_lidar_416x128_fps", None, "")],
    "world": [("per-pixel prior abs_rel, median-scaled (test vs train drives)",
               "per_pixel_prior_abs_rel_median_scaled", None, ">= 0.35"),
              ("constant abs_rel, median-scaled", "constant_abs_rel_median_scaled", None, ""),
              ("per-pixel median prior abs_rel, study's split, velodyne gt, median-scaled",
               "study_split_per_pixel_median_abs_rel_median_scaled", None, ">= 0.35"),
              ("per-pixel median prior abs_rel, study's split, velodyne gt, metric",
               "study_split_per_pixel_median_abs_rel_metric", None, ""),
              ("textured 16x16 test patches found in training images (+-2 levels)", "texture_reuse_fraction", None,
               "<= 0.02"),
              ("ego yaw rate, std over frames (deg/s)", "yaw_rate_deg_s_std", None, "")],
    "ingest": [("ffmpeg decode-only 1280x720, frames/s", "decode_only_fps", None, ""),
               ("whole ingest via yt-dlp, frames/s (ratio: of decode-only)", "ingest_fps", "ingest_vs_decode_only",
                ">= 0.5x"),
               ("static filter precision (static = positive)", "static_filter.precision", None, ""),
               ("static filter recall", "static_filter.recall", None, ""),
               ("static filter precision, flow at full size (before issue 16)", "static_filter_full_size_flow.precision",
                None, ""),
               ("static filter recall, flow at full size", "static_filter_full_size_flow.recall", None, ""),
               ("local ingest, CPU ms per 10 Hz frame (ratio: of the same with full-size flow)",
                "ingest_local_cpu_ms_per_frame", "ingest_cpu_vs_full_size_flow", ""),
               ("ffmpeg decode-only, CPU ms per 10 Hz frame", "stage_cpu.ffmpeg_decode_only_ms_per_frame", None, "")],
    "shards": [("raw tar read, samples/s", "raw_tar_read_samples_per_s", None, ""),
               ("bare JPEG decode (simplejpeg, the loader's), 2 processes, samples/s",
                "decode_bare_2proc_samples_per_s", None, ""),
               ("full loader, 2 worker threads, samples/s (ratio: of bare decode)", "loader_2threads_samples_per_s",
                "ratio_loader_2threads_vs_decode_2proc", ">= 0.8x"),
               ("full loader, 2 worker processes, samples/s (ratio: of bare decode)", "loader_2workers_samples_per_s",
                "ratio_loader_2workers_vs_decode_2proc", ">= 0.8x"),
               ("full loader, 0 workers, samples/s (ratio: of 1-process decode)", "loader_0workers_samples_per_s",
                "ratio_loader_vs_decode_1proc", "")],
    "train": [("pretrain step 640x192 b20, triplets/s (ratio: of M step)", "pretrain_*_fp32_triplets_per_s",
               "pretrain_over_M_speed_*_fp32", ">= 1.0x"),
              ("monodepth2 M step, same size and batch, triplets/s", "finetune_M_*_fp32_triplets_per_s", None, "")],
    "evaluate": [("Eigen evaluation 640x192, frames/s (ratio: of bare forward)", "evaluate_fps",
                  "evaluate_vs_forward", "")],
    # Peer ratios are geopre's CPU per item over the peer's (below 1: geopre uses less); docs/bench.md.
    "peers": [("geopre ingest, CPU s per 10 Hz frame (ratio: of video2dataset resize + 10 fps)",
               "ingest.geopre_cpu_s_per_frame", "ingest.geopre_vs_video2dataset_cpu_s_per_frame", ""),
              ("video2dataset resize + 10 fps + its optical-flow stage, CPU s per frame (ratio: geopre's of it)",
               "ingest.video2dataset_with_flow_cpu_s_per_frame",
               "ingest.geopre_vs_video2dataset_with_flow_cpu_s_per_frame", ""),
              ("shard loader, 2 threads, CPU ms per triplet (ratio: of webdataset's README loader)",
               "loader.geopre_threads_cpu_ms_per_triplet", "loader.geopre_threads_vs_webdataset_cpu", ""),
              ("shard loader, 2 processes, CPU ms per triplet (ratio: of webdataset's README loader)",
               "loader.geopre_processes_cpu_ms_per_triplet", "loader.geopre_processes_vs_webdataset_cpu", ""),
              ("shard loader, 2 threads, CPU ms per triplet (ratio: of webdataset's loader, uint8 tensors)",
               "loader.geopre_threads_cpu_ms_per_triplet", "loader.geopre_threads_vs_webdataset_uint8_cpu", ""),
              ("shard loader, 2 threads, CPU ms per triplet (ratio: of MosaicML streaming)",
               "loader.geopre_threads_cpu_ms_per_triplet", "loader.geopre_threads_vs_streaming_cpu", ""),
              ("1-min load average during the peers run (start, end)", "load_average_at_start", None, "")],
}


def machine_label(info: dict) -> str:
    """A short, stable name for the results file: the GPU's (``nvidia-h200``), else the core count
    and CPU model (``cpu2-amd-epyc``)."""
    if info["cuda"]:
        return "-".join(re.findall(r"[a-z0-9]+", info["cuda"].lower()))
    noise = {"processor", "cpu", "with", "radeon", "graphics", "r", "tm"}
    words = [w for w in re.findall(r"[a-z0-9]+", info["cpu"].lower()) if w not in noise and not w.endswith("core")]
    return "-".join([f"cpu{info['cores']}"] + words[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=list(BENCHMARKS), help="benchmarks to run")
    args = parser.parse_args()
    report = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": describe(), "results": {}}
    import torch

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{machine_label(report['machine'])}-{dt.date.today().isoformat()}.json"
    if path.exists():  # the same machine and day: keep the benchmarks this run does not redo
        report["results"] = json.loads(path.read_text()).get("results", {})
    threads = torch.get_num_threads()
    for name in args.only:
        module = importlib.import_module(f"bench.{name}")
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"geopre-bench-{name}-") as tmp:
            report["results"][name] = module.run(Path(tmp))
        report["results"][name]["bench_seconds"] = round(time.perf_counter() - start, 1)
        torch.set_num_threads(threads)  # a benchmark that pins threads must not slow the next one
        path.write_text(json.dumps(report, indent=2) + "\n")
    info = report["machine"]
    print(f"machine: {info['cpu']} ({info['cores']} cores), cuda: {info['cuda']}, torch {info['torch']}, "
          f"{report['date']}")
    print(table(report["results"]))
    print(f"written: {path}")


def table(results: dict) -> str:
    """The headline rows of ``results`` as a markdown table."""
    lines = ["| benchmark | measure | value | ratio | target |", "|---|---|---|---|---|"]
    for name, rows in TABLE.items():
        if name not in results:
            continue
        flat = _flat(results[name])
        for measure, value_key, ratio_key, target in rows:
            ratio = _lookup(flat, ratio_key) if ratio_key else ""
            lines.append(f"| {name} | {measure} | {_lookup(flat, value_key)} | {ratio} | {target} |")
    return "\n".join(lines)


def _lookup(flat: dict, pattern: str):
    regex = re.compile(re.escape(pattern).replace(r"\*", "[^.]+") + "$")
    return next((value for key, value in flat.items() if regex.match(key)), "n/a")


def _flat(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


if __name__ == "__main__":
    main()

"""Peers: geopre against the tools a user would pick instead, on the same inputs in one run.

- ingest vs video2dataset 1.3.0: a 20 s 1280x720 30 fps clip served on 127.0.0.1, to 10 Hz frames at
  640 px width. video2dataset runs its download stage with ResolutionSubsampler + FrameSubsampler
  (webdataset output), and, for "with flow", also its optical_flow stage on that output at 10 fps
  (its default Farneback flow, on the frames at 192 px); geopre runs ``geopre ingest`` (DIS flow
  and the static filter always on). Both are their CLIs' work in a fresh process, as users run
  them; each tool's interpreter start-up and imports (measured alone) are reported and subtracted
  in the ``*_after_startup`` numbers.
- the shard loader vs a webdataset user's loader (``WebDataset(urls).shuffle(100).decode("torchrgb")
  .to_tuple(...).batched(12)`` in a 2-worker DataLoader; also with ``torchrgb8``, uint8 tensors as
  geopre's batches are) and vs MosaicML streaming (MDS shards of the same triplets, decoded to the
  same float tensors), on bench/shards.py's 240 triplets of three 640x192 JPEG frames.

Runs alternate (A B A B ...); CPU seconds per item (the tools' whole process trees) are the
measure to trust on a shared machine, rates are wall clock. Every run records the 1-minute load
average. The peers live in their own venv (bench/peers_env.sh, ``.venv-peers`` or
``$GEOPRE_PEERS_PYTHON``); without it these rows are skipped with a note.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.peer_side import time_batches
from bench.shards import BATCH, TIMED_BATCHES, WARM_BATCHES, WORKERS, _loader_run, _make_shards

ROOT = Path(__file__).resolve().parent.parent
SECONDS, FPS, SIZE, OUT_FPS = 20.0, 30.0, (1280, 720), 10.0
SIZE_OUT = (640, 192)  # geopre's frames (and the flow's size for video2dataset's flow stage)
REPEAT = 3


def peer_python() -> Path | None:
    """The peer venv's interpreter, if it is there and has the peers."""
    python = Path(os.environ.get("GEOPRE_PEERS_PYTHON", ROOT / ".venv-peers" / "bin" / "python"))
    if not python.is_file():
        return None
    probe = subprocess.run([str(python), "-c", "import video2dataset, streaming"], capture_output=True)
    return python if probe.returncode == 0 else None


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _timed_process(argv: list[str], cwd: Path) -> dict:
    """Wall and CPU seconds of a command and every process under it (all are waited for, so
    RUSAGE_CHILDREN holds them when it ends)."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    load, cpu, start = os.getloadavg()[0], _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return {"seconds": seconds, "cpu_s": cpu, "load_average_1min": load, "stdout": done.stdout}


def _v2d_config(url_list: Path, out: Path, flow_input: Path | None = None) -> dict:
    """video2dataset's arguments: download + subsample, or (``flow_input``) its optical-flow stage."""
    distribution = {"processes_count": 1, "thread_count": 1, "subjob_size": 1000, "distributor": "multiprocessing"}
    storage = {"number_sample_per_shard": 1000, "oom_shard_count": 5, "captions_are_subtitles": False}
    if flow_input is None:
        subsampling = {"ResolutionSubsampler": {"args": {"width": 640, "resize_mode": "scale"}},
                       "FrameSubsampler": {"args": {"frame_rate": int(OUT_FPS)}}}
        reading = {"yt_args": {"download_size": 720, "download_audio_rate": 44100, "yt_metadata_args": None},
                   "timeout": 60, "sampler": None}
        return {"url_list": str(url_list), "input_format": "txt", "output_folder": str(out),
                "output_format": "webdataset", "encode_formats": {"video": "mp4"},
                "config": {"subsampling": subsampling, "reading": reading, "storage": storage,
                           "distribution": distribution}}
    reading = {"dataloader_args": {"resize_size": SIZE_OUT[1], "decoder_kwargs": {
        "n_frames": None, "fps": int(OUT_FPS), "num_threads": 1, "return_bytes": True}}, "timeout": 60, "sampler": None}
    subsampling = {"OpticalFlowSubsampler": {"args": {"detector": "cv2", "detector_args": None, "dtype": "fp16"}}}
    return {"url_list": str(flow_input), "input_format": "webdataset", "output_folder": str(out),
            "output_format": "webdataset", "stage": "optical_flow", "encode_formats": {"video": "mp4"},
            "config": {"subsampling": subsampling, "reading": reading, "storage": storage,
                       "distribution": distribution}}



def _check_video2dataset(out: Path) -> None:
    """video2dataset exits 0 when every sample failed; its shard stats tell."""
    stats = out / "00000_stats.json"
    if not stats.is_file() or json.loads(stats.read_text()).get("successes") != 1:
        raise RuntimeError(f"video2dataset failed: {stats.read_text() if stats.is_file() else 'no stats in ' + str(out)}")


def _ingest_peers(out: Path, python: Path) -> dict:
    from bench.ingest import _render
    from geopre.synth.serve import serving

    world, _, name = _render(out, SECONDS, SIZE, FPS)
    out_frames = int(SECONDS * OUT_FPS)
    startup = {
        "geopre": [sys.executable, "-c", "import geopre.cli, geopre.ingest.pipeline"],
        "video2dataset": [str(python), "-c", "import video2dataset.main"],
    }
    runs: dict = {key: [] for key in ("geopre", "video2dataset", "video2dataset_flow", "geopre_startup",
                                      "video2dataset_startup")}
    with serving(world) as base:
        url = base + f"videos/{name}.mp4"
        url_list = out / "urls.txt"
        url_list.write_text(url + "\n")
        for _ in range(REPEAT):
            target = out / "geopre-ingest"
            shutil.rmtree(target, ignore_errors=True)
            runs["geopre"].append(_timed_process(
                [sys.executable, "-m", "geopre.cli", "ingest", url, "--out", str(target)], ROOT))
            v2d_out, flow_out = out / "v2d", out / "v2d-flow"
            shutil.rmtree(v2d_out, ignore_errors=True)
            shutil.rmtree(flow_out, ignore_errors=True)
            side = [str(python), "-m", "bench.peer_side", "video2dataset"]
            runs["video2dataset"].append(_timed_process(side + [json.dumps(_v2d_config(url_list, v2d_out))], ROOT))
            _check_video2dataset(v2d_out)
            flow = _timed_process(side + [json.dumps(_v2d_config(url_list, flow_out, v2d_out / "00000.tar"))], ROOT)
            _check_video2dataset(flow_out)
            runs["video2dataset_flow"].append(flow)
            for tool, argv in startup.items():
                runs[f"{tool}_startup"].append(_timed_process(argv, ROOT))
    best = {key: min(values, key=lambda r: r["cpu_s"]) for key, values in runs.items()}
    result = {"video": {"seconds": SECONDS, "fps": FPS, "size": list(SIZE), "output_frames_10hz": out_frames},
              "runs": {key: [{k: round(v, 3) for k, v in r.items() if k != "stdout"} for r in values]
                       for key, values in runs.items()}}
    flow_total = {"seconds": best["video2dataset"]["seconds"] + best["video2dataset_flow"]["seconds"],
                  "cpu_s": best["video2dataset"]["cpu_s"] + best["video2dataset_flow"]["cpu_s"]}
    startups = {"geopre": best["geopre_startup"]["cpu_s"], "video2dataset": best["video2dataset_startup"]["cpu_s"]}
    contenders = {"geopre": (best["geopre"], startups["geopre"], 1),
                  "video2dataset": (best["video2dataset"], startups["video2dataset"], 1),
                  "video2dataset_with_flow": (flow_total, startups["video2dataset"], 2)}
    for key, (run, startup_cpu, processes) in contenders.items():
        result[f"{key}_output_fps"] = round(out_frames / run["seconds"], 1)
        result[f"{key}_cpu_s_per_frame"] = round(run["cpu_s"] / out_frames, 4)
        result[f"{key}_cpu_s_per_frame_after_startup"] = round((run["cpu_s"] - processes * startup_cpu) / out_frames, 4)
    for peer in ("video2dataset", "video2dataset_with_flow"):
        for suffix in ("cpu_s_per_frame", "cpu_s_per_frame_after_startup"):
            result[f"geopre_vs_{peer}_{suffix}"] = round(result[f"geopre_{suffix}"] / result[f"{peer}_{suffix}"], 3)
        result[f"geopre_vs_{peer}_output_fps"] = round(result["geopre_output_fps"] / result[f"{peer}_output_fps"], 3)
    result["startup_cpu_s"] = {k: round(v, 3) for k, v in startups.items()}
    return result


def _webdataset_run(urls: list[str], decoder: str = "torchrgb") -> dict:
    """The loader a webdataset user writes from its README, timed like bench.shards._loader_run.
    ``torchrgb`` gives float (3, H, W) tensors in [0, 1]; ``torchrgb8`` uint8 ones, which is what
    geopre's loader hands over (training makes them float on its device)."""
    import webdataset as wds
    from torch.utils.data import DataLoader

    dataset = (wds.WebDataset(urls, shardshuffle=False, nodesplitter=wds.split_by_node).repeat().shuffle(100)
               .decode(decoder).to_tuple("prev.jpg", "ref.jpg", "next.jpg").batched(BATCH))
    batches = iter(DataLoader(dataset, batch_size=None, num_workers=WORKERS))
    rate, cpu_ms = time_batches(batches, WARM_BATCHES, TIMED_BATCHES, BATCH)
    del batches
    return {"samples_per_s": rate, "total_cpu_ms_per_sample": cpu_ms}


def _loader_peers(out: Path, python: Path | None) -> dict:
    from geopre.shards.augment import AugmentConfig
    from geopre.shards.shardset import resolve_shards

    torch.set_num_threads(1)
    shards = _make_shards(out)
    urls = resolve_shards(shards, "train").urls
    augment = AugmentConfig(size=SIZE_OUT)
    contenders = {
        "geopre_threads": lambda: _loader_run(shards, WORKERS, "thread", augment),
        "geopre_processes": lambda: _loader_run(shards, WORKERS, "process", augment),
        "webdataset": lambda: _webdataset_run(urls),
        "webdataset_uint8": lambda: _webdataset_run(urls, "torchrgb8"),
    }
    if python is not None:
        side = [str(python), "-m", "bench.peer_side", "streaming", json.dumps(urls), str(out / "streaming"), str(BATCH),
                str(WORKERS), str(WARM_BATCHES), str(TIMED_BATCHES)]

        def streaming_run():
            run = json.loads(_timed_process(side, ROOT)["stdout"].strip().splitlines()[-1])
            return {"samples_per_s": run["triplets_per_s"], "total_cpu_ms_per_sample": run["cpu_ms_per_triplet"]}

        contenders["streaming"] = streaming_run
    runs: dict = {name: [] for name in contenders}
    for _ in range(REPEAT):
        for name, fn in contenders.items():
            load = os.getloadavg()[0]
            run = fn()
            runs[name].append({"triplets_per_s": round(run["samples_per_s"], 1),
                               "cpu_ms_per_triplet": round(run["total_cpu_ms_per_sample"], 3),
                               "load_average_1min": round(load, 2)})
    result: dict = {"triplets": "240 x three 640x192 JPEG frames", "batch": BATCH, "workers": WORKERS, "runs": runs}
    for name, values in runs.items():
        result[f"{name}_triplets_per_s"] = max(r["triplets_per_s"] for r in values)
        result[f"{name}_cpu_ms_per_triplet"] = min(r["cpu_ms_per_triplet"] for r in values)
    for peer in [name for name in runs if not name.startswith("geopre")]:
        for mode in ("threads", "processes"):
            result[f"geopre_{mode}_vs_{peer}_cpu"] = round(result[f"geopre_{mode}_cpu_ms_per_triplet"]
                                                           / result[f"{peer}_cpu_ms_per_triplet"], 3)
            result[f"geopre_{mode}_vs_{peer}_rate"] = round(result[f"geopre_{mode}_triplets_per_s"]
                                                            / result[f"{peer}_triplets_per_s"], 3)
    return result


def run(out_dir) -> dict:
    out = Path(out_dir)
    python = peer_python()
    result: dict = {"load_average_at_start": [round(x, 2) for x in os.getloadavg()], "cores": os.cpu_count()}
    if python is None:
        result["ingest"] = {"skipped": "video2dataset is not installed: run `make peers` (bench/peers_env.sh)"}
        result["note_streaming"] = "MosaicML streaming is not installed: run `make peers` (bench/peers_env.sh)"
    else:
        result["ingest"] = _ingest_peers(out / "ingest", python)
    result["loader"] = _loader_peers(out / "loader", python)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="geopre-bench-peers-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))

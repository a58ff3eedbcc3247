"""Streaming speed, all on the same shards in one run: raw tar read, bare JPEG decoding (PIL,
OpenCV, torchvision, simplejpeg), and the full training loader (decode + augment + batch) in its
three modes: 2 worker processes, 2 worker threads in the training process, and 0 workers.

Target (issue 5): the loader reaches >= 0.8x of bare decoding with the same number of processes,
i.e. the pipeline adds little beyond the decode it cannot avoid. "Bare decoding" is the loader's
own decoder (simplejpeg, RGB, channels last; the fastest of the four here) on the same JPEG
bytes, each frame into a fresh array; the others give the same pixels and are timed for comparison. The loader is timed in steady state (inside a long
epoch, after its workers started and filled their shuffle buffers), which is what training sees.

Where the time goes: ``stage_*_ms_per_sample`` is each stage's CPU time per triplet in this
process, and ``loader_*_cpu_ms_per_sample`` the CPU time the loader's processes spend per triplet
(``main``: the training process, its decode and read-ahead threads included; ``workers``: the
worker processes; ``total``: both). CPU times are the steadier measure on a shared machine; rates
are wall clock, best of a few runs, the loader modes' runs interleaved so load changes hit each.
"""

from __future__ import annotations

import io
import json
import os
import resource
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SIZE = (640, 192)  # stored and training size (paper III-B-2)
VIDEOS, FRAMES = 8, 32  # 8 x 30 = 240 triplets
WORKERS = 2
BATCH = 12
WARM_BATCHES, TIMED_BATCHES = 30, 150  # loader: batches skipped (start-up, heap growth), then timed
REPEAT = 3
# Decode passes over the 240 triplets per timing: about a second, as long as a timed loader run, so
# the best of REPEAT is taken over windows of the same length (short windows favour the lucky).
PASSES = 8


def _render_frames(count: int) -> list[bytes]:
    """Real-looking JPEGs (rendered street scenes compress like video frames; noise would not)."""
    from geopre.synth import render, world

    seq = world.make_sequence(2, count / 10.0 + 1, 10.0, world.Intrinsics.from_hfov(*SIZE, 80.0), style=world.CITY)
    frames = []
    for i in range(count):
        buffer = io.BytesIO()
        Image.fromarray(render.render_view(seq, i).image).save(buffer, format="JPEG", quality=90)
        frames.append(buffer.getvalue())
    return frames


def _make_shards(out: Path) -> Path:
    from geopre.shards.sources import SourceSpec
    from geopre.shards.write import WriteConfig, write_shards

    ingest = out / "ingest"
    rendered = _render_frames(12)
    for v in range(VIDEOS):
        entries = []
        for i in range(FRAMES):
            rel = f"frames/v{v}/{i:06d}.jpg"
            (ingest / rel).parent.mkdir(parents=True, exist_ok=True)
            (ingest / rel).write_bytes(rendered[(v + i) % len(rendered)])
            entries.append({"index": i, "time": i / 10, "mean_flow": 3.0, "kept": True, "file": rel})
        (ingest / "manifests").mkdir(exist_ok=True)
        (ingest / "manifests" / f"v{v}.json").write_text(json.dumps({
            "version": 1, "video_id": f"v{v}", "source": {}, "params": {"fps": 10.0, "size": list(SIZE)},
            "frames": entries, "triplets": [[i - 1, i, i + 1] for i in range(1, FRAMES - 1)]}))
    shards = out / "shards"
    write_shards([SourceSpec("ingest", ingest)], WriteConfig(shards, maxcount=30, val_fraction=0.0))
    return shards


def _raw_samples(urls: list[str]) -> list[dict]:
    from webdataset.tariterators import base_plus_ext, group_by_keys

    from geopre.shards.skips import Skips
    from geopre.shards.stages import tar_files

    skips = Skips()
    return list(group_by_keys(tar_files(({"url": u} for u in urls), skips), keys=base_plus_ext, handler=skips.sample))


def _count_members(urls: list[str], reader) -> int:
    """Reads every file of the local tars with ``reader`` (a stream -> files iterator)."""
    count = 0
    for url in urls:
        with open(url, "rb") as stream:
            count += sum(1 for _ in reader(stream))
    return count


def _frames_of(samples: list[dict]) -> list[bytes]:
    return [s[f"{name}.jpg"] for s in samples for name in ("prev", "ref", "next")]


def _decode_pil(frames: list[bytes]) -> None:
    for data in frames:
        np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _decode_torchvision(frames: list[bytes]) -> None:
    from torchvision.io import ImageReadMode, decode_jpeg

    for data in frames:
        decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB).permute(1, 2, 0).numpy()


def _decode_simplejpeg(frames: list[bytes]) -> None:
    import simplejpeg

    for data in frames:
        simplejpeg.decode_jpeg(data, colorspace="RGB")


def _decode_bare(frames: list[bytes]) -> None:
    from geopre.shards.images import decode_image  # the loader's decoder: simplejpeg, RGB, (H, W, 3)

    for data in frames:
        decode_image(data)


def _decode_opencv(frames: list[bytes]) -> None:
    import cv2

    for data in frames:
        cv2.cvtColor(cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _pool_decode(frames: list[bytes]) -> float:
    """A pool worker: one thread, like a loader worker; decodes ``frames`` once to warm up, then
    returns the wall time of PASSES more."""
    torch.set_num_threads(1)
    _decode_bare(frames)
    return _seconds(lambda: _decode_bare(frames * PASSES))


def _rate(fn, items: int, repeat: int = REPEAT) -> float:
    fn()  # warm imports and caches outside the timing
    best = min(_seconds(fn) for _ in range(repeat))
    return items / best


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cpu_ms_per_item(fn, items: int, repeat: int = REPEAT) -> float:
    """CPU milliseconds of this process per item, best of ``repeat`` (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return 1e3 * best / items


def _descendants_cpu_seconds() -> float:
    """CPU seconds (user + system) so far of this process's descendants: the loader's workers,
    children of the forkserver it starts (Linux /proc)."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that just ended
            continue
        stats[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    family, total, grew = {os.getpid()}, 0.0, True
    while grew:
        grew = False
        for pid, (parent, cpu) in stats.items():
            if parent in family and pid not in family:
                family.add(pid)
                total += cpu
                grew = True
    return total


def _decode_in_threads(frames: list[bytes], threads: int) -> None:
    """Each thread decodes its share in a loop, as the loader's worker threads do."""
    import threading

    workers = [threading.Thread(target=_decode_bare, args=(frames[k::threads],)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _loader_run(shards: Path, workers: int, worker_kind: str, augment) -> dict:
    """Steady-state rate of the training loader: one long epoch, the first WARM_BATCHES skipped
    (worker start-up, shuffle buffer fill), the next TIMED_BATCHES timed, and the CPU time its
    processes spend per triplet (Linux /proc)."""

    from geopre.shards.read import LoaderConfig, train_loader

    # A 100-sample shuffle buffer fills during the warm-up; past the fill each sample read is one
    # sample out, as in a long epoch with the default 1000.
    config = LoaderConfig(batch_size=BATCH, workers=workers, worker_kind=worker_kind, augment=augment,
                          pin_memory=torch.cuda.is_available(),
                          samples_per_epoch=BATCH * (WARM_BATCHES + TIMED_BATCHES), shuffle_buffer=100)
    batches = iter(train_loader(shards, config))
    for _ in range(WARM_BATCHES):
        next(batches)
    workers_cpu, main_cpu, start = _descendants_cpu_seconds(), time.process_time(), time.perf_counter()
    main_use = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(TIMED_BATCHES):
        next(batches)
    seconds = time.perf_counter() - start
    main_now = resource.getrusage(resource.RUSAGE_SELF)
    samples = BATCH * TIMED_BATCHES
    result = {"samples_per_s": samples / seconds,
              "main_cpu_ms_per_sample": 1e3 * (time.process_time() - main_cpu) / samples,
              "workers_cpu_ms_per_sample": 1e3 * (_descendants_cpu_seconds() - workers_cpu) / samples,
              # The training process's kernel time, page faults and context switches per triplet.
              "main_system_ms_per_sample": 1e3 * (main_now.ru_stime - main_use.ru_stime) / samples,
              "main_page_faults_per_sample": (main_now.ru_minflt - main_use.ru_minflt) / samples,
              "main_context_switches_per_sample": (main_now.ru_nvcsw + main_now.ru_nivcsw
                                                   - main_use.ru_nvcsw - main_use.ru_nivcsw) / samples}
    result["total_cpu_ms_per_sample"] = result["main_cpu_ms_per_sample"] + result["workers_cpu_ms_per_sample"]
    return result


def run(out_dir) -> dict:

    from webdataset.tariterators import tar_file_iterator

    from geopre.shards.augment import AugmentConfig, prepare_batch
    from geopre.shards.read import LoaderConfig, triplet_pipeline
    from geopre.shards.shardset import resolve_shards
    from geopre.shards.skips import Skips
    from geopre.shards.stages import batch_tensor, collate, fill_slot, read_triplet, view_sample
    from geopre.shards.workers import keep_freed_memory
    from geopre.shards.write import FIELDS
    from geopre.shards.tar_stream import tar_members

    torch.set_num_threads(1)  # one core per process, as in the loader's workers
    shards = _make_shards(Path(out_dir))
    urls = resolve_shards(shards, "train").urls
    samples = _raw_samples(urls)
    n = len(samples)
    total_bytes = sum(os.path.getsize(u) for u in urls)
    frames = _frames_of(samples)
    results: dict = {"samples": n, "frame_size": f"{SIZE[0]}x{SIZE[1]}", "mean_jpeg_kb": len(b"".join(frames)) / len(frames) / 1e3}

    read_s = min(_seconds(lambda: _raw_samples(urls)) for _ in range(REPEAT))
    results["raw_tar_read_samples_per_s"] = n / read_s
    results["raw_tar_read_mb_per_s"] = total_bytes / read_s / 1e6
    results["decode_pil_1proc_samples_per_s"] = _rate(lambda: _decode_pil(frames), n)
    results["decode_opencv_1proc_samples_per_s"] = _rate(lambda: _decode_opencv(frames), n)
    results["decode_simplejpeg_1proc_samples_per_s"] = _rate(lambda: _decode_simplejpeg(frames), n)
    results["decode_torchvision_1proc_samples_per_s"] = _rate(lambda: _decode_torchvision(frames), n)
    results["decode_bare_1proc_samples_per_s"] = _rate(lambda: _decode_bare(frames * PASSES), n * PASSES)
    # The loader's decoder spread over the loader's number of processes: the limit it is held to.
    halves = [frames[k::WORKERS] for k in range(WORKERS)]
    with get_context("spawn").Pool(WORKERS) as pool:  # fork after torch/cv2 use can hang
        parallel_s = min(max(pool.map(_pool_decode, halves)) for _ in range(REPEAT))
    results[f"decode_bare_{WORKERS}proc_samples_per_s"] = n * PASSES / parallel_s
    # The same decoder on threads of one process (it releases the GIL).
    results[f"decode_bare_{WORKERS}threads_samples_per_s"] = _rate(lambda: _decode_in_threads(frames * PASSES, WORKERS),
                                                                   n * PASSES)

    # Where one process spends its CPU time per triplet: each worker stage alone, then the whole
    # worker pipeline (its sum plus shuffling and the memory traffic of real batches), then
    # prepare_batch (float, zoom-crop, flip, colour jitter), which training runs on its device.
    augment = AugmentConfig(size=SIZE)
    read = [read_triplet(s) for s in samples]
    viewed = [view_sample(r, augment, True) for r in read]
    groups = [viewed[k:k + BATCH] for k in range(0, n, BATCH)]
    batch_shape = (BATCH, len(FIELDS), SIZE[1], SIZE[0], 3)
    images = torch.empty(batch_shape, dtype=torch.uint8)
    batches = [collate(group, images[:len(group)], SIZE) for group in groups]
    pipeline = triplet_pipeline(urls, LoaderConfig(batch_size=BATCH, augment=augment, shuffle_buffer=100), Skips(),
                                training=True).with_epoch(n // BATCH)

    def fill_batches():
        for group in groups:
            for slot, sample in zip(images.numpy(), group):
                fill_slot(sample, SIZE, slot)

    stage = {
        "read_tar": _cpu_ms_per_item(lambda: _raw_samples(urls), n),
        # Inside it, the tar reader alone: the loader's (tar_stream), and tarfile's (webdataset's iterator).
        "tar_members": _cpu_ms_per_item(lambda: _count_members(urls, tar_members), n),
        "tar_members_tarfile": _cpu_ms_per_item(lambda: _count_members(urls, tar_file_iterator), n),
        "read_headers": _cpu_ms_per_item(lambda: [read_triplet(s) for s in samples], n),
        "draw_view": _cpu_ms_per_item(lambda: [view_sample(r, augment, True) for r in read], n),
        "decode_into_batch": _cpu_ms_per_item(fill_batches, n),
        "collate": _cpu_ms_per_item(lambda: [collate(group, images[:len(group)], SIZE) for group in groups], n),
        "worker_pipeline": _cpu_ms_per_item(lambda: sum(1 for _ in pipeline), n // BATCH * BATCH),
        # A worker's batch goes to the main process in fresh shared memory: the kernel's cost of
        # faulting in (and zeroing) its pages, per triplet.
        "fresh_shared_batch": _cpu_ms_per_item(lambda: [batch_tensor(batch_shape, torch.uint8, shared=True).fill_(0)
                                                        for _ in range(n // BATCH)], n // BATCH * BATCH),
        "prepare_batch_on_cpu": _cpu_ms_per_item(lambda: [prepare_batch(b, "cpu") for b in batches], n, repeat=1),
    }
    stage["bare_decode"] = _cpu_ms_per_item(lambda: _decode_bare(frames), n)
    for name, ms in stage.items():
        results[f"stage_{name}_ms_per_sample"] = ms

    # A thread-mode loader fixes glibc's heap thresholds for its whole process (keep_freed_memory),
    # as worker processes do for themselves; set here so every run below has the same heap.
    keep_freed_memory()
    modes = {"0workers": (0, "process"), f"{WORKERS}workers": (WORKERS, "process"),
             f"{WORKERS}threads": (WORKERS, "thread")}
    runs: dict = {mode: [] for mode in modes}
    for _ in range(REPEAT):
        for mode, (workers, kind) in modes.items():
            runs[mode].append(_loader_run(shards, workers, kind, augment))
    for mode, mode_runs in runs.items():
        best = max(mode_runs, key=lambda r: r["samples_per_s"])
        for key, value in best.items():
            results[f"loader_{mode}_{key}"] = value
    results["ratio_loader_vs_decode_1proc"] = (results["loader_0workers_samples_per_s"]
                                               / results["decode_bare_1proc_samples_per_s"])
    for mode in (f"{WORKERS}workers", f"{WORKERS}threads"):  # both against the 2-process decode
        results[f"ratio_loader_{mode}_vs_decode_{WORKERS}proc"] = (
            results[f"loader_{mode}_samples_per_s"] / results[f"decode_bare_{WORKERS}proc_samples_per_s"])
    results["target_ratio"] = 0.8
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for key, value in run(Path(tmp)).items():
            print(f"{key:<44} {value}")

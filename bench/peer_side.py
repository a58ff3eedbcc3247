"""The peers' half of bench/peers.py, run with the peer venv's interpreter (bench/peers_env.sh),
which has video2dataset and MosaicML streaming; geopre's venv does not (they pin numpy < 2 and,
for video2dataset, an older torch). Each command prints one JSON line on stdout.

    python -m bench.peer_side video2dataset CONFIG_JSON   # one video2dataset run, as its users call it
    python -m bench.peer_side streaming URLS_JSON OUT_DIR BATCH WORKERS WARM TIMED  # MDS copy of the same triplets, timed loader
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _fit_video2dataset_to_this_torch() -> None:
    """Three shims, each undoing an incompatibility rather than changing work done; at import, so
    that the worker processes video2dataset spawns (which import this module) have them too.

    - Its download stage reads ``encode_formats`` from the first video subsampler, which
      ResolutionSubsampler and FrameSubsampler lack (AttributeError on every shard): derived from
      their own ``encode_format``.
    - FrameSubsampler pops and re-adds ``streams["video"]`` while the download stage iterates that
      dict (Python >= 3.8: "dictionary keys changed during iteration"): it works on a copy here.
    - Its flow stage's reader asks torch.distributed for the rank and expects torch 2.1's
      RuntimeError when no process group exists (torch 2.14 raises ValueError).
    """
    try:
        from video2dataset.subsamplers import FrameSubsampler, ResolutionSubsampler
    except ImportError:  # imported by geopre's venv
        return
    import torch.distributed as dist

    for subsampler in (FrameSubsampler, ResolutionSubsampler):
        subsampler.encode_formats = property(lambda self: {"video": self.encode_format})
    subsample = FrameSubsampler.__call__

    def on_a_copy(self, streams, metadata=None):
        out, metadata, error = subsample(self, dict(streams), metadata)
        if error is None:
            streams.update(out)
        return streams, metadata, error

    FrameSubsampler.__call__ = on_a_copy
    for name in ("get_rank", "get_world_size"):
        original = getattr(dist, name)

        def as_torch_2_1(original=original):
            if not dist.is_initialized():
                raise RuntimeError("Default process group has not been initialized")
            return original()

        setattr(dist, name, as_torch_2_1)


_fit_video2dataset_to_this_torch()


def video2dataset_run(config: dict) -> dict:
    """``video2dataset(...)`` with ``config`` (its own keyword arguments); the caller times the process."""
    from video2dataset.main import video2dataset

    video2dataset(**config)
    return {"ok": True}


def tree_cpu_seconds() -> float:
    """CPU seconds so far of this process, its live descendants, and its children that ended
    (a DataLoader's workers of finished epochs)."""
    import resource

    from bench.shards import _descendants_cpu_seconds

    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + _descendants_cpu_seconds() + ended.ru_utime + ended.ru_stime


def time_batches(batches, warm: int, timed: int, batch_size: int) -> tuple[float, float]:
    """(items per second, CPU ms per item, the whole process tree's) over ``timed`` batches drawn
    from the iterator ``batches`` after ``warm`` untimed ones (start-up and prefetch)."""
    for _ in range(warm):
        next(batches)
    cpu, start = tree_cpu_seconds(), time.perf_counter()
    for _ in range(timed):
        next(batches)
    seconds = time.perf_counter() - start
    cpu = tree_cpu_seconds() - cpu
    items = batch_size * timed
    return items / seconds, 1e3 * cpu / items


def _mds_from_tars(urls: list[str], out: Path) -> int:
    """The same triplets (three JPEG frames per sample) as MDS shards, bytes unchanged."""
    from streaming import MDSWriter
    import webdataset as wds

    columns = {"prev.jpg": "bytes", "ref.jpg": "bytes", "next.jpg": "bytes"}
    count = 0
    with MDSWriter(out=str(out), columns=columns, compression=None) as writer:
        for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
            writer.write({name: sample[name] for name in columns})
            count += 1
    return count


class _DecodedTriplets:
    """A StreamingDataset whose samples are three float (3, H, W) tensors, as webdataset's "torchrgb"."""

    def __new__(cls, local: str, batch_size: int):
        import torch
        from streaming import StreamingDataset
        from torchvision.io import ImageReadMode, decode_jpeg

        class Decoded(StreamingDataset):
            def __getitem__(self, index):
                sample = super().__getitem__(index)
                return tuple(decode_jpeg(torch.frombuffer(bytearray(sample[name]), dtype=torch.uint8),
                                         mode=ImageReadMode.RGB).float().div_(255)
                             for name in ("prev.jpg", "ref.jpg", "next.jpg"))

        return Decoded(local=local, batch_size=batch_size, shuffle=True, shuffle_seed=0, num_canonical_nodes=1)


def streaming_run(urls: list[str], out: Path, batch: int, workers: int, warm: int, timed: int) -> dict:
    """Steady-state triplets/s and CPU per triplet of a StreamingDataset in a ``workers``-worker
    DataLoader; the MDS shards are written on the first call and reused by the next ones."""
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    if not (out / "mds" / "index.json").is_file():
        _mds_from_tars(urls, out / "mds")
    dataset = _DecodedTriplets(str(out / "mds"), batch)
    batches = _endless(DataLoader(dataset, batch_size=batch, num_workers=workers, persistent_workers=True))
    rate, cpu_ms = time_batches(batches, warm, timed, batch)
    return {"triplets_per_s": rate, "cpu_ms_per_triplet": cpu_ms, "load_average_1min": os.getloadavg()[0]}


def _endless(loader):
    while True:
        yield from loader


def main(argv: list[str]) -> None:
    command, *rest = argv
    if command == "video2dataset":
        result = video2dataset_run(json.loads(rest[0]))
    elif command == "streaming":
        urls, out, batch, workers, warm, timed = rest
        result = streaming_run(json.loads(urls), Path(out), int(batch), int(workers), int(warm), int(timed))
    else:
        raise SystemExit(f"unknown command {command!r}: video2dataset or streaming")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

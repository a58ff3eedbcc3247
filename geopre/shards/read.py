"""The streaming loader: shards (local, ``http(s)://``, ``pipe:``, any fsspec URL) -> batches.

A webdataset pipeline of small stages, each an iterator that can be tested alone::

    shard URLs -> [resample | shuffle + split by node + split by worker] -> tar files
      -> samples (group by key) -> shuffle -> decode -> draw view -> batch (cover crop)   (DataLoader workers,
                                                                   or one pipeline with decode threads)
    -> prepare_batch: float, zoom-crop + flip, colour jitter                           (training device)

Training uses resampled shards and a fixed number of batches per epoch on every rank, set on the
loader (webdataset's advice: ranks that run out at different times hang DDP). Validation reads
every val sample exactly once. A shard that cannot be opened or read to the end is skipped with a
warning and counted (:class:`Skips`), never a crash.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import multiprocessing
import os
import queue
import threading
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
import webdataset as wds
from webdataset.tariterators import base_plus_ext, group_by_keys

from geopre.errors import UserError
from geopre.shards.augment import (AugmentConfig, CropBox, apply_geometry, centre_params, draw_params,
                                   transform_intrinsics)
from geopre.shards.augment import prepare_batch  # noqa: F401 - part of the loader's API
from geopre.shards import storage
from geopre.shards.tar_stream import tar_members
from geopre.shards.write import FIELDS, INDEX_NAME

log = logging.getLogger(__name__)

_WEBDATASET_SCHEMES = ("", "file", "pipe", "http", "https")  # the rest go through fsspec
# Forked workers deadlock when the parent already ran threaded OpenCV/OpenMP code (seen in the test
# suite after ingest's flow filter); forkserver children start from a clean process instead.
WORKER_START_METHOD = "forkserver"
WORKER_KINDS = ("process", "thread", "auto")
# "auto" takes threads up to this many usable cores. Measured on 2 cores (bench/shards.py): threads
# spend about half the CPU per triplet that processes do (no shared-memory hand-off). With more
# cores, processes scale past the pipeline's GIL-held part and leave the training thread's GIL free.
THREADS_UP_TO_CORES = 4


@dataclass(frozen=True)
class LoaderConfig:
    batch_size: int = 12  # monodepth2's batch size, which the paper's training follows
    workers: int = 4
    # "process": DataLoader worker processes, each running the whole pipeline; scales to heavy
    # per-sample work and many cores, but each batch crosses to the training process in fresh shared
    # memory. "thread": one pipeline in this process, read ahead by a background thread, decoding on
    # `workers` threads (torchvision's decoder releases the GIL); no hand-off cost, so it is faster
    # where cores are few (bench/shards.py). "auto": threads on up to THREADS_UP_TO_CORES cores.
    # 0 workers: everything in the calling thread.
    worker_kind: str = "process"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    resampled: bool = True  # False: each train sample once per epoch (no equal-length guarantee under DDP)
    samples_per_epoch: int | None = None  # default: the train split's size from index.json
    shuffle_buffer: int = 1000  # samples held per worker for shuffling
    seed: int = 0
    pin_memory: bool = True
    # fsspec options for s3:// and the like (e.g. {"endpoint_url": ...}); default: fsspec's env/config.
    # Passed to the workers explicitly: forkserver workers do not see later os.environ changes.
    storage_options: dict = field(default_factory=dict)


# --- shard sets --------------------------------------------------------------------------------

def open_url(url: str, storage_options: dict | None = None):
    """A readable binary stream for a local path, ``file:``, ``pipe:``, ``http(s):`` (curl, with
    retries) or any other fsspec URL (``s3://``, ``gs://``, ...)."""
    if storage.scheme(url) in _WEBDATASET_SCHEMES:
        return wds.gopen(url, "rb")
    return storage.open_remote(url, storage_options)


def _join(root: str, name: str) -> str:
    return root.rstrip("/") + "/" + name if "://" in root else os.path.join(root, name)


@dataclass(frozen=True)
class ShardSet:
    urls: list[str]
    samples: int | None = None  # known when the set came from an index.json
    index: dict | None = None


def read_index(root: str | Path, storage_options: dict | None = None) -> dict:
    url = _join(str(root), INDEX_NAME)
    try:
        with open_url(url, storage_options) as stream:
            return json.loads(stream.read())
    except UserError:
        raise
    except Exception as err:  # any scheme's "missing" error: FileNotFoundError, curl status, fsspec...
        raise UserError(f"cannot read {url} ({type(err).__name__}: {err}); write the shards with "
                        "`geopre shard SOURCE --out DIR` or pass shard URLs") from err


def resolve_shards(source: str | Path | Sequence[str], split: str = "train",
                   storage_options: dict | None = None) -> ShardSet:
    """The shards of ``split``: from a shard-set folder or URL (its ``index.json``), or from
    explicit shard URLs / brace patterns (``.../train-{000000..000009}.tar``, ``pipe:...``)."""
    if isinstance(source, (str, Path)) and not _is_shard_pattern(str(source)):
        root = str(source)
        index = read_index(root, storage_options)
        entry = index.get("splits", {}).get(split)
        if entry is None:
            raise UserError(f"{root}: index.json has no {split!r} split (it has {', '.join(index.get('splits', {}))})")
        shard_set = ShardSet([_join(root, s["name"]) for s in entry["shards"]], entry["samples"], index)
    else:
        patterns = [str(source)] if isinstance(source, (str, Path)) else [str(s) for s in source]
        shard_set = ShardSet([url for p in patterns for url in wds.shardlists.expand_urls(p)])
    if not shard_set.urls:
        raise UserError(f"no {split} shards in {source} (is the split empty? try a larger --val-fraction)")
    missing = [u for u in shard_set.urls if storage.is_local(u) and not storage.local_path(u).exists()]
    if missing:
        raise UserError(f"{len(missing)} shard(s) missing, e.g. {missing[0]}")
    remote = [u for u in shard_set.urls if storage.scheme(u) not in _WEBDATASET_SCHEMES]
    if remote:  # one line now, rather than every shard skipped by the workers
        storage.require_protocol(remote[0])
    return shard_set


def _is_shard_pattern(text: str) -> bool:
    return text.startswith("pipe:") or "{" in text or text.endswith(".tar") or "::" in text


# --- stages ------------------------------------------------------------------------------------

class Skips:
    """Counts what the loader skipped. Shared memory, so DataLoader workers' counts add up in the
    process that made the loader."""

    def __init__(self) -> None:
        context = multiprocessing.get_context(WORKER_START_METHOD)
        self._shards = context.Value("q", 0)
        self._samples = context.Value("q", 0)

    @property
    def shards(self) -> int:
        return self._shards.value

    @property
    def samples(self) -> int:
        return self._samples.value

    def shard(self, url: str, error: Exception) -> None:
        with self._shards.get_lock():
            self._shards.value += 1
        log.warning("skipped the rest of shard %s: %s: %s", url, type(error).__name__, error)

    def sample(self, error: Exception) -> bool:
        """A webdataset exception handler: count, warn, carry on."""
        with self._samples.get_lock():
            self._samples.value += 1
        log.warning("skipped a sample: %s: %s", type(error).__name__, error)
        return True


def tar_files(shards: Iterable[dict], skips: Skips, storage_options: dict | None = None) -> Iterator[dict]:
    """Stage: ``{"url"}`` -> the files of each tar (:func:`tar_members`), then ``{}`` to end the
    shard (so two shards' files never merge into one sample). An unreadable or truncated shard
    ends there, counted."""
    for shard in shards:
        url = shard["url"]
        try:
            with open_url(url, storage_options) as stream:
                for name, data in tar_members(stream):
                    yield {"fname": name, "data": data, "__url__": url}
        except Exception as err:  # corrupt, truncated, unreachable: the rest of this shard is lost
            skips.shard(url, err)
        yield {}


def _frame_field(sample: dict, name: str) -> bytes:
    for ext in ("jpg", "png"):
        if f"{name}.{ext}" in sample:
            return sample[f"{name}.{ext}"]
    raise ValueError(f"sample {sample.get('__key__')} from {sample.get('__url__')} has no {name} frame")


def decode_image(data: bytes) -> np.ndarray:
    """JPEG or PNG bytes -> uint8 RGB (H, W, 3), by torchvision (libjpeg-turbo / libpng): its JPEG
    decode takes ~2/3 of OpenCV's time on the same bytes, same pixels (bench/shards.py). torchvision
    deprecates its decoders for TorchCodec's from 0.29 on; it is pinned, so move when unpinning."""
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as torchvision_decode

    try:  # the decoder only reads the buffer; bytearray gives torch a writable one (25 kB: cheap)
        image = torchvision_decode(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"not a decodable JPEG/PNG image ({str(err).splitlines()[0][:120]})") from err
    if image.dtype != torch.uint8:  # a 16-bit PNG
        image = (image.float() * (255 / 65535)).round().to(torch.uint8)
    return image.permute(1, 2, 0).numpy()  # torchvision's CHW is a view of the decoder's HWC: no copy


def decode_triplet(sample: dict) -> dict:
    """Stage map: raw sample -> ``frames`` (three uint8 RGB arrays, prev/ref/next), ``intrinsics``
    (fx, fy, cx, cy) of the stored frames, NaN when the source was uncalibrated, and ``meta``."""
    meta = json.loads(sample["json"])
    frames = [decode_image(_frame_field(sample, name)) for name in FIELDS]
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"sample {sample['__key__']}: the three frames differ in size")
    k = meta.get("intrinsics")
    if k is None:
        intrinsics = torch.full((4,), float("nan"))
    else:  # stored for the calibrated size; rescale in case frames were resized after calibration
        sx, sy = frames[0].shape[1] / k["width"], frames[0].shape[0] / k["height"]
        intrinsics = torch.tensor([k["fx"] * sx, k["fy"] * sy, (k["cx"] + 0.5) * sx - 0.5, (k["cy"] + 0.5) * sy - 0.5])
    return {"key": sample["__key__"], "frames": frames, "intrinsics": intrinsics, "meta": meta}


def decode_in_threads(samples: Iterable[dict], threads: int, handler, ahead: int | None = None) -> Iterator[dict]:
    """Stage: :func:`decode_triplet` on ``threads`` threads (torchvision's decoder releases the
    GIL), ``ahead`` samples (default ``2 x threads``) decoding at once, results in input order. A
    sample whose decode fails goes to ``handler`` (skipped when it returns True), as in
    ``wds.map``. The threads end with the stage: when the samples run out or the iterator is closed."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix="geopre-decode")
    pending: deque = deque()

    def finished(keep: int) -> Iterator[dict]:
        while len(pending) > keep:
            try:
                yield pending.popleft().result()
            except Exception as err:
                if not handler(err):
                    raise

    try:
        for sample in samples:
            pending.append(pool.submit(decode_triplet, sample))
            yield from finished(keep=(ahead or 2 * threads) - 1)
        yield from finished(keep=0)
    finally:
        pool.shutdown(cancel_futures=True)


def view_sample(sample: dict, config: AugmentConfig, training: bool, generator: torch.Generator | None = None) -> dict:
    """Stage map: draw the random (training) or centre (validation) view of the triplet, from
    ``generator`` (default: torch's global RNG, seeded per DataLoader worker). Only the
    parameters: :func:`collate` applies the cover crop straight into the batch."""
    height, width = sample["frames"][0].shape[:2]
    params = draw_params(width, height, config, generator) if training else centre_params(width, height, config.size)
    return {**sample, "params": params}


def batch_tensor(shape: tuple[int, ...], dtype: torch.dtype, shared: bool | None = None) -> torch.Tensor:
    """An empty tensor for a batch; ``shared`` (default: in a DataLoader worker) in shared memory,
    as torch's default_collate does, so handing the batch to the main process copies nothing."""
    if not (torch.utils.data.get_worker_info() is not None if shared is None else shared):
        return torch.empty(shape, dtype=dtype)
    numel = int(np.prod(shape))
    storage = torch.UntypedStorage._new_shared(numel * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


def collate(samples: list[dict], size: tuple[int, int]) -> dict:
    """A batch of viewed samples: ``images`` uint8 (B, 3, H, W, 3) of ``size`` (W, H), frame axis =
    (prev, ref, next), channels last as decoded, each sample's cover crop written into its slot;
    ``jitter`` (B, 4) colour factors; ``zoom`` (B, 4) zoom, placement and flip for the device;
    ``intrinsics`` (B, 4) of ``images`` (NaN where uncalibrated); ``key``/``meta`` lists.
    :func:`geopre.shards.augment.prepare_batch` makes float images of it on the device."""
    images = batch_tensor((len(samples), len(FIELDS), size[1], size[0], 3), torch.uint8)
    for slot, sample in zip(images.numpy(), samples):
        # The worker only brings the frames to the training size; zoom and flip happen on the device.
        apply_geometry(sample["frames"], replace(sample["params"], flip=False), size, out=slot)
    params = [s["params"] for s in samples]
    boxes = torch.tensor([[p.box.left, p.box.top, p.box.width, p.box.height] for p in params], dtype=torch.float64)
    source = torch.stack([s["intrinsics"] for s in samples])
    intrinsics = transform_intrinsics(source.double(), CropBox(*boxes.unbind(1)), size, False).to(source.dtype)
    return {
        "images": images,
        "jitter": torch.tensor([p.jitter for p in params]),
        "zoom": torch.tensor([p.zoom for p in params], dtype=torch.float64),
        "intrinsics": intrinsics,
        "key": [s["key"] for s in samples],
        "meta": [s["meta"] for s in samples],
    }


def _worker_init(_: int) -> None:
    """One OpenCV thread per DataLoader worker (the workers are the parallelism), and freed frame
    buffers kept for the next batch."""
    import cv2

    cv2.setNumThreads(1)
    keep_freed_memory()


def keep_freed_memory() -> None:
    """glibc hands freed blocks of a few hundred kB (decoded frames) back to the kernel and the
    next batch faults them in again, zeroed: ~0.1 ms of a ~1.1 ms triplet in a worker process
    (bench/shards.py), up to 0.2 ms on decode threads, whose per-thread heaps glibc trims sooner
    (2-core VM). Fixed thresholds keep them in the heap. Process-wide, so only where the loader
    decodes: in worker processes, and in the training process in thread mode. No-op off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MB (glibc's maximum) from the heap
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GB of free heap
    except (OSError, AttributeError):
        pass


def split_by_rank(urls: Iterable, rank: int, world_size: int) -> Iterator:
    """Stage: every ``world_size``-th shard from ``rank``. The rank is taken in the process that
    builds the loader and passed in, since worker processes need not share its environment."""
    for index, url in enumerate(urls):
        if index % world_size == rank:
            yield url


def triplet_pipeline(urls: list[str], config: LoaderConfig, skips: Skips, training: bool, rank: int = 0,
                     world_size: int = 1, generator: torch.Generator | None = None) -> wds.DataPipeline:
    """The dataset one DataLoader worker (or, with ``worker_kind="thread"``, the rank) runs.
    ``training``: shuffled, augmented, full batches (resampled or each shard once); otherwise every
    sample once, in order, centre view. ``generator`` draws the views (see :func:`view_sample`)."""
    if training and config.resampled:
        shard_stages = [wds.ResampledShards(urls, seed=config.seed, deterministic=True)]
    else:
        shard_stages = [wds.SimpleShardList(urls)]
        if training:  # the same order on every rank and worker (seed + epoch), then split
            shard_stages.append(wds.detshuffle(len(urls), len(urls), seed=config.seed))
        shard_stages += [partial(split_by_rank, rank=rank, world_size=world_size), wds.split_by_worker]
    sample_stages = [partial(tar_files, skips=skips, storage_options=config.storage_options), partial(group_by_keys, keys=base_plus_ext, handler=skips.sample)]
    if training:
        sample_stages.append(wds.detshuffle(config.shuffle_buffer, min(100, config.shuffle_buffer), seed=config.seed))
    if config.worker_kind == "thread" and config.workers > 0:
        # A batch's worth ahead beyond 2 per thread: the threads keep decoding while this thread
        # crops a full batch into its tensor (4 ahead kept ~1.7 of 2 cores busy, 16 ~1.85: idle VM).
        ahead = config.batch_size + 2 * config.workers
        decode = partial(decode_in_threads, threads=config.workers, handler=skips.sample, ahead=ahead)
    else:
        decode = wds.map(decode_triplet, handler=skips.sample)
    view = partial(view_sample, config=config.augment, training=training, generator=generator)
    batch = partial(collate, size=config.augment.size)
    sample_stages += [decode, wds.map(view, handler=skips.sample),
                      wds.batched(config.batch_size, collation_fn=batch, partial=not (training and config.resampled))]
    return wds.DataPipeline(*shard_stages, *sample_stages)


class ReadAhead(torch.utils.data.IterableDataset):
    """Iterates ``dataset`` in a background thread, ``ahead`` items ahead of the consumer (copied
    to pinned memory there when ``pin``), so the pipeline runs while training computes. An error
    in the pipeline is raised in the consumer. Closing or dropping the iterator stops the thread
    (at its next item), and so does interpreter exit: the thread is a daemon, so it never holds
    exit up, but one left running into finalisation can be cut down inside torch's C++ code, which
    aborts the process ("terminate called without an active exception"), so an exit hook stops
    every producer first."""

    _END = object()
    _running: "weakref.WeakKeyDictionary[threading.Thread, threading.Event]" = weakref.WeakKeyDictionary()

    def __init__(self, dataset: Iterable, ahead: int = 2, pin: bool = False):
        super().__init__()
        self.dataset = dataset
        self.ahead = ahead
        self.pin = pin

    def __iter__(self) -> Iterator:
        items: queue.Queue = queue.Queue(self.ahead)
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(items, stop), name="geopre-read-ahead", daemon=True)
        self._running[thread] = stop
        thread.start()
        try:
            while (item := items.get()) is not self._END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

    def _produce(self, items: queue.Queue, stop: threading.Event) -> None:
        def offer(item) -> bool:  # False once the consumer has stopped
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        source = iter(self.dataset)
        try:
            for item in source:
                if self.pin:
                    item = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in item.items()}
                if not offer(item):
                    return
            offer(self._END)
        except Exception as err:
            offer(err)
        finally:
            if hasattr(source, "close"):  # ends the pipeline's stages here (decode threads included)
                source.close()


@atexit.register
def _stop_read_ahead(timeout: float = 5.0) -> None:
    for thread, stop in list(ReadAhead._running.items()):
        stop.set()
        thread.join(timeout)


class ShardLoader:
    """Batches for one process (rank). ``len()`` is the number of batches per epoch when fixed
    (resampled training), the same on every rank; ``skips`` counts skipped shards/samples."""

    def __init__(self, loader: Iterable, shards: ShardSet, skips: Skips, batches_per_epoch: int | None):
        self.loader = loader
        self.shards = shards
        self.skips = skips
        self.batches_per_epoch = batches_per_epoch

    def __iter__(self) -> Iterator[dict]:
        return iter(self.loader)

    def __len__(self) -> int:
        if self.batches_per_epoch is None:
            raise TypeError("this loader reads each sample once; its number of batches is not fixed")
        return self.batches_per_epoch


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what a container or taskset allows
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _make_loader(source, split: str, config: LoaderConfig, training: bool) -> ShardLoader:
    if config.batch_size < 1 or config.workers < 0:
        raise UserError("batch size must be >= 1 and workers >= 0")
    if config.worker_kind not in WORKER_KINDS:
        raise UserError(f"worker kind {config.worker_kind!r}: use one of {', '.join(WORKER_KINDS)}")
    if config.worker_kind == "auto":
        config = replace(config, worker_kind="thread" if usable_cores() <= THREADS_UP_TO_CORES else "process")
    shards = resolve_shards(source, split, config.storage_options)
    rank, world_size, _, _ = wds.utils.pytorch_worker_info()
    workers = config.workers if config.worker_kind == "process" else 0  # DataLoader worker processes
    if not (training and config.resampled) and len(shards.urls) < world_size * max(1, workers):
        log.warning("%d %s shards for %d ranks x %d workers: some workers get none (write smaller shards)",
                    len(shards.urls), split, world_size, max(1, workers))
    skips = Skips()
    seed = config.seed * 1000 + rank  # per-rank augmentation draws
    # In this process the views get their own generator: training's RNG is neither used nor raced.
    views = torch.Generator().manual_seed(seed) if workers == 0 else None
    dataset = triplet_pipeline(shards.urls, config, skips, training, rank, world_size, views)
    pin = config.pin_memory and torch.cuda.is_available()
    if config.worker_kind == "thread" and config.workers > 0:
        keep_freed_memory()
        loader = wds.DataPipeline(ReadAhead(dataset, ahead=2, pin=pin))
    else:
        loader = wds.WebLoader(
            dataset, batch_size=None, num_workers=workers, pin_memory=pin,
            persistent_workers=workers > 0,  # keeps the shuffles' epoch counters advancing between epochs
            generator=torch.Generator().manual_seed(seed),  # seeds the workers' draws
            prefetch_factor=2 if workers > 0 else None, worker_init_fn=_worker_init if workers > 0 else None,
            multiprocessing_context=WORKER_START_METHOD if workers > 0 else None,
        )
    batches = None
    if training and config.resampled:
        samples = config.samples_per_epoch or shards.samples
        if not samples:
            raise UserError("samples per epoch unknown for shard URLs without index.json: set samples_per_epoch")
        batches = max(1, samples // (config.batch_size * world_size))
        loader = loader.with_epoch(batches)
    return ShardLoader(loader, shards, skips, batches)


def train_loader(source: str | Path | Sequence[str], config: LoaderConfig = LoaderConfig()) -> ShardLoader:
    """Training batches for this rank (RANK/WORLD_SIZE from torchrun, or torch.distributed)."""
    return _make_loader(source, "train", config, training=True)


def val_loader(source: str | Path | Sequence[str], config: LoaderConfig = LoaderConfig()) -> ShardLoader:
    """Validation batches: every val sample exactly once over all ranks and workers, centre view."""
    return _make_loader(source, "val", config, training=False)


__all__ = ["LoaderConfig", "ShardLoader", "ShardSet", "Skips", "ReadAhead", "train_loader", "val_loader",
           "resolve_shards", "triplet_pipeline", "decode_triplet", "decode_in_threads", "decode_image", "open_url",
           "prepare_batch"]

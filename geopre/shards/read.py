"""The streaming loader: shards (local, ``http(s)://``, ``pipe:``, any fsspec URL) -> batches.

A webdataset pipeline of small stages, each an iterator that can be tested alone::

    shard URLs -> [resample | shuffle + split by node + split by worker] -> tar files
      -> samples (group by key) -> shuffle -> read headers -> draw view
      -> batch (each frame decoded into its slot, cover crop when not at training size)   (each worker:
                                                                   a DataLoader process or a thread)
    -> prepare_batch: float, zoom-crop + flip, colour jitter                           (training device)

Training uses resampled shards and a fixed number of batches per epoch on every rank, set on the
loader (webdataset's advice: ranks that run out at different times hang DDP). Validation reads
every val sample exactly once. A shard that cannot be opened or read to the end, or a sample that
cannot be read, is skipped with a warning and counted (:class:`~geopre.shards.skips.Skips`), and
the loader gives up with one line when nothing but failures comes any more.
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
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
import webdataset as wds
from webdataset.tariterators import base_plus_ext, group_by_keys

from geopre.data import camera
from geopre.errors import UserError
from geopre.shards.augment import AugmentConfig, apply_geometry, centre_params, draw_params
from geopre.shards.augment import prepare_batch  # noqa: F401 - part of the loader's API
from geopre.shards import storage
from geopre.shards.images import decode_image, image_size
from geopre.shards.ring import BatchRing, BufferPool, RingSlot
from geopre.shards.skips import SampleError, Skips, keeping_origin
from geopre.shards.tar_stream import tar_members
from geopre.shards.write import FIELDS, INDEX_NAME

log = logging.getLogger(__name__)

_WEBDATASET_SCHEMES = ("", "file", "pipe", "http", "https")  # the rest go through fsspec
# Forked workers deadlock when the parent already ran threaded OpenCV/OpenMP code (seen in the test
# suite after ingest's flow filter); forkserver children start from a clean process instead.
WORKER_START_METHOD = "forkserver"
WORKER_KINDS = ("process", "thread", "auto")
# "auto" takes threads up to this many usable cores. Measured on 2 cores (bench/shards.py): threads
# reach 0.81-0.89x of 2-process bare decoding, processes 0.61-0.73x (the training process's work of
# taking their batches in comes out of the decoding cores). With more cores, processes scale past
# the threads' GIL-held part and leave the training thread's GIL free.
THREADS_UP_TO_CORES = 4
PREFETCH = 2  # batches each worker (process or thread) keeps ready, as a DataLoader's default


@dataclass(frozen=True)
class LoaderConfig:
    batch_size: int = 12  # monodepth2's batch size, which the paper's training follows
    workers: int = 4
    # "process": DataLoader worker processes, each running the whole pipeline; scales to heavy
    # per-sample work and many cores; batches cross in a shared-memory ring (BatchRing) that the
    # training process copies out of. "thread": the same workers as threads of this process
    # (ThreadWorkers; the decoders release the GIL); no hand-off, so faster where cores are few.
    # "auto": threads on up to THREADS_UP_TO_CORES cores.
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
    # Skipped shards and samples in a row, with no batch in between, before the loader gives up
    # (geopre.shards.skips): every shard truncated or every frame undecodable ends in one error.
    max_failures_in_a_row: int = 1000


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


_UNCALIBRATED = torch.full((4,), float("nan"))


def read_triplet(sample: dict) -> dict:
    """Stage map: raw sample -> ``data`` (the three encoded frames, prev/ref/next), ``frame_size``
    (W, H) from their headers (decoding waits for :func:`batches`, which decodes into the batch),
    ``intrinsics`` (fx, fy, cx, cy) of the stored frames, NaN when the source was uncalibrated,
    and ``meta``."""
    meta = json.loads(sample["json"])
    data = [_frame_field(sample, name) for name in FIELDS]
    sizes = {image_size(frame) for frame in data}
    if len(sizes) != 1:
        raise ValueError(f"sample {sample['__key__']}: the three frames differ in size")
    width, height = sizes.pop()
    k = meta.get("intrinsics")
    if k is None:
        intrinsics = _UNCALIBRATED  # shared, never written: collate stacks copies
    else:  # stored for the calibrated size; rescale in case frames were resized after calibration
        stored = torch.tensor([k["fx"], k["fy"], k["cx"], k["cy"]], dtype=torch.float64)
        intrinsics = camera.resize(stored, (k["width"], k["height"]), (width, height)).float()
    return {"key": sample["__key__"], "data": data, "frame_size": (width, height), "intrinsics": intrinsics,
            "meta": meta}


def decode_triplet(sample: dict) -> dict:
    """Raw sample -> :func:`read_triplet`'s fields and ``frames``, the three decoded uint8 RGB
    (H, W, 3) arrays (previews and the like; the loader decodes into its batches instead)."""
    triplet = read_triplet(sample)
    return {**triplet, "frames": [decode_image(frame) for frame in triplet["data"]]}


def view_sample(sample: dict, config: AugmentConfig, training: bool, generator: torch.Generator | None = None) -> dict:
    """Stage map: draw the random (training) or centre (validation) view of the triplet, from
    ``generator`` (default: torch's global RNG, seeded per DataLoader worker). Only the
    parameters: :func:`fill_slot` applies the cover crop as it decodes into the batch."""
    width, height = sample["frame_size"]
    params = draw_params(width, height, config, generator) if training else centre_params(width, height, config.size)
    return {**sample, "params": params}


class DrawViews(wds.PipelineStage):
    """Stage: :func:`view_sample` on every sample, a failure to ``handler`` as in ``wds.map``.
    With a ``seed`` (in-process pipelines: worker threads, 0 workers), each epoch draws from a
    generator seeded by (seed, epoch), so a rerun gives the same views however far its threads
    had read ahead when the last epoch ended; without one, from torch's RNG, which a DataLoader
    seeds per worker process and advances only as batches are requested."""

    def __init__(self, config: AugmentConfig, training: bool, seed: int | None, handler=None):
        self.config, self.training, self.seed, self.handler = config, training, seed, handler
        self.epoch = -1

    def run(self, samples: Iterable[dict]) -> Iterator[dict]:
        self.epoch += 1
        generator = None
        if self.seed is not None:
            generator = torch.Generator().manual_seed(wds.utils.make_seed(self.seed, self.epoch))
        for sample in samples:
            try:
                yield view_sample(sample, self.config, self.training, generator)
            except Exception as err:
                if self.handler is None or not self.handler(SampleError.of(sample, err)):
                    raise


def batch_tensor(shape: tuple[int, ...], dtype: torch.dtype, shared: bool | None = None) -> torch.Tensor:
    """An empty tensor for a batch; ``shared`` (default: in a DataLoader worker) in shared memory,
    as torch's default_collate does, so handing the batch to the main process copies nothing."""
    if not (torch.utils.data.get_worker_info() is not None if shared is None else shared):
        return torch.empty(shape, dtype=dtype)
    numel = int(np.prod(shape))
    storage = torch.UntypedStorage._new_shared(numel * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


def fill_slot(sample: dict, size: tuple[int, int], slot: np.ndarray) -> None:
    """Decodes a viewed sample's frames into ``slot``, its (3, H, W, 3) part of a batch of ``size``
    (W, H): straight into it when the frames are at the training size (as ingest writes them),
    else through the cover crop and resize of its view. Zoom and flip happen on the device."""
    params = sample["params"]
    if tuple(sample["frame_size"]) == tuple(size):  # the cover crop is then the whole frame
        for k, frame in enumerate(sample["data"]):
            decode_image(frame, out=slot[k])
    else:
        apply_geometry([decode_image(frame) for frame in sample["data"]], replace(params, flip=False), size, out=slot)


def batches(samples: Iterable[dict], batch_size: int, size: tuple[int, int], partial: bool = True,
            handler=None, buffers: BatchRing | BufferPool | None = None) -> Iterator[dict]:
    """Stage: viewed samples -> batches of ``batch_size`` (see :func:`collate`), each sample decoded
    into its slot as it arrives (:func:`fill_slot`), so no decoded frame is held or copied. The
    last, smaller batch comes out when ``partial``. A sample that fails to decode goes to
    ``handler`` (skipped when it returns True, its slot reused), as in ``wds.map``. ``buffers``:
    where batches are built (default: a new tensor each). With a :class:`BatchRing`, in a
    DataLoader worker, ``images`` is a :class:`RingSlot` for the training process to take out."""
    ring = buffers if isinstance(buffers, BatchRing) else None
    worker = torch.utils.data.get_worker_info().id if ring is not None else None
    if ring is not None:
        ring.free_all(worker)  # a new epoch: the last one's unread batches are dropped

    def new_buffer() -> tuple[int | None, torch.Tensor]:
        if ring is not None:
            return ring.claim(worker)
        if buffers is not None:
            return None, buffers.claim()
        return None, batch_tensor((batch_size, len(FIELDS), size[1], size[0], 3), torch.uint8)

    def finish(filled: list[dict], slot: int | None, images: torch.Tensor) -> dict:
        batch = collate(filled, images[:len(filled)], size)  # a view: a pooled buffer counts it
        if ring is not None:
            # Small tensors as arrays: pickled by value, where tensors would each get shared memory.
            batch = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            batch["images"] = RingSlot(worker, slot, len(filled))
        return batch

    slot, images, filled = None, None, []
    for sample in samples:
        if images is None:
            slot, images = new_buffer()
        try:
            fill_slot(sample, size, images[len(filled)].numpy())
        except Exception as err:
            if handler is None or not handler(SampleError.of(sample, err)):
                raise
            continue
        filled.append(sample)
        if len(filled) == batch_size:
            yield finish(filled, slot, images)
            images, filled = None, []
    if filled and partial:
        yield finish(filled, slot, images)


def collate(samples: list[dict], images: torch.Tensor, size: tuple[int, int]) -> dict:
    """A batch of viewed samples: ``images`` uint8 (B, 3, H, W, 3) of ``size`` (W, H), frame axis =
    (prev, ref, next), channels last as decoded, filled by :func:`fill_slot`; ``jitter`` (B, 4)
    colour factors; ``zoom`` (B, 4) zoom, placement and flip for the device; ``intrinsics`` (B, 4)
    of ``images`` (NaN where uncalibrated); ``key``/``meta`` lists.
    :func:`geopre.shards.augment.prepare_batch` makes float images of it on the device."""
    params = [s["params"] for s in samples]
    boxes = torch.tensor([[p.box.left, p.box.top, p.box.width, p.box.height] for p in params], dtype=torch.float64)
    source = torch.stack([s["intrinsics"] for s in samples])
    intrinsics = camera.transform(source.double(), boxes.unbind(1), size).to(source.dtype)
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
    """glibc hands freed blocks of a few hundred kB (frames decoded apart to be resized, PNG frames)
    back to the kernel and the next batch faults them in again, zeroed: ~0.1 ms of a ~1.1 ms
    triplet in a worker process when every frame was decoded apart (2-core VM). Fixed thresholds
    keep them in the heap. Process-wide, so only where the loader
    decodes: in worker processes, and in the training process in thread mode. No-op off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MB (glibc's maximum) from the heap
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GB of free heap
    except (OSError, AttributeError):
        pass


def worker_of(worker: tuple[int, int] | None) -> tuple[int, int]:
    """(index, count) of the worker running a pipeline: ``worker`` when given (a loader thread),
    else this DataLoader worker process's, else (0, 1)."""
    if worker is not None:
        return worker
    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def shard_seed(rank: int, worker: tuple[int, int] | None) -> int:
    """webdataset's seed for a worker's resampled shard draws (rank x 1000 + worker), for threads too."""
    return rank * 1000 + worker_of(worker)[0]


def split_by_worker(urls: Iterable, worker: tuple[int, int] | None = None) -> Iterator:
    """Stage: every ``count``-th shard from this worker's ``index`` (see :func:`worker_of`)."""
    index, count = worker_of(worker)
    yield from split_by_rank(urls, index, count)


def split_by_rank(urls: Iterable, rank: int, world_size: int) -> Iterator:
    """Stage: every ``world_size``-th shard from ``rank``. The rank is taken in the process that
    builds the loader and passed in, since worker processes need not share its environment."""
    for index, url in enumerate(urls):
        if index % world_size == rank:
            yield url


def triplet_pipeline(urls: list[str], config: LoaderConfig, skips: Skips, training: bool, rank: int = 0,
                     world_size: int = 1, view_seed: int | None = None,
                     worker: tuple[int, int] | None = None,
                     buffers: BatchRing | BufferPool | None = None) -> wds.DataPipeline:
    """The dataset one worker runs: a DataLoader worker process (``worker`` None: its index from
    torch), one of the loader's threads (``worker`` = (index, count)), or the calling thread.
    ``training``: shuffled, augmented, full batches (resampled or each shard once); otherwise every
    sample once, in order, centre view. ``view_seed`` seeds the views (see :class:`DrawViews`);
    ``buffers``: where its batches are built (see :func:`batches`)."""
    if training and config.resampled:
        shard_stages = [wds.ResampledShards(urls, seed=config.seed, deterministic=True,
                                            worker_seed=partial(shard_seed, rank, worker))]
    else:
        shard_stages = [wds.SimpleShardList(urls)]
        if training:  # the same order on every rank and worker (seed + epoch), then split
            shard_stages.append(wds.detshuffle(len(urls), len(urls), seed=config.seed))
        shard_stages += [partial(split_by_rank, rank=rank, world_size=world_size),
                         partial(split_by_worker, worker=worker)]
    sample_stages = [partial(tar_files, skips=skips, storage_options=config.storage_options),
                     partial(group_by_keys, keys=base_plus_ext, handler=skips.sample)]
    if training:
        sample_stages.append(wds.detshuffle(config.shuffle_buffer, min(100, config.shuffle_buffer), seed=config.seed))
    sample_stages += [wds.map(keeping_origin(read_triplet), handler=skips.sample),
                      DrawViews(config.augment, training, view_seed, handler=skips.sample),
                      partial(batches, batch_size=config.batch_size, size=config.augment.size,
                              partial=not (training and config.resampled), handler=skips.sample, buffers=buffers),
                      skips.delivered]
    return wds.DataPipeline(*shard_stages, *sample_stages)


class ThreadWorkers(torch.utils.data.IterableDataset):
    """DataLoader workers as threads of this process: each of ``datasets`` (a worker's whole
    pipeline) runs in a thread of its own, ``ahead`` items ahead of the consumer (copied to pinned
    memory there when ``pin``), and their items come out in turn, as from a DataLoader's workers
    (a worker that runs out drops out of the turn). Only whole batches cross between threads:
    handing single samples to decode threads cost ~0.1 ms per triplet in context switches and
    left cores idle (bench/shards.py). The decoder releases the GIL, so the threads decode in
    parallel, and nothing crosses in shared memory as from worker processes.

    An error in a pipeline is raised in the consumer. Closing or dropping the iterator stops the
    threads (at their next item), and so does interpreter exit: the threads are daemons, so they
    never hold exit up, but one left running into finalisation can be cut down inside torch's C++
    code, which aborts the process ("terminate called without an active exception"), so an exit
    hook stops every producer first."""

    _END = object()
    _running: "weakref.WeakKeyDictionary[threading.Thread, threading.Event]" = weakref.WeakKeyDictionary()

    def __init__(self, datasets: Sequence[Iterable], ahead: int = 2, pin: bool = False):
        super().__init__()
        self.datasets = list(datasets)
        self.ahead = ahead
        self.pin = pin

    def __iter__(self) -> Iterator:
        stop = threading.Event()
        queues = [queue.Queue(self.ahead) for _ in self.datasets]
        threads = [threading.Thread(target=self._produce, args=(dataset, items, stop), daemon=True,
                                    name=f"geopre-loader-{index}")
                   for index, (dataset, items) in enumerate(zip(self.datasets, queues))]
        for thread in threads:
            self._running[thread] = stop
            thread.start()
        try:
            turn = deque(queues)
            while turn:
                item = turn[0].get()
                if item is self._END:
                    turn.popleft()
                    continue
                if isinstance(item, BaseException):
                    raise item
                turn.rotate(-1)
                yield item
        finally:
            stop.set()
            for thread in threads:
                thread.join()

    def _produce(self, dataset: Iterable, items: queue.Queue, stop: threading.Event) -> None:
        def offer(item) -> bool:  # False once the consumer has stopped
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        source = iter(dataset)
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
            if hasattr(source, "close"):  # ends the pipeline's stages here
                source.close()


@atexit.register
def _stop_loader_threads(timeout: float = 5.0) -> None:
    for thread, stop in list(ThreadWorkers._running.items()):
        stop.set()
        thread.join(timeout)


class ShardLoader:
    """Batches for one process (rank). ``len()`` is the number of batches per epoch when fixed
    (resampled training), the same on every rank; ``skips`` counts skipped shards/samples."""

    def __init__(self, loader: Iterable, shards: ShardSet, skips: Skips, batches_per_epoch: int | None,
                 ring: BatchRing | None = None, pin: bool = False):
        self.loader = loader
        self.shards = shards
        self.skips = skips
        self.batches_per_epoch = batches_per_epoch
        self.ring = ring
        self.pin = pin

    def __iter__(self) -> Iterator[dict]:
        try:
            yield from self._batches()
        except Exception:
            if self.skips.gave_up:  # one line, where a worker process's error comes wrapped in its traceback
                raise self.skips.error()
            raise

    def _batches(self) -> Iterator[dict]:
        if self.ring is None:
            yield from self.loader
            return
        for batch in self.loader:  # a slot is read only here, while its batch is handed out
            batch = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}
            yield {**batch, "images": self.ring.take(batch["images"], pin=self.pin)}

    def __len__(self) -> int:
        if self.batches_per_epoch is None:
            raise TypeError("this loader reads each sample once; its number of batches is not fixed")
        return self.batches_per_epoch


def _batch_ring(workers: int, slots: int, shape: tuple[int, ...]) -> BatchRing:
    try:
        return BatchRing(workers, slots, shape)
    except RuntimeError as err:  # /dev/shm too small, as in a container started without --shm-size
        size = workers * slots * int(np.prod(shape))
        raise UserError(f"cannot allocate {size / 2**20:.0f} MiB of shared memory for {workers} loader worker "
                        f"processes ({err}); give the container more (e.g. docker --shm-size 2g), use fewer "
                        "workers, or worker threads (--worker-kind thread)") from err


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
    skips = Skips(config.max_failures_in_a_row, multiprocessing.get_context(WORKER_START_METHOD))
    seed = config.seed * 1000 + rank  # per-rank augmentation draws
    pin = config.pin_memory and torch.cuda.is_available()
    shape = (config.batch_size, len(FIELDS), *config.augment.size[::-1], 3)
    ring = None
    if config.worker_kind == "thread" and config.workers > 0:
        keep_freed_memory()
        count = config.workers
        pipelines = [triplet_pipeline(shards.urls, config, skips, training, rank, world_size,
                                      view_seed=seed * 1000 + index, worker=(index, count),
                                      buffers=BufferPool(shape, keep=PREFETCH + 2))
                     for index in range(count)]
        loader = wds.DataPipeline(ThreadWorkers(pipelines, ahead=PREFETCH, pin=pin))
    else:
        if workers > 0:  # batches cross from the workers in buffers reused for the whole run
            ring = _batch_ring(workers, PREFETCH + 1, shape)
        # In this process the views get their own generator: training's RNG is neither used nor raced.
        dataset = triplet_pipeline(shards.urls, config, skips, training, rank, world_size,
                                   view_seed=seed if workers == 0 else None, buffers=ring)
        loader = wds.WebLoader(
            dataset, batch_size=None, num_workers=workers, pin_memory=pin and ring is None,
            persistent_workers=workers > 0,  # keeps the shuffles' epoch counters advancing between epochs
            generator=torch.Generator().manual_seed(seed),  # seeds the workers' draws
            prefetch_factor=PREFETCH if workers > 0 else None, worker_init_fn=_worker_init if workers > 0 else None,
            multiprocessing_context=WORKER_START_METHOD if workers > 0 else None,
        )
    batches = None
    if training and config.resampled:
        samples = config.samples_per_epoch or shards.samples
        if not samples:
            raise UserError("samples per epoch unknown for shard URLs without index.json: set samples_per_epoch")
        batches = max(1, samples // (config.batch_size * world_size))
        loader = loader.with_epoch(batches)
    return ShardLoader(loader, shards, skips, batches, ring, pin)


def train_loader(source: str | Path | Sequence[str], config: LoaderConfig = LoaderConfig()) -> ShardLoader:
    """Training batches for this rank (RANK/WORLD_SIZE from torchrun, or torch.distributed)."""
    return _make_loader(source, "train", config, training=True)


def val_loader(source: str | Path | Sequence[str], config: LoaderConfig = LoaderConfig()) -> ShardLoader:
    """Validation batches: every val sample exactly once over all ranks and workers, centre view."""
    return _make_loader(source, "val", config, training=False)


__all__ = ["LoaderConfig", "ShardLoader", "ShardSet", "Skips", "ThreadWorkers", "train_loader", "val_loader",
           "resolve_shards", "triplet_pipeline", "read_triplet", "decode_triplet", "decode_image", "open_url",
           "prepare_batch"]

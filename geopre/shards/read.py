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

This module builds the loader (:class:`LoaderConfig`, :func:`train_loader`, :func:`val_loader`)
from its rooms: :mod:`~geopre.shards.shardset` finds a split's shards, :mod:`~geopre.shards.stages`
holds the pipeline's stages, :mod:`~geopre.shards.workers` runs a pipeline per worker process or
thread, :mod:`~geopre.shards.ring` carries batches out of worker processes, and
:mod:`~geopre.shards.skips` counts what was skipped.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
import webdataset as wds
from webdataset.tariterators import base_plus_ext, group_by_keys

from geopre.errors import UserError
from geopre.shards.augment import AugmentConfig
from geopre.shards.ring import BatchRing, BufferPool
from geopre.shards.shardset import ShardSet, resolve_shards
from geopre.shards.skips import Skips, keeping_origin
from geopre.shards.stages import DrawViews, batches, read_triplet, shard_seed, split_by_rank, split_by_worker, tar_files
from geopre.shards.workers import (PREFETCH, THREADS_UP_TO_CORES, WORKER_START_METHOD, ThreadWorkers,
                                   keep_freed_memory, usable_cores, worker_process_init)
from geopre.shards.write import FIELDS

log = logging.getLogger(__name__)

WORKER_KINDS = ("process", "thread", "auto")


@dataclass(frozen=True)
class LoaderConfig:
    # The paper's pretraining batch at the default 640x192 (III-D), so LoaderConfig() is that loader;
    # geopre pretrain passes its own (PretrainConfig.batch_size).
    batch_size: int = 20
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
            prefetch_factor=PREFETCH if workers > 0 else None,
            worker_init_fn=worker_process_init if workers > 0 else None,
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


__all__ = ["LoaderConfig", "ShardLoader", "train_loader", "val_loader", "triplet_pipeline"]

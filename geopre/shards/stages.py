"""The loader's pipeline stages, each an iterator (or a map over samples) that can be tested alone:
shard URLs split by rank and worker -> the files of each tar -> (samples, grouped by key) -> triplets
read from their headers -> views drawn -> batches, each frame decoded into its slot.
:func:`geopre.shards.read.triplet_pipeline` assembles a worker's pipeline from them."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Iterable, Iterator

import numpy as np
import torch
import webdataset as wds

from geopre.data import camera
from geopre.shards.augment import AugmentConfig, apply_geometry, centre_params, draw_params
from geopre.shards.images import decode_image, image_size
from geopre.shards.ring import BatchRing, BufferPool, RingSlot
from geopre.shards.shardset import open_url
from geopre.shards.skips import SampleError, Skips
from geopre.shards.tar_stream import tar_members
from geopre.shards.write import FIELDS


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

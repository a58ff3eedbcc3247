"""Batch buffers in shared memory that DataLoader worker processes fill and reuse.

By default a worker builds each batch in fresh shared memory and the training process maps it
anew: the kernel faults in and zeroes every page of every batch, 0.7 ms per 640x192 triplet on the
2-core VM, nearly a JPEG decode (bench/shards.py). A ring is made once in the training process,
``slots`` buffers per worker, and reaches the workers with the dataset. A worker writes a batch
into a free slot of its own and sends only the slot's number (:class:`RingSlot`); the training
process copies the images out (into pinned memory for CUDA, which a DataLoader's pin thread would
copy anyway) and frees the slot. Pages are faulted in once, when the ring is made.

Slot states live in shared memory too. A worker owns its slots: it claims them, and at the start
of each epoch frees them all, since a DataLoader drops an old epoch's unread batches before it
asks for new ones, and the training process only reads a slot while it hands that batch out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

FREE, CLAIMED = 0, 1


@dataclass(frozen=True)
class RingSlot:
    """What a worker sends for its batch's images: where they are and how many samples."""

    worker: int
    slot: int
    count: int


class BatchRing:
    """``slots`` buffers of ``shape`` (a batch's uint8 images) for each of ``workers`` processes."""

    def __init__(self, workers: int, slots: int, shape: tuple[int, ...], wait_seconds: float = 600.0):
        self.shape = tuple(shape)
        self.images = torch.zeros((workers, slots, *shape), dtype=torch.uint8).share_memory_()
        self.state = torch.zeros((workers, slots), dtype=torch.int32).share_memory_()
        self.wait_seconds = wait_seconds  # a worker waiting longer for a free slot is stuck: an error

    @property
    def nbytes(self) -> int:
        return self.images.numel()

    # --- in a worker process ---

    def free_all(self, worker: int) -> None:
        """A new epoch in ``worker``: none of its slots is read any more."""
        self.state[worker].fill_(FREE)

    def claim(self, worker: int) -> tuple[int, torch.Tensor]:
        """A free slot of ``worker`` and its buffer, now claimed; waits while all are in use
        (the training process frees them as it takes batches out)."""
        states = self.state[worker]
        deadline = time.monotonic() + self.wait_seconds
        while True:
            free = (states == FREE).nonzero()
            if len(free):
                slot = int(free[0])
                states[slot] = CLAIMED
                return slot, self.images[worker, slot]
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {worker}: no free batch slot for {self.wait_seconds:.0f} s")
            time.sleep(0.0005)

    # --- in the training process ---

    def take(self, where: RingSlot, pin: bool = False) -> torch.Tensor:
        """The images of a sent batch, copied out of its slot (into pinned memory when ``pin``);
        the slot is free again."""
        source = self.images[where.worker, where.slot, :where.count]
        images = torch.empty(source.shape, dtype=source.dtype, pin_memory=pin)
        images.copy_(source)
        self.state[where.worker, where.slot] = FREE
        return images

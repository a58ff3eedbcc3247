"""Batch buffers reused batch after batch: a ring in shared memory for DataLoader worker
processes, a pool for worker threads.

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

Worker threads hand their batches over as they are, so a buffer is reused once nothing but its
:class:`BufferPool` refers to its memory. Fresh buffers came from each thread's glibc arena, whose
heaps glibc trims and unmaps as batches are freed: 20-70 page faults per triplet and ~10 % of the
loader's rate whenever a loader's threads were new (2-core VM).
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


def _storage_references(tensor: torch.Tensor) -> int | None:
    """How many tensors (views included) share ``tensor``'s memory, plus one for the lookup;
    None where torch does not tell."""
    count = getattr(torch._C, "_storage_Use_Count", None)  # private: torch is pinned
    return None if count is None else count(tensor.untyped_storage()._cdata)


class BufferPool:
    """Batch buffers of ``shape`` for one worker thread. :meth:`claim` gives a buffer that nobody
    else refers to (the batches handed out are views of it, so they count), else a new one; the
    pool keeps ``keep`` buffers and forgets the oldest beyond that, left to whoever holds it."""

    def __init__(self, shape: tuple[int, ...], keep: int):
        self.shape = tuple(shape)
        self.keep = keep
        self.buffers: list[torch.Tensor] = []
        self._alone = _storage_references(torch.empty(0))

    def claim(self) -> torch.Tensor:
        if self._alone is not None:
            for buffer in self.buffers:
                if _storage_references(buffer) == self._alone:
                    return buffer
        buffer = torch.empty(self.shape, dtype=torch.uint8)
        self.buffers = (self.buffers + [buffer])[-self.keep:]
        return buffer

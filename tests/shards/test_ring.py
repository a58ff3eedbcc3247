"""The shared batch ring: slots claimed and freed, a stuck worker reported, and worker processes
whose batches cross through it give the in-process batches, epoch after epoch, early exits too."""

import pytest
import torch

from geopre.errors import UserError
from geopre.shards.augment import AugmentConfig
from geopre.shards.read import LoaderConfig, val_loader
from geopre.shards.ring import BatchRing, BufferPool, RingSlot

NATIVE = AugmentConfig(size=(48, 32))


def test_slots_are_claimed_until_full_then_freed_by_take_or_a_new_epoch():
    ring = BatchRing(workers=2, slots=2, shape=(3, 4), wait_seconds=0.05)
    first, a = ring.claim(1)
    second, b = ring.claim(1)
    assert {first, second} == {0, 1} and a.data_ptr() != b.data_ptr()
    a.fill_(7)
    with pytest.raises(RuntimeError, match="worker 1: no free batch slot"):
        ring.claim(1)
    assert ring.claim(0)[0] == 0  # the other worker's slots are its own
    taken = ring.take(RingSlot(1, first, 2))
    assert taken.shape == (2, 4) and (taken == 7).all()
    a.fill_(9)  # the slot is reused: what was handed out is a copy
    assert (taken == 7).all() and ring.claim(1)[0] == first
    ring.free_all(1)
    assert sorted(ring.claim(1)[0] for _ in range(2)) == [0, 1]


def test_worker_processes_hand_over_exact_batches_through_the_ring(shard_dir):
    reference = list(val_loader(shard_dir, LoaderConfig(batch_size=1, workers=0, augment=NATIVE)))
    loader = val_loader(shard_dir, LoaderConfig(batch_size=1, workers=2, worker_kind="process", augment=NATIVE))
    assert loader.ring is not None
    for _ in range(3):  # epochs left early: their slots are freed for the next
        for batch in loader:
            break
    for _ in range(2):
        got = list(loader)  # held all at once: none of them is overwritten by a later batch
        assert sorted(b["key"][0] for b in got) == sorted(b["key"][0] for b in reference)
        by_key = {b["key"][0]: b for b in reference}
        for batch in got:
            assert isinstance(batch["images"], torch.Tensor) and isinstance(batch["zoom"], torch.Tensor)
            assert torch.equal(batch["images"], by_key[batch["key"][0]]["images"])
            assert torch.allclose(batch["intrinsics"], by_key[batch["key"][0]]["intrinsics"], equal_nan=True)


def test_too_little_shared_memory_is_a_user_error(shard_dir, monkeypatch):
    import geopre.shards.read as read

    def no_room(*args, **kwargs):  # what torch raises when /dev/shm is full
        raise RuntimeError("unable to write to file </torch_1_2>: No space left on device (28)")

    monkeypatch.setattr(read, "BatchRing", no_room)
    with pytest.raises(UserError, match="shm-size"):
        val_loader(shard_dir, LoaderConfig(workers=2, worker_kind="process"))


def test_a_pooled_buffer_is_reused_only_once_nothing_refers_to_it():
    pool = BufferPool((2, 3), keep=2)
    a, b = pool.claim()[:1], pool.claim()[:1]  # handed out as the loader does: views
    a_ptr, b_ptr = a.data_ptr(), b.data_ptr()
    assert a_ptr != b_ptr
    kept = a[:, 1:]  # a view of the view, kept after the batch is gone
    del a
    c = pool.claim()[:1]
    assert c.data_ptr() not in (a_ptr, b_ptr)  # both still referred to: a new buffer
    assert [x.data_ptr() for x in pool.buffers] == [b_ptr, c.data_ptr()]  # a's forgotten, left to `kept`
    del b
    assert pool.claim().data_ptr() == b_ptr  # nothing refers to it any more
    assert kept.data_ptr() == a_ptr + 1


def test_worker_threads_reuse_their_buffers_and_held_batches_stay_intact(shard_dir):
    reference = list(val_loader(shard_dir, LoaderConfig(batch_size=1, workers=0, augment=NATIVE)))
    config = LoaderConfig(batch_size=1, workers=2, worker_kind="thread", augment=NATIVE)
    held = list(val_loader(shard_dir, config))  # all held at once: none reused under them
    assert sorted(b["key"][0] for b in held) == sorted(b["key"][0] for b in reference)
    by_key = {b["key"][0]: b for b in reference}
    assert all(torch.equal(b["images"], by_key[b["key"][0]]["images"]) for b in held)
    loader, pointers = val_loader(shard_dir, config), set()
    for _ in range(3):  # 9 batches, each dropped as the next comes
        for batch in loader:
            assert torch.equal(batch["images"], by_key[batch["key"][0]]["images"])
            pointers.add(batch["images"].data_ptr())
    assert len(pointers) < 3 * len(reference)  # buffers came back to their pools

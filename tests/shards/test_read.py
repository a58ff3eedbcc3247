"""The loader on real shards: exact epochs across ranks x workers (processes or threads), equal
lengths, corrupt shards, HTTP and pipe: URLs, clean thread shutdown, and clear errors for missing
shard sets."""

import json
import logging
import multiprocessing
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geopre.errors import UserError
from geopre.shards.augment import AugmentConfig, prepare_batch
from geopre.shards.read import LoaderConfig, train_loader, val_loader
from geopre.shards.shardset import read_index, resolve_shards
from geopre.shards.skips import WARN_EACH, LoaderGaveUp, Skips
from geopre.shards.stages import batches, decode_triplet, read_triplet, view_sample
from geopre.shards.workers import ThreadWorkers
from geopre.synth.serve import serving
from tests.shards.test_write import tar_samples

NATIVE = AugmentConfig(size=(48, 32))  # the fixture's frame size: the centre view is the image itself


def keys_of(loader):
    return [key for batch in loader for key in batch["key"]]


def split_keys(shard_dir, split):
    from tests.shards.test_write import all_samples

    return set(all_samples(shard_dir, split))


def test_val_loader_round_trips_pixels_and_metadata(shard_dir, ingest_dir):
    batches = list(val_loader(shard_dir, LoaderConfig(batch_size=2, workers=0, augment=NATIVE)))
    assert [b["images"].shape[0] for b in batches] == [2, 1]  # 3 val samples, last batch partial
    assert batches[0]["images"].dtype == torch.uint8 and batches[0]["images"].shape == (2, 3, 32, 48, 3)
    batch = prepare_batch(batches[0], "cpu")
    assert batch["images"].shape == (2, 3, 3, 32, 48) and batch["images"].dtype == torch.float32
    meta = batch["meta"][0]
    for slot, index in enumerate(meta["indices"]):
        stored = np.asarray(Image.open(ingest_dir / f"frames/{meta['video_id']}/{index:06d}.jpg").convert("RGB"))
        decoded = (batch["images"][0, slot] * 255).round().byte().permute(1, 2, 0).numpy()
        assert np.abs(decoded.astype(int) - stored).max() <= 1  # libjpeg builds may round differently
    assert torch.isnan(batch["intrinsics"]).all() and torch.equal(batch["images_aug"], batch["images"])
    assert set(keys_of(val_loader(shard_dir, LoaderConfig(batch_size=2, workers=0, augment=NATIVE)))) == \
        split_keys(shard_dir, "val")


@pytest.mark.parametrize("worker_kind", ["process", "thread"])
def test_two_ranks_times_two_workers_see_each_train_sample_once(shard_dir, monkeypatch, worker_kind):
    config = LoaderConfig(batch_size=2, workers=2, worker_kind=worker_kind, resampled=False,
                          augment=AugmentConfig(size=(24, 16)))
    seen = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        loader = train_loader(shard_dir, config)
        seen += keys_of(loader)
        assert loader.skips.samples == loader.skips.shards == 0  # nothing lost quietly in a worker
    assert len(seen) == len(set(seen)) and set(seen) == split_keys(shard_dir, "train")


@pytest.mark.parametrize("worker_kind", ["process", "thread"])
def test_resampled_epochs_have_the_same_length_on_every_rank(shard_dir, monkeypatch, worker_kind):
    config = LoaderConfig(batch_size=2, workers=1, worker_kind=worker_kind, samples_per_epoch=8,
                          augment=AugmentConfig(size=(24, 16)))
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        loader = train_loader(shard_dir, config)
        assert len(loader) == 2
        for _ in range(2):  # two epochs, each exactly len(loader) full batches
            batches = list(loader)
            assert len(batches) == 2 and all(prepare_batch(b)["images_aug"].shape == (2, 3, 3, 16, 24) for b in batches)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert len(train_loader(shard_dir, LoaderConfig(batch_size=2, workers=0))) == 9 // 2  # from index.json


def corrupt_member(tar: Path, suffix: str, seed: int) -> str:
    """Overwrites 32 bytes in the middle of the first member named ``*suffix`` with random bytes (a
    disk or a copy gone bad); returns the member's sample key."""
    with tarfile.open(tar) as archive:
        member = next(m for m in archive if m.name.endswith(suffix))
    data = bytearray(tar.read_bytes())
    start = member.offset_data + member.size // 2
    data[start:start + 32] = np.random.default_rng(seed).bytes(32)
    tar.write_bytes(bytes(data))
    return member.name.split(".")[0]


LOADER_MODES = [(0, "process"), (2, "thread"), (2, "process")]  # in the calling thread, threads, processes


@pytest.mark.parametrize("workers, worker_kind", LOADER_MODES)
def test_corrupt_and_truncated_shards_are_skipped_and_counted(tmp_path, shard_dir, caplog, workers, worker_kind):
    broken = tmp_path / "broken"
    shutil.copytree(shard_dir, broken)
    index = read_index(str(broken))
    names = [e["name"] for e in index["splits"]["train"]["shards"]]
    data = (broken / names[0]).read_bytes()
    (broken / names[0]).write_bytes(data[: len(data) // 3])  # truncated mid-member: its first sample is cut
    (broken / names[1]).write_bytes(b"this is not a tar file" * 100)
    bad_frame = corrupt_member(broken / names[2], ".ref.jpg", seed=1)
    bad_metadata = corrupt_member(broken / names[3], ".json", seed=2)
    config = LoaderConfig(batch_size=1, workers=workers, worker_kind=worker_kind, resampled=False,
                          augment=AugmentConfig(size=(24, 16)))
    with caplog.at_level(logging.WARNING):
        loader = train_loader(broken, config)
        keys = keys_of(loader)
    lost = {*tar_samples(shard_dir / names[0]), *tar_samples(shard_dir / names[1]), bad_frame, bad_metadata}
    assert sorted(keys) == sorted(split_keys(shard_dir, "train") - lost)  # the rest, each once
    assert loader.skips.shards == 2 and loader.skips.samples == 3  # the cut sample, the corrupt frame and metadata
    if workers == 0 or worker_kind == "thread":  # worker processes log in their own process
        assert f"skipped the rest of shard {broken / names[1]}" in caplog.text
        assert f"skipped sample {bad_frame} of shard {broken / names[2]}: ValueError: not a decodable JPEG" in caplog.text
        assert f"skipped sample {bad_metadata} of shard {broken / names[3]}" in caplog.text


@pytest.mark.parametrize("workers, worker_kind", LOADER_MODES)
def test_a_set_of_only_truncated_shards_gives_up_in_one_line(tmp_path, shard_dir, caplog, workers, worker_kind):
    broken = tmp_path / "broken"
    shutil.copytree(shard_dir, broken)
    for tar in broken.glob("train-*.tar"):
        data = tar.read_bytes()
        tar.write_bytes(data[: len(data) // 3])
    config = LoaderConfig(batch_size=2, workers=workers, worker_kind=worker_kind, samples_per_epoch=8,
                          max_failures_in_a_row=50, augment=AugmentConfig(size=(24, 16)))
    loader = train_loader(broken, config)
    with caplog.at_level(logging.WARNING), pytest.raises(LoaderGaveUp) as raised:
        list(loader)
    message = str(raised.value)
    assert "\n" not in message and "50 tries in a row failed" in message and f"{broken}/train-" in message
    assert loader.skips.shards + loader.skips.samples >= 50
    if workers == 0 or worker_kind == "thread":
        assert len(caplog.records) <= WARN_EACH + 2  # one by one, a notice, then a summary at 100


def test_worker_threads_give_the_worker_processes_batches(shard_dir):
    """Threads are the same workers as processes: the same shards each, the same shuffles and the
    same turn order, so the same keys in the same order; views come from per-thread generators,
    so two loaders alike give the same pixels."""
    size = AugmentConfig(size=(24, 16))
    for resampled in (False, True):
        threaded, processes = (LoaderConfig(batch_size=2, workers=2, worker_kind=kind, resampled=resampled,
                                            samples_per_epoch=8, augment=size) for kind in ("thread", "process"))
        loader, again, reference = (train_loader(shard_dir, c) for c in (threaded, threaded, processes))
        for epoch in range(2):
            got, twin, expected = list(loader), list(again), list(reference)
            assert [b["key"] for b in got] == [b["key"] for b in expected]
            assert all(torch.equal(b["images"], t["images"]) and torch.equal(b["zoom"], t["zoom"])
                       for b, t in zip(got, twin))
            if resampled:
                assert len(got) == len(loader) == 4
            else:
                assert sorted(k for b in got for k in b["key"]) == sorted(split_keys(shard_dir, "train"))


def _entropy_data_cut(jpeg: bytes) -> bytes:
    """A JPEG whose header is intact but whose compressed data stops short."""
    start = jpeg.index(b"\xff\xda")  # start of scan
    return jpeg[: start + 40]


def test_batches_decode_into_their_slots_and_skip_a_broken_sample(shard_dir):
    from tests.shards.test_write import all_samples

    raw = [{**fields, "__key__": key} for key, fields in all_samples(shard_dir, "train").items()]
    config = AugmentConfig(size=(48, 32))  # the frames' size: decoded straight into the batch
    viewed = [view_sample(read_triplet(r), config, training=False) for r in raw]
    broken = {**viewed[1], "data": [viewed[1]["data"][0], _entropy_data_cut(viewed[1]["data"][1]), viewed[1]["data"][2]]}
    skips = Skips()
    out = list(batches([viewed[0], broken, *viewed[2:]], batch_size=4, size=(48, 32), handler=skips.sample))
    kept = [v for v in viewed if v is not viewed[1]]
    assert skips.samples == 1 and [len(b["key"]) for b in out] == [4, 4]  # the broken one's slot reused
    assert [k for b in out for k in b["key"]] == [v["key"] for v in kept]
    for k, sample in enumerate(kept):
        frames = decode_triplet(raw[[r["__key__"] for r in raw].index(sample["key"])])["frames"]
        assert np.array_equal(out[k // 4]["images"][k % 4].numpy(), np.stack(frames))
    with pytest.raises(ValueError, match="JPEG"):  # no handler: the error is the caller's
        list(batches([broken], batch_size=1, size=(48, 32)))


def _loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("geopre-")]


def test_leaving_a_threaded_epoch_early_stops_its_threads(shard_dir):
    config = LoaderConfig(batch_size=1, workers=2, worker_kind="thread", samples_per_epoch=100,
                          augment=AugmentConfig(size=(24, 16)))
    for batch in train_loader(shard_dir, config):
        assert _loader_threads()  # reading ahead
        break
    assert not _loader_threads()
    items = iter(ThreadWorkers([range(1000), range(1000)], ahead=2))
    assert next(items) == 0
    items.close()
    assert not _loader_threads()


def test_thread_workers_take_turns_and_a_finished_worker_drops_out():
    assert list(ThreadWorkers([range(3), range(10, 15), []])) == [0, 10, 1, 11, 2, 12, 13, 14]


def test_read_ahead_raises_the_pipeline_error_in_the_consumer():
    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(ThreadWorkers([failing(), range(5)]))
    assert not _loader_threads()


def test_an_abandoned_threaded_loader_does_not_hold_up_exit(shard_dir):
    script = (f"from geopre.shards.read import LoaderConfig, train_loader; "
              f"batches = iter(train_loader({str(shard_dir)!r}, LoaderConfig(batch_size=1, workers=2, "
              f"worker_kind='thread', samples_per_epoch=1000))); next(batches); print('ok')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_http_and_pipe_shards_read_like_local_ones(shard_dir):
    config = LoaderConfig(batch_size=3, workers=0, augment=NATIVE)
    local = list(val_loader(shard_dir, config))[0]
    with serving(shard_dir) as url:
        remote = list(val_loader(url, config))[0]
        with pytest.raises(UserError, match="cannot read"):
            resolve_shards(url + "nothing/", "train")
    piped = list(val_loader(f"pipe:cat {shard_dir}/val-000000.tar", config))
    assert remote["key"] == local["key"] and torch.equal(remote["images"], local["images"])
    assert piped[0]["key"] == local["key"][: len(piped[0]["key"])]
    assert json.dumps(remote["meta"]) == json.dumps(local["meta"])


def test_missing_or_empty_shard_sets_are_user_errors(tmp_path, shard_dir):
    with pytest.raises(UserError, match="index.json"):
        resolve_shards(tmp_path, "train")
    with pytest.raises(UserError, match="missing"):
        resolve_shards(str(tmp_path / "train-{000000..000003}.tar"), "train")
    with pytest.raises(UserError, match="no 'test' split"):
        resolve_shards(shard_dir, "test")
    empty = tmp_path / "empty"
    empty.mkdir()
    index = read_index(str(shard_dir))
    index["splits"]["val"]["shards"] = []
    (empty / "index.json").write_text(json.dumps(index))
    with pytest.raises(UserError, match="no val shards"):
        val_loader(empty)
    with pytest.raises(UserError, match="samples per epoch"):
        train_loader([str(shard_dir / "train-000000.tar")], LoaderConfig(workers=0))


def _workers_at_first_batch(loader) -> tuple[int, int]:
    """(loader threads, worker processes started for it) while ``loader`` hands out its first batch."""
    before = set(multiprocessing.active_children())
    batches = iter(loader)
    next(batches)
    running = len(_loader_threads()), len(set(multiprocessing.active_children()) - before)
    batches.close()
    return running


def test_auto_worker_kind_takes_threads_on_few_cores(shard_dir, monkeypatch):
    import geopre.shards.read as read

    # Resampled: every worker reads on until the epoch is left, so all of them are running.
    config = LoaderConfig(batch_size=1, workers=2, worker_kind="auto", samples_per_epoch=100,
                          augment=AugmentConfig(size=(24, 16)))
    monkeypatch.setattr(read, "usable_cores", lambda: 2)
    assert _workers_at_first_batch(train_loader(shard_dir, config)) == (2, 0)
    assert not _loader_threads()
    monkeypatch.setattr(read, "usable_cores", lambda: 16)
    assert _workers_at_first_batch(train_loader(shard_dir, config)) == (0, 2)
    with pytest.raises(UserError, match="worker kind"):
        val_loader(shard_dir, LoaderConfig(worker_kind="fibre"))

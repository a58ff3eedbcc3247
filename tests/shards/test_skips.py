"""Skip accounting: counts, warnings that name shard and key but stay few, and giving up after a
bounded run of failures with no batch in between."""

import logging

import pytest

from geopre.errors import UserError
from geopre.shards.skips import WARN_EACH, LoaderGaveUp, SampleError, Skips, keeping_origin


def test_warnings_name_shard_and_key_then_turn_into_summaries(caplog):
    skips = Skips(limit=10**6)
    with caplog.at_level(logging.WARNING):
        skips.shard("s/train-000001.tar", OSError("unexpected end of data"))
        for n in range(1999):
            skips.sample(SampleError("s/train-000002.tar", f"key{n}", ValueError("not a JPEG")))
    lines = caplog.messages
    assert lines[0] == "skipped the rest of shard s/train-000001.tar: OSError: unexpected end of data"
    assert lines[1] == "skipped sample key0 of shard s/train-000002.tar: ValueError: not a JPEG"
    assert len(lines) == WARN_EACH + 3  # each of the first, a notice, summaries at 100 and 1000
    assert lines[-1] == ("1 shards and 999 samples skipped so far; latest: sample key998 of shard "
                         "s/train-000002.tar: ValueError: not a JPEG")
    assert (skips.shards, skips.samples) == (1, 1999) and not skips.gave_up


def test_gives_up_after_the_limit_of_failures_in_a_row_and_a_batch_resets_the_run():
    skips = Skips(limit=3)
    for _ in range(2):
        skips.shard("a.tar", OSError("gone"))
    assert list(skips.delivered(["batch"])) == ["batch"]  # good data came: the run starts again
    skips.shard("a.tar", OSError("gone"))
    skips.sample(ValueError("duplicate file name"))
    with pytest.raises(LoaderGaveUp) as raised:
        skips.sample(SampleError("b.tar", "k7", ValueError("not a JPEG")))
    assert skips.gave_up and isinstance(raised.value, UserError)
    assert str(raised.value) == str(skips.error())  # rebuilt from shared memory where a worker raised it
    assert "3 tries in a row failed" in str(raised.value) and "sample k7 of shard b.tar" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_read_stage_names_the_sample_it_failed_on_and_passes_its_shard_on():
    read = keeping_origin(lambda sample: {"key": sample["__key__"]})
    assert read({"__key__": "k1", "__url__": "a.tar"}) == {"key": "k1", "url": "a.tar"}
    with pytest.raises(SampleError) as raised:
        read({"__url__": "a.tar"})
    assert (raised.value.url, raised.value.key, str(raised.value)) == ("a.tar", None, "KeyError: '__key__'")

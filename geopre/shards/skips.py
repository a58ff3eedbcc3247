"""What the loader skipped, and when it stops skipping and gives up.

A shard that cannot be read to the end, or a sample that cannot be grouped, parsed or decoded, is
skipped, counted and warned about, and the loader carries on with the good data. The counts live
in shared memory, so the loader's worker processes and threads all add to one :class:`Skips`.

Warnings name the shard and the sample's key. A broken shard set can fail thousands of times a
second, so only the first :data:`WARN_EACH` skips are warned one by one; after that a summary line
comes at 100, 1000, 10 000... skips. When ``limit`` tries in a row failed with no batch coming out
in between (every shard truncated, every frame undecodable), no good data is coming: the loader
raises :class:`LoaderGaveUp`, one line for the user, instead of spinning forever.
"""

from __future__ import annotations

import logging
import multiprocessing
from functools import partial
from typing import Callable, Iterable, Iterator

from geopre.errors import UserError

log = logging.getLogger(__name__)

WARN_EACH = 10  # skips warned one by one; after that, a summary at each power of ten
_DESCRIPTION_BYTES = 400  # of the latest skip, kept for summaries and the final error
_SHARDS, _SAMPLES, _IN_A_ROW, _GAVE_UP = range(4)


class LoaderGaveUp(UserError):
    """Too many tries in a row failed and no batch came out: the shards hold no readable data."""


class SampleError(Exception):
    """A sample's failure in some stage, naming the sample's shard and key."""

    def __init__(self, url: str | None, key: str | None, error: Exception):
        super().__init__(f"{type(error).__name__}: {error}")
        self.url, self.key, self.error = url, key, error

    @classmethod
    def of(cls, sample: dict, error: Exception) -> "SampleError":
        """``error`` raised for ``sample``, a raw one (``__url__``, ``__key__``) or a read one (``url``, ``key``)."""
        return cls(sample.get("url", sample.get("__url__")), sample.get("key", sample.get("__key__")), error)


def keeping_origin(read: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """``read`` (raw sample -> read sample) that also passes on the sample's shard as ``url``, so
    later stages' failures can name it, and raises its own failures as :class:`SampleError`.
    Picklable, for worker processes."""
    return partial(_read_keeping_origin, read)


def _read_keeping_origin(read: Callable[[dict], dict], sample: dict) -> dict:
    try:
        return {**read(sample), "url": sample.get("__url__")}
    except Exception as err:
        raise SampleError.of(sample, err) from err


class Skips:
    """Counts skipped shards and samples in shared memory (``context``: the multiprocessing context
    of the loader's worker processes) and gives up after ``limit`` failures in a row."""

    def __init__(self, limit: int = 1000, context=None):
        if limit < 1:
            raise UserError("the loader's failure limit must be at least 1")
        context = context or multiprocessing.get_context()
        self.limit = limit
        self._counts = context.Array("q", 4)  # shards, samples, failures in a row, gave up
        self._latest = context.Array("c", _DESCRIPTION_BYTES)

    @property
    def shards(self) -> int:
        return self._counts[_SHARDS]

    @property
    def samples(self) -> int:
        return self._counts[_SAMPLES]

    @property
    def gave_up(self) -> bool:
        return bool(self._counts[_GAVE_UP])

    def shard(self, url: str, error: Exception) -> None:
        """The rest of shard ``url`` is lost to ``error``."""
        self._failed(_SHARDS, f"the rest of shard {url}: {type(error).__name__}: {error}")

    def sample(self, error: Exception) -> bool:
        """A webdataset exception handler: count, warn, carry on (True), or give up (raise)."""
        if isinstance(error, SampleError):
            what = f"sample {error.key} of shard {error.url}: {error}"
        else:  # from webdataset's grouping, which knows no key
            what = f"a sample: {type(error).__name__}: {error}"
        self._failed(_SAMPLES, what)
        return True

    def delivered(self, batches: Iterable) -> Iterator:
        """Stage: batches pass through; each one ends a run of failures."""
        for batch in batches:
            self._counts[_IN_A_ROW] = 0
            yield batch

    def error(self) -> LoaderGaveUp:
        """The one-line error for a loader that gave up."""
        return LoaderGaveUp(
            f"gave up reading shards: {self.limit} tries in a row failed with no batch in between "
            f"({self.shards} shards and {self.samples} samples skipped in all; latest: {self._latest_text()}); "
            "check the shard files (truncated or corrupt?) and rewrite them with `geopre shard`")

    def _failed(self, kind: int, what: str) -> None:
        with self._counts.get_lock():
            self._counts[kind] += 1
            self._counts[_IN_A_ROW] += 1
            total = self._counts[_SHARDS] + self._counts[_SAMPLES]
            self._latest.value = what.encode("utf-8", "replace")[:_DESCRIPTION_BYTES - 1]
            give_up = self._counts[_IN_A_ROW] >= self.limit
            if give_up:
                self._counts[_GAVE_UP] = 1
        if total <= WARN_EACH:
            log.warning("skipped %s", what)
            if total == WARN_EACH:
                log.warning("further skips are counted and summarised at 100, 1000, ... skips")
        elif _is_power_of_ten(total):
            log.warning("%d shards and %d samples skipped so far; latest: %s", self.shards, self.samples, what)
        if give_up:
            raise self.error()

    def _latest_text(self) -> str:
        return self._latest.value.decode("utf-8", "replace")


def _is_power_of_ten(number: int) -> bool:
    while number >= 10 and number % 10 == 0:
        number //= 10
    return number == 1


__all__ = ["LoaderGaveUp", "SampleError", "Skips", "WARN_EACH", "keeping_origin"]

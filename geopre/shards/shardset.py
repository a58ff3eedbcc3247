"""Shard sets: where a split's shards are (a shard-set folder or URL and its ``index.json``, or
explicit shard URLs and brace patterns), and opening any of them as a stream."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import webdataset as wds

from geopre.errors import UserError
from geopre.shards import storage
from geopre.shards.write import INDEX_NAME

_WEBDATASET_SCHEMES = ("", "file", "pipe", "http", "https")  # the rest go through fsspec


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

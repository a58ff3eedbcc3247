"""Write triplets as WebDataset shards: ``DIR/{train,val}-NNNNNN.tar`` plus ``DIR/index.json``.

Stages: sources -> :func:`assign_splits` (by video) -> :func:`plan_shards` (shuffle, cut by
count/size) -> :func:`write_tar` (one shard, byte-deterministic) -> ``index.json`` (last, atomic:
its presence is the proof that the whole set is complete).

``DIR`` is a local folder (tars written in place) or an fsspec URL such as ``s3://bucket/prefix``
(:class:`RemoteShardFolder`: each tar is built in a local temporary folder, uploaded, then deleted;
``index.json`` is uploaded last, in one PUT).

One sample per triplet, named ``<key>.prev.<ext>``, ``<key>.ref.<ext>``, ``<key>.next.<ext>``
(the stored bytes, never re-encoded) and ``<key>.json`` (metadata).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from geopre import __version__
from geopre.errors import UserError
from geopre.io import atomic_path, atomic_target, atomic_write_json, ensure_writable_dir, json_text
from geopre.progress import progress
from geopre.shards import sources, storage
from geopre.shards.sources import SourceSpec, Triplet

log = logging.getLogger(__name__)

FIELDS = ("prev", "ref", "next")
SPLITS = ("train", "val")
INDEX_NAME = "index.json"
INDEX_VERSION = 1
SHARD_NAME = re.compile(rf"(?:{'|'.join(SPLITS)})-\d{{6}}\.tar")  # as plan_shards names them
# Fixed tar member attributes: the same inputs give the same bytes, whoever writes them, whenever.
TAR_MTIME = 0
TAR_MODE = 0o444
TAR_BLOCK = tarfile.BLOCKSIZE


@dataclass(frozen=True)
class WriteConfig:
    out: Path | str  # a folder, or an fsspec URL (s3://bucket/prefix, file:///path, ...)
    maxcount: int = 1000  # samples per shard (webdataset's ShardWriter default scale)
    maxsize: int = 1 << 30  # bytes per shard
    val_fraction: float = 0.05  # the paper holds out ~10% (40k/4k); by video, so a few percent of videos
    seed: int = 0
    force: bool = False
    allow_mixed: bool = False  # accept ingest folders made with different fps / size / min-flow / max-gap
    storage_options: dict = field(default_factory=dict)  # for fsspec URLs; default: fsspec's env/config

    def describe(self) -> dict:
        return {"maxcount": self.maxcount, "maxsize": self.maxsize, "val_fraction": self.val_fraction,
                "seed": self.seed}


@dataclass
class PlannedSample:
    triplet: Triplet
    size: int  # bytes this sample takes in a tar, headers and padding included


@dataclass
class ShardPlan:
    name: str
    samples: list[PlannedSample] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.samples)


def _unit(video: tuple[str, str], seed: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, video): adding videos never moves the others."""
    digest = hashlib.sha256(f"{seed}\0{video[0]}\0{video[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def assign_splits(videos: Iterable[tuple[str, str]], val_fraction: float, seed: int) -> dict[tuple[str, str], str]:
    """Train or val for each ``(source, video_id)``: no video is on both sides.

    A video is val when its hashed number is under ``val_fraction``; with two or more videos and a
    positive fraction, at least one is val and one train, so tiny sets still validate.
    """
    videos = sorted(set(videos))
    units = {v: _unit(v, seed) for v in videos}
    split = {v: "val" if units[v] < val_fraction else "train" for v in videos}
    if len(videos) >= 2 and val_fraction > 0:
        if "val" not in split.values():
            split[min(videos, key=units.get)] = "val"
        if "train" not in split.values():
            split[max(videos, key=units.get)] = "train"
    return split


def _member_size(size: int) -> int:
    return TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sample_members(triplet: Triplet) -> list[tuple[str, bytes]]:
    """The tar members of one sample, in a fixed order."""
    members = []
    for name, path, ext in zip(FIELDS, triplet.files, triplet.extensions):
        members.append((f"{triplet.key}.{name}.{ext}", path.read_bytes()))
    members.append((f"{triplet.key}.json", _json_bytes(triplet.metadata())))
    return members


def plan_shards(samples: list[PlannedSample], split: str, maxcount: int, maxsize: int, seed: int) -> list[ShardPlan]:
    """Shuffle (seeded) so that no shard is one video, then cut into shards of at most
    ``maxcount`` samples and ``maxsize`` bytes (a single larger sample gets a shard of its own)."""
    order = np.random.default_rng([seed, SPLITS.index(split)]).permutation(len(samples))
    shards: list[ShardPlan] = []
    for k in order:
        sample = samples[k]
        if not shards or len(shards[-1].samples) >= maxcount or (
                shards[-1].samples and shards[-1].size + sample.size > maxsize):
            shards.append(ShardPlan(f"{split}-{len(shards):06d}.tar"))
        shards[-1].samples.append(sample)
    return shards


def write_tar(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    """Write a tar atomically with fixed owner, mode and mtime, so reruns are byte-identical."""
    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = TAR_MTIME
            info.mode = TAR_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inputs_digest(triplets: list[Triplet], specs: list[SourceSpec], config: WriteConfig) -> str:
    """Fingerprint of what the shards are made of (keys, file names, sizes, mtimes, settings)."""
    h = hashlib.sha256(_json_bytes({"sources": [s.describe() for s in specs], "config": config.describe()}))
    for t in triplets:
        h.update(t.key.encode())
        for path in t.files:
            stat = path.stat()
            h.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return h.hexdigest()


class LocalShardFolder:
    """A shard set in a local folder: tars are written in place (atomically), index.json last."""

    def __init__(self, out: Path | str):
        self.root = ensure_writable_dir(storage.local_path(out))

    def read_index(self) -> dict | None:
        try:
            return json.loads((self.root / INDEX_NAME).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        yield self.root

    def remove_temporaries(self) -> None:
        """Half-written shards or index of a run that was killed (atomic_path's temporaries of
        those names, nobody else's files): a rerun would otherwise leave them there for good."""
        for path in self.root.iterdir():
            target = atomic_target(path.name)
            if target is not None and (target == INDEX_NAME or SHARD_NAME.fullmatch(target)) and path.is_file():
                log.info("removing %s, left by an interrupted write", path)
                path.unlink(missing_ok=True)

    def publish(self, tar: Path) -> None:
        """Already in place."""

    def write_index(self, index: dict) -> None:
        atomic_write_json(self.root / INDEX_NAME, index)

    def retract_index(self) -> None:
        (self.root / INDEX_NAME).unlink(missing_ok=True)

    def remove_stale(self, listed: set[str]) -> None:
        for split in SPLITS:
            for path in self.root.glob(f"{split}-*.tar"):
                if path.name not in listed:
                    path.unlink()


class RemoteShardFolder:
    """A shard set at an fsspec URL: each tar is built in a local temporary folder and uploaded
    (object stores have no rename, but a single PUT is all or nothing), index.json last."""

    def __init__(self, url: str, storage_options: dict):
        self.url = url.rstrip("/")
        self.fs, self.root = storage.filesystem(self.url, storage_options)
        self.root = self.root.rstrip("/")
        probe = f"{self.root}/.geopre-write-test"
        try:  # fail before the first shard is built, not after
            self.fs.pipe_file(probe, b"")
            self.fs.rm_file(probe)
        except Exception as err:  # no bucket, no credentials, no endpoint: the library's own words
            raise UserError(f"cannot write to {url} ({type(err).__name__}: {err}); check the bucket and the "
                            "credentials / endpoint (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...)") from err

    def read_index(self) -> dict | None:
        try:
            return json.loads(self.fs.cat_file(f"{self.root}/{INDEX_NAME}"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="geopre-shards-") as tmp:
            yield Path(tmp)

    def remove_temporaries(self) -> None:
        """None here: each shard is one PUT, whole or absent."""

    def publish(self, tar: Path) -> None:
        """Upload one built tar and delete the local copy (at most one shard is on local disk)."""
        self.fs.put_file(str(tar), f"{self.root}/{tar.name}")
        tar.unlink()

    def write_index(self, index: dict) -> None:
        self.fs.pipe_file(f"{self.root}/{INDEX_NAME}", json_text(index).encode())

    def retract_index(self) -> None:
        if self.fs.exists(f"{self.root}/{INDEX_NAME}"):
            self.fs.rm_file(f"{self.root}/{INDEX_NAME}")

    def remove_stale(self, listed: set[str]) -> None:
        stale = [path for split in SPLITS for path in self.fs.glob(f"{self.root}/{split}-*.tar")
                 if path.rsplit("/", 1)[-1] not in listed]
        if stale:
            self.fs.rm(stale)


def shard_folder(out: Path | str, storage_options: dict | None = None) -> LocalShardFolder | RemoteShardFolder:
    """Where :func:`write_shards` writes: a local folder (or ``file://`` URL), else an fsspec URL."""
    if storage.is_local(out):
        return LocalShardFolder(out)
    return RemoteShardFolder(str(out), storage_options or {})


def write_shards(specs: list[SourceSpec], config: WriteConfig) -> dict:
    """Write the shard set for a mixture of sources; returns the index (also ``OUT/index.json``).

    A rerun with the same inputs and settings finds the same fingerprint in ``index.json`` and
    returns it without writing (``force`` rewrites).
    """
    if not specs:
        raise UserError("no source given: name an ingest folder, or use --from kitti|cityscapes ROOT")
    if config.maxcount < 1 or config.maxsize < 1:
        raise UserError("--maxcount and --maxsize must be positive")
    if not 0.0 <= config.val_fraction < 1.0:
        raise UserError(f"--val-fraction must be in [0, 1), got {config.val_fraction}")
    if not config.allow_mixed:
        mixed = sources.mixed_ingest_params([spec.root for spec in specs if spec.kind == "ingest"])
        if mixed:
            raise UserError(f"the ingest sources mix settings: {'; '.join(mixed)}. Shard them separately, "
                            "re-ingest with one setting, or pass --allow-mixed")
    out = shard_folder(config.out, config.storage_options)
    out.remove_temporaries()  # also when the set turns out to be up to date
    triplets = [t for spec in specs for t in sources.triplets(spec)]
    if not triplets:
        raise UserError("the sources hold no triplets (nothing moves? check the ingest manifests / split files)")
    keys: dict[str, Triplet] = {}
    for t in triplets:
        if t.key in keys:
            raise UserError(f"two triplets share the key {t.key}: is a source listed twice?")
        keys[t.key] = t
    digest = inputs_digest(triplets, specs, config)
    previous = out.read_index()
    if previous and previous.get("inputs_digest") == digest and not config.force:
        log.info("%s is up to date", config.out)
        return previous

    split_of = assign_splits(((t.source, t.video_id) for t in triplets), config.val_fraction, config.seed)
    planned: dict[str, list[PlannedSample]] = {split: [] for split in SPLITS}
    for t in sorted(triplets, key=lambda t: t.key):
        size = sum(_member_size(p.stat().st_size) for p in t.files) + _member_size(len(_json_bytes(t.metadata())))
        planned[split_of[(t.source, t.video_id)]].append(PlannedSample(t, size))

    index: dict = {"version": INDEX_VERSION, "format": "webdataset", "writer": f"geopre {__version__}",
                   "fields": {"prev": "previous frame", "ref": "reference frame", "next": "next frame",
                              "json": "metadata"},
                   "config": config.describe(), "sources": [], "splits": {}, "mixture": {},
                   "inputs_digest": digest}
    for spec in specs:
        described = spec.describe()
        if spec.kind == "ingest":
            described["ingest"] = sources.ingest_params(spec.root)
        index["sources"].append(described)
    if previous:
        # The old index would describe tars this run overwrites: without it, a run cut short leaves a
        # shard set that no reader takes (and a rerun writes it whole), never a mismatched one.
        out.retract_index()
    total = sum(len(v) for v in planned.values())
    with progress(total=total, desc="shards", unit="sample") as bar, out.staging() as staging:
        for split in SPLITS:
            shards = plan_shards(planned[split], split, config.maxcount, config.maxsize, config.seed)
            entries = []
            for shard in shards:
                path = staging / shard.name
                write_tar(path, (m for s in shard.samples for m in sample_members(s.triplet)))
                entries.append({"name": shard.name, "samples": len(shard.samples), "bytes": path.stat().st_size,
                                "sha256": _file_digest(path)})
                out.publish(path)
                bar.update(len(shard.samples))
            videos = sorted({(s.triplet.source, s.triplet.video_id) for s in planned[split]})
            index["splits"][split] = {"shards": entries, "samples": len(planned[split]),
                                      "bytes": sum(e["bytes"] for e in entries),
                                      "videos": [f"{source}/{video}" for source, video in videos]}
            for s in planned[split]:
                mix = index["mixture"].setdefault(s.triplet.source, {"train": 0, "val": 0, "videos": 0})
                mix[split] += 1
            for source, _ in videos:
                index["mixture"][source]["videos"] += 1
    out.write_index(index)
    # Shards left by an earlier, larger run in the same place are not in the index: removed.
    out.remove_stale({e["name"] for split in index["splits"].values() for e in split["shards"]})
    return index

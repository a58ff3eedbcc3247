"""Look at a shard set: counts from its ``index.json`` and a contact sheet of random triplets."""

from __future__ import annotations

import random
from pathlib import Path

from geopre.errors import UserError
from geopre.io import atomic_path


def summary_lines(index: dict) -> list[str]:
    """Human-readable counts of a shard set, one line each."""
    lines = []
    for split, entry in index["splits"].items():
        lines.append(f"{split}: {entry['samples']} samples in {len(entry['shards'])} shards, "
                     f"{entry['bytes'] / 1e6:.1f} MB, {len(entry['videos'])} videos")
    for source, mix in sorted(index["mixture"].items()):
        lines.append(f"  {source}: {mix['train']} train / {mix['val']} val samples from {mix['videos']} videos")
    return lines


def write_preview(source: str | Path, out: Path, count: int = 8, split: str = "train", seed: int = 0,
                  tile_height: int = 96) -> int:
    """A PNG with one row per random triplet (prev | ref | next), its key underneath. Reads
    shards in a seeded random order until ``count`` samples are picked; returns how many."""
    from PIL import Image, ImageDraw
    from webdataset.tariterators import base_plus_ext, group_by_keys

    from geopre.shards.shardset import resolve_shards
    from geopre.shards.skips import Skips
    from geopre.shards.stages import decode_triplet, tar_files

    if count < 1:
        raise UserError(f"--count must be at least 1, got {count}")
    rng = random.Random(seed)
    urls = resolve_shards(source, split).urls
    rng.shuffle(urls)
    skips = Skips()
    samples = group_by_keys(tar_files(({"url": u} for u in urls), skips), keys=base_plus_ext, handler=skips.sample)
    picked: list[dict] = []
    for k, sample in enumerate(samples):  # reservoir sampling over the shards read so far
        if len(picked) < count:
            picked.append(sample)
        elif rng.random() < count / (k + 1):
            picked[rng.randrange(count)] = sample
        if k >= 4 * count and len(picked) == count:
            break
    if not picked:
        raise UserError(f"no readable samples in the {split} shards of {source}")
    rows = []
    for sample in picked:
        triplet = decode_triplet(sample)
        frames = triplet["frames"]
        width = max(1, round(tile_height * frames[0].shape[1] / frames[0].shape[0]))
        tiles = [Image.fromarray(f).resize((width, tile_height)) for f in frames]
        row = Image.new("RGB", (3 * width, tile_height + 14), "white")
        for i, tile in enumerate(tiles):
            row.paste(tile, (i * width, 0))
        ImageDraw.Draw(row).text((2, tile_height + 1), triplet["key"], fill="black")
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return len(rows)

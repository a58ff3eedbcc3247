"""CLI: `geopre shard SOURCE... --out DIR` (= `geopre shard write`), `geopre shard info|preview`."""

from __future__ import annotations

from pathlib import Path

import click

from geopre.cliutil import (BYTE_SIZE, NON_NEGATIVE_FLOAT, OUTPUT_FILE, POSITIVE_INT, SEED, choice,
                            deprecated_alias)


class DefaultToWrite(click.Group):
    """A group whose first argument, when it is not a sub-command, goes to `write`: so
    `geopre shard SOURCE --out DIR` works and `info`/`preview` stay sub-commands."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["write", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultToWrite)
def shard() -> None:
    """Pack frame triplets into WebDataset shards for pretraining (default: `write`).

    `geopre shard SOURCE... --out DIR` is `geopre shard write`; then `geopre shard info DIR` and
    `geopre shard preview DIR --output grid.png`.
    """


@shard.command("write")
@click.argument("ingest_dirs", metavar="[SOURCE]...", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--from", "calibrated", nargs=2, multiple=True, metavar="KIND ROOT",
              type=(choice(["kitti", "cityscapes"]), click.Path(file_okay=False, path_type=Path)),
              help="Add a calibrated dataset: `--from kitti ROOT` or `--from cityscapes ROOT`; repeatable.")
@click.option("--kitti-split", default="eigen_zhou", show_default=True,
              help="KITTI: the monodepth2 split folder under ROOT/splits whose train_files.txt lists triplets.")
@deprecated_alias("--split", "kitti_split", "--kitti-split")
@click.option("--city-min-flow", default=1.0, show_default=True, type=NON_NEGATIVE_FLOAT,
              help="Cityscapes: drop triplets whose mean flow (px at 416 wide) is under this (Zhou's rule).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),  # text: URLs keep their //
              help="Folder for the shards and index.json, or an fsspec URL (s3://bucket/prefix, gs://..., file://...).")
@click.option("--maxcount", default=1000, show_default=True, type=POSITIVE_INT, help="Most samples per shard.")
@click.option("--maxsize", default="1GB", show_default=True, type=BYTE_SIZE,
              help="Most bytes per shard (1GB, 500MB...).")
@click.option("--val-fraction", default=0.05, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Fraction of videos held out for validation (split by video, never by frame).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the split and the shuffle.")
@click.option("--force", is_flag=True, help="Rewrite even when index.json says the shards are up to date.")
@click.option("--allow-mixed", is_flag=True,
              help="Accept ingest folders whose manifests differ in fps, size, min_flow or max_gap (refused by default).")
def shard_write(ingest_dirs, calibrated, kitti_split, city_min_flow, out, maxcount, maxsize, val_fraction, seed, force,
                allow_mixed):
    """Write triplets from SOURCE ingest folders and/or --from datasets as shards in --out.

    One sample per triplet (the three frames' stored bytes + a json of metadata), train/val split
    by video, samples shuffled across shards, byte-identical on rerun; index.json is written last.
    For object storage each tar is built in a temporary folder and uploaded; credentials and
    endpoint come from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
    """
    from geopre.shards.info import summary_lines
    from geopre.shards.sources import SourceSpec
    from geopre.shards.write import WriteConfig, write_shards

    specs = [SourceSpec("ingest", d) for d in ingest_dirs]
    specs += [SourceSpec(kind, root, split=kitti_split, min_flow=city_min_flow) for kind, root in calibrated]
    index = write_shards(specs, WriteConfig(out, maxcount, maxsize, val_fraction, seed, force, allow_mixed))
    for line in summary_lines(index):
        click.echo(line)
    click.echo(f"shards in {out}; index: {out.rstrip('/')}/index.json")


@shard.command("info")
@click.argument("source")
def shard_info(source):
    """Print the sample, shard and video counts of the shard set at SOURCE (folder or URL)."""
    from geopre.shards.info import summary_lines
    from geopre.shards.shardset import read_index

    for line in summary_lines(read_index(source)):
        click.echo(line)


@shard.command("preview")
@click.argument("source")
@click.option("--output", "-o", type=OUTPUT_FILE, help="PNG file to write.")
@deprecated_alias("--out", "output", "--output", type=OUTPUT_FILE)
@click.option("--count", default=8, show_default=True, type=POSITIVE_INT, help="Number of triplets (rows).")
@click.option("--split", default="train", show_default=True, type=choice(["train", "val"]),
              help="Which split to draw from.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the random pick.")
def shard_preview(source, output, count, split, seed):
    """Write a contact sheet of random triplets (prev | ref | next) from the shards at SOURCE."""
    from geopre.errors import UserError
    from geopre.shards.info import write_preview

    if output is None:  # not required=True: the deprecated --out may give it instead
        raise UserError("missing --output FILE: the PNG to write")
    rows = write_preview(source, output, count, split, seed)
    click.echo(f"{rows} triplets in {output}")

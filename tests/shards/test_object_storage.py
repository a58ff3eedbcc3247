"""Shard sets in object storage (an S3 server on 127.0.0.1, moto's) and at file:// URLs: written,
listed and streamed like local folders."""

import gc
import sys
from dataclasses import replace

import fsspec
import pytest
import torch
from click.testing import CliRunner

from geopre.cli import cli
from geopre.errors import UserError
from geopre.shards.augment import AugmentConfig
from geopre.shards.read import LoaderConfig, train_loader, val_loader
from geopre.shards.shardset import resolve_shards
from geopre.shards.sources import SourceSpec
from geopre.shards.write import WriteConfig, write_shards

BUCKET = "geopre-test"
SMALL = AugmentConfig(size=(24, 16))


@pytest.fixture(scope="module")
def endpoint():
    """A moto S3 server on a free loopback port, with one empty bucket."""
    pytest.importorskip("s3fs")  # both come with the test extra: pip install -e '.[test]'
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    fs = fsspec.filesystem("s3", **options(url), skip_instance_cache=True)
    fs.mkdir(BUCKET)
    yield url
    server.stop()


def options(endpoint_url):
    return {"endpoint_url": endpoint_url, "key": "test", "secret": "test"}


def same_config(out, endpoint_url=None):
    """The settings of the ``shard_dir`` fixture, so the sets must be byte-identical."""
    return WriteConfig(out, maxcount=2, val_fraction=0.25, seed=1,
                       storage_options=options(endpoint_url) if endpoint_url else {})


def batches(loader):
    return [(batch["key"], batch["images"], batch["jitter"]) for batch in loader]


def assert_same_batches(a, b):
    assert [keys for keys, _, _ in a] == [keys for keys, _, _ in b]
    assert all(torch.equal(x, y) and torch.equal(jx, jy) for (_, x, jx), (_, y, jy) in zip(a, b))


def test_a_set_written_to_s3_is_the_local_set_and_streams_the_same(endpoint, ingest_dir, shard_dir):
    url = f"s3://{BUCKET}/sets/a"
    index = write_shards([SourceSpec("ingest", ingest_dir)], same_config(url, endpoint))
    storage = options(endpoint)
    fs = fsspec.filesystem("s3", **storage)
    assert fs.cat_file(f"{BUCKET}/sets/a/index.json") == (shard_dir / "index.json").read_bytes()  # sha256s too
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{BUCKET}/sets/a")) == sorted(
        ["index.json"] + [e["name"] for split in index["splits"].values() for e in split["shards"]])

    val = LoaderConfig(batch_size=2, workers=0, augment=SMALL)
    assert_same_batches(batches(val_loader(url, replace_storage(val, storage))), batches(val_loader(shard_dir, val)))
    # Each sample once, two workers, random views: workers get the options explicitly and the same draws.
    train = LoaderConfig(batch_size=2, workers=2, resampled=False, augment=SMALL, seed=3)
    remote = train_loader(url, replace_storage(train, storage))
    assert_same_batches(batches(remote), batches(train_loader(shard_dir, train)))
    assert remote.skips.shards == remote.skips.samples == 0
    assert len(train_loader(url, replace_storage(LoaderConfig(batch_size=2, workers=0), storage))) == 9 // 2
    # Stop the workers here: collected later on fsspec's I/O thread, their join stalls it ~5 s each.
    del remote
    gc.collect()


def replace_storage(config, storage):
    return replace(config, storage_options=storage)


def test_s3_rerun_skips_and_a_smaller_set_removes_stale_shards(endpoint, ingest_dir):
    url = f"s3://{BUCKET}/sets/b"
    fs = fsspec.filesystem("s3", **options(endpoint))
    spec = [SourceSpec("ingest", ingest_dir)]
    write_shards(spec, same_config(url, endpoint))
    stamp = fs.info(f"{BUCKET}/sets/b/index.json")["ETag"], fs.info(f"{BUCKET}/sets/b/train-000000.tar")["LastModified"]
    write_shards(spec, same_config(url, endpoint))  # up to date: nothing uploaded
    assert (fs.info(f"{BUCKET}/sets/b/index.json")["ETag"],
            fs.info(f"{BUCKET}/sets/b/train-000000.tar")["LastModified"]) == stamp
    write_shards(spec, WriteConfig(url, val_fraction=0.25, storage_options=options(endpoint)))
    fs.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{BUCKET}/sets/b")) == [
        "index.json", "train-000000.tar", "val-000000.tar"]


def test_cli_writes_and_lists_s3_with_the_endpoint_from_the_environment(endpoint, ingest_dir, monkeypatch):
    for name, value in (("AWS_ENDPOINT_URL", endpoint), ("AWS_ACCESS_KEY_ID", "test"),
                        ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    url = f"s3://{BUCKET}/sets/cli"
    written = runner.invoke(cli, ["shard", str(ingest_dir), "--out", url, "--maxcount", "4", "--val-fraction", "0.25"])
    assert written.exit_code == 0, written.output
    assert f"index: {url}/index.json" in written.output
    info = runner.invoke(cli, ["shard", "info", url])
    assert info.exit_code == 0 and "train: 9 samples in 3 shards" in info.output, info.output
    missing = runner.invoke(cli, ["shard", str(ingest_dir), "--out", "s3://no-such-bucket/x"])
    assert isinstance(missing.exception, UserError) and "cannot write to s3://no-such-bucket/x" in str(missing.exception)


def test_file_urls_write_and_read_like_paths(tmp_path, ingest_dir, shard_dir):
    write_shards([SourceSpec("ingest", ingest_dir)], same_config(f"file://{tmp_path}/set"))
    assert (tmp_path / "set" / "index.json").read_bytes() == (shard_dir / "index.json").read_bytes()
    config = LoaderConfig(batch_size=2, workers=0, augment=SMALL)
    assert_same_batches(batches(val_loader(f"file://{tmp_path}/set", config)), batches(val_loader(shard_dir, config)))
    with pytest.raises(UserError, match="missing"):
        resolve_shards(f"file://{tmp_path}/nowhere/train-000000.tar")


def test_a_missing_fsspec_package_is_one_line_naming_it(monkeypatch, ingest_dir):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if s3fs were not installed
    monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, "s3", raising=False)
    with pytest.raises(UserError, match=r"s3://b/set/index.json: s3:// needs the s3fs package: pip install s3fs"):
        resolve_shards("s3://b/set")
    with pytest.raises(UserError, match="pip install s3fs"):
        resolve_shards(["s3://b/set/train-{000000..000001}.tar"])
    with pytest.raises(UserError, match="pip install s3fs"):
        write_shards([SourceSpec("ingest", ingest_dir)], WriteConfig("s3://b/set"))

"""Writing shards: round trip, split by video, shuffling, size limits, byte-identical reruns."""

import json
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from geopre.errors import UserError
from geopre.shards.shardset import read_index
from geopre.shards.sources import SourceSpec
from geopre.shards.write import WriteConfig, assign_splits, write_shards
from tests.shards.conftest import make_ingest_folder


def tar_samples(path):
    """{key: {field: bytes}} of one tar, in file order."""
    samples = {}
    with tarfile.open(path) as tar:
        for member in tar:
            key, _, field = member.name.partition(".")
            samples.setdefault(key, {})[field] = tar.extractfile(member).read()
    return samples


def all_samples(shard_dir, split):
    index = read_index(shard_dir)
    found = {}
    for entry in index["splits"][split]["shards"]:
        samples = tar_samples(shard_dir / entry["name"])
        assert len(samples) == entry["samples"]
        found.update(samples)
    return found


def test_shards_hold_the_stored_bytes_and_metadata(shard_dir, ingest_dir):
    samples = {**all_samples(shard_dir, "train"), **all_samples(shard_dir, "val")}
    assert len(samples) == 12
    sample = samples["ingest_bravo_000002"]
    assert sorted(sample) == ["json", "next.jpg", "prev.jpg", "ref.jpg"]
    for field, index in (("prev.jpg", 1), ("ref.jpg", 2), ("next.jpg", 3)):
        assert sample[field] == (ingest_dir / f"frames/bravo/{index:06d}.jpg").read_bytes()
    meta = json.loads(sample["json"])
    assert meta["video_id"] == "bravo" and meta["indices"] == [1, 2, 3] and meta["intrinsics"] is None
    assert meta["times"] == pytest.approx([0.1, 0.2, 0.3]) and meta["url"] == "http://127.0.0.1:1/bravo"


def test_split_is_by_video_and_samples_are_shuffled_across_shards(shard_dir):
    index = read_index(shard_dir)
    train, val = (set(index["splits"][s]["videos"]) for s in ("train", "val"))
    assert train and val and not train & val
    for split in ("train", "val"):
        videos = {json.loads(s["json"])["video_id"] for s in all_samples(shard_dir, split).values()}
        assert {f"ingest/{v}" for v in videos} == set(index["splits"][split]["videos"])
    mixed = [len({json.loads(s["json"])["video_id"] for s in tar_samples(shard_dir / e["name"]).values()}) > 1
             for e in index["splits"]["train"]["shards"]]
    assert any(mixed)
    assert all(e["samples"] <= 2 for e in index["splits"]["train"]["shards"])
    assert index["mixture"] == {"ingest": {"train": 9, "val": 3, "videos": 4}}
    assert index["sources"][0]["ingest"]["params"][0]["fps"] == 10.0


def test_assign_splits_is_deterministic_and_keeps_both_sides():
    videos = [("ingest", f"v{k}") for k in range(3)]
    first = assign_splits(videos, 0.01, seed=0)
    assert first == assign_splits(reversed(videos), 0.01, seed=0)
    assert sorted(first.values()) == ["train", "train", "val"]
    many = [("ingest", f"v{k}") for k in range(400)]
    split = assign_splits(many, 0.25, seed=3)
    assert 60 < list(split.values()).count("val") < 140
    grown = assign_splits(many + [("ingest", "new")], 0.25, seed=3)
    assert all(grown[v] == split[v] for v in many)  # adding a video never moves the others


def test_rerun_is_byte_identical_and_skips_when_up_to_date(tmp_path, ingest_dir):
    spec = [SourceSpec("ingest", ingest_dir)]
    write_shards(spec, WriteConfig(tmp_path / "a", maxcount=3, seed=5))
    write_shards(spec, WriteConfig(tmp_path / "b", maxcount=3, seed=5))
    files_a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files_a == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    shard = tmp_path / "a" / "train-000000.tar"
    stamp = shard.stat().st_mtime_ns
    write_shards(spec, WriteConfig(tmp_path / "a", maxcount=3, seed=5))
    assert shard.stat().st_mtime_ns == stamp
    before = shard.read_bytes()
    write_shards(spec, WriteConfig(tmp_path / "a", maxcount=3, seed=5, force=True))
    assert shard.read_bytes() == before
    with tarfile.open(shard) as tar:
        assert {(m.mtime, m.uid, m.gid, m.uname) for m in tar} == {(0, 0, 0, "")}


def test_maxsize_and_stale_shards(tmp_path, ingest_dir):
    spec = [SourceSpec("ingest", ingest_dir)]
    out = tmp_path / "s"
    write_shards(spec, WriteConfig(out, maxcount=1000, maxsize=1, val_fraction=0.25))
    index = read_index(out)
    assert all(e["samples"] == 1 for e in index["splits"]["train"]["shards"])  # each sample alone
    write_shards(spec, WriteConfig(out, maxcount=1000, val_fraction=0.25))
    assert sorted(p.name for p in out.glob("*.tar")) == ["train-000000.tar", "val-000000.tar"]


def test_one_set_mixes_ingest_kitti_and_cityscapes(tmp_path, ingest_dir, synth_kitti_root, synth_city_root):
    specs = [SourceSpec("ingest", ingest_dir), SourceSpec("kitti", synth_kitti_root),
             SourceSpec("cityscapes", synth_city_root)]
    index = write_shards(specs, WriteConfig(tmp_path / "mix", val_fraction=0.3))
    assert set(index["mixture"]) == {"ingest", "kitti", "cityscapes"}
    samples = {**all_samples(tmp_path / "mix", "train"), **all_samples(tmp_path / "mix", "val")}
    for key, sample in samples.items():
        meta = json.loads(sample["json"])
        assert (meta["intrinsics"] is None) == (meta["source"] == "ingest"), key
        assert "." not in key
    assert any(k.startswith("kitti_") and "png" in "".join(s) for k, s in samples.items())


@pytest.mark.parametrize("make_specs,config,message", [
    (lambda d, t: [], {}, "no source"),
    (lambda d, t: [SourceSpec("ingest", t)], {}, "no manifests"),
    (lambda d, t: [SourceSpec("ingest", t / "absent")], {}, "no such folder"),
    (lambda d, t: [SourceSpec("ingest", d)], {"val_fraction": 1.5}, "val-fraction"),
    (lambda d, t: [SourceSpec("ingest", d)], {"maxcount": 0}, "maxcount"),
    (lambda d, t: [SourceSpec("ingest", d), SourceSpec("ingest", d)], {}, "share the key"),
    (lambda d, t: [SourceSpec("kitti", t)], {}, "split files"),
    (lambda d, t: [SourceSpec("cityscapes", t)], {}, "leftImg8bit_sequence"),
])
def test_bad_input_is_a_one_line_user_error(tmp_path, ingest_dir, make_specs, config, message):
    with pytest.raises(UserError, match=message) as err:
        write_shards(make_specs(ingest_dir, tmp_path), WriteConfig(tmp_path / "out", **config))
    assert "\n" not in str(err.value)



def test_a_rewrite_cut_short_leaves_no_index_over_mixed_shards(tmp_path, ingest_dir, monkeypatch):
    import geopre.shards.write as write

    spec = [SourceSpec("ingest", ingest_dir)]
    out = tmp_path / "s"
    write_shards(spec, WriteConfig(out, maxcount=3, seed=5))
    real, written = write.write_tar, []

    def crash_after_one(path, members):
        if written:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the rewrite
        written.append(path)
        real(path, members)

    monkeypatch.setattr(write, "write_tar", crash_after_one)
    with pytest.raises(KeyboardInterrupt):
        write_shards(spec, WriteConfig(out, maxcount=3, seed=6))  # other inputs: a rewrite
    assert len(written) == 1 and not (out / "index.json").exists()
    with pytest.raises(UserError, match="index.json"):
        read_index(str(out))  # what a loader says: not a stale index over half-new tars
    monkeypatch.setattr(write, "write_tar", real)
    write_shards(spec, WriteConfig(out, maxcount=3, seed=6))
    write_shards(spec, WriteConfig(tmp_path / "clean", maxcount=3, seed=6))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "clean").iterdir())
    for path in (tmp_path / "clean").iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name


def make_ingest_folder_with(root, fps: dict):
    """The hand-made ingest folder with some videos' manifests at another --fps (an old mixed rerun)."""
    make_ingest_folder(root)
    for video, rate in fps.items():
        path = root / "manifests" / f"{video}.json"
        manifest = json.loads(path.read_text())
        manifest["params"]["fps"] = rate
        path.write_text(json.dumps(manifest))
    return root


def test_ingest_folders_with_other_settings_are_refused_unless_allowed(tmp_path, ingest_dir):
    (tmp_path / "small").mkdir()
    small = make_ingest_folder(tmp_path / "small", videos=("echo",), size=(24, 16))
    with pytest.raises(UserError) as err:
        write_shards([SourceSpec("ingest", ingest_dir), SourceSpec("ingest", small)], WriteConfig(tmp_path / "a"))
    assert str(err.value) == (f"the ingest sources mix settings: size 48x32 in {ingest_dir}, 24x16 in {small}. "
                              "Shard them separately, re-ingest with one setting, or pass --allow-mixed")
    index = write_shards([SourceSpec("ingest", ingest_dir), SourceSpec("ingest", small)],
                         WriteConfig(tmp_path / "a", allow_mixed=True))
    assert index["splits"]["train"]["samples"] + index["splits"]["val"]["samples"] == 15


def test_one_folder_whose_manifests_disagree_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    root = make_ingest_folder_with(tmp_path / "in", fps={"alpha": 5.0})
    with pytest.raises(UserError, match=rf"mix settings: fps 5.0 in {root}, 10.0 in {root}\.") as err:
        write_shards([SourceSpec("ingest", root)], WriteConfig(tmp_path / "out"))
    assert "\n" not in str(err.value)


def test_a_shard_write_killed_mid_tar_leaves_a_temporary_that_the_next_run_removes(tmp_path, ingest_dir):
    out = tmp_path / "s"
    # A real kill: the writer's process gets SIGKILL while its first tar is half written.
    script = (f"import os, signal; from pathlib import Path; import geopre.shards.write as w\n"
              f"from geopre.shards.sources import SourceSpec\n"
              f"members = w.sample_members\n"
              f"def dying(triplet):\n"
              f"    yield from members(triplet)\n"
              f"    os.kill(os.getpid(), signal.SIGKILL)\n"
              f"w.sample_members = dying\n"
              f"w.write_shards([SourceSpec('ingest', Path({str(ingest_dir)!r}))], w.WriteConfig(Path({str(out)!r})))")
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120,
                            cwd=Path(__file__).parents[2])
    assert killed.returncode == -signal.SIGKILL
    [stale] = list(out.iterdir())
    assert stale.name.startswith(".train-000000.") and stale.name.endswith(".tmp.tar") and stale.stat().st_size > 0
    others = [out / "notes.tmp.tar", out / ".backup.abcdefgh.tmp.tar", out / ".train-000000.tmp.tar"]
    for path in others:  # not geopre's temporaries: a user's files stay
        path.write_text("mine")
    write_shards([SourceSpec("ingest", ingest_dir)], WriteConfig(out))
    assert not stale.exists() and all(path.read_text() == "mine" for path in others)
    assert sorted(p.name for p in out.iterdir() if p not in others) == ["index.json", "train-000000.tar",
                                                                       "val-000000.tar"]

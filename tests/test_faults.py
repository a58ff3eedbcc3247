"""Fault injection across the pipeline: what geopre promises when things go wrong (README, "Reliability").

- SIGKILL mid-run of `geopre ingest`, `geopre shard` and `geopre pretrain` (the CLI as a subprocess, its
  whole process group killed, as a crash or the OOM killer would), then a rerun: the outputs that are
  meant to be deterministic are byte-identical to an uninterrupted run's.
- Seeded byte corruption inside shards: the loader skips, warns, counts and keeps going.
- Bad inputs through every command: one line on stderr, a non-zero exit, never a traceback.

Kill points are chosen by a seed and triggered by a filesystem event (the k-th output exists, or the
writer opened a named pipe posing as one of its inputs), never by a wall-clock sleep.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.shards.conftest import make_ingest_folder
from tests.train.conftest import pretrain_shards, tiny_model_file  # noqa: F401 - fixtures

GEOPRE = [sys.executable, "-m", "geopre.cli"]
# Subprocesses on one thread: the test machine's cores are shared (see tests/conftest.py), and pretraining
# on one thread is also bitwise reproducible from run to run.
ONE_THREAD = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def geopre(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*GEOPRE, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=ONE_THREAD)


def kill_when(args, event, timeout: float = 120) -> bool:
    """Run ``geopre ARGS`` in its own process group and SIGKILL the whole group (worker processes too)
    as soon as ``event()`` is true. Returns False when the command ended before the event."""
    process = subprocess.Popen([*GEOPRE, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=ONE_THREAD, start_new_session=True)
    deadline = time.monotonic() + timeout  # only a guard against a hung test, never a kill point
    try:
        while process.poll() is None and not event():
            if time.monotonic() > deadline:
                raise TimeoutError(f"geopre {' '.join(map(str, args))}: the kill event never came")
            time.sleep(0.005)
        if process.poll() is not None:
            return False
        os.killpg(process.pid, signal.SIGKILL)
        return True
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def file_tree(root: Path, hidden: bool = False) -> dict[str, bytes]:
    """{relative path: bytes} of every file under ``root`` (only dot-files and what is under dot-folders
    with ``hidden``: the temporary names of atomic writes)."""
    tree = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and any(part.startswith(".") for part in rel.parts) == hidden:
            tree[str(rel)] = path.read_bytes()
    return tree


# --- kill, rerun, compare ------------------------------------------------------------------------

INGEST_ARGS = ("--size", "64x32")


@pytest.fixture(scope="module")
def ingest_videos(tmp_path_factory, synth_videos_dir):
    """Five real clips: the two synthetic videos and three copies of one (distinct paths, distinct ids)."""
    folder = tmp_path_factory.mktemp("fault-videos")
    mp4s = sorted((synth_videos_dir / "videos").glob("*.mp4"))
    for mp4 in mp4s:
        shutil.copy(mp4, folder / mp4.name)
    for i in range(3):
        shutil.copy(mp4s[0], folder / f"copy-{i}.mp4")
    return folder


@pytest.fixture(scope="module")
def ingest_reference(tmp_path_factory, ingest_videos):
    out = tmp_path_factory.mktemp("ingest-reference")
    assert geopre("ingest", ingest_videos, "--out", out, *INGEST_ARGS).returncode == 0
    return out


def ingest_outputs(out: Path) -> dict[str, bytes]:
    """Frames and manifests are deterministic; ingest_stats.json is not (timings) and is compared by its counts."""
    return {k: v for k, v in file_tree(out).items() if k.split("/")[0] in ("frames", "manifests")}


def manifests(out: Path) -> int:
    return len(list((out / "manifests").glob("*.json"))) if (out / "manifests").is_dir() else 0


@pytest.mark.parametrize("seed", [1, 2])
def test_ingest_killed_after_a_seeded_number_of_videos_reruns_to_the_same_frames(ingest_videos, ingest_reference,
                                                                                 tmp_path, seed):
    done_before_kill = random.Random(seed).randint(1, 3)  # of 5 videos
    out = tmp_path / "out"
    args = ["ingest", ingest_videos, "--out", out, *INGEST_ARGS]
    assert kill_when(args, lambda: manifests(out) >= done_before_kill), "ingest ended before the kill"
    assert done_before_kill <= manifests(out) < 5

    rerun = geopre(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert ingest_outputs(out) == ingest_outputs(ingest_reference)
    assert file_tree(out, hidden=True) == {}, "temporary files of the killed run are left behind"


def shard_args(ingest: Path, out: Path) -> list:
    return ["shard", ingest, "--out", out, "--maxcount", 2, "--val-fraction", 0.25, "--seed", 1]


@pytest.fixture(scope="module")
def shard_inputs(tmp_path_factory):
    """An ingest folder (4 videos x 3 triplets) and its shards, written without interruption."""
    ingest = make_ingest_folder(tmp_path_factory.mktemp("fault-ingest"))
    reference = tmp_path_factory.mktemp("fault-shards")
    assert geopre(*shard_args(ingest, reference)).returncode == 0
    return ingest, reference


def kill_shard_mid_tar(ingest: Path, out: Path, seed: int) -> None:
    """Kill `geopre shard` while it reads a seeded frame: that frame is briefly a named pipe, so
    the writer blocks in the middle of a tar (the earlier tars done, this one half written)."""
    frames = sorted((ingest / "frames").rglob("*.jpg"))
    frame = random.Random(seed).choice(frames)
    data, stat = frame.read_bytes(), frame.stat()
    frame.unlink()
    os.mkfifo(frame)

    def writer_is_reading() -> bool:
        try:  # a non-blocking open for writing succeeds only once a reader has the pipe open
            os.close(os.open(frame, os.O_WRONLY | os.O_NONBLOCK))
            return True
        except OSError:
            return False

    try:
        assert kill_when(shard_args(ingest, out), writer_is_reading), "shard ended before reading the pipe"
    finally:
        frame.unlink()
        frame.write_bytes(data)
        os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the shard fingerprint includes mtimes
    assert not (out / "index.json").exists()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shard_killed_mid_tar_reruns_to_byte_identical_shards(shard_inputs, tmp_path, seed):
    ingest, reference = shard_inputs
    out = tmp_path / "shards"
    kill_shard_mid_tar(ingest, out, seed)
    rerun = geopre(*shard_args(ingest, out))
    assert rerun.returncode == 0, rerun.stderr
    assert file_tree(out) == file_tree(reference)  # tars and index.json


@pytest.mark.xfail(reason="the shard writer leaves a killed run's .<shard>.<random>.tmp.tar behind for good",
                   strict=False)
def test_shard_rerun_removes_the_temporary_tar_of_a_killed_run(shard_inputs, tmp_path):
    ingest, _ = shard_inputs
    out = tmp_path / "shards"
    kill_shard_mid_tar(ingest, out, seed=1)
    assert geopre(*shard_args(ingest, out)).returncode == 0
    assert file_tree(out, hidden=True) == {}


PRETRAIN_STEPS = 6
CHECKPOINT_EVERY = 2  # a checkpoint is 300 MB (two ResNet-18s and Adam's moments): few of them


def pretrain_args(shards: Path, out: Path) -> list:
    return ["pretrain", "--shards", shards, "--out", out, "--size", "64x32", "--batch-size", 2, "--workers", 0,
            "--steps", PRETRAIN_STEPS, "--log-every", 1, "--val-every", 3, "--visual-every", 3,
            "--checkpoint-every", CHECKPOINT_EVERY, "--device", "cpu", "--init", "scratch", "--seed", 3]


@pytest.fixture(scope="module")
def pretrain_reference(tmp_path_factory, pretrain_shards):
    out = tmp_path_factory.mktemp("pretrain-reference") / "run"
    result = geopre(*pretrain_args(pretrain_shards, out))
    assert result.returncode == 0, result.stderr
    return out


def latest_step(run: Path) -> int:
    pointer = run / "checkpoints" / "latest"
    try:
        return int(pointer.read_text().strip().removeprefix("step_"))
    except (FileNotFoundError, ValueError):
        return 0


def training_curve(run: Path) -> list[str]:
    """metrics.csv without its timing columns (triplets/s and data wait differ from run to run)."""
    import csv

    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    return [",".join(f"{k}={row[k]}" for k in sorted(row) if k not in ("samples_per_s", "data_wait")) for row in rows]


def test_pretrain_killed_after_a_seeded_checkpoint_resumes_to_the_same_weights(pretrain_shards, pretrain_reference,
                                                                               tmp_path):
    """docs/pretrain.md promises exact resume: the resumed run's final weights are bit for bit the
    uninterrupted run's, and so is its loss curve. Checkpoints' state.pt (pickled optimiser and RNG
    state), TensorBoard events and visuals are not compared: their bytes hold no promise."""
    kill_after = random.Random(4).choice(range(CHECKPOINT_EVERY, PRETRAIN_STEPS, CHECKPOINT_EVERY))
    out = tmp_path / "run"
    args = pretrain_args(pretrain_shards, out)
    assert kill_when(args, lambda: latest_step(out) >= kill_after), "pretrain ended before the kill"
    assert kill_after <= latest_step(out) < PRETRAIN_STEPS

    resumed = geopre(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    final = f"checkpoints/step_{PRETRAIN_STEPS:08d}/model.safetensors"
    assert (out / final).read_bytes() == (pretrain_reference / final).read_bytes()
    assert training_curve(out) == training_curve(pretrain_reference)

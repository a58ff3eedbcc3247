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


def geopre(*args, timeout: float = 300) -> subprocess.CompletedProcess:
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

# Tiny frames for speed; at 64x32 a drive behind a lead car moves < 1 px a frame, so the motion
# threshold is lowered with them (this module tests kills and reruns, not the static filter).
INGEST_ARGS = ("--size", "64x32", "--min-flow", "0.3")


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


# --- corrupt shards ------------------------------------------------------------------------------

def corrupt_member(tar: Path, seed: int, header: bool = False) -> str:
    """Overwrite 8 bytes at the start of a seeded member's data (``header``: of its header block) with
    seeded random bytes; returns the member's name."""
    rng = random.Random(seed)
    with tarfile.open(tar) as archive:
        members = archive.getmembers()
        if header:  # the first member of a later sample (a broken first header fails the whole shard, counted)
            members = [m for m in members[1:] if ".prev." in m.name]
        member = rng.choice(members)
    data = bytearray(tar.read_bytes())
    start = member.offset + 20 if header else member.offset_data  # header: inside the name field
    data[start:start + 8] = bytes(data[i] ^ rng.randrange(1, 256) for i in range(start, start + 8))  # all 8 change
    tar.write_bytes(bytes(data))
    return member.name


def corrupt_copy(shard_inputs, tmp_path, seed: int, header: bool = False) -> tuple[Path, str, str]:
    """A copy of the reference shards with one train shard (seeded) corrupted: (folder, shard, member)."""
    _, reference = shard_inputs
    broken = tmp_path / "broken"
    shutil.copytree(reference, broken)
    shard = random.Random(seed).choice(sorted(broken.glob("train-*.tar")))
    return broken, str(shard), corrupt_member(shard, seed, header)


def read_train_keys(shards: Path, workers: int = 0):
    from geopre.shards.augment import AugmentConfig
    from geopre.shards.read import LoaderConfig, train_loader

    loader = train_loader(shards, LoaderConfig(batch_size=1, workers=workers, worker_kind="thread", resampled=False,
                                               augment=AugmentConfig(size=(24, 16))))
    return [key for batch in loader for key in batch["key"]], loader.skips


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_corrupt_member_costs_its_sample_only_and_is_counted(shard_inputs, tmp_path, seed):
    broken, _, member = corrupt_copy(shard_inputs, tmp_path, seed)
    keys, skips = read_train_keys(broken, workers=seed % 2 * 2)  # in the loop, and in two worker threads
    reference_keys, _ = read_train_keys(shard_inputs[1])
    key = member.split(".")[0]
    assert sorted(keys) == sorted(k for k in reference_keys if k != key)
    assert (skips.samples, skips.shards) == (1, 0)


def test_the_warning_for_a_corrupt_sample_names_its_shard_and_key(shard_inputs, tmp_path, caplog):
    broken, shard, member = corrupt_copy(shard_inputs, tmp_path, seed=1)
    with caplog.at_level("WARNING"):
        read_train_keys(broken)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(Path(shard).name in w and member.split(".")[0] in w for w in warnings), warnings


def test_a_corrupt_member_header_is_counted(shard_inputs, tmp_path):
    broken, _, _ = corrupt_copy(shard_inputs, tmp_path, seed=2, header=True)
    keys, skips = read_train_keys(broken)
    reference_keys, _ = read_train_keys(shard_inputs[1])
    assert len(keys) < len(reference_keys)  # the corruption did cost samples...
    assert skips.shards + skips.samples >= 1  # ...and the loss is on record


def test_pretrain_on_only_dead_shards_is_one_line_error_in_bounded_time(shard_inputs, tmp_path):
    _, reference = shard_inputs
    dead = tmp_path / "dead"
    shutil.copytree(reference, dead)
    for tar in dead.glob("*.tar"):
        tar.write_bytes(b"this is not a tar file\n" * 50)
    # The timeout is a guard against the hang this test is about (today: resampling dead shards for
    # ever), not a margin: a bounded failure takes seconds.
    result = geopre(*pretrain_args(dead, tmp_path / "run"), timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(error_lines(result.stderr)) == 1, result.stderr


# --- bad inputs through every command ----------------------------------------------------------

CLICK_USAGE = ("Usage:", "Try '")  # click prints these above its one-line "Error: ..."


def error_lines(stderr: str) -> list[str]:
    """stderr without blank lines, click's usage lines and warnings (``geopre: warning: ...``)."""
    return [line for line in stderr.splitlines()
            if line.strip() and not line.startswith(CLICK_USAGE) and not line.startswith("geopre: warning: ")]


@pytest.fixture(scope="module")
def bad(tmp_path_factory, synth_kitti_root, tiny_model_file, shard_inputs):
    """The paths the bad-input cases name, by placeholder."""
    from tests.ingest.conftest import ffmpeg

    root = tmp_path_factory.mktemp("bad-inputs")
    text = root / "notes.txt"
    text.write_text("just some notes\n")
    (root / "empty").mkdir()
    (root / "page.html").write_text("<html><body><p>no video here</p></body></html>\n")
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video\n")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(root / "audio.mp4"))
    depth_run = root / "depth-run"  # a fine-tuning run folder with its last model but no best epoch
    depth_run.mkdir()
    shutil.copy(tiny_model_file, depth_run / "model.safetensors")
    image = root / "frame.png"
    shutil.copy(next(synth_kitti_root.rglob("image_02/data/*.png")), image)
    return {"text": text, "empty": root / "empty", "missing": root / "missing", "under": text / "out",
            "html": root / "page.html", "audio": root / "audio.mp4", "empty_mp4": root / "empty.mp4",
            "text_mp4": root / "text.mp4",
            "kitti": synth_kitti_root, "ingest": shard_inputs[0], "shards": shard_inputs[1],
            "model": tiny_model_file, "depth_run": depth_run, "image": image}


# Base arguments that make a wrongly accepted case cheap (it then fails the test in seconds, not minutes).
VIDEOS = "synth videos {out} --count 1 --seconds 0.5 --size 64x32 --render-scale 1 "
KITTI = "synth kitti {out} --drives 2 --frames 3 --size 64x32 "
CITY = "synth cityscapes {out} --sequences 1 --size 64x32 "

SYNTH = [
    (VIDEOS + "--count 0", None), (VIDEOS + "--seconds 0", None),
    (VIDEOS + "--workers 0", None),
    (VIDEOS + "--render-scale -1", None),
    ("synth videos {under}", None), ("synth videos {text}", None),
    (KITTI + "--drives 0", None), (KITTI + "--frames 0", None),
    (KITTI + "--test-drives 2", None), ("synth kitti {under}", None),
    (CITY + "--sequences 0", None), ("synth cityscapes {under}", None),
    ("synth teapot {out}", None),
]
INGEST = [
    ("ingest {missing} --out {out}", None), ("ingest {empty} --out {out}", None),
    ("ingest {image} --out {under}", None), ("ingest {image} --out {text}", None),
    ("ingest {image} --out {out} --workers 0", None), ("ingest {image} --out {out} --workers -1", None),
    ("ingest {image} --out {out} --fps 0", None), ("ingest {image} --out {out} --fps -10", None),
    ("ingest {image} --out {out} --jpeg-quality 0", None), ("ingest {image} --out {out} --retries -1", None),
    ("ingest {image} --out {out} --max-videos -1", None), ("ingest {image} --out {out} --flow-scale 0", None),
    ("ingest {image} --out {out} --crop sideways", None), ("ingest {image} --out {out} --distributor spark", None),
    ("ingest --batch-file {missing} --out {out}", None), ("ingest --batch-file {empty} --out {out}", None),
]
SHARD = [
    ("shard {missing} --out {out}", None), ("shard {empty} --out {out}", None), ("shard {text} --out {out}", None),
    ("shard {ingest} --out {under}", None), ("shard {ingest} --out {text}", None),
    ("shard {ingest} --out {out} --maxcount 0", None), ("shard {ingest} --out {out} --maxcount -1", None),
    ("shard {ingest} --out {out} --maxsize 0", None), ("shard {ingest} --out {out} --maxsize lots", None),
    ("shard {ingest} --out {out} --val-fraction 1.5", None), ("shard {ingest} --out {out} --val-fraction -0.1", None),
    ("shard --from kitti {empty} --out {out}", None), ("shard --from kitti {missing} --out {out}", None),
    ("shard --from mars {kitti} --out {out}", None), ("shard --from kitti {kitti} --split nope --out {out}", None),
    ("shard info {missing}", None), ("shard info {empty}", None), ("shard info {text}", None),
    ("shard preview {shards} --out {under}", None), ("shard preview {shards} --out {empty}", None),
    ("shard preview {shards} --out {out}.png --count 0", None), ("shard preview {shards} --out {out}.png --count -1", None),
    ("shard preview {text} --out {out}.png", None), ("shard preview {shards} --out {out}.png --split test", None),
]
PRETRAIN_BASE = ("pretrain --shards {shards} --out {out} --size 64x32 --batch-size 2 --workers 0 --steps 1 "
                 "--device cpu --init scratch --checkpoint-every 1 --val-every 1 --visual-every 1 ")
PRETRAIN = [(PRETRAIN_BASE + extra, None) for extra in (
    "--shards {missing}", "--shards {empty}", "--shards {text}", "--out {under}", "--out {text}",
    "--batch-size 0", "--batch-size -1", "--steps 0", "--steps -1", "--workers -1", "--log-every 0",
    "--val-every 0", "--visual-every 0", "--checkpoint-every 0", "--epochs 0", "--size 65x32", "--size 0x32",
    "--lr 0", "--lr -1", "--init {empty}", "--init nonsense", "--arch resnet9", "--worker-kind fibre",
    "--nproc 0", "--resume")] + [(PRETRAIN_BASE + extra, None) for extra in (
        "--samples-per-epoch 0", "--motion-dim 0", "--init {text}", "--init imagenet --imagenet-weights {text}",
        "--device potato")] + [(PRETRAIN_BASE + "--device cuda", None)]
EXPORT = [
    ("export {missing} --out {out}.pth", None), ("export {empty} --out {out}.pth", None),
    ("export {text} --out {out}.pth", None), ("export {run} --out {under}", None),
    ("export {run} --out {empty}", None),
]
FINETUNE_BASE = ("finetune {kitti} {out} --size 64x32 --batch-size 2 --epochs 1 --workers 0 --device cpu "
                 "--init scratch --max-steps 1 --val-gt-frames 1 ")
FINETUNE = [(FINETUNE_BASE + extra, mark) for extra, mark in (
    ("--workers -1", None), ("--log-every 0", None), ("--max-steps 0", None),
    ("--mode X", None), ("--batch-size 0", None), ("--epochs 0", None), ("--fraction 0", None),
    ("--fraction 1.5", None), ("--scales 0", None), ("--scales 9", None), ("--size 65x32", None),
    ("--init {text}", None),
    ("--init imagenet --imagenet-weights {text}", None),
    ("--split-dir {empty}", None), ("--checkpoint-every -1", None),
    ("--val-every 0", None), ("--lr 0", None), ("--min-depth 0", None), ("--max-depth 0.05", None),
    ("--arch resnet9", None), ("--device potato", None), ("--nproc 0", None),
    ("--resume", None), ("--device cuda", None))] + [
    ("finetune {missing} {out} --device cpu", None), ("finetune {empty} {out} --device cpu", None),
    ("finetune {text} {out} --device cpu", None), ("finetune {kitti} {under} --device cpu", None),
]
EVALUATE_BASE = "evaluate {model} {kitti} --device cpu "
EVALUATE = [(EVALUATE_BASE + extra, mark) for extra, mark in (
    ("--batch-size 0", None), ("--dataset mars", None), ("--split-file {missing}", None),
    ("--split-file {text}", None), ("--gt-file {text}", None), ("--gt-source lidar", None),
    ("--out {under}", None), ("--stereo-scale 0", None),
    ("--split nope --dataset cityscapes", None))] + [
    (EVALUATE_BASE + "--device cuda", None),
    ("evaluate {depth_run} {kitti} --device cpu --best", None),
    ("evaluate {missing} {kitti} --device cpu", None), ("evaluate {text} {kitti} --device cpu", None),
    ("evaluate {empty} {kitti} --device cpu", None), ("evaluate {model} {missing} --device cpu", None),
    ("evaluate {model} {empty} --device cpu", None),
]
PREDICT_BASE = "predict {model} {image} --out {out} --device cpu "
PREDICT = [(PREDICT_BASE + extra, mark) for extra, mark in (
    ("--video-stride 0", None), ("--out {under}", None), ("--out {text}", None),
    ("--best", None))] + [(PREDICT_BASE + "--device cuda", None),
    ("predict {model} {missing} --out {out}", None), ("predict {model} {text} --out {out}", None),
    ("predict {model} {empty} --out {out}", None), ("predict {model} {empty_mp4} --out {out}", None),
    ("predict {text} {image} --out {out}", None), ("predict {missing} {image} --out {out}", None),
]
# Commands that would run for minutes (or serve for ever) on an input they wrongly accept: subprocesses
# with a timeout, so such a case fails instead of hanging the suite.
LONG_RUNNING = [
    ("serve {missing}", None), ("serve {text}", None),
    ("serve {empty} --port -1", None),
    ("demo --videos 0 --out {out}", None), ("demo --seconds 0 --out {out}", None), ("demo --out {under}", None),
    ("reproduce --preset huge --out {out}", None),
    ("reproduce --jobs -1 --out {out}", None),
    ("reproduce --out {under}", None),
    ("reproduce --imagenet-weights {text} --out {out}", None),
]


def case_params(cases):
    params = []
    for line, mark in cases:
        marks = [mark] if mark else []
        if "--device cuda" in line:
            marks.append(pytest.mark.skipif(_cuda_available(), reason="a GPU is present"))
        params.append(pytest.param(line, marks=marks, id=case_id(line)))
    return params


def case_id(line: str) -> str:
    """The command and what is bad about it, without the base arguments every case of it shares."""
    for base in (VIDEOS, KITTI, CITY, PRETRAIN_BASE, FINETUNE_BASE, EVALUATE_BASE, PREDICT_BASE):
        if line.startswith(base):
            command = " ".join(base.split()[:2 if base.startswith("synth") else 1])
            return f"{command} {line[len(base):]}"
    return line


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def expand(line: str, bad: dict, tmp_path: Path, request) -> list[str]:
    """The case's arguments; ``{run}``, a finished pretraining run, is made only for the cases naming it."""
    run = request.getfixturevalue("pretrain_reference") if "{run}" in line else None
    return [part.format(out=tmp_path / "out", run=run, **bad) for part in line.split()]


def run_in_process(args: list[str], capsys) -> tuple[int, str]:
    """``geopre ARGS`` through the console entry point in this process (a fresh interpreter per case
    would cost seconds each): (exit code, stderr), with an escaped exception's traceback appended to
    stderr as the interpreter would print it."""
    import traceback

    from geopre.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:  # noqa: B036 - whatever escapes main() is a traceback for the user
        return 1, capsys.readouterr().err + traceback.format_exc()
    return code, capsys.readouterr().err


@pytest.mark.parametrize("line", case_params(SYNTH + INGEST + SHARD + PRETRAIN + EXPORT + FINETUNE + EVALUATE + PREDICT))
def test_bad_input_is_one_line_error(line, bad, tmp_path, capsys, request):
    code, stderr = run_in_process(expand(line, bad, tmp_path, request), capsys)
    assert "Traceback" not in stderr, stderr
    assert code != 0, f"accepted: {stderr}"
    assert len(error_lines(stderr)) == 1, stderr


@pytest.mark.parametrize("line", case_params(LONG_RUNNING))
def test_bad_input_to_a_long_running_command_is_one_line_error(line, bad, tmp_path, request):
    result = geopre(*expand(line, bad, tmp_path, request), timeout=90)  # a hang guard: a rejection takes ~2 s idle, 20 s on a loaded machine
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode != 0
    assert len(error_lines(result.stderr)) == 1, result.stderr


def test_every_command_has_bad_input_cases():
    from geopre.cli import cli

    covered = {line.split()[0] for line, _ in SYNTH + INGEST + SHARD + PRETRAIN + EXPORT + FINETUNE + EVALUATE
               + PREDICT + LONG_RUNNING}
    assert covered == set(cli.commands)


@pytest.mark.parametrize("name", ["html", "audio", "empty_mp4", "text_mp4"])
def test_a_file_that_is_no_video_is_a_recorded_one_line_failure(bad, tmp_path, name):
    import json

    out = tmp_path / "out"
    result = geopre("ingest", bad[name], "--out", out, "--size", "64x32")
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1  # every video failed
    failures = json.loads((out / "ingest_stats.json").read_text())["failed"]
    assert len(failures) == 1 and failures[0]["reason"].strip() and "\n" not in failures[0]["reason"], failures

"""`geopre ingest` as a user runs it: exit codes, one-line errors, and kill-then-resume.

(Named test_ingest_cli.py: pytest cannot hold two test modules called test_cli.py without packages.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


def geopre(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geopre.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("args, message", [
    (["--size", "0x5"], "is not a size like 640x192"),
    (["--start", "3", "--end", "2"], "--end (2.0) must be after --start (3.0)"),
    (["--max-gap", "0"], "--max-gap must be at least 1"),
    (["--rate-limit", "fast"], "--rate-limit 'fast' is not a rate"),
    (["--cookies", "/nonexistent/cookies.txt"], "--cookies file /nonexistent/cookies.txt does not exist"),
    (["--ray-address", "auto"], "--ray-address needs --distributor ray"),
])
def test_bad_options_are_one_line_errors(clips, tmp_path, args, message):
    result = geopre("ingest", str(clips["scroll"]), "--out", str(tmp_path / "o"), *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr  # click adds its usage lines above the one-line error


def test_missing_ffmpeg_is_one_clear_error(clips, tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # python is called by its full path
    result = geopre("ingest", str(clips["scroll"]), "--out", str(tmp_path / "o"), env=env)
    assert result.returncode == 2 and "ffmpeg and ffprobe not found on PATH" in result.stderr


def test_exit_code_is_zero_unless_everything_failed(clips, tmp_path):
    still, scroll = str(clips["still"]), str(clips["scroll"])
    assert geopre("ingest", still, scroll, "--out", str(tmp_path / "a"), "--size", "64x32").returncode == 0
    strict = geopre("ingest", still, scroll, "--out", str(tmp_path / "b"), "--size", "64x32", "--strict")
    assert strict.returncode == 1 and "too little motion" in strict.stdout
    assert geopre("ingest", still, "--out", str(tmp_path / "c"), "--size", "64x32").returncode == 1


def test_killed_run_resumes_to_the_same_outputs(clips, synth_videos_dir, tmp_path, snapshot):
    from tests.test_faults import kill_when

    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(3):  # distinct paths, distinct ids
        shutil.copy(clips["scroll"], videos / f"scroll-{i}.mp4")
    for mp4 in (synth_videos_dir / "videos").glob("*.mp4"):
        shutil.copy(mp4, videos / mp4.name)
    args = [str(videos), "--size", "128x64"]
    reference = tmp_path / "reference"
    assert geopre("ingest", *args, "--out", str(reference)).returncode == 0

    out = tmp_path / "out"
    # Killed (with its worker processes) when the first manifest appears, while it still runs.
    assert kill_when(["ingest", *args, "--out", out], lambda: any((out / "manifests").glob("*.json")))
    interrupted = len(list((out / "manifests").glob("*.json")))
    assert interrupted >= 1

    result = geopre("ingest", *args, "--out", str(out))
    assert result.returncode == 0 and f"videos skipped (done earlier)  {interrupted}" in result.stdout
    assert snapshot(out) == snapshot(reference)
    assert not [p for p in (out / "frames").iterdir() if p.name.startswith(".")], "no partial folders left"

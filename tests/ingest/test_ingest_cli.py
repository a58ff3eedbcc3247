"""`geopre ingest` as a user runs it: exit codes, one-line errors, and kill-then-resume.

(Named test_ingest_cli.py: pytest cannot hold two test modules called test_cli.py without packages.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest


def geopre(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geopre.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("args, message", [
    (["--size", "0x5"], "is not a size like 640x192"),
    (["--start", "3", "--end", "2"], "--end (2.0) must be after --start (3.0)"),
    (["--max-gap", "0"], "'--max-gap': 0 is not in the range x>=1"),
    (["--jobs", "0"], "'--jobs' / '-j': 0 is not in the range x>=1"),
    (["--rate-limit", "fast"], "--rate-limit 'fast' is not a rate"),
    (["--cookies", "/nonexistent/cookies.txt"], "--cookies file /nonexistent/cookies.txt does not exist"),
    (["--ray-address", "auto"], "--ray-address needs --distributor ray"),
    (["--min-height", "0"], "'--min-height': 0 is not in the range x>=1"),
    (["--force", "--retry-failed"], "--force re-ingests everything and --retry-failed only earlier failures"),
])
def test_bad_options_are_one_line_errors(clips, tmp_path, args, message):
    result = geopre("ingest", str(clips["scroll"]), "--out", str(tmp_path / "o"), *args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_cookies_file_with_byte_order_mark_is_one_line_error(clips, tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_bytes(b"\xef\xbb\xbf# Netscape HTTP Cookie File\r\n.example.com\tTRUE\t/\tFALSE\t0\tsid\tabc\r\n")
    result = geopre("ingest", str(clips["scroll"]), "--out", str(tmp_path / "o"), "--cookies", str(cookies))
    assert result.returncode == 2 and "starts with a byte-order mark" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


def test_missing_ffmpeg_is_one_clear_error(clips, tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # python is called by its full path
    result = geopre("ingest", str(clips["scroll"]), "--out", str(tmp_path / "o"), env=env)
    assert result.returncode == 2 and "ffmpeg and ffprobe not found on PATH" in result.stderr


def test_exit_code_is_zero_unless_everything_failed(clips, tmp_path):
    still, scroll = str(clips["still"]), str(clips["scroll"])
    assert geopre("ingest", still, scroll, "--out", str(tmp_path / "a"), "--size", "64x32").returncode == 0
    strict = geopre("ingest", still, scroll, "--out", str(tmp_path / "b"), "--size", "64x32", "--strict")
    assert strict.returncode == 1 and "too little motion" in strict.stderr
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


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_youtube_url_fails_alone_with_one_line_on_stderr(clips, tmp_path):
    # Offline on any machine: yt-dlp's requests go to a proxy port where nothing listens.
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "all_proxy")}
    env.update(http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy, HTTPS_PROXY=proxy)
    out = tmp_path / "out"
    youtube = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    shutil.copy(clips["scroll"], tmp_path / "second.mp4")  # another path: another video
    result = geopre("ingest", str(clips["scroll"]), youtube, str(tmp_path / "second.mp4"), "--out", str(out),
                    "--size", "64x32", "--retries", "1", "--retry-backoff", "0", env=env)
    assert result.returncode == 0, result.stderr  # some videos failed, not all: exit 0 without --strict
    assert "Traceback" not in result.stderr
    failed_lines = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed_lines) == 1 and failed_lines[0].startswith(f"failed: {youtube}: ")
    assert "1 of 3 videos failed: reasons in" in result.stderr and "--retry-failed" in result.stderr
    assert "failed: " not in result.stdout and "videos ingested                2" in result.stdout
    stats = json.loads((out / "ingest_stats.json").read_text())
    assert stats["videos"]["ok"] == 2 and [f["url"] for f in stats["failed"]] == [youtube]
    assert "\n" not in stats["failed"][0]["reason"]


def test_rerun_with_another_size_is_one_line_and_force_redoes_it(clips, tmp_path):
    out = str(tmp_path / "o")
    assert geopre("ingest", str(clips["scroll"]), "--out", out, "--size", "64x32").returncode == 0
    refused = geopre("ingest", str(clips["scroll"]), "--out", out, "--size", "96x48")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--size 96x48 (folder: 64x32)" in refused.stderr and "--force" in refused.stderr
    forced = geopre("ingest", str(clips["scroll"]), "--out", out, "--size", "96x48", "--force")
    assert forced.returncode == 0 and "videos ingested                1" in forced.stdout

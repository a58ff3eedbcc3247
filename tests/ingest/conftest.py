"""Small real clips made by ffmpeg (a still image, a scrolling pattern, a 30 fps clip), a small site
with the failures users meet, and a snapshot of an output folder to compare runs by."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def texture(path, width: int, height: int, seed: int = 0) -> None:
    """A smooth random texture: optical flow can lock onto it anywhere."""
    rng = np.random.default_rng(seed)
    small = (rng.random((height // 8, width // 8, 3)) * 255).astype(np.uint8)
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(path)


def encode(args: list[str], out, seconds: float, fps: int = 30) -> None:
    ffmpeg(*args, "-t", str(seconds), "-r", str(fps), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
           "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out))


@pytest.fixture(scope="session")
def encode_clip():
    """``encode(ffmpeg_input_args, out, seconds, fps=30)``: an H.264 mp4 like a phone would save."""
    return encode


@pytest.fixture(scope="session")
def run_ffmpeg():
    """``run_ffmpeg(*args)``: ffmpeg quiet, overwriting, raising on failure."""
    return ffmpeg


@pytest.fixture(scope="session")
def texture_png():
    """``texture_png(path, width, height, seed)``: a smooth random texture image."""
    return texture


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """{"still": 2 s of one image, "scroll": 2 s of a texture panning 40 px/s... at 320x180, 30 fps}."""
    folder = tmp_path_factory.mktemp("clips")
    texture(folder / "still.png", 320, 180, seed=1)
    texture(folder / "wide.png", 960, 180, seed=2)
    encode(["-loop", "1", "-i", str(folder / "still.png")], folder / "still.mp4", 2)
    # 120 px/s at 320x180 is 12 px per 10 Hz frame before resizing to 128x64 (about 5 px after).
    encode(["-loop", "1", "-i", str(folder / "wide.png"), "-vf", "crop=320:180:'t*120':0"], folder / "scroll.mp4", 2)
    encode(["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30"], folder / "counter30.mp4", 3)
    return {name: folder / f"{name}.mp4" for name in ("still", "scroll", "counter30")}


@pytest.fixture
def web(synth_videos_dir, tmp_path):
    """A site: the synthetic videos and their page, plus a text file posing as mp4, a truncated
    mp4 and a page without any video."""
    root = tmp_path / "site"
    shutil.copytree(synth_videos_dir / "videos", root / "videos")
    shutil.copy(synth_videos_dir / "index.html", root / "index.html")
    good = sorted((root / "videos").glob("*.mp4"))[0].read_bytes()
    (root / "bad.mp4").write_text("this is not a video\n")
    (root / "cut.mp4").write_bytes(good[: len(good) // 3])
    (root / "empty.html").write_text("<html><body><p>no video here</p></body></html>")
    return root


def output_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.parts[len(out.parts)] in ("frames", "manifests")}


@pytest.fixture(scope="session")
def snapshot():
    """``snapshot(out)``: every frame and manifest file under ``out`` as {relative path: bytes}."""
    return output_files

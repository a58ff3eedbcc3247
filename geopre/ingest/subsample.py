"""Subsample and resize a video with ffmpeg, streaming raw frames into Python.

The resize-then-crop rule: scale the frame (keeping its aspect ratio) by the smallest factor that
makes it *cover* the output size, i.e. ``s = max(W / w, H / h)``, then crop a ``W x H`` window.
Horizontally the window is centred; vertically ``--crop`` picks the band that survives:
``center`` (the middle rows), ``top`` (the top rows: cuts a dashcam's bonnet at the bottom) or
``bottom`` (the bottom rows). So a 1280x720 video at 640x192 is scaled to 640x360 and ``center``
keeps rows 84..275. No frame is ever stretched.

Sizes are *displayed* sizes: a phone clip stored as 1920x1080 with a 90 degree display matrix is
a 1080x1920 portrait video (ffmpeg's autorotate turns its frames upright before our filters), and
non-square pixels (``sample_aspect_ratio``) are widened to square ones first. The rule above, the
manifest and ``--min-height`` all use the displayed size.

Rate: output frame k is the source frame nearest to time ``start + k / fps``. ffmpeg's ``fps``
filter alone (rounding ``near``) emits the *last* frame whose rounded time is <= k / fps, up to
half an output period late (at 30 -> 10 fps: source frame 4, 0.133 s, for 0.1 s). So each
frame's time is first moved to the midpoint with the frame before it (``setpts``); the last frame
whose midpoint is <= k / fps (``fps`` with exact ``round=up``) is then the nearest, on VFR video
too. A video slower than ``--fps`` is taken at its own rate rather than padded with duplicates.

Decoding: ffmpeg does trim, rate conversion, scale and crop in its own threads and pipes BGR bytes
to us. Against decord (``VideoReader(width, height)`` + ``get_batch`` of every n-th frame, then a
numpy crop) it measured the same or faster on 1280x720 30 fps video here (bench/ingest.py, shared
2-core CPU: ffmpeg pipe 657-708 source frames/s, decord 413-676), so we keep the ffmpeg pipe: one
decoder for probe, trim and decode, exact fps-filter timestamps, area-averaged downscaling, and
autorotation (decord would hand us rotated clips sideways).
"""

from __future__ import annotations

import contextlib
import math
import queue
import subprocess
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from geopre.ingest.config import CROP_BANDS, SubsampleConfig


class VideoError(Exception):
    """A video that cannot be read (not a video, truncated, corrupt); the message is one line."""


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about a file's first video stream; ``width`` x ``height`` is the displayed
    size (after rotation and pixel aspect), which is what ffmpeg hands our filters."""

    duration: float | None
    fps: float | None
    width: int
    height: int
    frames: int | None
    rotation: int = 0  # degrees of the display matrix (0, 90, 180 or 270), already applied to the size


def _one_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "no message"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def probe(path: Path | str) -> VideoInfo:
    """Duration, frame rate and size of the first video stream, or :class:`VideoError`."""
    import ffmpeg

    try:
        meta = ffmpeg.probe(str(path))
    except ffmpeg.Error as err:
        raise VideoError(f"not a readable video (ffprobe: {_one_line(err.stderr.decode(errors='replace'))})") from None
    streams = [s for s in meta.get("streams", []) if s.get("codec_type") == "video"
               and not s.get("disposition", {}).get("attached_pic")]
    if not streams:
        raise VideoError("no video stream in the file")
    stream = streams[0]
    fps = None
    num, _, den = str(stream.get("avg_frame_rate") or stream.get("r_frame_rate") or "0/0").partition("/")
    if den and float(den) != 0 and float(num) > 0:
        fps = float(num) / float(den)
    duration = stream.get("duration") or meta.get("format", {}).get("duration")
    frames = stream.get("nb_frames")
    rotation = _rotation(stream)
    width, height = displayed_size(int(stream["width"]), int(stream["height"]),
                                   _ratio(stream.get("sample_aspect_ratio")), rotation)
    return VideoInfo(duration=float(duration) if duration else None, fps=fps, width=width, height=height,
                     frames=int(frames) if frames else None, rotation=rotation)


def _ratio(text: str | None) -> float | None:
    num, _, den = str(text or "").partition(":")
    try:
        value = float(num) / float(den)
    except (ValueError, ZeroDivisionError):
        return None  # "0:1" or absent: unknown, taken as square pixels
    return value if value > 0 else None


def _rotation(stream: dict) -> int:
    """The display matrix's rotation (side data; older files: the ``rotate`` tag), in 0/90/180/270."""
    for side_data in stream.get("side_data_list") or []:
        if "rotation" in side_data:
            return round(float(side_data["rotation"]) / 90) % 4 * 90
    rotate = (stream.get("tags") or {}).get("rotate")
    return round(float(rotate) / 90) % 4 * 90 if rotate else 0


def displayed_size(width: int, height: int, sample_aspect: float | None, rotation: int) -> tuple[int, int]:
    """The size a player shows for a stream of ``width`` x ``height`` stored pixels."""
    if sample_aspect and sample_aspect != 1:
        width = max(1, round(width * sample_aspect))
    return (height, width) if rotation % 180 == 90 else (width, height)


def crop_window(width: int, height: int, size: tuple[int, int], band: str) -> tuple[int, int, int, int]:
    """(scaled_w, scaled_h, x, y): the resize-then-crop rule of this module for one video size."""
    if band not in CROP_BANDS:
        raise ValueError(f"crop band must be one of {CROP_BANDS}, got {band!r}")
    out_w, out_h = size
    scale = max(out_w / width, out_h / height)
    # Round up so rounding never leaves the scaled frame a pixel short of the crop.
    scaled_w, scaled_h = max(out_w, math.ceil(width * scale - 1e-6)), max(out_h, math.ceil(height * scale - 1e-6))
    x = (scaled_w - out_w) // 2
    y = {"center": (scaled_h - out_h) // 2, "top": 0, "bottom": scaled_h - out_h}[band]
    return scaled_w, scaled_h, x, y


def stream_config(info: VideoInfo, config: SubsampleConfig) -> tuple[SubsampleConfig, list[str]]:
    """The subsampling this video gets, and the warnings a user should see about it: a source
    slower than ``config.fps`` keeps its own rate (duplicates would only pose as motionless
    frames), and a source smaller than the output is upscaled (blurry frames)."""
    warnings = []
    if info.fps is not None and config.fps > info.fps * 1.001:
        warnings.append(f"--fps {config.fps:g} is above the video's {info.fps:.3g} fps: took every frame "
                        f"({info.fps:.3g} fps) instead of duplicating frames")
        config = replace(config, fps=round(info.fps, 6))
    upscale = max(config.size[0] / info.width, config.size[1] / info.height)
    if upscale > 1.001:
        warnings.append(f"video is {info.width}x{info.height}: upscaled {upscale:.3g}x to cover "
                        f"{config.size[0]}x{config.size[1]} (blurry frames; --min-height skips small videos)")
    return config, warnings


def expected_frames(info: VideoInfo, config: SubsampleConfig) -> int | None:
    """How many subsampled frames the probed duration promises (None when unknown), at the rate
    :func:`stream_config` will really use."""
    if info.duration is None:
        return None
    config, _ = stream_config(info, config)
    start = config.start or 0.0
    end = min(info.duration, config.end) if config.end is not None else info.duration
    return max(0, math.floor((end - start) * config.fps + 0.5))


def frame_time(index: int, config: SubsampleConfig) -> float:
    """Time in the source video (s) of subsampled frame ``index``."""
    return round((config.start or 0.0) + index / config.fps, 6)


def ffmpeg_args(path: Path | str, info: VideoInfo, config: SubsampleConfig) -> list[str]:
    """The ffmpeg argv (built with ffmpeg-python, run without a shell)."""
    import ffmpeg

    scaled_w, scaled_h, x, y = crop_window(info.width, info.height, config.size, config.crop)
    input_args = {"ss": config.start} if config.start else {}
    output_args = {"t": config.end - (config.start or 0.0)} if config.end is not None else {}
    stream = (
        ffmpeg.input(str(path), **input_args)
        # The midpoint with the previous frame (the first frame keeps its own time): see the module doc.
        .video.filter("setpts", "if(isnan(PREV_INPTS),PTS,(PTS+PREV_INPTS)/2)")
        .filter("fps", fps=config.fps, round="up", start_time=0)
        .filter("scale", scaled_w, scaled_h, flags="area")
        .filter("crop", config.size[0], config.size[1], x, y)
        .output("pipe:", format="rawvideo", pix_fmt="bgr24", **output_args)
    )
    argv = stream.compile()
    # Global options go before the first input (ffmpeg-python appends them, which ffmpeg warns about).
    return [argv[0], "-nostdin", "-loglevel", "error", *argv[1:]]


READ_AHEAD = 16  # frames buffered between ffmpeg and the flow filter (16 x 640x192 BGR = 6 MB)


def decode(path: Path | str, info: VideoInfo, config: SubsampleConfig) -> Iterator[np.ndarray]:
    """Yield the subsampled frames (H x W x 3 uint8 BGR, read-only) of ``path``; raise
    :class:`VideoError` if ffmpeg fails or the stream ends well short of the probed duration (a
    truncated file).

    A reader thread drains the pipe into a small queue: a pipe holds 64 KiB, less than one frame,
    so without it ffmpeg would stall whenever the caller computes flow or writes a JPEG.
    """
    width, height = config.size
    frame_bytes = width * height * 3
    # stderr goes to a file: a corrupt video can log more than a pipe holds and block ffmpeg.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(ffmpeg_args(path, info, config), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=errors)
        frames: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        stop = threading.Event()

        def read() -> None:
            try:
                while not stop.is_set():
                    data = process.stdout.read(frame_bytes)
                    if len(data) < frame_bytes:
                        break
                    frames.put(data)
            finally:
                frames.put(None)

        reader = threading.Thread(target=read, name="geopre-decode", daemon=True)
        reader.start()
        count = 0
        try:
            while (data := frames.get()) is not None:
                count += 1
                yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
            returncode = process.wait()
        finally:
            stop.set()
            if process.poll() is None:  # the caller stopped early, or an error
                process.kill()
                process.wait()
            while reader.is_alive():  # unblock a reader waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    frames.get_nowait()
                reader.join(0.01)
            process.stdout.close()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if returncode != 0:
        raise VideoError(f"ffmpeg could not decode the video: {_one_line(stderr)}")
    expected = expected_frames(info, config)
    # A frame or two of slack: container durations and the fps filter's rounding disagree at the end.
    if expected is not None and count < expected - max(2, round(0.02 * expected)):
        detail = f": {_one_line(stderr)}" if stderr.strip() else ""
        raise VideoError(f"video is truncated or corrupt: decoded {count} of {expected} frames{detail}")

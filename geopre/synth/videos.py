"""Synthetic "internet" driving videos: H.264 mp4s of varied size, frame rate and (unrecorded)
focal length, a web page that embeds them (what yt-dlp sees as a playlist) and a batch file.

The camera's intrinsics, pose, speed and stop segments go to ``truth/<name>.json``, outside the
"internet" formats, so filters and benchmarks can be scored against what really happened.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geopre.errors import UserError
from geopre.io import atomic_path, atomic_write_json, atomic_write_text, ensure_writable_dir
from geopre.synth import render, world
from geopre.progress import progress

log = logging.getLogger(__name__)

DEFAULT_SIZES = ((1280, 720), (960, 540), (854, 480))
DEFAULT_FPS = (24.0, 25.0, 30.0)
DEFAULT_BASE_URL = "http://127.0.0.1:8765/"


@dataclass(frozen=True)
class VideoSpec:
    """Everything that determines one synthetic video; the same spec renders the same bytes."""

    name: str
    seed: int
    seconds: float
    fps: float
    width: int
    height: int
    render_width: int
    render_height: int
    hfov_deg: float
    style: str
    camera_height: float
    pitch_bias_deg: float
    exposure: tuple[float, float, float]  # per-channel gain: the uploader's exposure and white balance
    crf: int = 18  # H.264 quality: uploads differ in bitrate and compression artefacts
    # Dashcam uploads often open at a red light: a stop segment the ingest filter must drop.
    drive: world.DriveConfig = world.DriveConfig(start_stopped=0.3)

    @property
    def frame_count(self) -> int:
        return int(round(self.seconds * self.fps))

    def intrinsics(self) -> world.Intrinsics:
        """The camera at the mp4's resolution (what a calibration would find)."""
        return world.Intrinsics.from_hfov(self.width, self.height, self.hfov_deg)

    def sequence(self) -> world.Sequence:
        intr = self.intrinsics().scaled(self.render_width, self.render_height)
        return world.make_sequence(self.seed, self.seconds, self.fps, intr, style=world.STYLES[self.style],
                                   drive=self.drive, camera_height=self.camera_height,
                                   pitch_bias_deg=self.pitch_bias_deg,
                                   exposure=np.array(self.exposure))


def plan_videos(count: int, seconds: float, seed: int, sizes=DEFAULT_SIZES, fps_choices=DEFAULT_FPS,
                render_scale: float = 0.5) -> list[VideoSpec]:
    """Draw ``count`` video specs from ``seed``: size, fps, field of view, street style, mounting."""
    if count < 1:
        raise UserError(f"--count must be at least 1 (got {count})")
    if not seconds > 0:
        raise UserError(f"--seconds must be positive (got {seconds})")
    if not 0 < render_scale <= 1:
        raise UserError(f"--render-scale must be in (0, 1] (got {render_scale})")
    rng = np.random.default_rng(seed)
    specs = []
    for index in range(count):
        width, height = sizes[rng.integers(len(sizes))]
        fps = float(fps_choices[rng.integers(len(fps_choices))])
        video_seed = int(rng.integers(1 << 31))
        # File names must be unique: yt-dlp's download archive keys generic URLs by file name.
        tag = hashlib.sha1(f"{seed}-{index}-{video_seed}".encode()).hexdigest()[:8]
        rw = max(2, int(round(width * render_scale / 2)) * 2)
        rh = max(2, int(round(height * render_scale / 2)) * 2)
        specs.append(VideoSpec(
            name=f"drive-{index:03d}-{tag}",
            seed=video_seed,
            seconds=float(seconds),
            fps=fps,
            width=int(width),
            height=int(height),
            render_width=rw,
            render_height=rh,
            hfov_deg=float(rng.uniform(55.0, 95.0)),
            style=str(rng.choice(["suburban", "city"])),
            camera_height=float(rng.uniform(1.2, 1.8)),
            pitch_bias_deg=float(rng.uniform(-3.0, 3.0)),
            exposure=tuple(float(g) for g in rng.uniform(0.75, 1.25) * rng.uniform(0.9, 1.1, size=3)),
            crf=int(rng.integers(17, 31)),
        ))
    return specs


def _truth(spec: VideoSpec, seq: world.Sequence) -> dict:
    traj = seq.trajectory
    intr = spec.intrinsics()
    return {
        "spec": asdict(spec),
        "intrinsics": {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy,
                       "width": intr.width, "height": intr.height},
        "frames": {
            "time": traj.times.round(6).tolist(),
            "distance": traj.distance.round(6).tolist(),
            "speed": traj.speed.round(6).tolist(),
            "stopped": traj.stopped.tolist(),
            "pose": [traj.pose(i)[:3].round(9).ravel().tolist() for i in range(len(traj))],
        },
        "conventions": "pose: camera-to-world 3x4 row-major; world x right, y down, z along the road; "
                       "intrinsics at the mp4 resolution, pixel centres at integer coordinates",
    }


def render_video(spec: VideoSpec, path: Path, truth_dir: Path, save_depth: bool = False, on_frame=None) -> dict:
    """Render and encode one video atomically; returns its truth record."""
    import ffmpeg  # ffmpeg-python: builds the argv; the encode runs as a subprocess, no shell.

    seq = spec.sequence()
    depths = []
    with atomic_path(path) as tmp:
        process = (
            ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24",
                         s=f"{spec.render_width}x{spec.render_height}", r=spec.fps)
            .filter("scale", spec.width, spec.height, flags="bicubic")
            .output(str(tmp), vcodec="libx264", preset="veryfast", crf=spec.crf, pix_fmt="yuv420p",
                    r=spec.fps, movflags="+faststart", format="mp4")
            .global_args("-loglevel", "error", "-nostdin")
            .overwrite_output()
            .run_async(pipe_stdin=True, quiet=True)
        )
        try:
            for index in range(spec.frame_count):
                view = render.render_view(seq, index)
                process.stdin.write(view.image.tobytes())
                if save_depth:
                    depths.append(view.depth.astype(np.float16))
                if on_frame:
                    on_frame()
            process.stdin.close()
            stderr = process.stderr.read().decode(errors="replace")
            if process.wait() != 0:
                raise RuntimeError(f"ffmpeg failed encoding {path.name}: {stderr.strip()}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    truth = _truth(spec, seq)
    if save_depth:
        with atomic_path(truth_dir / f"{spec.name}_depth.npy") as tmp:
            np.save(tmp, np.stack(depths))
    atomic_write_json(truth_dir / f"{spec.name}.json", truth)
    return truth


def _render_worker(spec: VideoSpec, out: str, save_depth: bool) -> str:
    out_dir = Path(out)
    render_video(spec, out_dir / "videos" / f"{spec.name}.mp4", out_dir / "truth", save_depth)
    return spec.name


def index_html(specs: list[VideoSpec]) -> str:
    """A page embedding each video with <video><source>: yt-dlp's generic extractor lists it as
    a playlist (plain <a href> links it rejects as an unsupported URL)."""
    items = "\n".join(
        f'  <h2>{html.escape(s.name)}</h2>\n'
        f'  <video controls width="{s.width // 2}" height="{s.height // 2}">\n'
        f'    <source src="videos/{html.escape(s.name)}.mp4" type="video/mp4">\n  </video>'
        for s in specs)
    return (f"<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>geopre synthetic drives"
            f"</title></head>\n<body>\n  <h1>Synthetic driving videos ({len(specs)})</h1>\n{items}\n</body>\n</html>\n")


def write_videos(out: Path, count: int, seconds: float, seed: int = 0, sizes=DEFAULT_SIZES,
                 fps_choices=DEFAULT_FPS, render_scale: float = 0.5, base_url: str = DEFAULT_BASE_URL,
                 workers: int = 1, save_depth: bool = False) -> dict:
    """Render ``count`` videos into ``out/videos``, write ``index.html``, ``urls.txt`` and
    ``synth.json``. Videos already rendered (mp4 and truth present) are kept: a rerun resumes."""
    specs = plan_videos(count, seconds, seed, sizes, fps_choices, render_scale)
    out = Path(out)
    ensure_writable_dir(out)
    todo = [s for s in specs if not ((out / "videos" / f"{s.name}.mp4").exists()
                                     and (out / "truth" / f"{s.name}.json").exists())]
    if todo:
        log.info("rendering %d of %d videos into %s", len(todo), len(specs), out)
    if workers <= 1 or len(todo) <= 1:
        with progress(total=sum(s.frame_count for s in todo), desc="render", unit="frame") as bar:
            for spec in todo:
                render_video(spec, out / "videos" / f"{spec.name}.mp4", out / "truth", save_depth,
                             on_frame=lambda: bar.update(1))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool, \
                progress(total=len(todo), desc="render", unit="video") as bar:
            futures = [pool.submit(_render_worker, s, str(out), save_depth) for s in todo]
            for future in as_completed(futures):
                future.result()
                bar.update(1)
    base = base_url if base_url.endswith("/") else base_url + "/"
    atomic_write_text(out / "index.html", index_html(specs))
    atomic_write_text(out / "urls.txt", "# geopre synthetic drives; serve with `geopre serve`\n"
                      + "".join(f"{base}videos/{s.name}.mp4\n" for s in specs))
    summary = {"kind": "videos", "seed": seed, "count": count, "seconds": seconds, "base_url": base,
               "videos": [{"name": s.name, "file": f"videos/{s.name}.mp4", "width": s.width, "height": s.height,
                           "fps": s.fps, "frames": s.frame_count} for s in specs]}
    atomic_write_json(out / "synth.json", summary)
    return summary


def load_truth(out: Path, name: str) -> dict:
    """The ground truth of one rendered video (intrinsics, poses, speeds, stop flags)."""
    return json.loads((Path(out) / "truth" / f"{name}.json").read_text())


def preview_views(count: int, seconds: float, seed: int, sizes=DEFAULT_SIZES, fps_choices=DEFAULT_FPS,
                  render_scale: float = 0.5, shown: int = 4) -> list[render.View]:
    """The middle frame of the first ``shown`` videos these settings render, at render size."""
    specs = plan_videos(count, seconds, seed, sizes, fps_choices, render_scale)[:shown]
    return [render.render_view(s.sequence(), s.frame_count // 2) for s in specs]

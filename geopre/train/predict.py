"""``geopre predict``: depth maps for images, folders of images and videos from a trained model.

Each frame is resized to the model's training size, its disparity predicted, resized back to the
frame's size and written as a magma-coloured PNG (``<name>_disp.png``, monodepth2's look: vmin at
the smallest disparity, vmax at the 95th percentile, so near objects saturate instead of
compressing everything else). ``save_depth`` also writes ``<name>_depth.npy``: depth in metres for
stereo-trained (S, MS) models, and up to an unknown scale for monocular (M) ones.
Videos are decoded with OpenCV; video frames are named ``<video>_<frame:06d>``.

``<name>`` keeps the input's path relative to the inputs' common folder (a single folder given:
that folder), so KITTI's ``image_02/data/0000000000.png`` and ``image_03/data/0000000000.png``
land in ``image_02/data/`` and ``image_03/data/`` under the output folder instead of one
overwriting the other; inputs that would still write the same file are refused before any work.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import matplotlib
import numpy as np
import torch
from PIL import Image

from geopre.data.depth_dataset import image_tensor
from geopre.errors import UserError
from geopre.io import atomic_path, ensure_writable_dir, save_png
from geopre.progress import progress
from geopre.train.depth_model import load_model, predict_disparity
from geopre.train.metrics import resize_disparity, stereo_scale_factor
from geopre.train.runtime import resolve_device

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


@dataclass(frozen=True)
class PredictConfig:
    model: Path  # run folder, checkpoint folder or .safetensors file
    inputs: tuple[Path, ...]  # image files, folders of images, video files
    out_dir: Path
    save_depth: bool = False
    best: bool = False
    video_stride: int = 1  # keep every n-th video frame
    post_process: bool = False  # also predict the mirrored frame and blend (monodepth2's post-processing)
    device: str = "auto"


def colourise_disparity(disp: np.ndarray) -> np.ndarray:
    """(H, W) disparity -> (H, W, 3) uint8 magma image, vmax at the 95th percentile (monodepth2)."""
    vmin = float(disp.min())
    vmax = max(float(np.percentile(disp, 95)), vmin + 1e-12)
    normalised = np.clip((disp - vmin) / (vmax - vmin), 0.0, 1.0)
    return (matplotlib.colormaps["magma"](normalised)[..., :3] * 255).astype(np.uint8)


def _video_frames(path: Path, stride: int) -> Iterator[tuple[int, np.ndarray]]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UserError(f"{path}: cannot decode this video (OpenCV could not open it)")
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % stride == 0:
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise UserError(f"{path}: the video has no decodable frame")


def _frame_count(path: Path) -> int:
    """The container's frame count (for the progress bar only; it can be approximate)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        capture.release()


def _image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as error:
        raise UserError(f"{path}: not a readable image ({error})") from None


def expand_inputs(inputs: tuple[Path, ...]) -> tuple[list[Path], list[Path]]:
    """(image files, video files) named by the inputs, each once; folders contribute their images, sorted."""
    images, videos = [], []
    for path in map(Path, inputs):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            images.extend(found)
        elif not path.is_file():
            raise UserError(f"{path}: no such file or folder")
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        else:
            raise UserError(f"{path}: unknown input type; give images ({', '.join(IMAGE_SUFFIXES)}), "
                            f"folders of them, or videos ({', '.join(VIDEO_SUFFIXES)})")
    # A file named twice (a folder and a file in it, overlapping globs) is predicted once.
    return list(_unique(images)), list(_unique(videos))


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))  # normalised (no "..") but symlinks kept, as the user named them


def _unique(paths: list[Path]) -> Iterator[Path]:
    seen = set()
    for path in paths:
        if _absolute(path) not in seen:
            seen.add(_absolute(path))
            yield path


def output_names(inputs: tuple[Path, ...], images: list[Path], videos: list[Path]) -> dict[Path, Path]:
    """Each input file's output name, relative to the output folder and without suffix: its path
    relative to the common folder of the inputs (a folder input counts as itself, a file as its
    folder). Raises a UserError when two inputs would still write the same file."""
    base = Path(os.path.commonpath([_absolute(p if p.is_dir() else p.parent) for p in map(Path, inputs)]))
    names = {path: _absolute(path).relative_to(base).with_suffix("") for path in [*images, *videos]}
    owner: dict[Path, Path] = {}
    for path, name in names.items():
        if name in owner:
            raise UserError(f"{owner[name]} and {path} would both be written as {name}_disp.png: "
                            f"predict them into separate --out folders")
        owner[name] = path
    video_names = {names[v]: v for v in videos}
    for image in images:
        # An image called like a video's frame (<video>_000042) would overwrite that frame's output.
        frame_of = re.fullmatch(r"(.*)_\d{6}", names[image].name)
        video = frame_of and video_names.get(names[image].with_name(frame_of.group(1)))
        if video:
            raise UserError(f"{image} and a frame of {video} would both be written as {names[image]}_disp.png: "
                            f"predict them into separate --out folders")
    return names


def predict(config: PredictConfig) -> dict:
    """Write a coloured disparity PNG (and optionally depth .npy) per frame; return a summary."""
    if config.video_stride < 1:
        raise UserError(f"--video-stride must be at least 1 (got {config.video_stride})")
    images, videos = expand_inputs(config.inputs)
    names = output_names(config.inputs, images, videos)
    device = resolve_device(config.device)
    model, info = load_model(config.model, config.best, device)
    out_dir = ensure_writable_dir(config.out_dir)
    depth_scale = stereo_scale_factor(info.stereo_baseline) if info.metric else 1.0

    def frames() -> Iterator[tuple[str, np.ndarray]]:
        for path in images:
            yield str(names[path]), _image(path)
        for path in videos:
            for index, rgb in _video_frames(path, config.video_stride):
                yield f"{names[path]}_{index:06d}", rgb

    video_frames = sum(-(-_frame_count(v) // config.video_stride) for v in videos)
    written = 0
    with progress(total=len(images) + video_frames or None, desc="predict", unit="frame") as bar:
        for name, rgb in frames():
            batch = image_tensor(Image.fromarray(rgb), (info.width, info.height))[None].to(device)
            disp = resize_disparity(predict_disparity(model.depth, batch, info, config.post_process)[0], *rgb.shape[:2])
            save_png(out_dir / f"{name}_disp.png", colourise_disparity(disp))
            if config.save_depth:
                with atomic_path(out_dir / f"{name}_depth.npy") as tmp:
                    np.save(tmp, (depth_scale / disp).astype(np.float32))
            written += 1
            bar.update(1)
    return {"frames": written, "out_dir": str(out_dir), "metric_depth": info.metric, "mode": info.mode}

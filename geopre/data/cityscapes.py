"""Cityscapes reader: sequence frames, camera JSON, disparity ground truth, bonnet crop.

On-disk facts (mcordts/cityscapesScripts README):

* ``{root}/{type}/{split}/{city}/{city}_{seq:06d}_{frame:06d}_{type}{ext}``, e.g.
  ``leftImg8bit_sequence/train/aachen/aachen_000000_000019_leftImg8bit.png``,
  ``camera/train/aachen/aachen_000000_000019_camera.json``,
  ``disparity/train/aachen/aachen_000000_000019_disparity.png``. City names may contain
  underscores (``demoVideo`` has ``stuttgart_00``).
* Camera JSON: ``{"extrinsic": {"baseline", "pitch", "roll", "x", "y", "yaw", "z"},
  "intrinsic": {"fx", "fy", "u0", "v0"}}``, baseline in metres, intrinsics in full-resolution pixels.
* Disparity PNG: uint16 ``p``; ``d = (p - 1) / 256`` for ``p > 0``, ``p = 0`` is invalid.
* ``leftImg8bit_sequence`` is recorded at 17 Hz; the paper (section IV-C.2) subsamples to 8.5 Hz.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geopre.data.images import read_uint16_png
from geopre.errors import UserError

SEQUENCE_FPS = 17.0
# Every 2nd frame turns 17 Hz into the 8.5 Hz the paper trains on (section IV-C.2), close to
# KITTI's 10 Hz; SfMLearner's Cityscapes loader uses the same gap.
SUBSAMPLE_STEP = 2
# The bottom quarter of every Cityscapes frame shows the ego car's bonnet and the Mercedes star,
# which never moves and breaks the photometric loss and the evaluation. The paper builds its
# Cityscapes data "following Zhou's method" (section IV-C.2), and Zhou et al.'s SfMLearner loader
# removes exactly the bottom 25% ("to remove the car logo"); ManyDepth-style evaluation does too.
BONNET_CROP_FRACTION = 0.25


@dataclass(frozen=True, order=True)
class FrameId:
    """One Cityscapes frame: city, 6-digit sequence number and 6-digit frame number."""

    city: str
    sequence: int
    frame: int

    @property
    def stem(self) -> str:
        return f"{self.city}_{self.sequence:06d}_{self.frame:06d}"


_FRAME_NAME = re.compile(r"^(?P<city>.+?)_(?P<sequence>\d{6})_(?P<frame>\d{6})_(?P<kind>[^.]+)\.\w+$")


def parse_frame_name(name: str | os.PathLike) -> FrameId:
    """``aachen_000000_000019_leftImg8bit.png`` -> ``FrameId("aachen", 0, 19)`` (any data type)."""
    match = _FRAME_NAME.match(Path(name).name)
    if match is None:
        raise UserError(f"{name}: not a Cityscapes file name '<city>_<seq:6>_<frame:6>_<type>.<ext>'")
    return FrameId(match["city"], int(match["sequence"]), int(match["frame"]))


def image_path(root: str | os.PathLike, split: str, frame: FrameId) -> Path:
    return Path(root) / "leftImg8bit_sequence" / split / frame.city / f"{frame.stem}_leftImg8bit.png"


def camera_path(root: str | os.PathLike, split: str, frame: FrameId) -> Path:
    return Path(root) / "camera" / split / frame.city / f"{frame.stem}_camera.json"


def disparity_path(root: str | os.PathLike, split: str, frame: FrameId) -> Path:
    return Path(root) / "disparity" / split / frame.city / f"{frame.stem}_disparity.png"


def list_sequences(root: str | os.PathLike, split: str) -> dict[tuple[str, int], list[FrameId]]:
    """All ``leftImg8bit_sequence`` frames of a split, grouped by (city, sequence), frames sorted."""
    split_dir = Path(root) / "leftImg8bit_sequence" / split
    if not split_dir.is_dir():
        raise UserError(f"{split_dir}: folder not found; download leftImg8bit_sequence_trainvaltest and unzip it there")
    sequences: dict[tuple[str, int], list[FrameId]] = {}
    for path in sorted(split_dir.glob("*/*_leftImg8bit.png")):
        frame = parse_frame_name(path)
        sequences.setdefault((frame.city, frame.sequence), []).append(frame)
    for frames in sequences.values():
        frames.sort()
    return dict(sorted(sequences.items()))


def list_splits(root: str | os.PathLike) -> list[str]:
    """The split folders (train, val, test, ...) of ``leftImg8bit_sequence``, sorted; none if it is missing."""
    base = Path(root) / "leftImg8bit_sequence"
    return sorted(path.name for path in base.iterdir() if path.is_dir()) if base.is_dir() else []


def snippets(frames: list[FrameId]) -> list[list[FrameId]]:
    """A sequence's frames cut into runs of consecutive frame numbers.

    Cityscapes stores 30 frames around each annotated frame; a long sequence holds several such
    snippets with gaps between them, and frames on either side of a gap are not neighbours.
    """
    runs: list[list[FrameId]] = []
    for frame in sorted(frames):
        previous = runs[-1][-1] if runs else None
        if previous and (frame.city, frame.sequence, frame.frame) == (previous.city, previous.sequence,
                                                                      previous.frame + 1):
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return runs


def subsample(frames: list[FrameId], step: int = SUBSAMPLE_STEP) -> list[FrameId]:
    """Keep every ``step``-th frame of one sequence (17 Hz -> 8.5 Hz for ``step=2``).

    Counting starts at the first frame of each (city, sequence). Long sequences are stored as
    30-frame snippets with gaps between them; after a gap counting restarts at the next frame,
    so kept frames are exactly ``step`` apart inside a snippet and never closer across a gap.
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    kept: list[FrameId] = []
    for frame in sorted(frames):
        if not kept or frame.sequence != kept[-1].sequence or frame.city != kept[-1].city:
            kept.append(frame)
        elif frame.frame - kept[-1].frame >= step:
            kept.append(frame)
    return kept


@dataclass(frozen=True, eq=False)
class CityscapesCamera:
    """What evaluation and training need from a camera JSON: K (full resolution) and the baseline."""

    intrinsics: np.ndarray  # 3x3
    baseline: float  # metres between the left and right cameras

    @property
    def fx(self) -> float:
        return float(self.intrinsics[0, 0])


def read_camera(path: str | os.PathLike) -> CityscapesCamera:
    """Read a Cityscapes ``*_camera.json``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: camera file not found; download camera_trainvaltest and unzip it into the root")
    try:
        camera = json.loads(path.read_text())
        intrinsic, extrinsic = camera["intrinsic"], camera["extrinsic"]
        intrinsics = np.array(
            [
                [intrinsic["fx"], 0.0, intrinsic["u0"]],
                [0.0, intrinsic["fy"], intrinsic["v0"]],
                [0.0, 0.0, 1.0],
            ],
            dtype=np.float64,
        )
        baseline = float(extrinsic["baseline"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(
            f"{path}: not a Cityscapes camera JSON (needs intrinsic fx/fy/u0/v0 and extrinsic baseline): {error}"
        ) from None
    return CityscapesCamera(intrinsics, baseline)


def decode_disparity(encoded: np.ndarray) -> np.ndarray:
    """Disparity in pixels from the uint16 PNG values: ``(p - 1) / 256``, and 0 where ``p == 0``."""
    encoded = np.asarray(encoded)
    disparity = (encoded.astype(np.float32) - 1.0) / 256.0
    disparity[encoded == 0] = 0.0
    return disparity


def disparity_to_depth(encoded: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Metric depth ``baseline * fx / d`` from the uint16 disparity PNG values; 0 = invalid.

    Both ``p == 0`` (no measurement) and ``p == 1`` (zero disparity, infinitely far) are invalid.
    ``fx`` must be the focal length at the disparity map's resolution (full resolution as shipped).
    """
    disparity = decode_disparity(encoded)
    depth = np.zeros_like(disparity)
    valid = disparity > 0
    depth[valid] = baseline * fx / disparity[valid]
    return depth


def read_disparity_png(path: str | os.PathLike) -> np.ndarray:
    """The raw uint16 values of a Cityscapes disparity PNG."""
    return read_uint16_png(path, "Cityscapes disparity", "download disparity_trainvaltest")


def read_depth(root: str | os.PathLike, split: str, frame: FrameId) -> np.ndarray:
    """Full-resolution metric depth of a frame from its disparity PNG and camera JSON; 0 = invalid."""
    camera = read_camera(camera_path(root, split, frame))
    return disparity_to_depth(read_disparity_png(disparity_path(root, split, frame)), camera.baseline, camera.fx)


def bonnet_kept_rows(height: int, fraction: float = BONNET_CROP_FRACTION) -> int:
    """How many top rows survive the bonnet crop: ``int(height * (1 - fraction))``."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"bonnet crop fraction must be in [0, 1), got {fraction}")
    return int(height * (1.0 - fraction))


def bonnet_crop(image: np.ndarray, fraction: float = BONNET_CROP_FRACTION) -> np.ndarray:
    """Drop the bottom ``fraction`` of rows (the ego car); apply to images and ground truth alike.

    Only bottom rows go, so the principal point and focal length stay valid for the crop.
    """
    return image[: bonnet_kept_rows(image.shape[0], fraction)]

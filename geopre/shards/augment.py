"""Augmentation of a triplet: one draw of parameters, applied identically to all three frames.

The frames of a triplet must stay geometrically consistent (the pretraining task reconstructs the
flow between them), so crop, scale and flip are drawn once per triplet; intrinsics follow the same
transform so calibrated sources stay usable downstream.

Work is split where it is cheapest: the loader's CPU workers do the geometry on uint8 frames
(crop + resize to the training size, flip) and draw the colour-jitter factors; the training step
calls :func:`prepare_batch`, which turns the uint8 batch into float on the device and applies the
jitter there. Measured on CPU (bench/shards.py), float conversion, colour jitter (hue above all)
and collating float batches 4x larger than uint8 cost ~25x the JPEG decode itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from geopre.data.colour import IDENTITY, jitter_colours

IDENTITY_JITTER = IDENTITY  # brightness, contrast, saturation factors; hue shift


@dataclass(frozen=True)
class AugmentConfig:
    size: tuple[int, int] = (640, 192)  # training W x H (paper III-B-2: 640 x 192 flow)
    zoom: tuple[float, float] = (1.0, 1.15)  # extra scale beyond covering the training size
    flip_probability: float = 0.5
    # monodepth2's colour augmentation, used by the paper's depth stage; applied with probability 0.5.
    jitter_probability: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1


@dataclass(frozen=True)
class CropBox:
    """A box of the source image (pixels) that is resized to the training size."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class AugmentParams:
    box: CropBox
    flip: bool
    jitter: tuple[float, float, float, float] = IDENTITY_JITTER


def crop_box(src_w: int, src_h: int, size: tuple[int, int], zoom: float, u: float, v: float) -> CropBox:
    """The source box that, resized to ``size``, covers it with aspect ratio kept and ``zoom``
    extra magnification; ``u, v`` in [0, 1] place it (0.5, 0.5 = centre)."""
    out_w, out_h = size
    scale = max(out_w / src_w, out_h / src_h) * zoom
    width = min(src_w, max(1, round(out_w / scale)))
    height = min(src_h, max(1, round(out_h / scale)))
    return CropBox(math.floor(u * (src_w - width)), math.floor(v * (src_h - height)), width, height)


def draw_params(src_w: int, src_h: int, config: AugmentConfig, generator: torch.Generator | None = None) -> AugmentParams:
    """One random draw for a triplet (torch's RNG: seeded per DataLoader worker)."""
    def uniform(low: float, high: float) -> float:
        return float(torch.empty(()).uniform_(low, high, generator=generator))

    box = crop_box(src_w, src_h, config.size, uniform(*config.zoom), uniform(0, 1), uniform(0, 1))
    flip = uniform(0, 1) < config.flip_probability
    jitter = IDENTITY_JITTER
    if uniform(0, 1) < config.jitter_probability:
        jitter = (uniform(1 - config.brightness, 1 + config.brightness), uniform(1 - config.contrast, 1 + config.contrast),
                  uniform(1 - config.saturation, 1 + config.saturation), uniform(-config.hue, config.hue))
    return AugmentParams(box, flip, jitter)


def centre_params(src_w: int, src_h: int, size: tuple[int, int]) -> AugmentParams:
    """The deterministic view for validation: cover the training size, centre crop, no flip or jitter."""
    return AugmentParams(crop_box(src_w, src_h, size, 1.0, 0.5, 0.5), flip=False)


def apply_geometry(frames: list[np.ndarray], params: AugmentParams, size: tuple[int, int]) -> np.ndarray:
    """uint8 RGB frames (h, w, 3) -> (3, H, W, 3): the same crop, resize and flip for each.

    OpenCV's resize (area when shrinking, which antialiases; linear when enlarging) is ~2x faster
    than torchvision's on uint8 and keeps the channels-last layout the decoder produced.
    """
    import cv2

    box = params.box
    shrink = box.width > size[0] or box.height > size[1]
    out = np.empty((len(frames), size[1], size[0], 3), dtype=np.uint8)
    for k, frame in enumerate(frames):
        crop = frame[box.top:box.top + box.height, box.left:box.left + box.width]
        if crop.shape[1] == size[0] and crop.shape[0] == size[1]:
            out[k] = crop
        else:
            out[k] = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(out[:, :, ::-1]) if params.flip else out


def transform_intrinsics(intrinsics: torch.Tensor, box: CropBox, size: tuple[int, int], flip: bool) -> torch.Tensor:
    """(fx, fy, cx, cy) of the source image -> the same for the cropped, resized (and flipped)
    image; pixel centres at integer coordinates, as in KITTI's and Cityscapes' calibrations."""
    sx, sy = size[0] / box.width, size[1] / box.height
    fx, fy, cx, cy = intrinsics.unbind(-1)
    cx = (cx - box.left + 0.5) * sx - 0.5
    cy = (cy - box.top + 0.5) * sy - 0.5
    if flip:
        cx = size[0] - 1 - cx
    return torch.stack([fx * sx, fy * sy, cx, cy], -1)


def prepare_batch(batch: dict, device: torch.device | str = "cpu") -> dict:
    """The loader's uint8 batch -> float on ``device``: ``images`` (B, 3, 3, H, W) in [0, 1]
    (prev, ref, next) and ``images_aug`` with the drawn colour jitter (monodepth2 feeds the
    jittered frames to the network and computes the photometric loss on the others)."""
    images = batch["images"].to(device, non_blocking=True).permute(0, 1, 4, 2, 3).float().div_(255)
    jitter = batch["jitter"]
    images_aug = jitter_colours(images, jitter)
    return {**batch, "images": images, "images_aug": images_aug,
            "intrinsics": batch["intrinsics"].to(device, non_blocking=True)}

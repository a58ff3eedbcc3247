"""Augmentation of a triplet: one draw of parameters, applied identically to all three frames.

The frames of a triplet must stay geometrically consistent (the pretraining task reconstructs the
flow between them), so crop, scale and flip are drawn once per triplet; intrinsics follow the same
transform so calibrated sources stay usable downstream. Functions of tensors, no hidden state: the
caller passes the random numbers (a ``torch.Generator``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torchvision.transforms.v2 import functional as TF


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


def crop_box(src_w: int, src_h: int, size: tuple[int, int], zoom: float, u: float, v: float) -> CropBox:
    """The source box that, resized to ``size``, covers it with aspect ratio kept and ``zoom``
    extra magnification; ``u, v`` in [0, 1] place it (0.5, 0.5 = centre)."""
    out_w, out_h = size
    scale = max(out_w / src_w, out_h / src_h) * zoom
    width = min(src_w, max(1, round(out_w / scale)))
    height = min(src_h, max(1, round(out_h / scale)))
    return CropBox(math.floor(u * (src_w - width)), math.floor(v * (src_h - height)), width, height)


def resize_crop(frames: torch.Tensor, box: CropBox, size: tuple[int, int]) -> torch.Tensor:
    """``frames`` (..., C, h, w) uint8 or float -> (..., C, H, W), antialiased."""
    return TF.resized_crop(frames, box.top, box.left, box.height, box.width, [size[1], size[0]], antialias=True)


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


def colour_jitter(frames: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Float frames (..., 3, H, W) in [0, 1]: one brightness/contrast/saturation/hue draw for all."""
    def uniform(low: float, high: float) -> float:
        return float(torch.empty(()).uniform_(low, high, generator=generator))

    if float(torch.rand((), generator=generator)) >= config.jitter_probability:
        return frames
    frames = TF.adjust_brightness(frames, uniform(1 - config.brightness, 1 + config.brightness))
    frames = TF.adjust_contrast(frames, uniform(1 - config.contrast, 1 + config.contrast))
    frames = TF.adjust_saturation(frames, uniform(1 - config.saturation, 1 + config.saturation))
    if config.hue > 0:
        frames = TF.adjust_hue(frames, uniform(-config.hue, config.hue))
    return frames


def augment_triplet(frames: torch.Tensor, intrinsics: torch.Tensor, config: AugmentConfig,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random scale-crop and flip of uint8 frames (3, 3, h, w), then colour jitter.

    Returns ``(images, images_aug, intrinsics)``: float frames in [0, 1] without and with colour
    jitter (monodepth2 feeds the jittered ones to the network and computes the photometric loss
    on the others), and the intrinsics of the output images.
    """
    src_h, src_w = frames.shape[-2:]
    zoom = float(torch.empty(()).uniform_(*config.zoom, generator=generator))
    u, v = torch.rand(2, generator=generator).tolist()
    box = crop_box(src_w, src_h, config.size, zoom, u, v)
    flip = float(torch.rand((), generator=generator)) < config.flip_probability
    images = resize_crop(frames, box, config.size)
    if flip:
        images = images.flip(-1)
    images = images.float().div_(255)
    return images, colour_jitter(images, config, generator), transform_intrinsics(intrinsics, box, config.size, flip)


def centre_triplet(frames: torch.Tensor, intrinsics: torch.Tensor, size: tuple[int, int]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The deterministic view for validation: cover the training size, centre crop, no jitter."""
    box = crop_box(frames.shape[-1], frames.shape[-2], size, 1.0, 0.5, 0.5)
    return resize_crop(frames, box, size).float().div_(255), transform_intrinsics(intrinsics, box, size, False)

"""Augmentation of a triplet: one draw of parameters, applied identically to all three frames.

The frames of a triplet must stay geometrically consistent (the pretraining task reconstructs the
flow between them), so crop, scale and flip are drawn once per triplet; intrinsics follow the same
transform (:func:`geopre.data.camera.transform`) so calibrated sources stay usable downstream.

Work is split where it is cheapest. The loader's CPU workers decode, bring frames of another size
to the training size (cover + crop at a random place; nothing to do for frames already at the
training size, as ingest writes them) and draw every random factor. The training step calls
:func:`prepare_batch`, which turns the uint8 batch into float on the device and there applies the
random zoom-crop and flip (one batched ``grid_sample``) and the colour jitter. On the CPU, the
resize of the zoom-crop cost as much as the JPEG decode itself (bench/shards.py); on a GPU it is
a single cheap kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from geopre.data import camera
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

    def __iter__(self):  # unpacks as (left, top, width, height), the box geopre.data.camera takes
        return iter((self.left, self.top, self.width, self.height))


IDENTITY_ZOOM = (1.0, 0.5, 0.5, 0.0)  # zoom factor, horizontal and vertical placement in [0, 1], flip


@dataclass(frozen=True)
class AugmentParams:
    box: CropBox  # the worker's cover crop of the source frame (zoom 1)
    flip: bool
    jitter: tuple[float, float, float, float] = IDENTITY_JITTER
    zoom: tuple[float, float, float, float] = IDENTITY_ZOOM  # applied on the device, flip included


def crop_box(src_w: int, src_h: int, size: tuple[int, int], zoom: float, u: float, v: float) -> CropBox:
    """The source box that, resized to ``size``, covers it with aspect ratio kept and ``zoom``
    extra magnification; ``u, v`` in [0, 1] place it (0.5, 0.5 = centre)."""
    out_w, out_h = size
    scale = max(out_w / src_w, out_h / src_h) * zoom
    width = min(src_w, max(1, round(out_w / scale)))
    height = min(src_h, max(1, round(out_h / scale)))
    return CropBox(math.floor(u * (src_w - width)), math.floor(v * (src_h - height)), width, height)


def draw_params(src_w: int, src_h: int, config: AugmentConfig, generator: torch.Generator | None = None) -> AugmentParams:
    """One random draw for a triplet (torch's RNG: seeded per DataLoader worker). All uniforms come
    from one call, used or not, so the stream stays aligned and a draw costs one tensor op."""
    u = iter(torch.rand(11, dtype=torch.float64, generator=generator).tolist())

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * next(u)

    box = crop_box(src_w, src_h, config.size, 1.0, uniform(0, 1), uniform(0, 1))
    zoom = (uniform(*config.zoom), uniform(0, 1), uniform(0, 1))
    flip = uniform(0, 1) < config.flip_probability
    jitter_drawn = uniform(0, 1) < config.jitter_probability
    jitter = (uniform(1 - config.brightness, 1 + config.brightness), uniform(1 - config.contrast, 1 + config.contrast),
              uniform(1 - config.saturation, 1 + config.saturation), uniform(-config.hue, config.hue))
    return AugmentParams(box, flip, jitter if jitter_drawn else IDENTITY_JITTER, (*zoom, float(flip)))


def centre_params(src_w: int, src_h: int, size: tuple[int, int]) -> AugmentParams:
    """The deterministic view for validation: cover the training size, centre crop, no flip or jitter."""
    return AugmentParams(crop_box(src_w, src_h, size, 1.0, 0.5, 0.5), flip=False)


def apply_geometry(frames: list[np.ndarray], params: AugmentParams, size: tuple[int, int],
                   out: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB frames (h, w, 3) -> (3, H, W, 3): the same crop, resize and flip for each,
    written into ``out`` when given (the loader passes its slot of the batch: no extra copy).

    OpenCV's resize (area when shrinking, which antialiases; linear when enlarging) is ~2x faster
    than torchvision's on uint8 and keeps the channels-last layout the decoder produced.
    """
    import cv2

    box = params.box
    shrink = box.width > size[0] or box.height > size[1]
    if out is None:
        out = np.empty((len(frames), size[1], size[0], 3), dtype=np.uint8)
    for k, frame in enumerate(frames):
        crop = frame[box.top:box.top + box.height, box.left:box.left + box.width]
        if crop.shape[1] == size[0] and crop.shape[0] == size[1]:
            out[k] = crop[:, ::-1] if params.flip else crop
        else:
            cv2.resize(crop, size, dst=out[k], interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            if params.flip:
                out[k] = out[k, :, ::-1].copy()
    return out


def zoom_box(zoom: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """(left, top, width, height) in pixels of the box each (zoom, u, v, flip) row crops from a
    frame of ``size``: the frame shrunk by the zoom factor, placed at (u, v) in the free space."""
    width, height = size
    box_w, box_h = width / zoom[:, 0], height / zoom[:, 0]
    return zoom[:, 1] * (width - box_w), zoom[:, 2] * (height - box_h), box_w, box_h


def zoom_and_flip(images: torch.Tensor, zoom: torch.Tensor) -> torch.Tensor:
    """Float frames (B, F, 3, H, W) -> each sample's zoom box resized back to (H, W), mirrored
    where flip is set: one bilinear ``grid_sample`` for the whole batch, pixel centres kept."""
    batch, frames, channels, height, width = images.shape
    left, top, box_w, box_h = zoom_box(zoom, (width, height))
    theta = torch.zeros(batch, 2, 3, dtype=images.dtype, device=images.device)
    # Output pixel x samples left + (x + 1/2) * box_w / W - 1/2; in grid_sample's normalised
    # coordinates (align_corners=False) that is an affine map of the output's own coordinate.
    sign = 1.0 - 2.0 * zoom[:, 3]
    theta[:, 0, 0] = (box_w / width * sign).to(images)
    theta[:, 0, 2] = (2 * left / width + box_w / width - 1).to(images)
    theta[:, 1, 1] = (box_h / height).to(images)
    theta[:, 1, 2] = (2 * top / height + box_h / height - 1).to(images)
    flat = images.reshape(batch, frames * channels, height, width)
    grid = torch.nn.functional.affine_grid(theta, list(flat.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(images.shape)


def prepare_batch(batch: dict, device: torch.device | str = "cpu") -> dict:
    """The loader's uint8 batch -> float on ``device``: ``images`` (B, 3, 3, H, W) in [0, 1]
    (prev, ref, next) after the drawn zoom-crop and flip, ``images_aug`` the same with the drawn
    colour jitter (monodepth2 feeds the jittered frames to the network and computes the
    photometric loss on the others), and ``intrinsics`` transformed with the pixels."""
    images = batch["images"].to(device, non_blocking=True).permute(0, 1, 4, 2, 3).float().div_(255)
    intrinsics = batch["intrinsics"].to(device, non_blocking=True)
    zoom = batch.get("zoom")
    if zoom is not None:
        zoom = zoom.to(device, dtype=torch.float64, non_blocking=True)
        moved = ~(zoom == torch.tensor(IDENTITY_ZOOM, dtype=zoom.dtype, device=zoom.device)).all(dim=1)
        if moved.any():  # validation views are never moved: no resampling at all
            changed = torch.nonzero(moved).squeeze(1)
            images = images.clone()
            images[changed] = zoom_and_flip(images[changed], zoom[changed])
            height, width = images.shape[-2:]
            box = zoom_box(zoom, (width, height))
            new = camera.transform(intrinsics.double(), box, (width, height), zoom[:, 3] > 0.5).to(intrinsics)
            intrinsics = torch.where(moved[:, None], new, intrinsics)
    images_aug = jitter_colours(images, batch["jitter"])
    return {**batch, "images": images, "images_aug": images_aug, "intrinsics": intrinsics}

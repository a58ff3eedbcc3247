"""Pinhole intrinsics and how they follow a crop, a resize or a horizontal flip of the image.

This module is the one place that says how K moves with the pixels; the pretraining augmentation,
the shard reader, the fine-tuning dataset and the dataset readers all call it.

Convention: pixel ``(x, y)`` has its centre at the integer coordinates ``(x, y)``, the origin at the
centre of the top-left pixel. :mod:`geopre.model.geometry` backprojects exactly these coordinates
through ``K^-1``, OpenCV calibrates in them (KITTI's and Cityscapes' K are read that way) and the
synthetic worlds render and write their calibration files with them. An image transform moves
pixel centres, and K follows, as:

* crop at ``(left, top)``: ``x' = x - left``;
* resize from ``W`` to ``w`` pixels: ``x' = (x + 1/2) w / W - 1/2``. Every resampler we use (PIL,
  OpenCV, ``grid_sample(align_corners=False)``) maps the outer pixel edges onto each other, so
  the centres move this way, and ``fx' = fx w / W``;
* horizontal flip of a ``W``-wide image: ``x' = W - 1 - x``. The mirrored image is the view of a
  mirrored world (camera x negated), so fx stays positive and only ``cx' = W - 1 - cx`` changes.

monodepth2 instead multiplies a K normalised by the image size by the new size (``cx w / W``) and
leaves K alone on a flip. That puts its principal point ``(1 - w/W) / 2`` px right of where the
pixels put it (0.24 px for KITTI's 1242 -> 640), and its centred ``cx = W / 2`` 1 px right of the
mirrored one (``W / 2 - 1``) after a flip. We keep the one pixel-centre convention: exact
synthetic ground truth and the photometric warps of :mod:`geopre.model.geometry` need the K that
matches the pixels. Parity with monodepth2's published numbers does not hinge on its convention:
monodepth2 does not scale a calibrated K at all but uses one mean K for all of KITTI, which differs
from each drive's calibrated K by more than this sub-pixel shift anyway.

Intrinsics are ``(..., 4)`` arrays ``(fx, fy, cx, cy)``, numpy or torch (batched); 3x3 matrices
convert with :func:`from_matrix` / :func:`to_matrix`. Skew is not modelled (rectified cameras).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def transform(intrinsics, box, size: tuple[int, int], flip=False):
    """(fx, fy, cx, cy) of a source image -> the same for the image that crops ``box`` = (left, top,
    width, height) of it, resizes that to ``size`` = (W, H) and, where ``flip``, mirrors it.

    ``intrinsics`` is a numpy array or a torch tensor of shape (..., 4); the box entries and
    ``flip`` may be scalars or arrays that broadcast against ``intrinsics[..., 0]`` (a batch of
    boxes, a per-sample flip mask).
    """
    left, top, box_width, box_height = box
    scale_x, scale_y = size[0] / box_width, size[1] / box_height
    is_torch = not isinstance(intrinsics, np.ndarray) and hasattr(intrinsics, "unbind")
    if not is_torch:
        intrinsics = np.asarray(intrinsics, dtype=np.float64)
    fx, fy, cx, cy = (intrinsics[..., i] for i in range(4))
    cx = (cx - left + 0.5) * scale_x - 0.5
    cy = (cy - top + 0.5) * scale_y - 0.5
    if is_torch:
        import torch  # only torch callers (the shard pipeline) get here; synth stays torch-free

        cx = torch.where(torch.as_tensor(flip, device=cx.device), size[0] - 1 - cx, cx)
        return torch.stack([fx * scale_x, fy * scale_y, cx, cy], -1)
    cx = np.where(flip, size[0] - 1 - cx, cx)
    return np.stack(np.broadcast_arrays(fx * scale_x, fy * scale_y, cx, cy), -1)


def resize(intrinsics, from_size: tuple[int, int], to_size: tuple[int, int]):
    """Intrinsics of an image resized from ``from_size`` to ``to_size`` (both (W, H)): x terms
    follow the width ratio, y terms the height ratio. Cropping rows off the *bottom* (the
    Cityscapes bonnet) leaves K unchanged: crop first and pass the cropped size as ``from_size``."""
    if min(*from_size, *to_size) <= 0:
        raise ValueError(f"image sizes must be positive, got {from_size} -> {to_size}")
    return transform(intrinsics, (0, 0, *from_size), to_size)


def from_matrix(matrix: np.ndarray) -> np.ndarray:
    """(fx, fy, cx, cy) of a 3x3 K or a 3x4 projection (KITTI's P_rect)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return np.array([matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]])


def to_matrix(intrinsics) -> np.ndarray:
    """The 3x3 K of (fx, fy, cx, cy)."""
    fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels of a ``width`` x ``height`` image (the convention above)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def matrix(self) -> np.ndarray:
        return to_matrix([self.fx, self.fy, self.cx, self.cy])

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, size: tuple[int, int]) -> "Intrinsics":
        """A 3x3 K or 3x4 projection of a ``size`` = (W, H) image."""
        fx, fy, cx, cy = (float(v) for v in from_matrix(matrix))
        return cls(fx, fy, cx, cy, int(size[0]), int(size[1]))

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float) -> "Intrinsics":
        f = float((width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0))
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    def to_json(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width,
                "height": self.height}

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera at another image size."""
        fx, fy, cx, cy = resize([self.fx, self.fy, self.cx, self.cy], (self.width, self.height), (width, height))
        return Intrinsics(float(fx), float(fy), float(cx), float(cy), width, height)

"""Pinhole-camera maths shared by every dataset reader.

Both KITTI and Cityscapes ship intrinsics for the full-resolution image, while networks train on
a resized copy (640x192 in the paper, section III-D). Intrinsics must follow the resize.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def scale_intrinsics(
    intrinsics: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]
) -> np.ndarray:
    """Return a 3x3 K for an image resized from ``from_size`` to ``to_size`` (both ``(width, height)``).

    fx and cx scale with the width ratio, fy and cy with the height ratio. monodepth2 hard-codes a
    K normalised by KITTI's image size; scaling the calibrated K instead lets other cameras work.
    Cropping rows off the *bottom* of an image (the Cityscapes bonnet crop) leaves K unchanged, so
    crop first and pass the cropped size as ``from_size`` together with the matching K.
    """
    from_width, from_height = from_size
    to_width, to_height = to_size
    if min(from_width, from_height, to_width, to_height) <= 0:
        raise ValueError(f"image sizes must be positive, got {from_size} -> {to_size}")
    scaled = np.array(intrinsics, dtype=np.float64)[:3, :3].copy()
    scaled[0, :] *= to_width / from_width
    scaled[1, :] *= to_height / from_height
    return scaled


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels; pixel centres sit at integer coordinates (OpenCV/KITTI)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float) -> "Intrinsics":
        f = float((width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0))
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    def to_json(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width,
                "height": self.height}

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera at another image size (pixel-centre convention preserved)."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                          width, height)

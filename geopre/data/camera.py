"""Pinhole-camera maths shared by every dataset reader.

Both KITTI and Cityscapes ship intrinsics for the full-resolution image, while networks train on
a resized copy (640x192 in the paper, section III-D). Intrinsics must follow the resize.
"""

from __future__ import annotations

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

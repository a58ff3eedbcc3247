"""Image file readers shared by the dataset readers."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from geopre.errors import UserError


def read_uint16_png(path: str | os.PathLike, kind: str, hint: str) -> np.ndarray:
    """The raw values of a single-channel 16-bit PNG (KITTI depth, Cityscapes disparity).

    ``kind`` names the format in errors and ``hint`` tells the user where such files come from.
    """
    path = Path(path)
    encoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if encoded is None:
        raise UserError(f"{path}: missing or unreadable {kind} PNG; {hint}")
    if encoded.dtype != np.uint16 or encoded.ndim != 2:
        raise UserError(f"{path}: expected a single-channel 16-bit PNG ({kind} format), got {encoded.dtype}")
    return encoded

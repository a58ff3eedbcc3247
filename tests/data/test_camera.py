"""Intrinsics follow an image resize: x terms with the width ratio, y terms with the height ratio."""

import numpy as np
import pytest

from geopre.data.camera import scale_intrinsics


def test_scale_intrinsics_uses_separate_width_and_height_ratios():
    intrinsics = np.array([[2262.52, 0.0, 1096.98], [0.0, 2265.3, 513.137], [0.0, 0.0, 1.0]])
    # Bonnet-cropped Cityscapes (2048x768) to the paper's 640x192: x shrinks by 3.2, y by 4.
    scaled = scale_intrinsics(intrinsics, (2048, 768), (640, 192))
    assert scaled[0].tolist() == pytest.approx([2262.52 * 640 / 2048, 0.0, 1096.98 * 640 / 2048])
    assert scaled[1].tolist() == pytest.approx([0.0, 2265.3 / 4, 513.137 / 4])
    assert scaled[2].tolist() == [0.0, 0.0, 1.0]
    assert intrinsics[0, 0] == 2262.52  # input untouched


def test_scale_intrinsics_accepts_a_3x4_projection_and_rejects_empty_sizes():
    projection = np.array([[100.0, 0, 32, 5], [0, 100, 16, 0], [0, 0, 1, 0]])
    assert scale_intrinsics(projection, (64, 32), (32, 16)).shape == (3, 3)
    with pytest.raises(ValueError):
        scale_intrinsics(projection, (0, 32), (32, 16))

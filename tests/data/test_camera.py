"""K follows the pixels: a 3-D point that lands on pixel p lands on the transformed p afterwards.

Pixel centres sit at integer coordinates (geopre.model.geometry's convention), so a crop moves p by
the box corner, a resize by w/W maps p to (p + 1/2) w/W - 1/2 and a flip maps p_x to W - 1 - p_x
(the flipped image being the view of the mirrored world, camera x negated).
"""

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from geopre.data import camera


def project(k: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) pixels of camera points (N, 3) under (fx, fy, cx, cy)."""
    fx, fy, cx, cy = k
    return np.stack([fx * points[:, 0] / points[:, 2] + cx, fy * points[:, 1] / points[:, 2] + cy], 1)


def move_pixels(pixels: np.ndarray, box, size, flip: bool) -> np.ndarray:
    """Where crop ``box``, resize to ``size`` and flip take pixel positions."""
    left, top, width, height = box
    x = (pixels[:, 0] - left + 0.5) * size[0] / width - 0.5
    y = (pixels[:, 1] - top + 0.5) * size[1] / height - 0.5
    return np.stack([size[0] - 1 - x if flip else x, y], 1)


def mirrored(points: np.ndarray, flip: bool) -> np.ndarray:
    return points * np.array([-1.0, 1.0, 1.0]) if flip else points


def random_case(rng):
    width, height = int(rng.integers(20, 400)), int(rng.integers(10, 200))
    k = np.array([rng.uniform(10, 500), rng.uniform(10, 500), rng.uniform(0, width - 1), rng.uniform(0, height - 1)])
    box_w, box_h = int(rng.integers(1, width + 1)), int(rng.integers(1, height + 1))
    box = (int(rng.integers(0, width - box_w + 1)), int(rng.integers(0, height - box_h + 1)), box_w, box_h)
    size = (int(rng.integers(1, 700)), int(rng.integers(1, 300)))
    points = np.stack([rng.uniform(-5, 5, 8), rng.uniform(-3, 3, 8), rng.uniform(0.5, 80, 8)], 1)
    return k, box, size, bool(rng.integers(0, 2)), points


def test_a_projected_point_moves_with_its_pixel_under_crop_resize_and_flip():
    rng = np.random.default_rng(0)
    for _ in range(300):
        k, box, size, flip, points = random_case(rng)
        moved = camera.transform(k, box, size, flip)
        expected = move_pixels(project(k, points), box, size, flip)
        assert project(moved, mirrored(points, flip)) == pytest.approx(expected, abs=1e-9)
        assert moved[0] > 0 and moved[1] > 0  # a flip mirrors the world, never the focal length


def test_transforms_compose_like_their_pixel_maps():
    rng = np.random.default_rng(1)
    for _ in range(200):
        k, box, size, flip, points = random_case(rng)
        again_box = (int(rng.integers(0, size[0])), int(rng.integers(0, size[1])), 7, 5)
        again_size, again_flip = (int(rng.integers(1, 100)), int(rng.integers(1, 100))), bool(rng.integers(0, 2))
        twice = camera.transform(camera.transform(k, box, size, flip), again_box, again_size, again_flip)
        pixels = move_pixels(move_pixels(project(k, points), box, size, flip), again_box, again_size, again_flip)
        assert project(twice, mirrored(points, flip != again_flip)) == pytest.approx(pixels, abs=1e-9)
    # Resizing there and back, or flipping twice, is the identity.
    k = np.array([721.5377, 721.5377, 609.5593, 172.854])
    assert camera.resize(camera.resize(k, (1242, 375), (640, 192)), (640, 192), (1242, 375)) == pytest.approx(k)
    twice_flipped = camera.transform(camera.transform(k, (0, 0, 1242, 375), (1242, 375), True),
                                     (0, 0, 1242, 375), (1242, 375), True)
    assert twice_flipped == pytest.approx(k)


def test_a_batch_of_torch_boxes_and_flips_matches_numpy_row_by_row():
    rng = np.random.default_rng(2)
    cases = [random_case(rng) for _ in range(6)]
    size = (64, 32)  # one output size per batch, as in the loader
    ks = torch.tensor(np.stack([c[0] for c in cases]))
    boxes = torch.tensor([c[1] for c in cases], dtype=torch.float64).unbind(1)
    flips = torch.tensor([c[3] for c in cases])
    batch = camera.transform(ks, boxes, size, flips)
    assert batch.dtype == torch.float64 and batch.shape == (6, 4)
    for row, (k, box, _, flip, _) in zip(batch, cases):
        assert row.numpy() == pytest.approx(camera.transform(k, box, size, flip))


def gaussian_dot(size, centre, sigma=2.5) -> np.ndarray:
    """A float32 (H, W) image of a Gaussian sampled at the pixel centres around ``centre``."""
    x, y = np.arange(size[0]), np.arange(size[1])
    return (np.exp(-((x[None] - centre[0]) ** 2) / (2 * sigma**2)) *
            np.exp(-((y[:, None] - centre[1]) ** 2) / (2 * sigma**2))).astype(np.float32)


def centroid(image: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[:image.shape[0], :image.shape[1]]
    return np.array([(image * x).sum(), (image * y).sum()]) / image.sum()


@pytest.mark.parametrize("resize", ["opencv", "pil"])
def test_the_pixel_maps_are_how_real_resamplers_move_image_content(resize):
    # Anchors the maps above to real pixels: a dot where K projects a point, cropped, resized by
    # OpenCV (the shard loader) or PIL (the fine-tuning loader) and mirrored, ends where the
    # transformed K projects it. monodepth2's cx * w / W would miss by (1 - w/W) / 2 = 0.25 px here.
    k = np.array([90.0, 80.0, 101.3, 47.6])
    point = np.array([[0.7, -0.4, 6.0]])
    source = (200, 100)
    for box, size, flip in [((0, 0, 200, 100), (100, 50), False), ((30, 10, 160, 80), (80, 40), True),
                            ((50, 20, 100, 60), (200, 120), True), ((0, 0, 200, 100), (200, 100), True)]:
        image = gaussian_dot(source, project(k, point)[0])
        crop = image[box[1]:box[1] + box[3], box[0]:box[0] + box[2]]
        if resize == "opencv":
            shrink = size[0] < box[2]
            out = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        else:
            out = np.asarray(Image.fromarray(crop, mode="F").resize(size, Image.BILINEAR))
        out = out[:, ::-1] if flip else out
        moved = camera.transform(k, box, size, flip)
        assert centroid(out) == pytest.approx(project(moved, mirrored(point, flip))[0], abs=1e-3)


def test_matrix_round_trip_and_resize_checks_sizes():
    projection = np.array([[100.0, 0, 32, 5], [0, 90, 16, 0], [0, 0, 1, 0]])  # a 3x4 P_rect
    assert camera.from_matrix(projection).tolist() == [100.0, 90.0, 32.0, 16.0]
    assert camera.to_matrix(camera.from_matrix(projection)).tolist() == [[100, 0, 32], [0, 90, 16], [0, 0, 1]]
    with pytest.raises(ValueError):
        camera.resize(camera.from_matrix(projection), (0, 32), (32, 16))


def test_intrinsics_scaled_is_the_same_resize():
    intr = camera.Intrinsics.from_matrix(np.array([[2262.52, 0, 1096.98], [0, 2265.3, 513.137], [0, 0, 1]]),
                                         (2048, 768))
    half = intr.scaled(640, 192)
    assert (half.width, half.height) == (640, 192)
    expected = camera.resize(np.array([2262.52, 2265.3, 1096.98, 513.137]), (2048, 768), (640, 192))
    assert [half.fx, half.fy, half.cx, half.cy] == expected.tolist()

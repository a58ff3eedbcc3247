"""Augmentation: one draw for all three frames, intrinsics transformed with the pixels."""

import numpy as np
import pytest
import torch

from geopre.data import camera
from geopre.shards.augment import (AugmentConfig, AugmentParams, apply_geometry, centre_params,
                                   crop_box, draw_params, prepare_batch, zoom_and_flip)


def test_the_three_frames_get_the_same_crop_flip_and_colour():
    frame = np.random.default_rng(0).integers(0, 256, (40, 90, 3), dtype=np.uint8)
    config = AugmentConfig(size=(32, 16), jitter_probability=1.0)
    for seed in range(5):
        params = draw_params(90, 40, config, torch.Generator().manual_seed(seed))
        images = apply_geometry([frame, frame, frame], params, config.size)
        assert images.shape == (3, 16, 32, 3) and (images == images[:1]).all()
        batch = prepare_batch({"images": torch.from_numpy(images.copy())[None], "jitter": torch.tensor([params.jitter]),
                               "intrinsics": torch.zeros(1, 4)})
        aug = batch["images_aug"][0]
        assert batch["images"].shape == (1, 3, 3, 16, 32)
        assert torch.equal(aug[0], aug[1]) and torch.equal(aug[1], aug[2]) and not torch.equal(aug, batch["images"][0])


def test_flip_mirrors_the_pixels_and_the_principal_point():
    frame = np.zeros((16, 32, 3), dtype=np.uint8)
    frame[:, :4] = 255
    params = AugmentParams(crop_box(32, 16, (32, 16), 1.0, 0.5, 0.5), flip=True)
    images = apply_geometry([frame] * 3, params, (32, 16))
    assert (images[:, :, -4:] == 255).all() and (images[:, :, :-4] == 0).all()
    k = camera.transform(torch.tensor([20.0, 20.0, 10.0, 7.5]), params.box, (32, 16), flip=True)
    assert torch.allclose(k, torch.tensor([20.0, 20.0, 21.0, 7.5]))


def test_centre_view_of_a_wide_frame_crops_the_sides():
    frame = np.zeros((20, 80, 3), dtype=np.uint8)
    frame[:, 30:50] = 255
    params = centre_params(80, 20, (40, 20))
    images = apply_geometry([frame] * 3, params, (40, 20))
    assert images.shape == (3, 20, 40, 3) and images[0, 10, 20, 0] == 255 and images[0, 10, 0, 0] == 0
    k = camera.transform(torch.tensor([80.0, 80.0, 39.5, 9.5]), params.box, (40, 20), params.flip)
    assert torch.allclose(k, torch.tensor([80.0, 80.0, 19.5, 9.5]))




def test_device_zoom_and_flip_move_pixels_and_intrinsics_together():
    # A bright dot at a known pixel, and a camera whose principal point sits on it.
    height, width = 16, 32
    images = torch.zeros(2, 3, 3, height, width)
    images[:, :, :, 5, 9] = 1.0
    k = torch.tensor([[30.0, 30.0, 9.0, 5.0]] * 2)
    zoom = torch.tensor([[1.0, 0.5, 0.5, 1.0], [1.6, 0.25, 0.75, 0.0]], dtype=torch.float64)
    uint8 = (images * 255).byte().permute(0, 1, 3, 4, 2)
    batch = prepare_batch({"images": uint8, "jitter": torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 2), "zoom": zoom,
                           "intrinsics": k})
    for b in range(2):
        peak = torch.nonzero(batch["images"][b, 1, 0] == batch["images"][b, 1, 0].max())[0]
        cx, cy = batch["intrinsics"][b, 2:].tolist()
        # The dot is where the new principal point says (bilinear spreading: within half a pixel).
        assert abs(peak[1].item() - cx) <= 0.5 + 1e-6 and abs(peak[0].item() - cy) <= 0.5 + 1e-6
    assert batch["intrinsics"][1, 0] == pytest.approx(30.0 * 1.6)
    # Flip alone mirrors exactly.
    flipped = zoom_and_flip(images[:1], zoom[:1])
    assert torch.allclose(flipped, torch.flip(images[:1], dims=[-1]), atol=1e-6)


def test_validation_views_are_not_resampled():
    images = torch.randint(0, 256, (1, 3, 8, 16, 3), dtype=torch.uint8)
    batch = prepare_batch({"images": images, "jitter": torch.tensor([[1.0, 1.0, 1.0, 0.0]]),
                           "zoom": torch.tensor([[1.0, 0.5, 0.5, 0.0]], dtype=torch.float64),
                           "intrinsics": torch.tensor([[10.0, 10.0, 7.5, 3.5]])})
    assert torch.equal(batch["images"][0], images[0].permute(0, 3, 1, 2).float() / 255)
    assert torch.equal(batch["intrinsics"], torch.tensor([[10.0, 10.0, 7.5, 3.5]]))

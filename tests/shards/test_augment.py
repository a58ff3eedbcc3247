"""Augmentation: one draw for all three frames, intrinsics transformed with the pixels."""

import numpy as np
import torch

from geopre.shards.augment import (AugmentConfig, AugmentParams, apply_geometry, centre_params,
                                   crop_box, draw_params, prepare_batch, transform_intrinsics)


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
    k = transform_intrinsics(torch.tensor([20.0, 20.0, 10.0, 7.5]), params.box, (32, 16), flip=True)
    assert torch.allclose(k, torch.tensor([20.0, 20.0, 21.0, 7.5]))


def test_intrinsics_follow_crop_and_scale():
    k = torch.tensor([100.0, 100.0, 49.5, 24.5])  # centred principal point in a 100x50 image
    box = crop_box(100, 50, (50, 25), zoom=1.0, u=0.5, v=0.5)
    assert (box.width, box.height, box.left, box.top) == (100, 50, 0, 0)
    assert torch.allclose(transform_intrinsics(k, box, (50, 25), flip=False), torch.tensor([50.0, 50.0, 24.5, 12.0]))
    zoomed = crop_box(100, 50, (50, 25), zoom=2.0, u=0.0, v=0.0)
    assert (zoomed.width, zoomed.left) == (50, 0)
    assert torch.allclose(transform_intrinsics(k, zoomed, (50, 25), flip=False)[:3], torch.tensor([100.0, 100.0, 49.5]))


def test_centre_view_of_a_wide_frame_crops_the_sides():
    frame = np.zeros((20, 80, 3), dtype=np.uint8)
    frame[:, 30:50] = 255
    params = centre_params(80, 20, (40, 20))
    images = apply_geometry([frame] * 3, params, (40, 20))
    assert images.shape == (3, 20, 40, 3) and images[0, 10, 20, 0] == 255 and images[0, 10, 0, 0] == 0
    k = transform_intrinsics(torch.tensor([80.0, 80.0, 39.5, 9.5]), params.box, (40, 20), params.flip)
    assert torch.allclose(k, torch.tensor([80.0, 80.0, 19.5, 9.5]))



"""Augmentation: one draw for all three frames, intrinsics transformed with the pixels."""

import torch

from geopre.shards.augment import AugmentConfig, augment_triplet, centre_triplet, crop_box, transform_intrinsics


def test_the_three_frames_get_the_same_crop_flip_and_colour():
    frame = torch.randint(0, 256, (3, 40, 90), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    frames = frame.expand(3, 3, 40, 90).clone()
    config = AugmentConfig(size=(32, 16), jitter_probability=1.0)
    for seed in range(5):
        images, images_aug, _ = augment_triplet(frames, torch.tensor([50.0, 50.0, 44.5, 19.5]), config,
                                                torch.Generator().manual_seed(seed))
        assert images.shape == images_aug.shape == (3, 3, 16, 32)
        assert torch.equal(images[0], images[1]) and torch.equal(images[1], images[2])
        assert torch.equal(images_aug[0], images_aug[2]) and not torch.equal(images_aug, images)


def test_intrinsics_follow_crop_scale_and_flip():
    k = torch.tensor([100.0, 100.0, 49.5, 24.5])  # centred principal point in a 100x50 image
    box = crop_box(100, 50, (50, 25), zoom=1.0, u=0.5, v=0.5)
    assert (box.width, box.height, box.left, box.top) == (100, 50, 0, 0)
    assert torch.allclose(transform_intrinsics(k, box, (50, 25), flip=False), torch.tensor([50.0, 50.0, 24.5, 12.0]))
    assert torch.allclose(transform_intrinsics(k, box, (50, 25), flip=True), torch.tensor([50.0, 50.0, 24.5, 12.0]))
    zoomed = crop_box(100, 50, (50, 25), zoom=2.0, u=0.0, v=0.0)
    assert (zoomed.width, zoomed.left) == (50, 0)
    assert torch.allclose(transform_intrinsics(k, zoomed, (50, 25), flip=False)[:3], torch.tensor([100.0, 100.0, 49.5]))


def test_centre_view_of_a_wide_frame_crops_the_sides():
    frames = torch.zeros(3, 3, 20, 80, dtype=torch.uint8)
    frames[..., 30:50] = 255
    images, k = centre_triplet(frames, torch.tensor([80.0, 80.0, 39.5, 9.5]), (40, 20))
    assert images.shape == (3, 3, 20, 40) and images[0, 0, 10, 20] == 1.0 and images[0, 0, 10, 0] == 0.0
    assert torch.allclose(k, torch.tensor([80.0, 80.0, 19.5, 9.5]))

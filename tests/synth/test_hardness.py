import numpy as np
import pytest

from geopre.synth import hardness, world


def noise_image(rng, shape=(48, 64)):
    return rng.integers(0, 256, shape).astype(np.uint8)


def test_patch_reuse_finds_a_copy_at_any_offset_within_tolerance():
    rng = np.random.default_rng(0)
    train = [noise_image(rng) for _ in range(3)]
    test = [noise_image(rng)]
    # Plant a training patch (shifted by +-2 grey levels) at an unrelated offset of the test image,
    # and sample only there: every tested patch overlaps the copy fully.
    copy = train[1][17:33, 29:45].astype(int) + rng.integers(-2, 3, (16, 16))
    test[0][5:21, 40:56] = np.clip(copy, 0, 255)
    only_copy = [test[0][5:21, 40:56]]
    found = hardness.patch_reuse(train, only_copy, samples=5, max_probes=1 << 16)
    assert found["tested"] == 5 and found["fraction"] == 1.0
    # Independent noise never matches, and more than 2 grey levels off is not a match.
    assert hardness.patch_reuse(train, test, samples=200)["fraction"] < 0.02
    far = [np.clip(train[1][17:33, 29:45].astype(int) + 3 * rng.choice((-1, 1), (16, 16)), 0, 255).astype(np.uint8)]
    assert hardness.patch_reuse(train, far, samples=5, max_probes=1 << 16)["fraction"] == 0.0


def test_patch_reuse_ignores_flat_patches():
    flat = [np.full((32, 32), 90, np.uint8)]
    assert hardness.patch_reuse(flat, flat, samples=10)["tested"] == 0


def test_prior_scores_zero_when_test_repeats_training_and_constant_is_worse():
    rng = np.random.default_rng(1)
    depth = rng.uniform(2.0, 60.0, (1, 40, 60)).astype(np.float32)
    depth[0, :10] = np.inf  # sky rows
    scores = hardness.prior_scores(np.repeat(depth, 3, axis=0), depth)
    assert scores["per_pixel_prior_abs_rel_median_scaled"] == pytest.approx(0.0, abs=1e-6)
    assert scores["per_pixel_prior_abs_rel_metric"] == pytest.approx(0.0, abs=1e-6)
    assert scores["constant_abs_rel_median_scaled"] > 0.3


def test_yaw_rates_of_a_camera_turning_at_a_known_rate():
    poses = np.stack([np.eye(4)] * 5)
    for k in range(5):
        poses[k, :3, :3] = world.rotation_yaw_pitch(np.deg2rad(2.0 * k), 0.01)
    np.testing.assert_allclose(hardness.yaw_rates(poses, fps=10.0), 20.0, rtol=1e-6)

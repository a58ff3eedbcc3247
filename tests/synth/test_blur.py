import dataclasses

import numpy as np

from geopre.synth import blur, render, world


def test_constant_horizontal_flow_turns_a_step_edge_into_a_ramp():
    image = np.zeros((3, 12, 1), np.float32)
    image[:, 6:] = 1.0
    flow = np.zeros((3, 12, 2), np.float32)
    flow[..., 0] = 4.0  # 4 px of motion during the exposure: 5 taps at -2, -1, 0, 1, 2 px
    out = blur.blur_along(image, flow)[1, :, 0]
    np.testing.assert_allclose(out, [0, 0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1], atol=1e-6)
    # No motion, no blur.
    np.testing.assert_array_equal(blur.blur_along(image, np.zeros_like(flow)), image)


def test_exposure_flow_of_a_sideways_move_is_f_times_shift_over_depth():
    intr = world.Intrinsics.from_hfov(40, 20, 60.0)
    depth = np.full((20, 40), 10.0, np.float32)
    depth[:5] = np.inf  # sky: a camera that only translates sees it still
    start, end = np.eye(4), np.eye(4)
    start[0, 3], end[0, 3] = -0.05, 0.05  # 10 cm to the right during the exposure
    flow = blur.exposure_flow(depth, intr, np.eye(4), start, end)
    np.testing.assert_allclose(flow[5:, :, 0], -intr.fx * 0.1 / 10.0, rtol=1e-5)
    np.testing.assert_allclose(flow[5:, :, 1], 0.0, atol=1e-5)
    np.testing.assert_allclose(flow[:5], 0.0, atol=1e-3)
    # A surface moving with the camera does not streak.
    shift = np.zeros((20, 40, 3))
    moved = (shift + start[:3, 3], shift + end[:3, 3])
    np.testing.assert_allclose(blur.exposure_flow(depth, intr, np.eye(4), start, end, moved)[5:], 0.0, atol=1e-4)


def test_a_frame_at_speed_is_blurred_along_the_motion_and_depth_stays_sharp():
    intr = world.Intrinsics.from_hfov(160, 64, 80.0)
    drive = world.DriveConfig(min_cruise_speed=13.0, stop_probability=0.0)
    seq = dataclasses.replace(world.make_sequence(4, 4.0, 10.0, intr, drive=drive), noise=0.0)
    traj = seq.trajectory
    assert traj.speed[0] > 13.0
    a = render.render_view(dataclasses.replace(seq, shutter=0.03), 0)
    b = render.render_view(dataclasses.replace(seq, shutter=0.0), 0)
    np.testing.assert_array_equal(a.depth, b.depth)
    # Driving forward, the image streams outwards: the outer columns lose horizontal detail, more
    # than vertical detail.
    sides = np.r_[0:40, 120:160]
    grad = lambda im, axis: np.abs(np.diff(im[:, sides].astype(float), axis=axis)).mean()  # noqa: E731
    across, up = grad(a.image, 1) / grad(b.image, 1), grad(a.image, 0) / grad(b.image, 0)
    assert across < 0.9 and across < up - 0.03


def test_a_stopped_camera_is_not_blurred():
    intr = world.Intrinsics.from_hfov(64, 32, 80.0)
    seq = world.make_sequence(3, 2.0, 10.0, intr, drive=world.DriveConfig(start_stopped=1.0))
    assert seq.trajectory.stopped[0]
    long, sharp = dataclasses.replace(seq, shutter=0.03), dataclasses.replace(seq, shutter=0.0)
    np.testing.assert_array_equal(render.render_view(long, 0).image, render.render_view(sharp, 0).image)


def test_shutter_is_drawn_per_drive_from_its_range():
    intr = world.Intrinsics.from_hfov(32, 16, 80.0)
    shutters = {world.make_sequence(seed, 1.0, 10.0, intr, shutter_ms=(0.5, 2.0)).shutter for seed in range(4)}
    assert len(shutters) == 4 and all(0.0005 <= s <= 0.002 for s in shutters)
    assert world.make_sequence(2, 1.0, 10.0, intr).shutter == world.make_sequence(2, 1.0, 10.0, intr).shutter

import numpy as np
import pytest

from geopre.synth import render, world


@pytest.fixture(scope="module")
def sequence():
    intr = world.Intrinsics.from_hfov(160, 64, 75.0)
    return world.make_sequence(7, 6.0, 10.0, intr, style=world.SUBURBAN, pitch_bias_deg=1.5)


def test_depth_back_projects_onto_the_surface_that_was_hit(sequence):
    index = 12
    view = render.render_view(sequence, index)
    intr, traj = sequence.intrinsics, sequence.trajectory
    lo, hi = sequence.scene.boxes.at(float(traj.traffic_time[index]))
    pose = traj.pose(index)
    v, u = np.nonzero(np.isfinite(view.depth))
    z = view.depth[v, u].astype(np.float64)
    cam = np.stack([(u - intr.cx) / intr.fx * z, (v - intr.cy) / intr.fy * z, z], axis=1)
    points = cam @ pose[:3, :3].T + pose[:3, 3]
    on_ground = np.abs(points[:, 1]) < 1e-3 * np.maximum(z, 1.0)
    # Every other hit must lie on some box's surface: inside its extent and on one of its faces.
    rest = points[~on_ground]
    tol = 2e-3 * np.maximum(z[~on_ground], 1.0)[:, None]
    inside = np.all((rest[:, None, :] >= lo[None] - tol[:, None]) & (rest[:, None, :] <= hi[None] + tol[:, None]), axis=2)
    on_face = np.any((np.abs(rest[:, None, :] - lo[None]) < tol[:, None]) | (np.abs(rest[:, None, :] - hi[None]) < tol[:, None]), axis=2)
    assert on_ground.mean() > 0.2
    assert np.all(np.any(inside & on_face, axis=1))


def test_right_image_is_left_image_warped_by_disparity(sequence):
    baseline = 0.54
    left = render.render_view(sequence, 20)
    right = render.render_view(sequence, 20, offset=(baseline, 0.0, 0.0))
    intr = sequence.intrinsics
    h, w = left.depth.shape
    v, u = np.mgrid[0:h, 0:w]
    disparity = intr.fx * baseline / left.depth  # 0 for sky
    ur = u - disparity
    inside = np.isfinite(left.depth) & (ur >= 0) & (ur <= w - 2) & (left.depth > 2.0)
    u0 = np.floor(ur[inside]).astype(int)
    a = ur[inside] - u0
    vv = v[inside]
    # Not occluded: the right camera sees the same depth at the matching pixel.
    depth_r = (1 - a) * right.depth[vv, u0] + a * right.depth[vv, u0 + 1]
    visible = np.abs(depth_r - left.depth[inside]) < 0.01 * left.depth[inside]
    sample = (1 - a)[:, None] * right.image[vv, u0].astype(float) + a[:, None] * right.image[vv, u0 + 1].astype(float)
    error = np.abs(sample - left.image[inside].astype(float)).mean(axis=1)[visible]
    assert visible.mean() > 0.8
    assert np.median(error) < 3.0 and np.mean(error) < 8.0


def test_stopped_camera_renders_identical_frames():
    intr = world.Intrinsics.from_hfov(96, 32, 80.0)
    seq = world.make_sequence(3, 8.0, 10.0, intr, drive=world.DriveConfig(start_stopped=1.0))
    assert seq.trajectory.stopped[:2].all()
    a, b = render.render_view(seq, 0), render.render_view(seq, 1)
    np.testing.assert_array_equal(a.image, b.image)
    moving = np.flatnonzero(~seq.trajectory.stopped)[3]
    assert not np.array_equal(render.render_view(seq, moving).image, render.render_view(seq, moving + 1).image)


def test_pulse_box_filter_averages_to_duty_cycle_when_far():
    x = np.linspace(0, 10, 1001) + 0.0037  # off the band edges, where coverage is 1/2
    near = render.pulse(x, 2.0, 0.5, 1.0, np.full_like(x, 1e-4))
    np.testing.assert_array_equal(near, ((x % 2.0) >= 0.5) & ((x % 2.0) < 1.0))
    far = render.pulse(x, 2.0, 0.5, 1.0, np.full_like(x, 10.0))
    np.testing.assert_allclose(far, 0.25)


def test_lidar_scan_hits_ground_at_the_right_range():
    intr = world.Intrinsics.from_hfov(64, 32, 80.0)
    seq = world.make_sequence(3, 2.0, 10.0, intr)
    mount = np.eye(4)
    mount[:3, :3] = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # LiDAR axes -> camera
    points = render.lidar_scan(seq, 0, mount)
    assert points.dtype == np.float32 and points.shape[1] == 4
    # Ground returns lie 1.65 m below the sensor (camera height, level LiDAR): z = -1.65 (+- wobble).
    ground = points[np.abs(points[:, 2] + seq.trajectory.camera_height) < 0.15]
    assert len(ground) > 0.3 * len(points)
    assert np.all(np.linalg.norm(points[:, :3], axis=1) < render.LidarConfig().max_range)

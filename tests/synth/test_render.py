import numpy as np
import pytest

from geopre.synth import render, world


@pytest.fixture(scope="module")
def sequence():
    intr = world.Intrinsics.from_hfov(160, 64, 75.0)
    return world.make_sequence(7, 6.0, 10.0, intr, style=world.SUBURBAN, pitch_bias_deg=1.5)


def trace(sequence, index):
    """The renderer's own steps for frame ``index``: camera, primitives, ray hits."""
    traj = sequence.trajectory
    rotation, centre = traj.rotation(index), traj.position(index)
    posed = sequence.scene.boxes.at(float(traj.traffic_time[index]), sequence.scene.road)
    dirs = render.camera_rays(sequence.intrinsics, rotation)
    hits = render.cast(centre, dirs, posed, render.pinhole_windows(posed, sequence.intrinsics, rotation, centre))
    return posed, hits


def back_project(depth, intr, pose):
    v, u = np.nonzero(np.isfinite(depth))
    z = depth[v, u].astype(np.float64)
    cam = np.stack([(u - intr.cx) / intr.fx * z, (v - intr.cy) / intr.fy * z, z], axis=1)
    return v, u, z, cam @ pose[:3, :3].T + pose[:3, 3]


def test_depth_back_projects_onto_the_surface_that_was_hit(sequence):
    index = 12
    view = render.render_view(sequence, index)
    posed, hits = trace(sequence, index)
    np.testing.assert_array_equal(hits.t, view.depth)
    v, u, z, points = back_project(view.depth, sequence.intrinsics, sequence.trajectory.pose(index))
    which = hits.box[v, u]
    tol = 2e-3 * np.maximum(z, 1.0)
    ground = which < 0
    # Ground hits lie on the heightfield: the hit point's Y is the terrain's height under it.
    terrain = sequence.scene.terrain
    assert terrain.slope_bound > 0.03, "the fixture should drive on hills"
    on_terrain = np.abs(points[ground, 1] - terrain.height(points[ground, 0], points[ground, 2]))
    assert ground.mean() > 0.2 and np.all(on_terrain < 1e-3)
    # Every other hit lies on the surface of the primitive it reports, in that primitive's frame.
    idx, p, t = which[~ground], points[~ground], tol[~ground, None]
    local = np.einsum("nji,nj->ni", world.yaw_rotation(posed.yaw[idx]), p)
    lo, hi, kind = posed.lo[idx], posed.hi[idx], posed.kind[idx]
    inside = np.all((local >= lo - t) & (local <= hi + t), axis=1)
    on_face = np.any((np.abs(local - lo) < t) | (np.abs(local - hi) < t), axis=1)
    centre, radii = 0.5 * (lo + hi), 0.5 * (hi - lo)
    radial = np.hypot(local[:, 0] - centre[:, 0], local[:, 2] - centre[:, 2])
    on_cylinder = np.abs(radial - radii[:, 0]) < t[:, 0]
    on_spheroid = np.abs(np.sqrt((radial / radii[:, 0]) ** 2 + ((local[:, 1] - centre[:, 1]) / radii[:, 1]) ** 2)
                         - 1.0) * radii[:, 0] < t[:, 0]
    ok = inside & np.select([kind == world.BOX, kind == world.CYLINDER], [on_face, on_cylinder], on_spheroid)
    assert np.all(ok)
    assert len(set(kind.tolist())) >= 2, "the frame should show boxes and round primitives"


def test_world_points_reproject_between_frames_of_a_turning_camera_on_a_slope():
    """A static world point seen in one frame lands, with the written poses, where the other frame
    sees it: the check that curved roads, hills and turning, pitching cameras keep geometry exact."""
    intr = world.Intrinsics.from_hfov(128, 48, 80.0)
    for seed in range(40):
        seq = world.make_sequence(seed, 8.0, 10.0, intr, drive=world.DriveConfig(stop_probability=0.0))
        headings = [np.arctan2(seq.trajectory.rotation(i)[0, 2], seq.trajectory.rotation(i)[2, 2]) for i in range(80)]
        turn = np.abs(np.diff(headings))
        heights = [seq.trajectory.position(i)[1] for i in range(80)]
        if turn.max() > np.deg2rad(1.5) and np.ptp(heights) > 0.3:
            break
    i = int(np.argmax(turn))
    j = i + 1
    assert np.rad2deg(turn[i]) > 1.5 and np.ptp(heights) > 0.3, "no seed gave a turning camera on a slope"
    # The camera rides the ground: camera height above the terrain, pitched with the road.
    terrain, pose = seq.scene.terrain, seq.trajectory.pose(i)
    assert abs(terrain.height(pose[0, 3], pose[2, 3]) - pose[1, 3] - seq.trajectory.camera_height) < 1e-9
    posed_i, hits_i = trace(seq, i)
    _, hits_j = trace(seq, j)
    v, u, z, points = back_project(hits_i.t, intr, seq.trajectory.pose(i))
    static = (hits_i.box[v, u] < 0) | (seq.scene.boxes.speed[np.maximum(hits_i.box[v, u], 0)] == 0)
    pose_j = seq.trajectory.pose(j)
    cam = (points - pose_j[:3, 3]) @ pose_j[:3, :3]
    uj = intr.fx * cam[:, 0] / cam[:, 2] + intr.cx
    vj = intr.fy * cam[:, 1] / cam[:, 2] + intr.cy
    inside = static & (uj >= 0) & (uj < intr.width) & (vj >= 0) & (vj < intr.height) & (cam[:, 2] > 1.0)
    # Cast frame j's rays through the exact (sub-pixel) projections: they must meet the same points.
    rays = np.stack([(uj[inside] - intr.cx) / intr.fx, (vj[inside] - intr.cy) / intr.fy, np.ones(inside.sum())], -1)
    rays = (rays @ pose_j[:3, :3].T).astype(np.float32)[None]
    posed_j = seq.scene.boxes.at(float(seq.trajectory.traffic_time[j]), seq.scene.road)
    everywhere = np.tile([0, 1, 0, rays.shape[1]], (len(posed_j.lo), 1))
    seen = render.cast(pose_j[:3, 3], rays, posed_j, everywhere).t[0]
    expected = cam[inside, 2]
    rel = np.abs(seen - expected) / expected
    assert inside.sum() > 1000
    assert np.median(rel) < 1e-4 and np.mean(rel < 1e-3) > 0.9
    # A point frame j does not see where it should is hidden behind something nearer (a car that
    # moved in front), never seen through: a ray may stop short of a point, not pass beyond it.
    assert np.mean(seen < expected * (1 + 1e-3)) > 0.998


def test_right_image_is_left_image_warped_by_disparity(sequence):
    baseline = 0.54
    left = render.render_view(sequence, 20, clean=True)
    right = render.render_view(sequence, 20, offset=(baseline, 0.0, 0.0), clean=True)
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
    # Ground returns, carried to the world with the camera's pose, lie on the hills' heightfield.
    world_points = points[:, :3].astype(np.float64) @ (seq.trajectory.pose(0) @ mount)[:3, :3].T \
        + (seq.trajectory.pose(0) @ mount)[:3, 3]
    terrain = seq.scene.terrain
    assert terrain.slope_bound > 0.03
    on_ground = np.abs(world_points[:, 1] - terrain.height(world_points[:, 0], world_points[:, 2])) < 1e-3
    assert on_ground.mean() > 0.3
    assert np.all(np.linalg.norm(points[:, :3], axis=1) < render.LidarConfig().max_range)

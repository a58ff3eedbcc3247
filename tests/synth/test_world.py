import numpy as np
import pytest

from geopre.synth import world


def test_speed_profile_stops_exactly_and_respects_acceleration_limits():
    config = world.DriveConfig(stop_probability=1.0)
    t, v, s, tau = world.speed_profile(40.0, config, np.random.default_rng(0))
    dt = t[1] - t[0]
    assert (v == 0).any(), "a stop segment must reach exactly zero speed"
    assert v.max() <= config.max_speed + 1e-9
    dv = np.diff(v) / dt
    assert dv.max() <= config.acceleration + 1e-6 and dv.min() >= -config.deceleration - 1e-6
    # The car does not move, and the street's traffic waits, while stopped.
    stopped = np.flatnonzero((v[1:] == 0) & (v[:-1] == 0))
    assert np.all(s[stopped + 1] == s[stopped]) and np.all(tau[stopped + 1] == tau[stopped])


def test_stopped_frames_have_identical_poses_and_moving_frames_do_not():
    traj = world.make_trajectory(1, 30.0, 10.0, world.DriveConfig(start_stopped=1.0, stop_probability=0.0))
    assert traj.stopped[0] and traj.stopped[1]
    np.testing.assert_array_equal(traj.pose(0), traj.pose(1))
    moving = np.flatnonzero(~traj.stopped)
    assert len(moving) > 10
    assert not np.allclose(traj.pose(moving[5]), traj.pose(moving[6]))


def test_scene_is_a_pure_function_of_its_seed():
    a = world.generate_scene(11, world.CITY, 100.0)
    b = world.generate_scene(11, world.CITY, 100.0)
    c = world.generate_scene(12, world.CITY, 100.0)
    np.testing.assert_array_equal(a.boxes.lo, b.boxes.lo)
    assert a.boxes.lo.shape != c.boxes.lo.shape or not np.array_equal(a.boxes.lo, c.boxes.lo)


def test_ego_lane_is_free_of_other_cars():
    for style in (world.SUBURBAN, world.CITY):
        scene = world.generate_scene(2, style, 300.0)
        cars = np.isin(scene.boxes.material, [world.CAR_BODY, world.CAR_CABIN, world.CAR_UNDER])
        for t in (0.0, 7.0):
            corners = scene.boxes.at(t, scene.road).corners_world()[cars]
            s, n = scene.road.to_road(corners[..., 0].ravel(), corners[..., 2].ravel())
            n = n.reshape(corners.shape[:2])
            # No car reaches into the camera's lateral band (lane centre +- 0.6 m of wobble and body).
            band = (scene.ego_lane_x - 0.6, scene.ego_lane_x + 0.6)
            assert not np.any((n.min(axis=1) < band[1]) & (n.max(axis=1) > band[0]))


def test_road_coordinates_invert_the_centre_line():
    scene = world.generate_scene(5, world.SUBURBAN, 400.0)
    road = scene.road
    assert np.abs(road.curvature).max() > 0.005, "this seed's street should bend"
    rng = np.random.default_rng(0)
    s = rng.uniform(-50.0, 450.0, 2000)
    n = rng.uniform(-25.0, 25.0, 2000)
    x, z, _ = road.point(s, n)
    s2, n2 = road.to_road(x, z)
    np.testing.assert_allclose(s2, s, atol=0.02)
    np.testing.assert_allclose(n2, n, atol=5e-3)  # the centre line is sampled every 0.5 m


def test_every_building_and_street_draws_its_own_look():
    a = world.generate_scene(1, world.CITY, 300.0)
    b = world.generate_scene(2, world.CITY, 300.0)
    facades = a.boxes.params[a.boxes.material == world.BUILDING]
    assert len(facades) > 20
    for column in (world.P_SEED, world.P_WIN_PITCH, world.P_STOREY, world.P_TEXEL, world.P_U0):
        assert len(np.unique(facades[:, column])) > 0.9 * len(facades)
    assert len(np.unique(facades[:, world.P_GROUND_FLOOR])) == 3
    assert len({tuple(c) for c in a.boxes.colour[a.boxes.material == world.BUILDING]}) == len(facades)
    assert a.ground["dash"] != b.ground["dash"] and a.ground["lane_width"] != b.ground["lane_width"]


def test_intrinsics_scaling_keeps_pixel_centre_convention():
    intr = world.Intrinsics.from_hfov(640, 192, 90.0)
    assert intr.fx == pytest.approx(320.0) and intr.fy == intr.fx and intr.cx == 319.5
    half = intr.scaled(320, 96)
    assert half.fx == pytest.approx(160.0) and half.cx == 159.5 and half.cy == 47.5


def test_lead_car_keeps_its_distance_and_waits_at_stops():
    intr = world.Intrinsics.from_hfov(64, 32, 80.0)
    led = 0
    for seed in range(6):
        seq = world.make_sequence(seed, 12.0, 10.0, intr, drive=world.DriveConfig(stop_probability=1.0))
        boxes, traj = seq.scene.boxes, seq.trajectory
        if boxes.leads is None:
            continue
        led += 1
        assert np.all(boxes.path_n[boxes.leads] == seq.scene.ego_lane_x)
        gaps = np.array([boxes.arc_length(float(tau))[boxes.leads].min() - s
                         for tau, s in zip(traj.traffic_time, traj.distance)])
        assert gaps.min() > 7.0  # its nearest box lies 2.5 m behind its centre at most
        stopped = np.flatnonzero(traj.stopped[1:] & traj.stopped[:-1])
        np.testing.assert_array_equal(gaps[stopped], gaps[stopped + 1])
    assert led >= 2

"""OXTS packets against pykitti's own conversion, on a drive that turns and climbs."""

import numpy as np
from pykitti import utils

from geopre.synth import oxts

SPEED, RADIUS, CLIMB, FPS = 10.0, 50.0, 0.5, 10.0  # m/s along the ground, m, m/s upward, Hz


def turning_climb(frames=40):
    """IMU-to-ENU poses of a car circling left (counter-clockwise) while climbing a constant grade."""
    times = np.arange(frames) / FPS
    theta = SPEED / RADIUS * times
    poses = np.tile(np.eye(4), (frames, 1, 1))
    poses[:, 0, 3] = RADIUS * np.sin(theta)
    poses[:, 1, 3] = RADIUS * (1 - np.cos(theta))
    poses[:, 2, 3] = CLIMB * times
    pitch = -np.arctan2(CLIMB, SPEED)  # front up is negative pitch
    for k, yaw in enumerate(theta):
        poses[k, :3, :3] = utils.rotz(yaw) @ utils.roty(pitch)
    return poses, times


def test_latlon_inverts_pykittis_mercator():
    lat0, lon0 = 49.011, 8.42
    east = np.array([0.0, 350.0, -1200.0, 2500.0])
    north = np.array([0.0, -80.0, 900.0, 1500.0])
    lat, lon = oxts.latlon_from_local(east, north, lat0, lon0)
    np.testing.assert_allclose([lat[0], lon[0]], [lat0, lon0], rtol=0, atol=1e-12)
    scale = np.cos(np.deg2rad(lat0))
    origin = utils.pose_from_oxts_packet(utils.OxtsPacket(lat0, lon0, 0, 0, 0, 0, *[0] * 24), scale)[1]
    for k in range(len(east)):
        packet = utils.OxtsPacket(lat[k], lon[k], 7.0, 0, 0, 0, *[0] * 24)
        t = utils.pose_from_oxts_packet(packet, scale)[1] - origin
        np.testing.assert_allclose(t, [east[k], north[k], 7.0], atol=1e-6)


def test_euler_angles_rebuild_the_rotation_in_kittis_order():
    rng = np.random.default_rng(0)
    for roll, pitch, yaw in rng.uniform([-np.pi, -1.5, -np.pi], [np.pi, 1.5, np.pi], size=(20, 3)):
        rotation = utils.rotz(yaw) @ utils.roty(pitch) @ utils.rotx(roll)
        got = oxts.euler_from_rotation(rotation)
        np.testing.assert_allclose(utils.rotz(got[2]) @ utils.roty(got[1]) @ utils.rotx(got[0]), rotation, atol=1e-12)
        np.testing.assert_allclose(got, (roll, pitch, yaw), atol=1e-9)


def test_rates_of_a_turning_climb_are_what_an_oxts_unit_reports():
    poses, times = turning_climb()
    packets = oxts.oxts_packets(poses, times, (49.0, 8.4, 115.0))
    p = dict(zip(oxts.FIELDS, packets[2:-2].T))  # central differences of central differences
    ground_speed, turn_rate = SPEED, SPEED / RADIUS
    np.testing.assert_allclose(p["vf"], ground_speed, rtol=1e-3)
    np.testing.assert_allclose(np.hypot(p["vn"], p["ve"]), ground_speed, rtol=1e-3)
    np.testing.assert_allclose(p["vu"], CLIMB, atol=1e-9)
    np.testing.assert_allclose(p["vl"], 0.0, atol=1e-9)
    np.testing.assert_allclose(p["wu"], turn_rate, rtol=1e-6)
    np.testing.assert_allclose(p["al"], ground_speed * turn_rate, rtol=1e-2)  # centripetal, to the left
    np.testing.assert_allclose(p["af"], 0.0, atol=1e-6)
    np.testing.assert_allclose(p["au"], oxts.GRAVITY, atol=1e-6)
    # Body axes are pitched up the grade: gravity's reaction leans forward, the turn rate leans back.
    grade = np.arctan2(CLIMB, SPEED)
    np.testing.assert_allclose(p["ax"], oxts.GRAVITY * np.sin(grade), atol=1e-6)
    np.testing.assert_allclose(p["wz"], turn_rate * np.cos(grade), rtol=1e-6)
    np.testing.assert_allclose(p["yaw"], turn_rate * times[2:-2], atol=1e-9)
    np.testing.assert_allclose(p["pitch"], -grade, atol=1e-12)


def test_written_lines_load_back_as_the_same_poses_in_pykitti(tmp_path):
    poses, times = turning_climb()
    files = []
    for k, packet in enumerate(oxts.oxts_packets(poses, times, (49.0, 8.4, 115.0))):
        files.append(tmp_path / f"{k:010d}.txt")
        files[-1].write_text(oxts.packet_line(packet))
    loaded = utils.load_oxts_packets_and_poses([str(f) for f in files])
    for k, record in enumerate(loaded):
        np.testing.assert_allclose(record.T_w_imu, poses[k], atol=1e-6)
        assert record.packet.navstat == 4 and isinstance(record.packet.numsats, int)


def test_rotation_log_is_axis_times_angle():
    np.testing.assert_allclose(oxts.rotation_log(utils.rotz(0.3)), [0.0, 0.0, 0.3], atol=1e-12)
    np.testing.assert_allclose(oxts.rotation_log(np.eye(3)), 0.0)
    axis = np.array([1.0, -2.0, 0.5]) / np.linalg.norm([1.0, -2.0, 0.5])
    angle = 2.0
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew
    np.testing.assert_allclose(oxts.rotation_log(rotation), axis * angle, atol=1e-12)

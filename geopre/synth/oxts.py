"""KITTI's OXTS (GPS/IMU) packets from a true trajectory: the inverse of what KITTI readers do.

A reader such as pykitti turns a packet into a pose with a Mercator projection whose scale is
``cos(lat)`` of the drive's *first* packet (earth radius 6378137 m), and a rotation
``Rz(yaw) Ry(pitch) Rx(roll)`` of the IMU frame (x forward, y left, z up) into East-North-Up.
:func:`oxts_packets` runs that backwards, so a reader recovers the written poses exactly (up to the
digits printed), relative to the first packet as pykitti reports them.

Rates come from central finite differences of the poses, in the frames ``dataformat.txt`` names:
the body frame (x, y, z) and the earth-tangent frame turned by the heading only (f, l, u).
Accelerations are what an accelerometer reads (specific force: +g upward at rest), as in real
KITTI packets, where ``az`` is about 9.8 on a level road.
"""

from __future__ import annotations

import numpy as np

EARTH_RADIUS = 6378137.0  # m, KITTI devkit's and pykitti's Mercator radius
GRAVITY = 9.81  # m/s^2

FIELDS = ("lat lon alt roll pitch yaw vn ve vf vl vu ax ay az af al au wx wy wz wf wl wu "
          "pos_accuracy vel_accuracy navstat numsats posmode velmode orimode").split()
INTEGER_FIELDS = 5  # navstat .. orimode are flags and counts

DATAFORMAT = """\
lat:   latitude of the oxts-unit (deg)
lon:   longitude of the oxts-unit (deg)
alt:   altitude of the oxts-unit (m)
roll:  roll angle (rad),    0 = level, positive = left side up,      range: -pi   .. +pi
pitch: pitch angle (rad),   0 = level, positive = front down,        range: -pi/2 .. +pi/2
yaw:   heading (rad),       0 = east,  positive = counter clockwise, range: -pi   .. +pi
vn:    velocity towards north (m/s)
ve:    velocity towards east (m/s)
vf:    forward velocity, parallel to the earth surface (m/s)
vl:    leftward velocity, parallel to the earth surface (m/s)
vu:    upward velocity, perpendicular to the earth surface (m/s)
ax:    acceleration along x, the vehicle's front (m/s^2)
ay:    acceleration along y, the vehicle's left (m/s^2)
az:    acceleration along z, the vehicle's top (m/s^2)
af:    forward acceleration (m/s^2)
al:    leftward acceleration (m/s^2)
au:    upward acceleration (m/s^2)
wx:    angular rate around x (rad/s)
wy:    angular rate around y (rad/s)
wz:    angular rate around z (rad/s)
wf:    angular rate around the forward axis (rad/s)
wl:    angular rate around the leftward axis (rad/s)
wu:    angular rate around the upward axis (rad/s)
pos_accuracy:  position accuracy (north/east in m)
vel_accuracy:  velocity accuracy (north/east in m/s)
navstat:       navigation status
numsats:       number of satellites tracked by the primary GPS receiver
posmode:       position mode of the primary GPS receiver
velmode:       velocity mode of the primary GPS receiver
orimode:       orientation mode of the primary GPS receiver
"""


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def euler_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(roll, pitch, yaw) with ``rotation = Rz(yaw) @ Ry(pitch) @ Rx(roll)``, KITTI's order."""
    r = rotation
    yaw = np.arctan2(r[1, 0], r[0, 0])
    pitch = np.arctan2(-r[2, 0], np.hypot(r[0, 0], r[1, 0]))
    roll = np.arctan2(r[2, 1], r[2, 2])
    return float(roll), float(pitch), float(yaw)


def rotation_log(rotation: np.ndarray) -> np.ndarray:
    """Rotation vector (axis times angle) of a rotation matrix; accurate for small angles."""
    r = rotation
    angle = np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))
    skew = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / 2.0
    scale = 1.0 if angle < 1e-8 else angle / np.sin(angle)
    return skew * scale


def latlon_from_local(east: np.ndarray, north: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude (deg) of points ``east``/``north`` metres from (lat0, lon0), inverting
    the Mercator projection KITTI readers apply with scale ``cos(lat0)``."""
    scale = np.cos(np.deg2rad(lat0))
    mercator_y0 = scale * EARTH_RADIUS * np.log(np.tan(np.deg2rad(90.0 + lat0) / 2.0))
    lon = lon0 + np.rad2deg(east / (scale * EARTH_RADIUS))
    lat = np.rad2deg(2.0 * np.arctan(np.exp((mercator_y0 + north) / (scale * EARTH_RADIUS)))) - 90.0
    return lat, lon


def _central(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    return np.gradient(values, times, axis=0)


def angular_velocity_world(rotations: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(n, 3) angular velocity in the world frame by central differences of (n, 3, 3) rotations
    (one-sided at the ends): ``R(t + dt) = exp([w] dt) R(t)``."""
    n = len(rotations)
    out = np.zeros((n, 3))
    for i in range(n):
        lo, hi = max(i - 1, 0), min(i + 1, n - 1)
        out[i] = rotation_log(rotations[hi] @ rotations[lo].T) / (times[hi] - times[lo])
    return out


def oxts_packets(imu_to_enu: np.ndarray, times: np.ndarray, origin: tuple[float, float, float],
                 numsats: int = 10) -> np.ndarray:
    """(n, 30) packets for (n, 4, 4) IMU-to-ENU poses in metres sampled at ``times`` (s, n >= 2).

    ``origin`` is (lat, lon, alt) of the ENU frame's origin. Columns follow :data:`FIELDS`.
    """
    rotations, positions = imu_to_enu[:, :3, :3], imu_to_enu[:, :3, 3]
    lat, lon = latlon_from_local(positions[:, 0], positions[:, 1], origin[0], origin[1])
    alt = origin[2] + positions[:, 2]
    euler = np.array([euler_from_rotation(r) for r in rotations])
    velocity = _central(positions, times)
    specific_force = _central(velocity, times) + np.array([0.0, 0.0, GRAVITY])
    omega = angular_velocity_world(rotations, times)
    heading = np.array([rot_z(yaw) for yaw in euler[:, 2]])  # earth-tangent (f, l, u) -> ENU

    def body(v):
        return np.einsum("nji,nj->ni", rotations, v)

    def tangent(v):
        return np.einsum("nji,nj->ni", heading, v)

    n = len(times)
    status = np.tile([0.05, 0.02, 4, numsats, 6, 6, 6], (n, 1))
    return np.column_stack([
        lat, lon, alt, euler, velocity[:, 1], velocity[:, 0], tangent(velocity),
        body(specific_force), tangent(specific_force), body(omega), tangent(omega), status,
    ])


def packet_line(packet: np.ndarray) -> str:
    """One ``oxts/data/*.txt`` line: 25 floats then 5 integers, space-separated."""
    floats = " ".join(f"{v + 0.0:.14g}" for v in packet[:-INTEGER_FIELDS])  # + 0.0: no "-0"
    ints = " ".join(str(int(round(v))) for v in packet[-INTEGER_FIELDS:])
    return f"{floats} {ints}\n"

"""The synthetic driving world: a winding street lined with buildings, and a camera that drives it.

Coordinates follow the camera convention of KITTI/OpenCV so that no axis flips hide in the code:
world X points right, Y points *down*, Z points along the road at its start. The ground is a
smooth heightfield of gentle hills (``terrain.py``) with Y = 0 where the drive starts, so a camera
mounted 1.65 m high starts at Y = -1.65; it rides the hills, pitching and rolling with the ground.

The street follows a :class:`Road`: a centre line of smoothly varying curvature (straights, bends,
clothoid-like transitions), so the camera turns with it. Objects are primitives: boxes, each
axis-aligned in its own frame turned by a yaw about the vertical axis (buildings and parked cars
square to the road where they stand, side streets at right angles), vertical cylinders (poles,
trunks) and spheroids (tree crowns). Cars and pedestrians move along the road on their own lanes.

Every object draws its own look from the scene seed: a photographic material, texture scale and
offset, palette colour, window grid, storeys, shop fronts, doors; road markings, kerbs, sidewalks
and verges differ between scenes (see ``shading.py``, which reads the per-object ``params``).

The scene is generated once from a seed and is a pure function of it. Object motion runs on a
"traffic clock" that slows and stops with the ego car (the whole street waits at the lights), so a
stopped camera records truly identical frames: the ground truth for the static-frame filter.

This module holds the ego drive (:class:`DriveConfig`, :class:`Trajectory`, the speed profile) and
:func:`make_sequence`, which ties a scene, a drive and a camera together; it also re-exports the
rest of the world's API so callers need only ``world``. The rest lives in rooms of its own:
``style.py`` (street styles), ``road.py`` (the centre line and posed primitives), ``scene.py`` (what
a scene holds), ``street.py`` (laying out a street) and ``props.py`` (the objects along it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Re-exported: the world's API, which raycast, shading, render, kitti, videos, bench and tests use as world.X.
from geopre.data.camera import Intrinsics  # noqa: F401
from geopre.synth.props import _add_moving_car
from geopre.synth.road import Posed, Road, make_road, yaw_rotation  # noqa: F401
from geopre.synth.scene import (  # noqa: F401
    ASPHALT, BOX, BUILDING, CANOPY, CAR_BODY, CAR_CABIN, CAR_UNDER, CYLINDER, GRAVEL_LOT, HEDGE, N_PARAMS, P_BALCONY,
    P_CONTRAST, P_FRAME, P_GROUND_FLOOR, P_PHOTO, P_SEED, P_SHOP_PITCH, P_STOREY, P_TEXEL, P_TEXTURE, P_U0, P_V0,
    P_WIN_HEIGHT, P_WIN_PITCH, P_WIN_WIDTH, PARK, PEDESTRIAN, POLE, SIDE_STREET, SIGN, SPHEROID, TRUNK, VERGE, WALL,
    Boxes, Scene, _BoxList,
)
from geopre.synth.street import generate_scene
from geopre.synth.style import CITY, STYLES, SUBURBAN, WorldStyle  # noqa: F401
from geopre.synth.terrain import FLAT, Terrain
from geopre.synth.traffic import add_cross_traffic


@dataclass(frozen=True)
class DriveConfig:
    """How the ego car drives: speeds (m/s), stop lengths (s) and camera wobble."""

    max_speed: float = 15.0
    min_cruise_speed: float = 4.0
    cruise_seconds: tuple[float, float] = (3.0, 9.0)
    stop_probability: float = 0.35  # after each cruise phase
    stop_seconds: tuple[float, float] = (2.0, 4.5)
    start_stopped: float = 0.0  # probability that the video opens standing still
    acceleration: float = 3.0  # m/s^2
    deceleration: float = 4.5  # m/s^2
    yaw_wobble_deg: float = 1.2
    pitch_wobble_deg: float = 1.5  # road undulation and body pitch: the ground tilts against the camera
    lateral_wobble: float = 0.25  # m


@dataclass
class Trajectory:
    """The ego car's motion sampled at frame times. Rotation and offset are functions of distance,
    so a stopped car has exactly the same pose from frame to frame."""

    times: np.ndarray  # (n,) s
    distance: np.ndarray  # (n,) metres along the road
    speed: np.ndarray  # (n,) m/s
    traffic_time: np.ndarray  # (n,) s on the traffic clock
    camera_height: float
    lane_x: float
    pitch_bias: float  # rad; a dashcam rarely points exactly level
    wobble: np.ndarray  # (3, 2): amplitude and phase for yaw, pitch, lateral
    wobble_wavelengths: tuple[float, float, float] = (45.0, 23.0, 80.0)

    @property
    def stopped(self) -> np.ndarray:
        return self.speed == 0.0

    road: Road | None = None  # None: a straight road along +Z
    terrain: Terrain = FLAT  # the ground the car drives on

    def _road_frame(self, s: float) -> tuple[float, float, float, float]:
        """(x, z, heading) of the camera's ground point at distance ``s``: its lane, plus wobble."""
        n = self.lane_x + self.wobble[2, 0] * np.sin(2 * np.pi * s / self.wobble_wavelengths[2] + self.wobble[2, 1])
        if self.road is None:
            return n, s, 0.0
        x, z, heading = self.road.point(s, n)
        return float(x), float(z), float(heading)

    def rotation(self, index: int) -> np.ndarray:
        """Camera-to-world rotation of frame ``index``: the road's heading, plus wobble, with the car
        body's pitch and roll on the ground under it (its forward and right axes along the surface)."""
        s = self.distance[index]
        x, z, heading = self._road_frame(s)
        yaw = heading + self.wobble[0, 0] * np.sin(2 * np.pi * s / self.wobble_wavelengths[0] + self.wobble[0, 1])
        gx, gz = (float(g) for g in self.terrain.gradient(x, z))
        ahead = gx * np.sin(yaw) + gz * np.cos(yaw)  # downhill along the heading: nose down
        right = gx * np.cos(yaw) - gz * np.sin(yaw)  # downhill to the right: right side down
        pitch = self.pitch_bias + self.wobble[1, 0] * np.sin(2 * np.pi * s / self.wobble_wavelengths[1] + self.wobble[1, 1])
        return rotation_yaw_pitch(yaw, pitch + np.arctan(ahead), np.arctan(right / np.hypot(1.0, ahead)))

    def position(self, index: int) -> np.ndarray:
        """Camera centre of frame ``index``: ``camera_height`` above the ground under it."""
        x, z, _ = self._road_frame(self.distance[index])
        return np.array([x, float(self.terrain.height(x, z)) - self.camera_height, z])

    def pose(self, index: int) -> np.ndarray:
        """4x4 camera-to-world transform of frame ``index``."""
        pose = np.eye(4)
        pose[:3, :3] = self.rotation(index)
        pose[:3, 3] = self.position(index)
        return pose

    def __len__(self) -> int:
        return len(self.times)


def rotation_yaw_pitch(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world rotation for a camera turned by ``yaw`` (right positive, about +Y which
    points down), ``pitch`` (nose down positive) and ``roll`` (right side down positive, about the
    optical axis) in the x-right, y-down, z-forward frame."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    r_yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    r_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    r_roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return r_yaw @ r_pitch @ r_roll


def speed_profile(seconds: float, config: DriveConfig, rng: np.random.Generator, dt: float = 1 / 600):
    """Target speeds in phases (cruise, sometimes stop), tracked with bounded acceleration.

    Returns fine-grained (times, speed, distance, traffic_time). Speed reaches exactly 0 in stops.
    """
    steps = int(np.ceil(seconds / dt)) + 2
    targets = np.empty(steps)
    i = 0
    if rng.random() < config.start_stopped:
        n = int(rng.uniform(*config.stop_seconds) / dt)
        targets[:n] = 0.0
        i = n
    while i < steps:
        n = int(rng.uniform(*config.cruise_seconds) / dt)
        targets[i:i + n] = rng.uniform(config.min_cruise_speed, config.max_speed)
        i += n
        if rng.random() < config.stop_probability:
            # Hold the stop target long enough to brake to 0 *and* then stand for the stop time.
            n = int((config.max_speed / config.deceleration + rng.uniform(*config.stop_seconds)) / dt)
            targets[i:i + n] = 0.0
            i += n
    targets = targets[:steps]
    speed = np.empty(steps)
    v = targets[0] if targets[0] > 0 else 0.0
    for k in range(steps):
        dv = np.clip(targets[k] - v, -config.deceleration * dt, config.acceleration * dt)
        v = max(0.0, v + dv)
        speed[k] = v
    times = np.arange(steps) * dt
    distance = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) * 0.5 * dt)])
    # The street's traffic runs at full speed unless the ego car crawls: then everyone waits.
    traffic_rate = np.clip(speed / 3.0, 0.0, 1.0)
    traffic = np.concatenate([[0.0], np.cumsum((traffic_rate[1:] + traffic_rate[:-1]) * 0.5 * dt)])
    return times, speed, distance, traffic


def make_trajectory(
    seed: int,
    seconds: float,
    fps: float,
    config: DriveConfig = DriveConfig(),
    camera_height: float = 1.65,
    lane_x: float = 3.0,
    pitch_bias_deg: float = 0.0,
) -> Trajectory:
    """Sample the ego drive at ``fps`` for ``seconds`` (frame k at time k / fps)."""
    rng = np.random.default_rng(seed)
    fine_t, fine_v, fine_s, fine_tau = speed_profile(seconds, config, rng)
    n = int(round(seconds * fps))
    times = np.arange(n) / fps
    idx = np.clip(np.round(times / (fine_t[1] - fine_t[0])).astype(int), 0, len(fine_t) - 1)
    wobble = np.array([
        [np.deg2rad(config.yaw_wobble_deg) * rng.uniform(0.3, 1.0), rng.uniform(0, 2 * np.pi)],
        [np.deg2rad(config.pitch_wobble_deg) * rng.uniform(0.3, 1.0), rng.uniform(0, 2 * np.pi)],
        [config.lateral_wobble * rng.uniform(0.3, 1.0), rng.uniform(0, 2 * np.pi)],
    ])
    return Trajectory(
        times=times,
        distance=fine_s[idx],
        speed=fine_v[idx],
        traffic_time=fine_tau[idx],
        camera_height=camera_height,
        lane_x=lane_x,
        pitch_bias=np.deg2rad(pitch_bias_deg),
        wobble=wobble,
    )


@dataclass
class Sequence:
    """One recorded drive: a scene, a trajectory and the camera that filmed it."""

    scene: Scene
    trajectory: Trajectory
    intrinsics: Intrinsics
    exposure: np.ndarray = field(default_factory=lambda: np.ones(3))  # per-channel gain of this camera
    vignetting: float = 0.0  # brightness loss at unit normalised radius (r^2 falloff)
    noise: float = 0.0  # sensor noise, standard deviation in 8-bit grey levels
    shutter: float = 0.0  # exposure time in seconds: motion blur at speed (blur.py)


def _add_lead_car(scene: Scene, trajectory: Trajectory, rng) -> None:
    """A car driving ahead in the ego lane: it keeps a gap of 14-40 m (varying by +-4 m with the
    traffic clock), so it stops when the ego car stops and frames at a stop stay identical."""
    parts = _BoxList(rng)
    _add_moving_car(parts, rng.uniform(14.0, 40.0), scene.ego_lane_x, 1.0, rng)
    b = scene.boxes
    b.leads = b.append(parts.build())
    b.lead_table = (trajectory.traffic_time.copy(), trajectory.distance.copy())


def make_sequence(
    seed: int,
    seconds: float,
    fps: float,
    intrinsics: Intrinsics,
    style: WorldStyle = SUBURBAN,
    drive: DriveConfig = DriveConfig(),
    camera_height: float = 1.65,
    pitch_bias_deg: float = 0.0,
    exposure: np.ndarray | None = None,
    shutter_ms: tuple[float, float] = (1.0, 12.0),
) -> Sequence:
    """A deterministic drive: the same arguments give the same frames, byte for byte. The camera's
    exposure time is drawn from ``shutter_ms`` (dashcams expose long, a machine-vision rig short)."""
    root = np.random.SeedSequence(seed)
    scene_seed, drive_seed, camera_seed, traffic_seed = (int(s.generate_state(1)[0]) for s in root.spawn(4))
    trajectory = make_trajectory(drive_seed, seconds, fps, drive, camera_height, 0.0, pitch_bias_deg)
    scene = generate_scene(scene_seed, style, length=float(trajectory.distance[-1]) + 10.0)
    trajectory.lane_x = scene.ego_lane_x
    trajectory.road = scene.road
    trajectory.terrain = scene.terrain
    camera = np.random.default_rng(camera_seed)
    if camera.random() < style.lead_car_probability:
        _add_lead_car(scene, trajectory, camera)
    add_cross_traffic(scene, trajectory.traffic_time, trajectory.distance, np.random.default_rng(traffic_seed))
    vignetting, noise = float(camera.uniform(0.05, 0.3)), float(camera.uniform(0.8, 2.5))
    return Sequence(scene, trajectory, intrinsics, np.ones(3) if exposure is None else np.asarray(exposure),
                    vignetting=vignetting, noise=noise, shutter=float(camera.uniform(*shutter_ms)) / 1000.0)

"""The synthetic driving world: a straight street lined with boxes, and a camera that drives down it.

Coordinates follow the camera convention of KITTI/OpenCV so that no axis flips hide in the code:
world X points right, Y points *down*, Z points along the road. The ground is the plane Y = 0, so
a camera mounted 1.65 m high sits at Y = -1.65. Everything above the ground is an axis-aligned box
(buildings, car parts, poles, tree parts, pedestrians); boxes that move have a velocity along Z.

The scene is generated once from a seed and is a pure function of it. Object motion runs on a
"traffic clock" that slows and stops with the ego car (the whole street waits at the lights), so a
stopped camera records truly identical frames: the ground truth for the static-frame filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geopre.data.camera import Intrinsics  # noqa: F401 - part of the world's API

# Box materials: each one has its own procedural texture in render.py.
BUILDING, CAR_BODY, CAR_CABIN, CAR_UNDER, POLE, TRUNK, CANOPY, PEDESTRIAN = range(8)


@dataclass(frozen=True)
class WorldStyle:
    """What a street looks like. Two presets: suburban (KITTI-like) and city (Cityscapes-like)."""

    name: str
    lanes_per_side: int = 1
    lane_width: float = 3.0
    parking_width: float = 2.5
    sidewalk_width: float = 3.0
    setback: tuple[float, float] = (1.0, 8.0)
    building_height: tuple[float, float] = (5.0, 18.0)
    building_length: tuple[float, float] = (8.0, 25.0)
    gap_probability: float = 0.25  # an empty lot: a depth discontinuity down to the far fence
    parked_car_probability: float = 0.45  # per 7 m parking slot
    oncoming_cars_per_100m: float = 1.2
    same_way_cars_per_100m: float = 0.0  # in the outer lane, beside the ego car
    pedestrians_per_100m: float = 0.5
    tree_probability: float = 0.5  # per 12 m slot, on the sidewalk
    pole_spacing: float = 30.0
    verge: str = "grass"  # what covers the ground between sidewalk and buildings
    facade_palette: tuple[tuple[float, float, float], ...] = (
        (0.78, 0.72, 0.62), (0.70, 0.55, 0.45), (0.85, 0.83, 0.78), (0.60, 0.62, 0.66),
        (0.76, 0.66, 0.50), (0.55, 0.45, 0.40),
    )

    @property
    def road_half_width(self) -> float:
        """Centre line to kerb: driving lanes, then a parking lane."""
        return self.lanes_per_side * self.lane_width + self.parking_width

    def lane_centre(self, lane: int) -> float:
        """X of the centre of driving lane ``lane`` (0 = next to the centre line) on the right."""
        return (lane + 0.5) * self.lane_width


SUBURBAN = WorldStyle(name="suburban")
CITY = WorldStyle(
    name="city",
    lanes_per_side=2,
    lane_width=2.75,
    parking_width=2.0,
    sidewalk_width=2.5,
    setback=(0.0, 1.5),
    building_height=(12.0, 30.0),
    building_length=(10.0, 30.0),
    gap_probability=0.08,
    parked_car_probability=0.6,
    oncoming_cars_per_100m=2.5,
    same_way_cars_per_100m=1.5,
    pedestrians_per_100m=3.0,
    tree_probability=0.15,
    pole_spacing=20.0,
    verge="pavement",
    facade_palette=(
        (0.82, 0.80, 0.74), (0.66, 0.60, 0.55), (0.90, 0.88, 0.84), (0.50, 0.50, 0.52),
        (0.72, 0.64, 0.56),
    ),
)
STYLES = {"suburban": SUBURBAN, "city": CITY}


@dataclass
class Boxes:
    """Axis-aligned boxes at traffic time 0; ``velocity`` is along Z (m/s) for moving objects."""

    lo: np.ndarray  # (N, 3) float64 min corner
    hi: np.ndarray  # (N, 3) float64 max corner
    material: np.ndarray  # (N,) int
    colour: np.ndarray  # (N, 3) float in [0, 1]
    velocity: np.ndarray  # (N,) float, m/s along Z

    def at(self, traffic_time: float) -> tuple[np.ndarray, np.ndarray]:
        """Box corners at a traffic time: moving boxes slide along Z."""
        shift = np.zeros_like(self.lo)
        shift[:, 2] = self.velocity * traffic_time
        return self.lo + shift, self.hi + shift

    def __len__(self) -> int:
        return len(self.material)


@dataclass
class Scene:
    """A generated street: boxes, lighting and camera mounting, all from one seed."""

    style: WorldStyle
    boxes: Boxes
    sun_direction: np.ndarray  # unit vector *towards* the sun, world frame
    sky_horizon: np.ndarray  # RGB
    sky_zenith: np.ndarray  # RGB
    ground_seed: int
    ego_lane_x: float
    length: float  # metres of street generated ahead of the start


class _BoxList:
    """Accumulates boxes while a scene is generated."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, lo, hi, material, colour, velocity=0.0) -> None:
        self.rows.append((lo, hi, material, colour, velocity))

    def build(self) -> Boxes:
        lo, hi, mat, col, vel = zip(*self.rows)
        return Boxes(
            lo=np.array(lo, dtype=np.float64),
            hi=np.array(hi, dtype=np.float64),
            material=np.array(mat, dtype=np.int64),
            colour=np.array(col, dtype=np.float64),
            velocity=np.array(vel, dtype=np.float64),
        )


CAR_COLOURS = (
    (0.75, 0.1, 0.1), (0.1, 0.2, 0.6), (0.85, 0.85, 0.85), (0.1, 0.1, 0.1), (0.5, 0.5, 0.55),
    (0.2, 0.45, 0.25), (0.9, 0.75, 0.2),
)


def _add_car(boxes: _BoxList, x: float, z: float, colour, velocity: float, rng) -> None:
    """A car as three boxes: dark undercarriage, painted body, glass cabin; (x, z) is its centre."""
    length = rng.uniform(3.9, 4.7)
    width = rng.uniform(1.7, 1.9)
    roof = rng.uniform(1.4, 1.6)
    half_l, half_w = length / 2, width / 2
    boxes.add((x - half_w + 0.05, -0.35, z - half_l + 0.4), (x + half_w - 0.05, 0.0, z + half_l - 0.4),
              CAR_UNDER, (0.05, 0.05, 0.05), velocity)
    boxes.add((x - half_w, -0.95, z - half_l), (x + half_w, -0.35, z + half_l), CAR_BODY, colour, velocity)
    cabin_front = z - half_l + rng.uniform(0.9, 1.3)
    boxes.add((x - half_w + 0.1, -roof, cabin_front), (x + half_w - 0.1, -0.95, cabin_front + length * 0.5),
              CAR_CABIN, colour, velocity)


def generate_scene(seed: int, style: WorldStyle, length: float, behind: float = 60.0) -> Scene:
    """Lay out a street of ``length`` metres (plus ``behind`` metres behind the start) from a seed."""
    rng = np.random.default_rng(seed)
    boxes = _BoxList()
    road = style.road_half_width
    kerb = road + style.sidewalk_width
    z_start, z_end = -behind, length + 150.0  # the camera sees ~150 m ahead at the end of its drive

    for side in (-1.0, 1.0):
        # Building frontages with gaps, set-backs and heights: the depth discontinuities.
        z = z_start
        while z < z_end:
            seg = rng.uniform(*style.building_length)
            if rng.random() < style.gap_probability:
                # An empty lot: a low wall far back keeps depth finite but discontinuous.
                setback = style.setback[1] + rng.uniform(10.0, 25.0)
                height = rng.uniform(1.0, 2.5)
                colour = (0.55, 0.52, 0.48)
            else:
                setback = rng.uniform(*style.setback)
                height = rng.uniform(*style.building_height)
                colour = style.facade_palette[rng.integers(len(style.facade_palette))]
            depth = rng.uniform(8.0, 15.0)
            near_x = kerb + setback
            x0, x1 = sorted((side * near_x, side * (near_x + depth)))
            boxes.add((x0, -height, z), (x1, 0.0, z + seg), BUILDING, colour)
            z += seg + (rng.uniform(0.0, 4.0) if rng.random() < 0.3 else 0.0)

        # Parked cars along the kerb, in 7 m slots.
        for slot_z in np.arange(z_start, z_end, 7.0):
            if rng.random() < style.parked_car_probability:
                x = side * (road - style.parking_width / 2) + rng.uniform(-0.15, 0.15)
                _add_car(boxes, x, slot_z + rng.uniform(2.5, 4.5), CAR_COLOURS[rng.integers(len(CAR_COLOURS))],
                         0.0, rng)

        # Trees on the sidewalk.
        for slot_z in np.arange(z_start, z_end, 12.0):
            if rng.random() < style.tree_probability:
                x = side * (road + style.sidewalk_width * 0.6)
                tz = slot_z + rng.uniform(0.0, 10.0)
                boxes.add((x - 0.15, -2.6, tz - 0.15), (x + 0.15, 0.0, tz + 0.15), TRUNK, (0.35, 0.25, 0.15))
                crown = rng.uniform(1.0, 1.6)
                top = rng.uniform(4.5, 6.5)
                boxes.add((x - crown, -top, tz - crown), (x + crown, -2.3, tz + crown), CANOPY,
                          (0.20 + rng.uniform(-0.05, 0.05), 0.42 + rng.uniform(-0.08, 0.08), 0.15))

        # Street-light poles.
        for pz in np.arange(z_start + rng.uniform(0, style.pole_spacing), z_end, style.pole_spacing):
            x = side * (road + 0.4)
            boxes.add((x - 0.09, -6.5, pz - 0.09), (x + 0.09, 0.0, pz + 0.09), POLE, (0.45, 0.45, 0.47))

        # Pedestrians walking along the sidewalk (independent motion, small objects).
        n_ped = rng.poisson(style.pedestrians_per_100m * (z_end - z_start) / 100.0)
        for _ in range(n_ped):
            x = side * (road + rng.uniform(0.5, style.sidewalk_width - 0.5))
            pz = rng.uniform(z_start, z_end)
            speed = rng.choice((-1.0, 1.0)) * rng.uniform(0.8, 1.6)
            h = rng.uniform(1.55, 1.9)
            shirt = tuple(rng.uniform(0.1, 0.9, size=3))
            boxes.add((x - 0.25, -h, pz - 0.18), (x + 0.25, 0.0, pz + 0.18), PEDESTRIAN, shirt, speed)

    # Moving traffic: oncoming cars in the left lanes, same-direction cars in the outer right lane.
    # The ego car keeps to the inner right lane, which no other car uses, so it never drives
    # through one.
    span = z_end - z_start + 400.0  # oncoming cars start far ahead and drive towards the camera
    for _ in range(rng.poisson(style.oncoming_cars_per_100m * span / 100.0)):
        lane = rng.integers(style.lanes_per_side)
        _add_car(boxes, -style.lane_centre(lane) + rng.uniform(-0.2, 0.2), rng.uniform(z_start, z_end + 400.0),
                 CAR_COLOURS[rng.integers(len(CAR_COLOURS))], -rng.uniform(6.0, 14.0), rng)
    if style.same_way_cars_per_100m > 0 and style.lanes_per_side > 1:
        for _ in range(rng.poisson(style.same_way_cars_per_100m * span / 100.0)):
            _add_car(boxes, style.lane_centre(style.lanes_per_side - 1), rng.uniform(z_start - 200.0, z_end),
                     CAR_COLOURS[rng.integers(len(CAR_COLOURS))], rng.uniform(3.0, 12.0), rng)

    elevation = np.deg2rad(rng.uniform(25.0, 60.0))
    azimuth = rng.uniform(-np.pi, np.pi)
    # Towards the sun: up is -Y in this frame.
    sun = np.array([np.cos(elevation) * np.sin(azimuth), -np.sin(elevation), np.cos(elevation) * np.cos(azimuth)])
    return Scene(
        style=style,
        boxes=boxes.build(),
        sun_direction=sun,
        sky_horizon=np.array([0.78, 0.85, 0.92]) * rng.uniform(0.9, 1.05),
        sky_zenith=np.array([0.35, 0.55, 0.85]) * rng.uniform(0.85, 1.05),
        ground_seed=int(rng.integers(1 << 30)),
        ego_lane_x=style.lane_centre(0),
        length=length,
    )


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
    pitch_wobble_deg: float = 0.5
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

    def rotation(self, index: int) -> np.ndarray:
        """Camera-to-world rotation of frame ``index``."""
        s = self.distance[index]
        yaw = self.wobble[0, 0] * np.sin(2 * np.pi * s / self.wobble_wavelengths[0] + self.wobble[0, 1])
        pitch = self.pitch_bias + self.wobble[1, 0] * np.sin(2 * np.pi * s / self.wobble_wavelengths[1] + self.wobble[1, 1])
        return rotation_yaw_pitch(yaw, pitch)

    def position(self, index: int) -> np.ndarray:
        s = self.distance[index]
        x = self.lane_x + self.wobble[2, 0] * np.sin(2 * np.pi * s / self.wobble_wavelengths[2] + self.wobble[2, 1])
        return np.array([x, -self.camera_height, s])

    def pose(self, index: int) -> np.ndarray:
        """4x4 camera-to-world transform of frame ``index``."""
        pose = np.eye(4)
        pose[:3, :3] = self.rotation(index)
        pose[:3, 3] = self.position(index)
        return pose

    def __len__(self) -> int:
        return len(self.times)


def rotation_yaw_pitch(yaw: float, pitch: float) -> np.ndarray:
    """Camera-to-world rotation for a camera turned by ``yaw`` (right positive, about +Y which
    points down) and ``pitch`` (nose down positive) in the x-right, y-down, z-forward frame."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    r_yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    r_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    return r_yaw @ r_pitch


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
) -> Sequence:
    """A deterministic drive: the same arguments give the same frames, byte for byte."""
    root = np.random.SeedSequence(seed)
    scene_seed, drive_seed = (int(s.generate_state(1)[0]) for s in root.spawn(2))
    trajectory = make_trajectory(drive_seed, seconds, fps, drive, camera_height, 0.0, pitch_bias_deg)
    scene = generate_scene(scene_seed, style, length=float(trajectory.distance[-1]) + 10.0)
    trajectory.lane_x = scene.ego_lane_x
    return Sequence(scene, trajectory, intrinsics, np.ones(3) if exposure is None else np.asarray(exposure))

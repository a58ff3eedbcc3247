"""The synthetic driving world: a winding street lined with buildings, and a camera that drives it.

Coordinates follow the camera convention of KITTI/OpenCV so that no axis flips hide in the code:
world X points right, Y points *down*, Z points along the road at its start. The ground is the
plane Y = 0, so a camera mounted 1.65 m high sits at Y = -1.65.

The street follows a :class:`Road`: a centre line of smoothly varying curvature (straights, bends,
clothoid-like transitions), so the camera turns with it. Objects are primitives: boxes, each
axis-aligned in its own frame turned by a yaw about the vertical axis (buildings and parked cars
square to the road where they stand, side streets at right angles), vertical cylinders (poles,
trunks) and spheroids (tree crowns). Cars and pedestrians move along the road on their own lanes.

Every object draws its own look from the scene seed: a photographic material, texture scale and
offset, palette colour, window grid, storeys, shop fronts, doors; road markings, kerbs, sidewalks
and verges differ between scenes (see ``render.py``, which reads the per-object ``params``).

The scene is generated once from a seed and is a pure function of it. Object motion runs on a
"traffic clock" that slows and stops with the ego car (the whole street waits at the lights), so a
stopped camera records truly identical frames: the ground truth for the static-frame filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geopre.data.camera import Intrinsics  # noqa: F401 - part of the world's API
from geopre.synth import textures  # texture ids only: no photograph is loaded at import

# Materials: each one has its own look in render.py.
BUILDING, CAR_BODY, CAR_CABIN, CAR_UNDER, POLE, TRUNK, CANOPY, PEDESTRIAN, SIGN, WALL, HEDGE = range(11)
# Primitive shapes, ray cast in render.py.
BOX, CYLINDER, SPHEROID = range(3)
# Ground beyond the sidewalk, per stretch of street (render.py colours them).
VERGE, ASPHALT, GRAVEL_LOT, PARK, SIDE_STREET = range(5)

# Columns of Boxes.params: the per-object appearance that render.py reads.
P_SEED, P_TEXTURE, P_TEXEL, P_U0, P_V0, P_CONTRAST, P_WIN_PITCH, P_WIN_WIDTH, P_STOREY, P_WIN_HEIGHT, \
    P_GROUND_FLOOR, P_SHOP_PITCH, P_BALCONY, P_PHOTO, P_FRAME = range(15)
N_PARAMS = 15


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
    same_way_cars_per_100m: float = 1.0  # in the other lanes of the ego car's side (if any)
    pedestrians_per_100m: float = 0.5
    tree_probability: float = 0.5  # per 12 m slot, on the sidewalk
    pole_spacing: float = 30.0
    verge: str = "grass"  # what covers the ground between sidewalk and buildings
    facade_palette: tuple[tuple[float, float, float], ...] = (
        (0.78, 0.72, 0.62), (0.70, 0.55, 0.45), (0.85, 0.83, 0.78), (0.60, 0.62, 0.66),
        (0.76, 0.66, 0.50), (0.55, 0.45, 0.40),
    )
    # Street geometry: bends of radius >= 1 / max_curvature, side streets, parks and car parks.
    bend_probability: float = 0.55  # per straight: the next stretch bends
    max_curvature: float = 1 / 35.0  # 1/m
    straight_length: tuple[float, float] = (10.0, 110.0)
    side_streets_per_100m: float = 0.8
    open_space_probability: float = 0.12  # per frontage: a park or a car park instead of a building
    billboard_probability: float = 0.08  # per 12 m of sidewalk
    lane_width_jitter: float = 0.35  # m, per scene
    lead_car_probability: float = 0.7  # per drive: a car ahead in the ego lane, 10-44 m away
    extra_lane_probability: float = 0.3  # per scene: one more lane each way; the ego car takes any lane
    boundary_probability: float = 0.5  # per frontage: a hedge, fence or garden wall at the plot's edge

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
    boundary_probability=0.12,
    parked_car_probability=0.6,
    oncoming_cars_per_100m=2.5,
    same_way_cars_per_100m=1.5,
    extra_lane_probability=0.2,
    pedestrians_per_100m=3.0,
    tree_probability=0.15,
    pole_spacing=20.0,
    verge="pavement",
    facade_palette=(
        (0.82, 0.80, 0.74), (0.66, 0.60, 0.55), (0.90, 0.88, 0.84), (0.50, 0.50, 0.52),
        (0.72, 0.64, 0.56),
    ),
    bend_probability=0.35,
    max_curvature=1 / 45.0,
    side_streets_per_100m=1.4,
    open_space_probability=0.06,
    billboard_probability=0.12,
)
STYLES = {"suburban": SUBURBAN, "city": CITY}


def yaw_rotation(yaw) -> np.ndarray:
    """(..., 3, 3) rotation about +Y (down) by ``yaw`` (right positive): maps a frame's z axis to
    the heading (sin yaw, 0, cos yaw) and its x axis to the right normal (cos yaw, 0, -sin yaw)."""
    c, s = np.cos(yaw), np.sin(yaw)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1),
                     np.stack([-s, zero, c], -1)], -2)


@dataclass
class Road:
    """The street's centre line, sampled every ``step`` metres of arc length from ``start``:
    position (x, z) and heading (yaw, right positive). Beyond the samples it runs straight on."""

    start: float
    step: float
    x: np.ndarray
    z: np.ndarray
    heading: np.ndarray
    curvature: np.ndarray

    def frame(self, s):
        """(x, z, heading) of the centre line at arc length ``s`` (array or scalar)."""
        s = np.asarray(s, np.float64)
        i = (s - self.start) / self.step
        k = np.clip(np.floor(i).astype(np.int64), 0, len(self.x) - 2)
        a = i - k
        heading = self.heading[k] * (1 - a) + self.heading[k + 1] * a
        # Clamped ends continue straight along the end heading.
        beyond = np.clip(a, 0.0, 1.0)
        x = self.x[k] * (1 - beyond) + self.x[k + 1] * beyond + (a - beyond) * self.step * np.sin(heading)
        z = self.z[k] * (1 - beyond) + self.z[k + 1] * beyond + (a - beyond) * self.step * np.cos(heading)
        return x, z, heading

    def point(self, s, n):
        """World (x, z) at arc length ``s`` and signed lateral offset ``n`` (right positive)."""
        x, z, heading = self.frame(s)
        return x + n * np.cos(heading), z - n * np.sin(heading), heading

    def to_road(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Road coordinates (s, n) of world ground points: the sample whose normal line the point
        lies past (binary search; the normal lines are ordered within a curve's radius), then a
        blend between the two neighbouring normal lines, so s and n are continuous."""
        sx, sz = np.sin(self.heading), np.cos(self.heading)
        lo = np.zeros(x.shape, np.int64)
        hi = np.full(x.shape, len(self.x) - 2, np.int64)
        for _ in range(int(np.ceil(np.log2(len(self.x)))) + 1):
            mid = (lo + hi + 1) // 2
            ahead = (x - self.x[mid]) * sx[mid] + (z - self.z[mid]) * sz[mid] >= 0
            lo = np.where(ahead, mid, lo)
            hi = np.where(ahead, hi, mid - 1)
        k = np.minimum(lo, len(self.x) - 2)
        f0 = (x - self.x[k]) * sx[k] + (z - self.z[k]) * sz[k]
        f1 = (x - self.x[k + 1]) * sx[k + 1] + (z - self.z[k + 1]) * sz[k + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(np.abs(f0 - f1) > 1e-9, f0 / (f0 - f1), 0.0)
        n0 = (x - self.x[k]) * sz[k] - (z - self.z[k]) * sx[k]
        n1 = (x - self.x[k + 1]) * sz[k + 1] - (z - self.z[k + 1]) * sx[k + 1]
        a_in = np.clip(a, 0.0, 1.0)
        return self.start + (k + a) * self.step, n0 * (1 - a_in) + n1 * a_in


def make_road(rng: np.random.Generator, style: WorldStyle, s_from: float, s_to: float, step: float = 0.5) -> Road:
    """Straights and bends, curvature eased in and out over ~15 m; the heading stays within
    +-70 deg of the far end's so the street never folds back on itself. The camera may start
    anywhere, on a bend too: the heading is zero at s = 0."""
    s = np.arange(s_from, s_to + step, step)
    kappa = np.zeros_like(s)
    pos, heading = s_from, 0.0
    while pos < s_to:
        pos += rng.uniform(*style.straight_length)
        if rng.random() < style.bend_probability:
            length = rng.uniform(20.0, 70.0)
            k = rng.uniform(0.25, 1.0) * style.max_curvature
            sign = rng.choice((-1.0, 1.0))
            if abs(heading + sign * k * length) > np.deg2rad(70):
                sign = -sign
            if abs(heading + sign * k * length) > np.deg2rad(70):
                continue
            heading += sign * k * length
            kappa[(s >= pos) & (s < pos + length)] = sign * k
            pos += length
    window = int(15.0 / step) | 1
    kappa = np.convolve(kappa, np.hanning(window) / np.hanning(window).sum(), mode="same")
    theta = np.concatenate([[0.0], np.cumsum((kappa[1:] + kappa[:-1]) * 0.5 * step)])
    theta -= np.interp(0.0, s, theta)
    x = np.concatenate([[0.0], np.cumsum((np.sin(theta[1:]) + np.sin(theta[:-1])) * 0.5 * step)])
    z = np.concatenate([[0.0], np.cumsum((np.cos(theta[1:]) + np.cos(theta[:-1])) * 0.5 * step)])
    x -= np.interp(0.0, s, x)
    z -= np.interp(0.0, s, z)
    return Road(float(s[0]), step, x, z, theta, kappa)


@dataclass
class Posed:
    """Primitives at one traffic time: ``lo``/``hi`` in each one's own frame (the world turned by
    ``yaw`` about the origin); cylinders and spheroids have yaw 0 and ``lo``/``hi`` their bounds."""

    lo: np.ndarray
    hi: np.ndarray
    yaw: np.ndarray
    kind: np.ndarray

    def corners_world(self) -> np.ndarray:
        """(N, 8, 3) world corners of each primitive's box."""
        sel = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
        both = np.stack([self.lo, self.hi], axis=1)
        local = np.stack([both[:, sel[:, a], a] for a in range(3)], axis=-1)
        return np.einsum("nij,nkj->nki", yaw_rotation(self.yaw), local)


@dataclass
class Boxes:
    """The scene's primitives at traffic time 0.

    Static ones have ``lo``/``hi`` in their own frame (turned by ``yaw``); moving ones (``speed``
    != 0, m/s along the road) have ``lo``/``hi`` relative to a frame riding the road at arc
    length ``path_s + speed * t`` and lateral offset ``path_n``, turned with it.
    """

    lo: np.ndarray  # (N, 3)
    hi: np.ndarray  # (N, 3)
    yaw: np.ndarray  # (N,)
    kind: np.ndarray  # (N,) BOX, CYLINDER or SPHEROID
    material: np.ndarray  # (N,) int
    colour: np.ndarray  # (N, 3) float in [0, 1]
    params: np.ndarray  # (N, N_PARAMS) appearance, see the P_* columns
    path_s: np.ndarray  # (N,)
    path_n: np.ndarray  # (N,)
    speed: np.ndarray  # (N,)
    # A car leading the ego car in its lane: its boxes (``leads``) sit ``path_s`` plus a varying gap
    # ahead of the ego car, whose distance at a traffic time the table (times, distances) gives.
    leads: np.ndarray | None = None
    lead_table: tuple[np.ndarray, np.ndarray] | None = None

    def arc_length(self, traffic_time: float) -> np.ndarray:
        """(N,) arc length of every moving primitive's frame at a traffic time."""
        s = self.path_s + self.speed * traffic_time
        if self.leads is not None and self.lead_table is not None:
            times, distances = self.lead_table
            s = np.where(self.leads, self.path_s + float(np.interp(traffic_time, times, distances))
                         + 4.0 * np.sin(traffic_time / 4.0), s)
        return s

    def at(self, traffic_time: float, road: Road) -> Posed:
        """Every primitive at a traffic time: moving ones ride the road."""
        lo, hi, yaw = self.lo.copy(), self.hi.copy(), self.yaw.copy()
        moving = self.speed != 0
        if moving.any():
            x, z, heading = road.point(self.arc_length(traffic_time)[moving], self.path_n[moving])
            origin = np.einsum("nji,nj->ni", yaw_rotation(heading), np.stack([x, np.zeros_like(x), z], -1))
            lo[moving] += origin
            hi[moving] += origin
            yaw[moving] = heading
        return Posed(lo, hi, yaw, self.kind)

    def __len__(self) -> int:
        return len(self.material)


@dataclass
class Scene:
    """A generated street: road, primitives, ground layout, light and camera mounting, from one seed."""

    style: WorldStyle
    boxes: Boxes
    sun_direction: np.ndarray  # unit vector *towards* the sun, world frame
    sky_horizon: np.ndarray  # RGB
    sky_zenith: np.ndarray  # RGB
    ground_seed: int
    ego_lane_x: float
    length: float  # metres of street generated ahead of the start
    road: Road | None = None
    ground: dict = field(default_factory=dict)  # per-scene ground look (markings, kerb, sidewalk), render.py
    sections: np.ndarray | None = None  # (K, 4): s_start, s_end, side (+-1), ground kind beyond the sidewalk
    crossings: np.ndarray | None = None  # (K, 2): s_start, s_end of side-street mouths and crossings
    light: dict = field(default_factory=dict)  # sun strength, ambient, sun colour, haze


class _BoxList:
    """Accumulates primitives while a scene is generated."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rows: list[tuple] = []
        self.rng = rng

    def add(self, lo, hi, material, colour, yaw=0.0, kind=BOX, params=None, path=(0.0, 0.0, 0.0)) -> None:
        if params is None:
            params = np.zeros(N_PARAMS)
            params[P_SEED] = self.rng.integers(1 << 20)
        self.rows.append((lo, hi, yaw, kind, material, colour, params, *path))

    def add_static(self, road: Road, s: float, yaw: float, local_lo, local_hi, material, colour, **kw) -> None:
        """A box given in the road frame at arc length ``s`` (x lateral, z along), turned by ``yaw``."""
        x, z, _ = road.frame(s)
        origin = yaw_rotation(yaw).T @ np.array([x, 0.0, z])
        self.add(origin + np.asarray(local_lo), origin + np.asarray(local_hi), material, colour, yaw=yaw, **kw)

    def add_round(self, x, z, radius, y_top, y_bottom, material, colour, kind, **kw) -> None:
        self.add((x - radius, y_top, z - radius), (x + radius, y_bottom, z + radius), material, colour,
                 kind=kind, **kw)

    def build(self) -> Boxes:
        lo, hi, yaw, kind, mat, col, params, ps, pn, sp = zip(*self.rows)
        f = lambda v: np.array(v, dtype=np.float64)  # noqa: E731
        return Boxes(lo=f(lo), hi=f(hi), yaw=f(yaw), kind=np.array(kind, np.int64), material=np.array(mat, np.int64),
                     colour=f(col), params=f(params), path_s=f(ps), path_n=f(pn), speed=f(sp))


def _jitter_colour(rng, colour, amount=0.12) -> tuple:
    """A palette colour, shifted in brightness and hue so no two objects share it exactly."""
    c = np.asarray(colour) * rng.uniform(1 - amount, 1 + amount) + rng.uniform(-amount, amount, 3) * 0.4
    return tuple(np.clip(c, 0.03, 0.97))


def _car_colour(rng) -> tuple:
    base = CAR_COLOURS[rng.integers(len(CAR_COLOURS))]
    return _jitter_colour(rng, base, 0.15)


CAR_COLOURS = (
    (0.75, 0.1, 0.1), (0.1, 0.2, 0.6), (0.85, 0.85, 0.85), (0.1, 0.1, 0.1), (0.5, 0.5, 0.55),
    (0.2, 0.45, 0.25), (0.9, 0.75, 0.2), (0.95, 0.95, 0.95), (0.3, 0.3, 0.33), (0.55, 0.35, 0.2),
)


def _car_parts(rng):
    """A car as three boxes in its own frame (x across, z along, centred): dark undercarriage,
    painted body, glass cabin."""
    length = rng.uniform(3.7, 4.9)
    width = rng.uniform(1.65, 1.95)
    roof = rng.uniform(1.35, 1.75)
    body_top = rng.uniform(0.85, 1.05)
    half_l, half_w = length / 2, width / 2
    cabin_front = -half_l + rng.uniform(0.8, 1.4)
    cabin_len = length * rng.uniform(0.42, 0.6)
    return [
        ((-half_w + 0.05, -0.35, -half_l + 0.4), (half_w - 0.05, 0.0, half_l - 0.4), CAR_UNDER),
        ((-half_w, -body_top, -half_l), (half_w, -0.35, half_l), CAR_BODY),
        ((-half_w + 0.1, -roof, cabin_front), (half_w - 0.1, -body_top, cabin_front + cabin_len), CAR_CABIN),
    ]


def _add_parked_car(boxes: _BoxList, road: Road, s: float, n: float, yaw: float, across: bool, rng) -> None:
    colour = _car_colour(rng)
    for lo, hi, mat in _car_parts(rng):
        lo, hi = np.array(lo), np.array(hi)
        if across:  # parked at right angles to the road: swap the car's x and z
            lo, hi = lo[[2, 1, 0]], hi[[2, 1, 0]]
        lo[0] += n
        hi[0] += n
        boxes.add_static(road, s, yaw, lo, hi, mat, (0.05, 0.05, 0.05) if mat == CAR_UNDER else colour)


def _add_lead_car(scene: Scene, trajectory: Trajectory, rng) -> None:
    """A car driving ahead in the ego lane: it keeps a gap of 14-40 m (varying by +-4 m with the
    traffic clock), so it stops when the ego car stops and frames at a stop stay identical."""
    parts = _BoxList(rng)
    _add_moving_car(parts, rng.uniform(14.0, 40.0), scene.ego_lane_x, 1.0, rng)
    lead = parts.build()
    b = scene.boxes
    n_old = len(b)
    for name in ("lo", "hi", "yaw", "kind", "material", "colour", "params", "path_s", "path_n", "speed"):
        setattr(b, name, np.concatenate([getattr(b, name), getattr(lead, name)]))
    b.leads = np.arange(len(b)) >= n_old
    b.lead_table = (trajectory.traffic_time.copy(), trajectory.distance.copy())


def _add_moving_car(boxes: _BoxList, s: float, n: float, speed: float, rng) -> None:
    colour = _car_colour(rng)
    for lo, hi, mat in _car_parts(rng):
        boxes.add(lo, hi, mat, (0.05, 0.05, 0.05) if mat == CAR_UNDER else colour, path=(s, n, speed))


def _quantised_yaw(road: Road, s: float) -> float:
    """The road heading at ``s`` rounded to 0.5 deg: nearby boxes share a frame, which the ray
    caster turns its rays into once."""
    step = np.deg2rad(0.5)
    return float(np.round(road.frame(s)[2] / step) * step)


def _bend_margin(road: Road, s0: float, s1: float, yaw: float) -> float:
    """How far a straight frontage from s0 to s1, squared to ``yaw``, can stray towards the road's
    centre line on a bend (its ends cut inside the curve) or by the yaw rounding."""
    samples = np.linspace(s0, s1, 9)
    _, _, heading = road.frame(samples)
    half = 0.5 * (s1 - s0)
    kappa = np.abs(np.interp(samples, road.start + np.arange(len(road.curvature)) * road.step, road.curvature)).max()
    return float(0.5 * kappa * half**2 + half * np.abs(heading - yaw).max() + 0.2)


def _building_params(rng, style: WorldStyle) -> np.ndarray:
    """One facade's look: material, texture scale/offset, window grid, storeys, ground floor."""
    p = np.zeros(N_PARAMS)
    p[P_SEED] = rng.integers(1 << 20)
    p[P_TEXTURE] = rng.choice([textures.BRICK, textures.BRICK, textures.GRAVEL, textures.MOON, textures.CAMERA,
                               textures.ROCKET])
    p[P_TEXEL] = rng.uniform(0.004, 0.02) if p[P_TEXTURE] == textures.BRICK else rng.uniform(0.01, 0.05)
    p[P_U0], p[P_V0] = rng.uniform(0, 200), rng.uniform(0, 200)
    p[P_CONTRAST] = rng.uniform(0.12, 0.4)
    storey = rng.uniform(2.7, 3.9)
    p[P_STOREY] = storey
    pitch = rng.uniform(1.6, 4.2)
    p[P_WIN_PITCH] = pitch
    p[P_WIN_WIDTH] = pitch * rng.uniform(0.3, 0.75)
    p[P_WIN_HEIGHT] = storey * rng.uniform(0.35, 0.65)
    # Ground floor: 0 like the others, 1 shop front, 2 doors in a blank wall.
    p[P_GROUND_FLOOR] = rng.choice(3, p=(0.35, 0.45, 0.2) if style.name == "city" else (0.6, 0.15, 0.25))
    p[P_SHOP_PITCH] = rng.uniform(3.0, 8.0)
    p[P_BALCONY] = rng.random() < 0.3
    p[P_PHOTO] = rng.integers(8) if rng.random() < 0.35 else -1  # a poster on the ground floor
    p[P_FRAME] = rng.uniform(0.1, 0.9)
    return p


def generate_scene(seed: int, style: WorldStyle, length: float, behind: float = 60.0) -> Scene:
    """Lay out a street of ``length`` metres (plus ``behind`` metres behind the start) from a seed."""
    rng = np.random.default_rng(seed)
    boxes = _BoxList(rng)
    z_start, z_end = -behind, length + 150.0  # the camera sees ~150 m ahead at the end of its drive
    road = make_road(rng, style, z_start - 260.0, z_end + 460.0)
    # The scene's own street: lane width, parking and sidewalk vary around the style's.
    lane_width = style.lane_width + rng.uniform(-1, 1) * style.lane_width_jitter
    parking = max(1.6, style.parking_width + rng.uniform(-0.4, 0.4))
    sidewalk = max(1.5, style.sidewalk_width + rng.uniform(-0.8, 1.2))
    lanes = style.lanes_per_side + int(rng.random() < style.extra_lane_probability)
    road_half = lanes * lane_width + parking
    kerb = road_half + sidewalk

    # Side streets: openings in the frontage (often on both sides, a crossroads) down to far depth.
    crossings = []
    n_side = rng.poisson(style.side_streets_per_100m * (z_end - z_start) / 100.0)
    for s_mid in np.sort(rng.uniform(z_start + 20.0, z_end, n_side)):
        if crossings and s_mid - crossings[-1][1] < 25.0:
            continue
        width = rng.uniform(7.0, 14.0)
        sides = (-1.0, 1.0) if rng.random() < 0.5 else (rng.choice((-1.0, 1.0)),)
        crossings.append((s_mid - width / 2, s_mid + width / 2, sides))

    def in_crossing(s0, s1, side):
        return any(a - 2.0 < s1 and s0 < b + 2.0 and side in sides for a, b, sides in crossings)

    sections = []
    for side in (-1.0, 1.0):
        # Frontages: buildings with set-backs and storeys, empty lots, parks and car parks.
        s = z_start
        while s < z_end:
            seg = rng.uniform(*style.building_length)
            clash = [c for c in crossings if c[0] - 2.0 < s + seg and s < c[1] + 2.0 and side in c[2]]
            if clash:
                a, b, _ = clash[0]
                if s < a - 2.0:
                    seg = a - 2.0 - s
                else:  # the side street itself: asphalt into the distance, lined by buildings
                    sections.append((a, b, side, SIDE_STREET))
                    _side_street(boxes, road, rng, style, a, b, side, kerb)
                    s = b + 2.0
                    continue
            roll = rng.random()
            if seg > 4.0 and roll < style.open_space_probability:
                seg = rng.uniform(30.0, 60.0)
                seg = min(seg, next((c[0] - 2.0 - s for c in crossings if c[0] > s and side in c[2]), seg))
                kind = PARK if rng.random() < 0.5 else ASPHALT
                sections.append((s, s + seg, side, kind))
                _open_space(boxes, road, rng, style, s, s + seg, side, kerb, kind)
            elif seg > 4.0 and roll < style.open_space_probability + style.gap_probability:
                # An empty lot: a low wall far back keeps depth finite but discontinuous.
                sections.append((s, s + seg, side, GRAVEL_LOT))
                yaw = _quantised_yaw(road, s + seg / 2)
                near = kerb + style.setback[1] + rng.uniform(10.0, 25.0) + _bend_margin(road, s, s + seg, yaw)
                x0, x1 = sorted((side * near, side * (near + 0.4)))
                h = rng.uniform(1.0, 2.5)
                boxes.add_static(road, s + seg / 2, yaw, (x0, -h, -seg / 2), (x1, 0.0, seg / 2), WALL,
                                 _jitter_colour(rng, (0.55, 0.52, 0.48)), params=_building_params(rng, style))
            elif seg > 3.0:
                setback = rng.uniform(*style.setback)
                _building(boxes, road, rng, style, s, s + seg, side, kerb + setback, seg)
                if setback > 1.5 and rng.random() < style.boundary_probability:
                    _boundary(boxes, road, rng, style, s, s + seg, side, kerb + rng.uniform(0.0, min(1.0, setback - 1.0)))
            s += seg + (rng.uniform(0.0, 4.0) if rng.random() < 0.3 else 0.0)

        # Parked cars along the kerb, in slots of varying length, not across side streets.
        slot = rng.uniform(6.0, 8.0)
        density = np.clip(style.parked_car_probability + rng.uniform(-0.3, 0.3), 0.05, 0.95)
        for slot_s in np.arange(z_start, z_end, slot):
            if rng.random() < density and not in_crossing(slot_s, slot_s + slot, side):
                s_car = slot_s + rng.uniform(2.5, slot - 2.5)
                n = side * (road_half - parking / 2) + rng.uniform(-0.2, 0.2)
                _add_parked_car(boxes, road, s_car, n, _quantised_yaw(road, s_car), False, rng)

        # Trees on the sidewalk: trunk cylinders and spheroid crowns of many sizes.
        tree_spacing = rng.uniform(8.0, 16.0)
        tree_prob = np.clip(style.tree_probability + rng.uniform(-0.3, 0.3), 0.0, 0.9)
        canopy = (0.18 + rng.uniform(-0.05, 0.08), 0.40 + rng.uniform(-0.1, 0.05), 0.13 + rng.uniform(-0.05, 0.05))
        for slot_s in np.arange(z_start, z_end, tree_spacing):
            if rng.random() < tree_prob and not in_crossing(slot_s, slot_s + tree_spacing, side):
                s_tree = slot_s + rng.uniform(0.0, tree_spacing - 1.0)
                x, z, _ = road.point(s_tree, side * (road_half + sidewalk * rng.uniform(0.5, 0.8)))
                _tree(boxes, rng, x, z, canopy)

        # Street lights, and now and then a billboard facing the traffic.
        spacing = style.pole_spacing * rng.uniform(0.7, 1.3)
        for s_pole in np.arange(z_start + rng.uniform(0, spacing), z_end, spacing):
            x, z, _ = road.point(s_pole, side * (road_half + 0.4))
            r = rng.uniform(0.07, 0.14)
            boxes.add_round(x, z, r, -rng.uniform(5.5, 8.5), 0.0, POLE, _jitter_colour(rng, (0.45, 0.45, 0.47)),
                            CYLINDER)
        for s_sign in np.arange(z_start, z_end, 12.0):
            if rng.random() < style.billboard_probability and not in_crossing(s_sign - 3, s_sign + 3, side):
                _billboard(boxes, road, rng, s_sign, side, road_half + sidewalk * rng.uniform(0.3, 0.9))

        # Pedestrians walking along the sidewalk (independent motion, small objects).
        n_ped = rng.poisson(style.pedestrians_per_100m * (z_end - z_start) / 100.0)
        for _ in range(n_ped):
            n = side * (road_half + rng.uniform(0.5, sidewalk - 0.5))
            h = rng.uniform(1.55, 1.9)
            shirt = tuple(rng.uniform(0.1, 0.9, size=3))
            speed = rng.choice((-1.0, 1.0)) * rng.uniform(0.8, 1.6)
            boxes.add((-0.25, -h, -0.18), (0.25, 0.0, 0.18), PEDESTRIAN, shirt,
                      path=(rng.uniform(z_start, z_end), n, speed))

    # Moving traffic: oncoming cars in the left lanes, same-direction cars in the right lanes
    # other than the ego car's, which only a lead car uses (see make_sequence), so the ego car
    # never drives through one.
    centre = lambda lane: (lane + 0.5) * lane_width  # noqa: E731
    ego_lane = int(rng.integers(lanes))
    span = z_end - z_start + 400.0  # oncoming cars start far ahead and drive towards the camera
    for _ in range(rng.poisson(style.oncoming_cars_per_100m * span / 100.0)):
        lane = rng.integers(lanes)
        _add_moving_car(boxes, rng.uniform(z_start, z_end + 400.0), -centre(lane) + rng.uniform(-0.2, 0.2),
                        -rng.uniform(6.0, 14.0), rng)
    others = [lane for lane in range(lanes) if lane != ego_lane]
    if others:
        for _ in range(rng.poisson(style.same_way_cars_per_100m * span / 100.0)):
            _add_moving_car(boxes, rng.uniform(z_start - 200.0, z_end), centre(others[rng.integers(len(others))]),
                            rng.uniform(3.0, 12.0), rng)

    scene = Scene(
        style=style,
        boxes=boxes.build(),
        sun_direction=np.zeros(3),
        sky_horizon=np.zeros(3),
        sky_zenith=np.zeros(3),
        ground_seed=int(rng.integers(1 << 30)),
        ego_lane_x=centre(ego_lane),
        length=length,
        road=road,
        ground=_ground_look(rng, style, lanes, lane_width, parking, sidewalk),
        sections=np.array(sections, np.float64).reshape(-1, 4),
        crossings=np.array([(a, b) for a, b, _ in crossings], np.float64).reshape(-1, 2),
    )
    _light(scene, rng)
    return scene


def _ground_look(rng, style: WorldStyle, lanes: int, lane_width: float, parking: float, sidewalk: float) -> dict:
    """The scene's road surface, markings, kerb, sidewalk and verge."""
    dash = rng.uniform(1.0, 6.0)
    return {
        "lanes": lanes, "lane_width": lane_width, "parking": parking, "sidewalk": sidewalk,
        "asphalt": rng.uniform(0.2, 0.42), "asphalt_tint": rng.uniform(-0.03, 0.03, 3),
        "asphalt_texel": rng.uniform(0.006, 0.02), "asphalt_contrast": rng.uniform(0.05, 0.14),
        "asphalt_offset": rng.uniform(0, 500, 2),
        "dash": dash, "dash_period": dash + rng.uniform(2.0, 12.0), "dash_phase": rng.uniform(0, 20),
        "line_width": rng.uniform(0.1, 0.2),
        # Centre line: 0 dashed, 1 solid, 2 double solid; white or yellow; edge lines or none.
        "centre_kind": int(rng.choice(3, p=(0.5, 0.25, 0.25))), "centre_yellow": bool(rng.random() < 0.3),
        "edge_line": bool(rng.random() < 0.6), "paint": rng.uniform(0.6, 0.9),
        "paint_wear": rng.uniform(0.0, 0.5),
        "kerb": rng.uniform(0.12, 0.3), "kerb_albedo": rng.uniform(0.45, 0.8),
        "walk_albedo": rng.uniform(0.4, 0.68), "walk_tint": rng.uniform(-0.04, 0.04, 3),
        "walk_texture": int(rng.choice([textures.BRICK, textures.GRAVEL, textures.MOON])),
        "walk_texel": rng.uniform(0.003, 0.012), "walk_tile": rng.uniform(0.25, 1.0),
        "verge": style.verge if rng.random() < 0.8 else ("pavement" if style.verge == "grass" else "grass"),
        "grass": (0.20 + rng.uniform(-0.05, 0.08), 0.34 + rng.uniform(-0.08, 0.06), 0.12 + rng.uniform(-0.04, 0.04)),
        "grass_texel": rng.uniform(0.004, 0.015),
    }


def _light(scene: Scene, rng) -> None:
    """Time of day and weather: sun height and colour, overcast (weak sun, flat sky), haze."""
    overcast = rng.random() < 0.3
    elevation = np.deg2rad(rng.uniform(8.0, 65.0))
    azimuth = rng.uniform(-np.pi, np.pi)
    # Towards the sun: up is -Y in this frame.
    scene.sun_direction = np.array([np.cos(elevation) * np.sin(azimuth), -np.sin(elevation),
                                    np.cos(elevation) * np.cos(azimuth)])
    low = float(np.clip(1.0 - np.rad2deg(elevation) / 30.0, 0.0, 1.0))  # evening light is warm
    sun_colour = np.array([1.0, 1.0 - 0.15 * low, 1.0 - 0.35 * low])
    if overcast:
        grey = rng.uniform(0.7, 0.9)
        scene.sky_horizon = np.array([grey, grey, grey * 1.02])
        scene.sky_zenith = scene.sky_horizon * rng.uniform(0.8, 0.95)
    else:
        scene.sky_horizon = np.array([0.78, 0.85, 0.92]) * rng.uniform(0.9, 1.05) + np.array([0.1, 0.04, -0.05]) * low
        scene.sky_zenith = np.array([0.35, 0.55, 0.85]) * rng.uniform(0.75, 1.05)
    scene.light = {
        "sun": (rng.uniform(0.05, 0.2) if overcast else rng.uniform(0.5, 0.8)) * sun_colour,
        "ambient": rng.uniform(0.6, 0.8) if overcast else rng.uniform(0.4, 0.6),
        "haze_distance": rng.uniform(150.0, 400.0) if overcast else rng.uniform(350.0, 1500.0),
        "clouds": rng.uniform(0.3, 0.6),
        "shadows": not overcast,
    }


def _building(boxes, road, rng, style, s0, s1, side, near, seg) -> None:
    storeys = max(1, int(round(rng.uniform(*style.building_height) / 3.2)))
    params = _building_params(rng, style)
    height = storeys * params[P_STOREY] + rng.uniform(0.3, 1.2)
    yaw = _quantised_yaw(road, 0.5 * (s0 + s1))
    near = near + _bend_margin(road, s0, s1, yaw)
    depth = rng.uniform(8.0, 15.0)
    x0, x1 = sorted((side * near, side * (near + depth)))
    colour = _jitter_colour(rng, style.facade_palette[rng.integers(len(style.facade_palette))])
    boxes.add_static(road, 0.5 * (s0 + s1), yaw, (x0, -height, -seg / 2), (x1, 0.0, seg / 2), BUILDING, colour,
                     params=params)


def _boundary(boxes, road, rng, style, s0, s1, side, near) -> None:
    """A hedge (leaves), a fence or a garden wall along the front of a plot."""
    yaw = _quantised_yaw(road, 0.5 * (s0 + s1))
    near += _bend_margin(road, s0, s1, yaw)
    hedge = rng.random() < 0.5
    height = rng.uniform(0.8, 2.0) if hedge else rng.uniform(0.6, 1.8)
    thick = rng.uniform(0.5, 1.2) if hedge else rng.uniform(0.1, 0.35)
    x0, x1 = sorted((side * near, side * (near + thick)))
    params = _building_params(rng, style)
    params[P_WIN_PITCH] = 0.0  # no windows
    if hedge:
        params[P_TEXTURE], params[P_TEXEL] = textures.GRASS, rng.uniform(0.004, 0.015)
        params[P_CONTRAST] = rng.uniform(0.3, 0.5)
        colour = _jitter_colour(rng, (0.16, 0.32, 0.12), 0.25)
    else:
        colour = _jitter_colour(rng, ((0.55, 0.5, 0.45), (0.7, 0.68, 0.62), (0.45, 0.33, 0.25))[rng.integers(3)])
    half = 0.5 * (s1 - s0) - rng.uniform(0.0, 1.5)
    boxes.add_static(road, 0.5 * (s0 + s1), yaw, (x0, -height, -half), (x1, 0.0, half), HEDGE if hedge else WALL,
                     colour, params=params)


def _side_street(boxes, road, rng, style, a, b, side, kerb) -> None:
    """Buildings lining a side street at right angles, and one closing the view far down it."""
    yaw = _quantised_yaw(road, 0.5 * (a + b))
    cross = yaw + side * np.pi / 2  # along the side street, away from the main road
    x, z, _ = road.point(0.5 * (a + b), 0.0)
    end = rng.uniform(50.0, 160.0)
    width = b - a
    origin = yaw_rotation(cross).T @ np.array([x, 0.0, z])
    # In the side street's frame, z runs away from the main road and x across the side street.
    along = kerb + 4.0
    while along < end - 8.0:
        length = rng.uniform(10.0, 25.0)
        for across in (-1.0, 1.0):
            h = rng.uniform(*style.building_height)
            x0, x1 = sorted((across * (width / 2 + 2.0 + rng.uniform(0, 3)), across * (width / 2 + 14.0)))
            boxes.add(origin + (x0, -h, along), origin + (x1, 0.0, along + length), BUILDING,
                      _jitter_colour(rng, style.facade_palette[rng.integers(len(style.facade_palette))]),
                      yaw=cross, params=_building_params(rng, style))
        along += length + rng.uniform(0.0, 3.0)
    h = rng.uniform(*style.building_height)
    boxes.add(origin + (-width / 2 - 15.0, -h, end), origin + (width / 2 + 15.0, 0.0, end + 12.0), BUILDING,
              _jitter_colour(rng, style.facade_palette[rng.integers(len(style.facade_palette))]),
              yaw=cross, params=_building_params(rng, style))


def _open_space(boxes, road, rng, style, s0, s1, side, kerb, kind) -> None:
    """A park (grass and trees) or a car park (cars at right angles), buildings far behind."""
    yaw = _quantised_yaw(road, 0.5 * (s0 + s1))
    depth = rng.uniform(30.0, 70.0)
    if kind == PARK:
        canopy = (0.2 + rng.uniform(-0.05, 0.1), 0.42 + rng.uniform(-0.1, 0.05), 0.14)
        for _ in range(rng.poisson((s1 - s0) * depth / 120.0)):
            x, z, _ = road.point(rng.uniform(s0 + 2, s1 - 2), side * (kerb + rng.uniform(3.0, depth - 5.0)))
            _tree(boxes, rng, x, z, canopy)
    else:
        for row in np.arange(kerb + 4.0, kerb + depth - 6.0, rng.uniform(12.0, 16.0)):
            for s_car in np.arange(s0 + 2.0, s1 - 2.0, rng.uniform(2.5, 3.2)):
                if rng.random() < 0.6:
                    _add_parked_car(boxes, road, s_car, side * row, yaw, True, rng)
    margin = _bend_margin(road, s0, s1, yaw)
    x0, x1 = sorted((side * (kerb + depth + margin), side * (kerb + depth + margin + 12.0)))
    h = rng.uniform(*style.building_height)
    boxes.add_static(road, 0.5 * (s0 + s1), yaw, (x0, -h, -(s1 - s0) / 2), (x1, 0.0, (s1 - s0) / 2), BUILDING,
                     _jitter_colour(rng, style.facade_palette[rng.integers(len(style.facade_palette))]),
                     params=_building_params(rng, style))


def _tree(boxes, rng, x, z, canopy) -> None:
    trunk_top = rng.uniform(1.8, 3.2)
    radius = rng.uniform(0.08, 0.22)
    boxes.add_round(x, z, radius, -trunk_top - 0.5, 0.0, TRUNK, _jitter_colour(rng, (0.35, 0.26, 0.17)), CYLINDER)
    crown = rng.uniform(1.0, 2.6)
    tall = crown * rng.uniform(0.9, 1.8)
    params = np.zeros(N_PARAMS)
    params[P_SEED] = rng.integers(1 << 20)
    params[P_TEXEL] = rng.uniform(0.005, 0.02)
    params[P_U0], params[P_V0] = rng.uniform(0, 100, 2)
    params[P_CONTRAST] = rng.uniform(0.2, 0.45)
    boxes.add_round(x, z, crown, -trunk_top - 2 * tall, -trunk_top, CANOPY, _jitter_colour(rng, canopy, 0.2),
                    SPHEROID, params=params)


def _billboard(boxes, road, rng, s, side, n) -> None:
    """A board on two posts facing the traffic, showing a photograph."""
    yaw = _quantised_yaw(road, s)
    width = rng.uniform(1.5, 4.0)
    height = width * rng.uniform(0.5, 0.9)
    bottom = rng.uniform(1.8, 3.0)
    x0, x1 = sorted((side * n - width / 2, side * n + width / 2))
    params = np.zeros(N_PARAMS)
    params[P_SEED] = rng.integers(1 << 20)
    params[P_PHOTO] = rng.integers(8)
    params[P_TEXEL] = width / rng.uniform(150.0, 256.0)
    params[P_U0], params[P_V0] = rng.uniform(0, 0.3 * width), rng.uniform(0, 0.3 * height)
    boxes.add_static(road, s, yaw, (x0, -bottom - height, -0.1), (x1, -bottom, 0.1), SIGN, (0.5, 0.5, 0.5),
                     params=params)
    for post in (x0 + 0.2, x1 - 0.2):
        boxes.add_static(road, s, yaw, (post - 0.06, -bottom, -0.06), (post + 0.06, 0.0, 0.06), POLE,
                         (0.35, 0.35, 0.37))


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

    def _road_frame(self, s: float) -> tuple[float, float, float, float]:
        """(x, z, heading) of the camera's ground point at distance ``s``: its lane, plus wobble."""
        n = self.lane_x + self.wobble[2, 0] * np.sin(2 * np.pi * s / self.wobble_wavelengths[2] + self.wobble[2, 1])
        if self.road is None:
            return n, s, 0.0
        x, z, heading = self.road.point(s, n)
        return float(x), float(z), float(heading)

    def rotation(self, index: int) -> np.ndarray:
        """Camera-to-world rotation of frame ``index``: the road's heading, plus wobble."""
        s = self.distance[index]
        yaw = self.wobble[0, 0] * np.sin(2 * np.pi * s / self.wobble_wavelengths[0] + self.wobble[0, 1])
        pitch = self.pitch_bias + self.wobble[1, 0] * np.sin(2 * np.pi * s / self.wobble_wavelengths[1] + self.wobble[1, 1])
        return rotation_yaw_pitch(yaw + self._road_frame(s)[2], pitch)

    def position(self, index: int) -> np.ndarray:
        x, z, _ = self._road_frame(self.distance[index])
        return np.array([x, -self.camera_height, z])

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
    vignetting: float = 0.0  # brightness loss at unit normalised radius (r^2 falloff)
    noise: float = 0.0  # sensor noise, standard deviation in 8-bit grey levels


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
    scene_seed, drive_seed, camera_seed = (int(s.generate_state(1)[0]) for s in root.spawn(3))
    trajectory = make_trajectory(drive_seed, seconds, fps, drive, camera_height, 0.0, pitch_bias_deg)
    scene = generate_scene(scene_seed, style, length=float(trajectory.distance[-1]) + 10.0)
    trajectory.lane_x = scene.ego_lane_x
    trajectory.road = scene.road
    camera = np.random.default_rng(camera_seed)
    if camera.random() < style.lead_car_probability:
        _add_lead_car(scene, trajectory, camera)
    return Sequence(scene, trajectory, intrinsics, np.ones(3) if exposure is None else np.asarray(exposure),
                    vignetting=float(camera.uniform(0.05, 0.3)), noise=float(camera.uniform(0.8, 2.5)))

"""What a generated scene holds: the material, shape and ground-kind ids and the columns of the
per-object appearance table (``P_*``) that ``shading.py`` reads; :class:`Boxes`, the primitives at
traffic time 0 (static ones in their own frame, moving ones riding the road); :class:`Scene`, the
whole street from one seed (road, primitives, ground layout, light); and ``_BoxList``, the
accumulator that the generators in ``street.py`` and ``props.py`` fill.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geopre.synth.road import Posed, Road, yaw_rotation
from geopre.synth.style import WorldStyle


# Materials: each one has its own look in shading.py.
BUILDING, CAR_BODY, CAR_CABIN, CAR_UNDER, POLE, TRUNK, CANOPY, PEDESTRIAN, SIGN, WALL, HEDGE = range(11)
# Primitive shapes, ray cast in raycast.py.
BOX, CYLINDER, SPHEROID = range(3)
# Ground beyond the sidewalk, per stretch of street (shading.py colours them).
VERGE, ASPHALT, GRAVEL_LOT, PARK, SIDE_STREET = range(5)

# Columns of Boxes.params: the per-object appearance that shading.py reads.
P_SEED, P_TEXTURE, P_TEXEL, P_U0, P_V0, P_CONTRAST, P_WIN_PITCH, P_WIN_WIDTH, P_STOREY, P_WIN_HEIGHT, \
    P_GROUND_FLOOR, P_SHOP_PITCH, P_BALCONY, P_PHOTO, P_FRAME = range(15)
N_PARAMS = 15


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
    # Cross traffic (``traffic.py``): boxes that drive straight along their own frame's z axis at
    # ``speed`` (through a crossroads) instead of riding the road.
    lines: np.ndarray | None = None

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
        lines = self.lines if self.lines is not None else np.zeros(len(self), bool)
        moving = (self.speed != 0) & ~lines
        if moving.any():
            x, z, heading = road.point(self.arc_length(traffic_time)[moving], self.path_n[moving])
            origin = np.einsum("nji,nj->ni", yaw_rotation(heading), np.stack([x, np.zeros_like(x), z], -1))
            lo[moving] += origin
            hi[moving] += origin
            yaw[moving] = heading
        if lines.any():
            lo[lines, 2] += self.speed[lines] * traffic_time
            hi[lines, 2] += self.speed[lines] * traffic_time
        return Posed(lo, hi, yaw, self.kind)

    def append(self, more: "Boxes") -> np.ndarray:
        """Add ``more``'s primitives (a lead car, cross traffic) after these; returns the (N,) mask
        of the added ones. Masks absent on either side count as all False."""
        n_old = len(self)
        for name in ("lo", "hi", "yaw", "kind", "material", "colour", "params", "path_s", "path_n", "speed"):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(more, name)]))
        for name in ("leads", "lines"):
            mine, theirs = getattr(self, name), getattr(more, name)
            if mine is not None or theirs is not None:
                mine = np.zeros(n_old, bool) if mine is None else mine
                theirs = np.zeros(len(more), bool) if theirs is None else theirs
                setattr(self, name, np.concatenate([mine, theirs]))
        return np.arange(len(self)) >= n_old

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
    ground: dict = field(default_factory=dict)  # per-scene ground look (markings, kerb, sidewalk), shading.py
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

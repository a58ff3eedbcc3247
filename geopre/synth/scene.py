"""What a generated scene holds: the material, shape and ground-kind ids and the columns of the
per-object appearance table (``P_*``) that ``shading.py`` reads; :class:`Boxes`, the primitives at
traffic time 0 (static ones in their own frame, moving ones riding the road); :class:`Scene`, the
whole street from one seed (road, terrain, primitives, ground layout, light); and ``_BoxList``,
the accumulator that the generators in ``street.py`` and ``props.py`` fill, which stands every
primitive on the terrain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geopre.synth.road import Posed, Road, yaw_rotation
from geopre.synth.style import WorldStyle
from geopre.synth.terrain import FLAT, Terrain


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
    # ``speed`` (through a crossroads) instead of riding the road; their car's anchor in that frame
    # is (path_n, 0, path_s + speed * t), so all its parts ride the terrain at one height.
    lines: np.ndarray | None = None
    terrain: Terrain = FLAT  # moving primitives ride its height; static ones were placed on it

    def arc_length(self, traffic_time: float) -> np.ndarray:
        """(N,) arc length of every moving primitive's frame at a traffic time."""
        s = self.path_s + self.speed * traffic_time
        if self.leads is not None and self.lead_table is not None:
            times, distances = self.lead_table
            s = np.where(self.leads, self.path_s + float(np.interp(traffic_time, times, distances))
                         + 4.0 * np.sin(traffic_time / 4.0), s)
        return s

    def at(self, traffic_time: float, road: Road) -> Posed:
        """Every primitive at a traffic time: moving ones ride the road and crossing cars their straight
        line, at the terrain's height under their frame's origin or car anchor (a car's parts move as one)."""
        lo, hi, yaw = self.lo.copy(), self.hi.copy(), self.yaw.copy()
        lines = self.lines if self.lines is not None else np.zeros(len(self), bool)
        moving = (self.speed != 0) & ~lines
        if moving.any():
            x, z, heading = road.point(self.arc_length(traffic_time)[moving], self.path_n[moving])
            origin = np.einsum("nji,nj->ni", yaw_rotation(heading), np.stack([x, self.terrain.height(x, z), z], -1))
            lo[moving] += origin
            hi[moving] += origin
            yaw[moving] = heading
        if lines.any():
            step = self.speed[lines] * traffic_time
            anchor = np.stack([self.path_n[lines], np.zeros_like(step), self.path_s[lines] + step], -1)
            world = np.einsum("nij,nj->ni", yaw_rotation(yaw[lines]), anchor)
            rise = np.stack([np.zeros_like(step), self.terrain.height(world[:, 0], world[:, 2]), step], -1)
            lo[lines] += rise
            hi[lines] += rise
        return Posed(lo, hi, yaw, self.kind, self.terrain)

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
    terrain: Terrain = FLAT  # the ground's heightfield (Y down), terrain.py
    ground: dict = field(default_factory=dict)  # per-scene ground look (markings, kerb, sidewalk), shading.py
    sections: np.ndarray | None = None  # (K, 4): s_start, s_end, side (+-1), ground kind beyond the sidewalk
    crossings: np.ndarray | None = None  # (K, 2): s_start, s_end of side-street mouths and crossings
    light: dict = field(default_factory=dict)  # sun strength, ambient, sun colour, haze


MOVER_SINK = 0.3  # m: a moving car's or pedestrian's base reaches this far into the ground (a 5 m car on 8 %)
SINK_MARGIN = 0.1  # m: a static base reaches this far below the lowest ground under it


class _BoxList:
    """Accumulates primitives while a scene is generated; :meth:`build` stands them on the terrain."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rows: list[tuple] = []
        self.anchors: list[tuple[float, float] | None] = []
        self.rng = rng

    def add(self, lo, hi, material, colour, yaw=0.0, kind=BOX, params=None, path=(0.0, 0.0, 0.0),
            anchor=None) -> None:
        """``anchor``: the world (x, z) whose ground height lifts a static primitive (the parts of one
        object share it, so they stay together); None: its own footprint decides."""
        if params is None:
            params = np.zeros(N_PARAMS)
            params[P_SEED] = self.rng.integers(1 << 20)
        self.rows.append((lo, hi, yaw, kind, material, colour, params, *path))
        self.anchors.append(anchor)

    def add_static(self, road: Road, s: float, yaw: float, local_lo, local_hi, material, colour, **kw) -> None:
        """A box given in the road frame at arc length ``s`` (x lateral, z along), turned by ``yaw``."""
        x, z, _ = road.frame(s)
        origin = yaw_rotation(yaw).T @ np.array([x, 0.0, z])
        self.add(origin + np.asarray(local_lo), origin + np.asarray(local_hi), material, colour, yaw=yaw, **kw)

    def add_round(self, x, z, radius, y_top, y_bottom, material, colour, kind, **kw) -> None:
        self.add((x - radius, y_top, z - radius), (x + radius, y_bottom, z + radius), material, colour,
                 kind=kind, **kw)

    @staticmethod
    def anchor_at(road: Road, s: float, yaw: float, n: float) -> tuple[float, float]:
        """World (x, z) of the point ``n`` metres across a frame squared to ``yaw`` at arc length ``s``."""
        x, z, _ = road.frame(s)
        return float(x + n * np.cos(yaw)), float(z - n * np.sin(yaw))

    def build(self, terrain: Terrain = FLAT) -> Boxes:
        lo, hi, yaw, kind, mat, col, params, ps, pn, sp = zip(*self.rows)
        f = lambda v: np.array(v, dtype=np.float64)  # noqa: E731
        boxes = Boxes(lo=f(lo), hi=f(hi), yaw=f(yaw), kind=np.array(kind, np.int64), material=np.array(mat, np.int64),
                      colour=f(col), params=f(params), path_s=f(ps), path_n=f(pn), speed=f(sp), terrain=terrain)
        _stand_on(boxes, self.anchors, terrain)
        return boxes


def _stand_on(boxes: Boxes, anchors: list, terrain: Terrain) -> None:
    """Lift every primitive to the terrain: a static one by the ground height at its anchor (round
    ones: their axis; boxes: the highest ground under them, so no wall sinks into a hill), and every
    base that touched the flat ground down below the lowest ground under it, so nothing floats on
    the downhill side. Moving ones are lifted as they move (:meth:`Boxes.at`); their bases only sink."""
    grounded = boxes.hi[:, 1] >= -1e-6
    moving = boxes.speed != 0
    boxes.hi[grounded & moving, 1] += MOVER_SINK
    static = np.flatnonzero(~moving)
    if len(static) == 0 or len(terrain.amplitude) == 0:
        return
    corners = Posed(boxes.lo[static], boxes.hi[static], boxes.yaw[static], boxes.kind[static]).corners_world()
    # A 3 x 3 grid over the footprint, from its four corners (index = 4 x-bit + 2 y-bit + z-bit).
    u = np.array([0.0, 0.5, 1.0])[:, None, None]
    v = np.array([0.0, 0.5, 1.0])[None, :, None]
    c0, c1, c4, c5 = (corners[:, None, None, i, :] for i in (0, 1, 4, 5))
    grid = ((1 - u) * (1 - v) * c0 + (1 - u) * v * c1 + u * (1 - v) * c4 + u * v * c5).reshape(len(static), 9, 3)
    ground = terrain.height(grid[..., 0], grid[..., 2])
    lift = np.where(boxes.kind[static] == BOX, ground.min(axis=1), ground[:, 4])
    anchored = [k for k, i in enumerate(static) if anchors[i] is not None]
    if anchored:
        xz = np.array([anchors[static[k]] for k in anchored])
        lift[anchored] = terrain.height(xz[:, 0], xz[:, 1])
    # Between grid points the ground can dip below the lowest sample by at most curvature * gap^2 / 2.
    extent = np.linalg.norm(boxes.hi[static][:, [0, 2]] - boxes.lo[static][:, [0, 2]], axis=1)
    below = ground.max(axis=1) + SINK_MARGIN + terrain.curvature_bound * (extent / 4) ** 2 / 2
    boxes.lo[static, 1] += lift
    boxes.hi[static, 1] = np.where(grounded[static], below, boxes.hi[static, 1] + lift)

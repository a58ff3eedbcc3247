"""Vectorised ray casting against the synthetic world's primitives and ground: slab tests for
boxes, the round tests for cylinders and spheroids, the terrain's march (:func:`cast`), the culling
windows that keep each primitive's test to the rays that can hit it (:func:`pinhole_windows` for a camera,
:func:`spherical_windows` for a spinning LiDAR), shadow rays towards the sun, and
:func:`camera_rays`, whose ray parameter at a hit is the z-depth. Every ray is tested only
against the boxes whose projection covers it: each box's corners are projected once to a pixel
window (or a beam/azimuth window) and the test runs on that slice of the ray grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geopre.synth import world as w

NEAR = 0.05  # m: nothing closer than this to a camera is drawn
FAR = 400.0  # m: ground and boxes beyond this are sky


@dataclass
class RayHits:
    """Result of casting a grid of rays: ray parameter, what was hit and through which face."""

    t: np.ndarray  # (R, C) ray parameter, inf where nothing was hit (sky)
    box: np.ndarray  # (R, C) int32 box index, -1 for ground or sky
    axis: np.ndarray  # (R, C) int8 axis of the face hit (0: x, 1: y, 2: z); for ground 1


# --- casting -----------------------------------------------------------------------------------

def _safe_inverse(dirs: np.ndarray) -> np.ndarray:
    d = np.where(np.abs(dirs) < 1e-9, np.where(dirs < 0, -1e-9, 1e-9), dirs)
    return (1.0 / d).astype(np.float32)


def _turn(dirs: np.ndarray, yaw: float) -> np.ndarray:
    """Vectors (..., 3) expressed in a frame turned by ``yaw`` about +Y: R(yaw)^T v."""
    c, s = np.float32(np.cos(yaw)), np.float32(np.sin(yaw))
    return np.stack([c * dirs[..., 0] - s * dirs[..., 2], dirs[..., 1], s * dirs[..., 0] + c * dirs[..., 2]], -1)


ROUND_AXIS = 3  # RayHits.axis of a hit on a cylinder or spheroid


def cast(origin: np.ndarray, dirs: np.ndarray, posed: w.Posed, windows: np.ndarray, far: float = FAR) -> RayHits:
    """Cast a grid of rays ``dirs`` (R, C, 3) from one ``origin`` against the primitives and the ground.

    ``windows`` (N, 4) gives, per primitive, the slice [r0, r1) x [c0, c1) of the grid that can see
    it; an empty slice skips it. Boxes that share a yaw share one turn of their rays into their
    frame; cylinders and spheroids solve a quadratic. The nearest hit wins.
    """
    rows, cols = dirs.shape[:2]
    t_best = np.full((rows, cols), np.inf, np.float32)
    box = np.full((rows, cols), -1, np.int32)
    axis = np.ones((rows, cols), np.int8)
    o = origin.astype(np.float32)

    lo32, hi32 = posed.lo.astype(np.float32), posed.hi.astype(np.float32)
    active = (windows[:, 1] > windows[:, 0]) & (windows[:, 3] > windows[:, 2])
    is_box = active & (posed.kind == w.BOX)
    for yaw in np.unique(posed.yaw[is_box]):
        members = np.flatnonzero(is_box & (posed.yaw == yaw))
        r_base, c_base = windows[members, 0].min(), windows[members, 2].min()
        group = dirs[r_base:windows[members, 1].max(), c_base:windows[members, 3].max()]
        # One component per array: numpy reduces over a length-3 last axis slowly.
        inv = _safe_inverse(group if yaw == 0.0 else _turn(group, yaw))
        inv = [np.ascontiguousarray(inv[..., a]) for a in range(3)]
        o_local = o if yaw == 0.0 else _turn(o, yaw)
        for i in members:
            r0, r1, c0, c1 = windows[i]
            near, far_, entry = None, None, []
            for a in range(3):
                sub = inv[a][r0 - r_base:r1 - r_base, c0 - c_base:c1 - c_base]
                t1, t2 = (lo32[i, a] - o_local[a]) * sub, (hi32[i, a] - o_local[a]) * sub
                t_in, t_out = np.minimum(t1, t2), np.maximum(t1, t2)
                entry.append(t_in)
                near = t_in if near is None else np.maximum(near, t_in)
                far_ = t_out if far_ is None else np.minimum(far_, t_out)
            sub_t = t_best[r0:r1, c0:c1]
            hit = (near <= far_) & (near > NEAR) & (near < sub_t)
            if not hit.any():
                continue
            sub_t[hit] = near[hit]
            box[r0:r1, c0:c1][hit] = i
            # The face hit is the slab entered last.
            axis[r0:r1, c0:c1][hit] = np.where(entry[0][hit] == near[hit], 0, np.where(entry[1][hit] == near[hit], 1, 2))
    for i in np.flatnonzero(active & (posed.kind != w.BOX)):
        r0, r1, c0, c1 = windows[i]
        d = dirs[r0:r1, c0:c1]
        centre = 0.5 * (lo32[i] + hi32[i])
        radius = 0.5 * (hi32[i, 0] - lo32[i, 0])
        f = o - centre
        # A spheroid is a sphere in a frame whose y is stretched to the crown's height.
        k = radius / (0.5 * (hi32[i, 1] - lo32[i, 1])) if posed.kind[i] == w.SPHEROID else np.float32(0.0)
        a = d[..., 0] ** 2 + d[..., 2] ** 2 + (k * d[..., 1]) ** 2
        b = d[..., 0] * f[0] + d[..., 2] * f[2] + k * d[..., 1] * (k * f[1])
        c = f[0] ** 2 + f[2] ** 2 + (k * f[1]) ** 2 - radius**2
        disc = b * b - a * c
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (-b - np.sqrt(disc)) / a
        y = o[1] + t * d[..., 1]
        sub_t = t_best[r0:r1, c0:c1]
        hit = (disc >= 0) & (t > NEAR) & (t < sub_t) & (y >= lo32[i, 1]) & (y <= hi32[i, 1])
        if not hit.any():
            continue
        sub_t[hit] = t[hit]
        box[r0:r1, c0:c1][hit] = i
        axis[r0:r1, c0:c1][hit] = ROUND_AXIS
    # The ground last: each ray marches only up to the primitive it already hit.
    t_ground = posed.ground.first_crossing(origin, dirs, NEAR, np.minimum(t_best, np.float32(far)))
    ground = t_ground < t_best
    t_best[ground] = t_ground[ground]
    box[ground] = -1
    axis[ground] = 1
    return RayHits(t_best, box, axis)


def pinhole_windows(posed: w.Posed, intrinsics: w.Intrinsics, rotation, centre, far: float = FAR) -> np.ndarray:
    """Per primitive, the pixel window its projection covers (the convex hull of its projected
    corners when all lie in front; the whole image when it reaches behind the camera)."""
    return _project_windows(posed.corners_world(), intrinsics, rotation, centre, far)


def _project_windows(corners: np.ndarray, intrinsics: w.Intrinsics, rotation, centre, far: float) -> np.ndarray:
    """Per convex body given by world ``corners`` (N, K, 3), the pixel window it covers."""
    cam = (corners - centre) @ rotation  # world -> camera: R^T (X - C)
    z = cam[..., 2]
    windows = np.zeros((len(corners), 4), np.int64)
    in_front = z > NEAR
    visible = in_front.any(axis=1) & (z.min(axis=1) < far)
    straddle = visible & ~in_front.all(axis=1)
    windows[straddle] = (0, intrinsics.height, 0, intrinsics.width)
    ok = visible & ~straddle
    if ok.any():
        zc = z[ok]
        u = intrinsics.fx * cam[ok][..., 0] / zc + intrinsics.cx
        v = intrinsics.fy * cam[ok][..., 1] / zc + intrinsics.cy
        windows[ok, 0] = np.clip(np.floor(v.min(axis=1)), 0, intrinsics.height)
        windows[ok, 1] = np.clip(np.ceil(v.max(axis=1)) + 1, 0, intrinsics.height)
        windows[ok, 2] = np.clip(np.floor(u.min(axis=1)), 0, intrinsics.width)
        windows[ok, 3] = np.clip(np.ceil(u.max(axis=1)) + 1, 0, intrinsics.width)
    return windows


SHADOW_EPSILON = 0.02  # m: a shadow ray starts this far off its surface, so a face never shades itself


def shadows(scene: w.Scene, posed: w.Posed, origin: np.ndarray, dirs: np.ndarray, hits: RayHits,
            intrinsics: w.Intrinsics, rotation: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
    """(R, C) bool: which hit points (of ``candidates``, default all) have a primitive between them
    and the sun (one shadow ray per pixel). A primitive can only shade the pixels inside the image
    of its shadow volume (its corners and their shadows on the ground), so each one is tested on
    that window alone. Undercarriages are skipped: the car body above shades the same ground."""
    sun = scene.sun_direction
    corners = posed.corners_world()
    # Along -sun down to the ground: a corner h above the ground under it reaches the terrain within
    # h / (sun's descent per unit - the steepest rise of the ground per unit), and before it passes
    # the ground's lowest level; the nearer bound wins.
    ground = posed.ground
    above = np.maximum(ground.height(corners[..., 0], corners[..., 2]) - corners[..., 1], 0.0)
    reach = np.minimum(above / (-sun[1] - ground.slope_bound * np.hypot(sun[0], sun[2])),
                       np.maximum(ground.bounds()[1] - corners[..., 1], 0.0) / -sun[1])
    on_ground = corners - reach[..., None] * sun
    windows = _project_windows(np.concatenate([corners, on_ground], axis=1), intrinsics, rotation, origin, FAR)
    windows[scene.boxes.material == w.CAR_UNDER] = 0
    lit = np.isfinite(hits.t) if candidates is None else candidates
    depth = np.where(np.isfinite(hits.t), hits.t, 0.0)
    points = [(origin[a] + depth * dirs[..., a] + SHADOW_EPSILON * sun[a]).astype(np.float32) for a in range(3)]
    shadow = np.zeros(hits.t.shape, bool)
    sun32 = sun.astype(np.float32)
    for i in np.flatnonzero((windows[:, 1] > windows[:, 0]) & (windows[:, 3] > windows[:, 2])):
        r0, r1, c0, c1 = windows[i]
        need = lit[r0:r1, c0:c1] & ~shadow[r0:r1, c0:c1]
        if not need.any():
            continue
        p = [points[a][r0:r1, c0:c1] for a in range(3)]
        lo, hi = posed.lo[i].astype(np.float32), posed.hi[i].astype(np.float32)
        if posed.kind[i] == w.BOX:
            yaw = posed.yaw[i]
            d = sun32
            if yaw != 0.0:
                c, s = np.float32(np.cos(yaw)), np.float32(np.sin(yaw))
                p = [c * p[0] - s * p[2], p[1], s * p[0] + c * p[2]]
                d = _turn(sun32, yaw)
            inv = _safe_inverse(d)
            near = far_ = None
            for a in range(3):
                t1, t2 = (lo[a] - p[a]) * inv[a], (hi[a] - p[a]) * inv[a]
                t_in, t_out = np.minimum(t1, t2), np.maximum(t1, t2)
                near = t_in if near is None else np.maximum(near, t_in)
                far_ = t_out if far_ is None else np.minimum(far_, t_out)
            blocked = (near <= far_) & (far_ > 0)
        else:
            centre = 0.5 * (lo + hi)
            radius = 0.5 * (hi[0] - lo[0])
            k = radius / (0.5 * (hi[1] - lo[1])) if posed.kind[i] == w.SPHEROID else np.float32(0.0)
            fx, fy, fz = p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]
            a = sun32[0] ** 2 + sun32[2] ** 2 + (k * sun32[1]) ** 2
            b = sun32[0] * fx + sun32[2] * fz + k * k * sun32[1] * fy
            c = fx * fx + fz * fz + (k * fy) ** 2 - radius**2
            disc = b * b - a * c
            with np.errstate(invalid="ignore"):
                t_exit = (-b + np.sqrt(disc)) / a
            # Thin or round: the ray's closest approach must lie within the object's height.
            y = p[1] + (-b / a) * sun32[1]
            blocked = (disc >= 0) & (t_exit > 0) & (y >= lo[1]) & (y <= hi[1])
        shadow[r0:r1, c0:c1] |= need & blocked
    return shadow


def camera_rays(intrinsics: w.Intrinsics, rotation: np.ndarray) -> np.ndarray:
    """World-frame ray directions (H, W, 3) whose camera-frame z component is 1, so the ray
    parameter of a hit *is* its depth z."""
    u = np.arange(intrinsics.width, dtype=np.float64)
    v = np.arange(intrinsics.height, dtype=np.float64)
    x = (u[None, :] - intrinsics.cx) / intrinsics.fx
    y = (v[:, None] - intrinsics.cy) / intrinsics.fy
    d = np.stack(np.broadcast_arrays(x, y, np.ones_like(x)), axis=-1)
    return (d @ rotation.T).astype(np.float32)


def spherical_windows(posed: w.Posed, origin, rotation, elevations, azimuths, max_range) -> np.ndarray:
    """Per primitive, the beam rows and azimuth columns of a spinning LiDAR that can see it.

    Spherical projection bends box edges, so edges are sampled densely (not just corners) and the
    window is padded by one row and two columns. ``rotation`` is sensor-to-world; the sensor frame
    is x forward, y left, z up. Elevations must increase with the row index.
    """
    steps = np.linspace(0.0, 1.0, 17)
    lo, hi = posed.lo, posed.hi
    size = hi - lo
    pts = []
    for a in range(3):
        b, c = [k for k in range(3) if k != a]
        for sb in (0.0, 1.0):
            for sc in (0.0, 1.0):
                p = np.repeat(lo[:, None, :], len(steps), axis=1).copy()
                p[..., a] += steps[None, :] * size[:, a:a + 1]
                p[..., b] += sb * size[:, b:b + 1]
                p[..., c] += sc * size[:, c:c + 1]
                pts.append(p)
    local = np.concatenate(pts, axis=1)
    world = np.einsum("nij,nkj->nki", w.yaw_rotation(posed.yaw), local)
    sensor = (world - origin) @ rotation  # (N, P, 3) in the sensor frame
    horiz = np.hypot(sensor[..., 0], sensor[..., 1])
    elev = np.arctan2(sensor[..., 2], horiz)
    az = np.arctan2(sensor[..., 1], sensor[..., 0])
    windows = np.zeros((len(lo), 4), np.int64)
    dist = np.linalg.norm(sensor, axis=-1).min(axis=1)
    o_local = np.einsum("nji,j->ni", w.yaw_rotation(posed.yaw), origin)
    inside_xy = (lo[:, 0] - 1 < o_local[:, 0]) & (o_local[:, 0] < hi[:, 0] + 1) & \
                (lo[:, 2] - 1 < o_local[:, 2]) & (o_local[:, 2] < hi[:, 2] + 1)
    keep = dist < max_range
    windows[:, 0] = np.searchsorted(elevations, elev.min(axis=1)) - 1
    windows[:, 1] = np.searchsorted(elevations, elev.max(axis=1)) + 1
    step = azimuths[1] - azimuths[0]
    a_lo, a_hi = az.min(axis=1), az.max(axis=1)
    windows[:, 2] = np.floor((a_lo - azimuths[0]) / step) - 2
    windows[:, 3] = np.ceil((a_hi - azimuths[0]) / step) + 3
    wraps = (a_hi - a_lo > np.pi) | inside_xy
    windows[wraps, 2], windows[wraps, 3] = 0, len(azimuths)
    windows[inside_xy, 0], windows[inside_xy, 1] = 0, len(elevations)
    windows[:, 0:2] = np.clip(windows[:, 0:2], 0, len(elevations))
    windows[:, 2:4] = np.clip(windows[:, 2:4], 0, len(azimuths))
    windows[~keep] = 0
    return windows

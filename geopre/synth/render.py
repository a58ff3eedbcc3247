"""Vectorised ray casting of the synthetic world: colour images, exact depth, and LiDAR scans.

Every ray is tested only against the boxes whose projection covers it: each box's corners are
projected once to a pixel window (or, for the LiDAR, to a beam/azimuth window) and the slab test
runs on that slice of the ray grid. Textures are functions of the surface point in the box's own
frame (or of the ground point), so a surface keeps its colour from frame to frame and brightness
constancy holds exactly, moving objects included. Texture detail fades out once it is finer than a
pixel's footprint, which stops the aliasing shimmer that would otherwise break that constancy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geopre.synth import textures
from geopre.synth import world as w

NEAR = 0.05  # m: nothing closer than this to a camera is drawn
FAR = 400.0  # m: ground and boxes beyond this are sky


@dataclass
class RayHits:
    """Result of casting a grid of rays: ray parameter, what was hit and through which face."""

    t: np.ndarray  # (R, C) ray parameter, inf where nothing was hit (sky)
    box: np.ndarray  # (R, C) int32 box index, -1 for ground or sky
    axis: np.ndarray  # (R, C) int8 axis of the face hit (0: x, 1: y, 2: z); for ground 1


# --- hashing and noise -------------------------------------------------------------------------

def _hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Integer lattice hash to [0, 1): deterministic, no state, identical on every machine."""
    h = (ix.astype(np.int64) * 374761393 + iy.astype(np.int64) * 668265263 + seed * 2246822519) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    h = h ^ (h >> 16)
    return (h & 0xFFFFFF).astype(np.float32) / np.float32(1 << 24)


def value_noise(u: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1) on the unit lattice."""
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = (u - iu).astype(np.float32), (v - iv).astype(np.float32)
    fu = fu * fu * (3 - 2 * fu)
    fv = fv * fv * (3 - 2 * fv)
    iu, iv = iu.astype(np.int64), iv.astype(np.int64)
    a, b = _hash(iu, iv, seed), _hash(iu + 1, iv, seed)
    c, d = _hash(iu, iv + 1, seed), _hash(iu + 1, iv + 1, seed)
    return (a + (b - a) * fu) + ((c + (d - c) * fu) - (a + (b - a) * fu)) * fv


def _fade(wavelength: float, footprint: np.ndarray) -> np.ndarray:
    """Weight of a detail of ``wavelength`` metres seen with ``footprint`` metres per pixel."""
    return np.clip(wavelength / (3.0 * footprint) - 1.0, 0.0, 1.0)


def fbm(u, v, seed, footprint, wavelengths=(4.0, 1.0, 0.25), amplitudes=(0.5, 0.3, 0.2)) -> np.ndarray:
    """Band-limited multi-octave noise in about [-0.5, 0.5], octaves faded by pixel footprint."""
    out = np.zeros(np.shape(u), np.float32)
    for k, (lam, amp) in enumerate(zip(wavelengths, amplitudes)):
        out += amp * (value_noise(u / lam, v / lam, seed + 101 * k) - 0.5) * _fade(lam, footprint)
    return out


def pulse(x: np.ndarray, period: float, start: float, end: float, footprint: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of the band [start, end) repeated every ``period``, box-filtered over a
    footprint, so stripes (lane dashes, windows) stay smooth instead of aliasing when far away."""
    m = np.mod(x, period)
    inside = np.minimum(m - start, end - m)
    coverage = np.clip(inside / np.maximum(footprint, 1e-6) + 0.5, 0.0, 1.0)
    blend = np.clip(2.0 * footprint / period - 1.0, 0.0, 1.0)
    return coverage * (1.0 - blend) + (end - start) / period * blend


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

    # Ground plane Y = 0: hit by rays heading down from a camera above it.
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = -o[1] / dirs[..., 1]
    ground = (dirs[..., 1] > 0) & (t_ground > NEAR) & (t_ground < far)
    t_best[ground] = t_ground[ground]

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
    on_ground = corners - (corners[..., 1:2] / sun[1]) * sun  # along -sun down to Y = 0
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


# --- shading -----------------------------------------------------------------------------------

def _sky(dirs: np.ndarray, origin: np.ndarray, scene: w.Scene) -> np.ndarray:
    norm = np.linalg.norm(dirs, axis=-1)
    up = -dirs[..., 1] / norm
    blend = np.clip(up * 2.5, 0.0, 1.0)[..., None] ** 0.7
    sky = scene.sky_horizon + (scene.sky_zenith - scene.sky_horizon) * blend
    # Clouds on a plane 400 m up: far enough that camera motion barely moves them.
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-400.0 - origin[1]) / dirs[..., 1]
    px, pz = origin[0] + t * dirs[..., 0], origin[2] + t * dirs[..., 2]
    cloud = np.where(up > 0.03, value_noise(np.nan_to_num(px) / 120.0, np.nan_to_num(pz) / 120.0,
                                            scene.ground_seed + 7), 0.0)
    threshold = 1.0 - scene.light.get("clouds", 0.55)
    cloud = np.clip((cloud - threshold) * 3.0, 0.0, 1.0)[..., None] * np.clip(up * 8, 0, 1)[..., None]
    return (sky * (1 - 0.8 * cloud) + 0.95 * 0.8 * cloud).astype(np.float32)


def _grey_texture(texture, u, v, texel, footprint) -> np.ndarray:
    return textures.sample(textures.materials(), np.asarray(texture, np.int64), u, v, texel, footprint)[:, 0]


def _section_kind(scene: w.Scene, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Ground kind beyond the sidewalk at road coordinates (s, n): verge unless a section says otherwise."""
    kind = np.full(s.shape, w.VERGE, np.int64)
    for side in (-1.0, 1.0):
        rows = scene.sections[scene.sections[:, 2] == side]
        if not len(rows):
            continue
        k = np.clip(np.searchsorted(rows[:, 0], s, side="right") - 1, 0, len(rows) - 1)
        inside = (s >= rows[k, 0]) & (s < rows[k, 1]) & ((n > 0) == (side > 0))
        kind[inside] = rows[k[inside], 3].astype(np.int64)
    return kind


def _ground_albedo(x, z, footprint, scene: w.Scene) -> np.ndarray:
    g = scene.ground
    seed = scene.ground_seed
    s, n = scene.road.to_road(x.astype(np.float64), z.astype(np.float64))
    s, n = s.astype(np.float32), n.astype(np.float32)
    an = np.abs(n)
    road_half = g["lanes"] * g["lane_width"] + g["parking"]
    kerb = road_half + g["sidewalk"]
    grain = fbm(s, n, seed, footprint, wavelengths=(9.0, 2.0), amplitudes=(0.5, 0.3))
    kind = _section_kind(scene, s, n)
    side_street = (kind == w.SIDE_STREET) & (an >= road_half)
    albedo = np.empty(x.shape + (3,), np.float32)

    # Asphalt: gravel photographed close, scaled and toned per scene, with slow stains.
    paved = (an < road_half) | side_street | ((an >= kerb) & (kind == w.ASPHALT))
    if paved.any():
        tex = _grey_texture(np.full(paved.sum(), textures.GRAVEL), s[paved] + g["asphalt_offset"][0],
                            n[paved] + g["asphalt_offset"][1], np.full(paved.sum(), g["asphalt_texel"]),
                            footprint[paved])
        tone = g["asphalt"] * (1.0 + g["asphalt_contrast"] * tex + 0.25 * grain[paved])
        albedo[paved] = tone[:, None] * (1.0 + g["asphalt_tint"]).astype(np.float32)
    on_road = an < road_half
    if on_road.any():
        fp, sr, nr, ar = footprint[on_road], s[on_road], n[on_road], an[on_road]
        width = g["line_width"]
        dashes = pulse(sr + g["dash_phase"], g["dash_period"], 0.0, g["dash"], fp)
        line = lambda offset: pulse(nr - offset + width / 2, 1e6, 0.0, width, fp)  # noqa: E731
        if g["centre_kind"] == 0:
            centre = line(0.0) * dashes
        elif g["centre_kind"] == 1:
            centre = line(0.0)
        else:
            centre = np.maximum(line(-0.1 - width / 2), line(0.1 + width / 2))
        lanes = np.zeros_like(sr)
        for lane in range(1, g["lanes"]):
            lanes = lanes + pulse(ar - lane * g["lane_width"] + width / 2, 1e6, 0.0, width, fp) * dashes
        if g["edge_line"]:
            lanes = lanes + pulse(ar - g["lanes"] * g["lane_width"] + width / 2, 1e6, 0.0, width, fp)
        # Side-street mouths: no edge lines across them, a zebra crossing before them.
        mouth = np.zeros(sr.shape, bool)
        zebra = np.zeros(sr.shape, np.float32)
        for a, b in scene.crossings:
            mouth |= (sr > a) & (sr < b)
            zebra = np.maximum(zebra, pulse(nr + 0.25, 1.0, 0.0, 0.5, fp) * ((sr > a - 5.0) & (sr < a - 1.5)))
        lanes = np.where(mouth, 0.0, lanes)
        wear = 1.0 - g["paint_wear"] * np.clip(grain[on_road] + 0.5, 0.0, 1.0)
        white = np.clip((lanes + zebra + (0 if g["centre_yellow"] else 1) * centre) * wear, 0.0, 1.0)[:, None]
        yellow = np.clip(centre * wear, 0.0, 1.0)[:, None] if g["centre_yellow"] else 0.0
        base = albedo[on_road]
        base = base * (1 - white) + g["paint"] * white
        base = base * (1 - yellow) + np.array([0.8, 0.65, 0.15], np.float32) * yellow
        albedo[on_road] = base
    walk = (an >= road_half) & (an < kerb) & ~side_street
    if walk.any():
        fp, sw, nw = footprint[walk], s[walk], n[walk]
        tex = _grey_texture(np.full(walk.sum(), g["walk_texture"]), sw, nw, np.full(walk.sum(), g["walk_texel"]), fp)
        tile = g["walk_tile"]
        joints = 1.0 - 0.25 * np.maximum(pulse(sw, tile, 0.0, 0.03, fp), pulse(nw, tile, 0.0, 0.03, fp))
        tone = g["walk_albedo"] * (1.0 + 0.18 * tex + 0.15 * grain[walk]) * joints
        colour = tone[:, None] * (1.0 + g["walk_tint"]).astype(np.float32)
        kerb_band = pulse(an[walk] - road_half, 1e6, 0.0, g["kerb"], fp)[:, None]
        albedo[walk] = colour * (1 - kerb_band) + g["kerb_albedo"] * kerb_band
    beyond = (an >= kerb) & ~side_street & (kind != w.ASPHALT)
    if beyond.any():
        kb, fp = kind[beyond], footprint[beyond]
        grass = (kb == w.PARK) | ((kb == w.VERGE) & (g["verge"] == "grass"))
        gravel = kb == w.GRAVEL_LOT
        texture = np.where(grass, textures.GRASS, textures.GRAVEL)
        texel = np.where(grass, g["grass_texel"], 0.015)
        tex = _grey_texture(texture, s[beyond], n[beyond], texel, fp)
        colour = np.where(grass[:, None], np.array(g["grass"], np.float32),
                          np.where(gravel[:, None], np.array([0.48, 0.43, 0.36], np.float32),
                                   np.array([0.50, 0.49, 0.47], np.float32)))
        strength = np.where(grass, 0.45, 0.25)
        albedo[beyond] = colour * (1.0 + strength * tex + 0.4 * grain[beyond])[:, None]
    return np.clip(albedo, 0.0, 1.0)


def _facade(colour, p, along, height_up, box_height, footprint, scene) -> np.ndarray:
    """Walls: a photographic material at the building's scale, windows on its own grid, a ground
    floor of shop fronts or doors, balcony slabs, a poster; all from the building's params."""
    seed = p[:, w.P_SEED].astype(np.int64)
    tex = _grey_texture(p[:, w.P_TEXTURE].astype(np.int64), along + p[:, w.P_U0], height_up + p[:, w.P_V0],
                        p[:, w.P_TEXEL], footprint)
    stain = fbm(along, height_up, 0, footprint, wavelengths=(7.0, 1.7), amplitudes=(0.5, 0.3))
    albedo = colour * (1.0 + p[:, w.P_CONTRAST] * tex + 0.18 * stain)[:, None]
    storey, pitch = p[:, w.P_STOREY], p[:, w.P_WIN_PITCH]
    width, height = p[:, w.P_WIN_WIDTH], p[:, w.P_WIN_HEIGHT]
    u = along + np.mod(p[:, w.P_U0], pitch)
    sill = 0.55 * (storey - height)
    upper = (height_up > storey) & (height_up < box_height - 0.6)
    win = pulse(u, pitch, 0.5 * (pitch - width), 0.5 * (pitch + width), footprint) * \
        pulse(height_up, storey, sill, sill + height, footprint)
    ground_kind = p[:, w.P_GROUND_FLOOR]
    shop_pitch = p[:, w.P_SHOP_PITCH]
    shop = pulse(along, shop_pitch, 0.35, shop_pitch - 0.35, footprint) * \
        ((height_up > 0.4) & (height_up < storey - 0.5))
    door = pulse(along, 1.7 * shop_pitch, 0.6, 1.7, footprint) * (height_up < 2.2)
    glass_mix = np.where(upper | ((height_up <= storey) & (ground_kind == 0)), win, 0.0)
    glass_mix = np.where((height_up <= storey) & (ground_kind == 1), shop, glass_mix)
    frame = p[:, w.P_FRAME][:, None]
    doors = np.where((height_up <= storey) & (ground_kind == 2), door, 0.0)[:, None]
    albedo = albedo * (1 - doors) + doors * frame * np.array([0.45, 0.35, 0.25], np.float32)
    # Balcony slabs: a band under every upper storey's windows.
    slab = pulse(height_up, storey, 0.0, 0.22, footprint) * upper * (p[:, w.P_BALCONY] > 0)
    albedo = albedo * (1 - slab[:, None]) + (0.3 + 0.5 * frame) * slab[:, None]
    # Glass: the sky's reflection, each pane with its own tint (curtains, lights).
    pane = _hash(np.floor(u / pitch).astype(np.int64) + seed * 31, np.floor(height_up / storey).astype(np.int64), 5)
    sky = scene.sky_horizon.astype(np.float32) * 0.35
    glass = sky + np.stack([0.05 + 0.25 * pane, 0.06 + 0.22 * pane, 0.08 + 0.18 * pane], -1)
    albedo = albedo * (1 - glass_mix[:, None]) + glass * glass_mix[:, None]
    # A poster or shop sign: a photograph on the ground floor.
    poster = p[:, w.P_PHOTO] >= 0
    if poster.any():
        left = np.mod(p[:, w.P_U0], 6.0) + 0.5
        size = 0.8 + np.mod(p[:, w.P_V0], 1.5)
        inside = poster & (along > left) & (along < left + size) & (height_up > 0.6) & (height_up < 0.6 + size)
        if inside.any():
            photo = textures.sample(textures.photos(), p[inside, w.P_PHOTO].astype(np.int64), along[inside] - left[inside],
                                    0.6 + size[inside] - height_up[inside], size[inside] / textures.SIZE, footprint[inside])
            albedo[inside] = photo
    return albedo


def _primitive_albedo(local, axis, idx, footprint, normal, scene: w.Scene, posed: w.Posed) -> np.ndarray:
    """Albedo of surface points of primitives ``idx``; ``local`` is the point relative to the
    primitive's min corner in its own frame."""
    boxes = scene.boxes
    mat = boxes.material[idx]
    colour = boxes.colour[idx].astype(np.float32)
    p = boxes.params[idx]
    box_height = (posed.hi[idx, 1] - posed.lo[idx, 1]).astype(np.float32)
    height_up = box_height - local[:, 1]  # metres above the primitive's bottom
    along = np.where(axis == 0, local[:, 2], local[:, 0])  # horizontal coordinate on a wall
    round_ = axis == ROUND_AXIS
    if round_.any():
        # Around a cylinder or spheroid: arc length, anchored to the object.
        radius = 0.5 * (posed.hi[idx[round_], 0] - posed.lo[idx[round_], 0])
        along[round_] = (np.arctan2(normal[round_, 0], normal[round_, 2]) * radius).astype(np.float32)
    seed = p[:, w.P_SEED].astype(np.int64)
    noise = fbm(along + 17.0 * (axis == 1), height_up + local[:, 2] * (axis == 1), 0, footprint,
                wavelengths=(3.0, 0.8))
    albedo = colour * (1.0 + 0.25 * noise + 0.25 * (_hash(seed, seed * 3, 11) - 0.5))[:, None]

    wall = (mat == w.BUILDING) & (axis != 1)
    plain = (mat == w.WALL) | (mat == w.HEDGE)
    if plain.any():
        # Garden walls, fences and hedges: their material alone, no windows.
        tex = _grey_texture(p[plain, w.P_TEXTURE].astype(np.int64), along[plain] + p[plain, w.P_U0],
                            height_up[plain] + p[plain, w.P_V0], p[plain, w.P_TEXEL], footprint[plain])
        albedo[plain] = colour[plain] * (1.0 + p[plain, w.P_CONTRAST] * tex + 0.25 * noise[plain])[:, None]
    if wall.any():
        albedo[wall] = _facade(colour[wall], p[wall], along[wall], height_up[wall], box_height[wall],
                               footprint[wall], scene)
    roof = (mat == w.BUILDING) & (axis == 1)
    if roof.any():
        albedo[roof] = (0.3 + 0.1 * noise[roof])[:, None] * colour[roof] / max(float(colour[roof].mean()), 0.1)
    cabin = (mat == w.CAR_CABIN) & (axis != 1)
    if cabin.any():
        albedo[cabin] = scene.sky_horizon.astype(np.float32) * 0.25 + np.array([0.03, 0.04, 0.05], np.float32)
    ped = mat == w.PEDESTRIAN
    if ped.any():
        legs = ped & (height_up < 0.85)
        albedo[legs] = np.array([0.12, 0.14, 0.25], np.float32)
        head = ped & (height_up > box_height - 0.25)
        albedo[head] = np.array([0.75, 0.58, 0.45], np.float32)
    textured = np.isin(mat, (w.CANOPY, w.TRUNK))
    if textured.any():
        # Leaves and bark: grass and gravel photographs, strong contrast.
        canopy = mat[textured] == w.CANOPY
        tex = _grey_texture(np.where(canopy, textures.GRASS, textures.GRAVEL), along[textured] + p[textured, w.P_U0],
                            height_up[textured] + p[textured, w.P_V0], np.where(canopy, p[textured, w.P_TEXEL], 0.006),
                            footprint[textured])
        strength = np.where(canopy, np.maximum(p[textured, w.P_CONTRAST], 0.3), 0.35)
        albedo[textured] = colour[textured] * (1.0 + strength * tex + 0.3 * noise[textured])[:, None]
    sign = (mat == w.SIGN) & (axis == 2)
    if sign.any():
        width = posed.hi[idx[sign], 0] - posed.lo[idx[sign], 0]
        albedo[sign] = textures.sample(textures.photos(), p[sign, w.P_PHOTO].astype(np.int64),
                                       local[sign, 0] + p[sign, w.P_U0], local[sign, 1] + p[sign, w.P_V0],
                                       np.maximum(p[sign, w.P_TEXEL], width / 4096), footprint[sign])
    return np.clip(albedo, 0.0, 1.0)


def shade(scene: w.Scene, origin: np.ndarray, dirs: np.ndarray, hits: RayHits, posed: w.Posed,
          focal: float, shadow_of=None) -> np.ndarray:
    """Colour (R, C, 3) float32 of each ray: albedo x (ambient + sun), hazed with distance, or sky.
    ``shadow_of(facing)`` says which pixels of the (R, C) mask ``facing`` (surfaces turned to the
    sun) lie in shadow; None: no shadows."""
    out = _sky(dirs, origin, scene)
    norm = np.linalg.norm(dirs, axis=-1)
    hit_mask = np.isfinite(hits.t)
    if not hit_mask.any():
        return out
    d = dirs[hit_mask]
    t = hits.t[hit_mask]
    point = origin + t[:, None] * d
    box_idx = hits.box[hit_mask]
    axis = hits.axis[hit_mask].astype(np.int64)
    dist = t * norm[hit_mask]
    unit = d / norm[hit_mask][:, None]

    albedo = np.empty((len(t), 3), np.float32)
    normal = np.zeros((len(t), 3), np.float32)
    cos_incidence = np.abs(unit[:, 1])
    on_ground = box_idx < 0
    normal[on_ground] = (0.0, -1.0, 0.0)
    on_box = ~on_ground
    local = None
    if on_box.any():
        idx = box_idx[on_box]
        ax = axis[on_box]
        yaw = posed.yaw[idx]
        c, s = np.cos(yaw), np.sin(yaw)
        p_w, d_w = point[on_box], unit[on_box]
        p_l = np.stack([c * p_w[:, 0] - s * p_w[:, 2], p_w[:, 1], s * p_w[:, 0] + c * p_w[:, 2]], -1)
        d_l = np.stack([c * d_w[:, 0] - s * d_w[:, 2], d_w[:, 1], s * d_w[:, 0] + c * d_w[:, 2]], -1)
        local = (p_l - posed.lo[idx]).astype(np.float32)
        flat = ax != ROUND_AXIS
        n_l = np.zeros((len(idx), 3))
        rows = np.flatnonzero(flat)
        n_l[rows, ax[flat]] = -np.sign(d_l[rows, ax[flat]])
        # Cylinders: radial; spheroids: the gradient of the stretched sphere.
        centre = 0.5 * (posed.lo[idx] + posed.hi[idx])
        radii = 0.5 * (posed.hi[idx] - posed.lo[idx])
        radial = (p_l - centre) / radii**2
        radial[posed.kind[idx] == w.CYLINDER, 1] = 0.0
        radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
        n_l[~flat] = radial[~flat]
        n_w = np.stack([c * n_l[:, 0] + s * n_l[:, 2], n_l[:, 1], -s * n_l[:, 0] + c * n_l[:, 2]], -1)
        normal[on_box] = n_w
        cos_incidence[on_box] = np.abs(np.sum(n_w * d_w, axis=1))
    footprint = ((dist / focal) / np.maximum(cos_incidence, 0.15)).astype(np.float32)
    if on_ground.any():
        albedo[on_ground] = _ground_albedo(point[on_ground, 0], point[on_ground, 2], footprint[on_ground], scene)
    if on_box.any():
        albedo[on_box] = _primitive_albedo(local, axis[on_box], box_idx[on_box], footprint[on_box],
                                           normal[on_box].astype(np.float32), scene, posed)
    light = scene.light
    direct = np.clip(normal @ scene.sun_direction.astype(np.float32), 0.0, 1.0)[:, None]
    if shadow_of is not None:
        facing = np.zeros(hit_mask.shape, bool)
        facing[hit_mask] = direct[:, 0] > 0
        direct = direct * ~shadow_of(facing)[hit_mask][:, None]
    lit = light["ambient"] + direct * np.asarray(light["sun"], np.float32)
    colour = albedo * lit
    haze = (1.0 - np.exp(-dist / light["haze_distance"]))[:, None]
    out[hit_mask] = colour * (1 - haze) + scene.sky_horizon.astype(np.float32) * haze
    return out


# --- views -------------------------------------------------------------------------------------

@dataclass
class View:
    """A rendered camera view: 8-bit colour and exact z-depth in metres (inf = sky)."""

    image: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32


def _sensor(colour: np.ndarray, sequence: w.Sequence, intr: w.Intrinsics, index: int, offset) -> np.ndarray:
    """Vignetting and sensor noise. The noise is seeded by the camera's pose and the traffic time,
    not the frame number, so a stopped car still records identical frames."""
    h, w_ = colour.shape[:2]
    v, u = np.mgrid[0:h, 0:w_].astype(np.float32)
    r2 = ((u - intr.cx) / intr.fx) ** 2 + ((v - intr.cy) / intr.fy) ** 2
    colour = colour * (1.0 - sequence.vignetting * r2)[..., None]
    if sequence.noise > 0:
        traj = sequence.trajectory
        key = np.array([traj.distance[index], traj.traffic_time[index], *offset], np.float64)
        state = np.frombuffer(key.tobytes(), np.uint32).tolist() + [sequence.scene.ground_seed]
        rng = np.random.default_rng(np.random.SeedSequence(state))
        colour = colour + rng.normal(0.0, sequence.noise, colour.shape).astype(np.float32)
    return colour


def render_view(sequence: w.Sequence, index: int, intrinsics: w.Intrinsics | None = None,
                offset: tuple[float, float, float] = (0.0, 0.0, 0.0), clean: bool = False) -> View:
    """Render frame ``index`` of a sequence. ``offset`` moves the camera in its own frame
    (metres, x right): the right camera of a stereo rig with baseline b is ``(b, 0, 0)``.
    ``clean`` leaves out vignetting and sensor noise (what a pixel-exact comparison needs)."""
    intr = intrinsics or sequence.intrinsics
    traj = sequence.trajectory
    rotation = traj.rotation(index)
    centre = traj.position(index) + rotation @ np.asarray(offset, np.float64)
    posed = sequence.scene.boxes.at(float(traj.traffic_time[index]), sequence.scene.road)
    dirs = camera_rays(intr, rotation)
    windows = pinhole_windows(posed, intr, rotation, centre)
    hits = cast(centre, dirs, posed, windows)
    shadow_of = None
    if sequence.scene.light["shadows"]:
        shadow_of = lambda facing: shadows(sequence.scene, posed, centre, dirs, hits, intr, rotation, facing)  # noqa: E731
    colour = shade(sequence.scene, centre, dirs, hits, posed, focal=0.5 * (intr.fx + intr.fy), shadow_of=shadow_of)
    colour = colour * sequence.exposure.astype(np.float32)
    colour = np.clip(colour, 0.0, 1.0) ** (1 / 1.15) * 255.0
    if not clean:
        colour = _sensor(colour, sequence, intr, index, offset)
    image = np.round(np.clip(colour, 0.0, 255.0)).astype(np.uint8)
    return View(image=image, depth=hits.t)


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


@dataclass(frozen=True)
class LidarConfig:
    """A 64-beam spinning LiDAR like KITTI's Velodyne HDL-64E."""

    beams: int = 64
    elevation_deg: tuple[float, float] = (-24.8, 2.0)
    azimuth_step_deg: float = 0.35
    max_range: float = 120.0

    def elevations(self) -> np.ndarray:
        return np.deg2rad(np.linspace(*self.elevation_deg, self.beams))

    def azimuths(self) -> np.ndarray:
        return np.deg2rad(np.arange(-180.0, 180.0, self.azimuth_step_deg))


_REFLECTANCE = np.array([0.25, 0.55, 0.1, 0.05, 0.35, 0.2, 0.15, 0.3, 0.6, 0.3, 0.15], np.float32)  # per material


def lidar_scan(sequence: w.Sequence, index: int, sensor_to_camera: np.ndarray,
               config: LidarConfig = LidarConfig()) -> np.ndarray:
    """One LiDAR sweep at frame ``index``: (N, 4) float32 x, y, z, reflectance in the sensor frame.

    ``sensor_to_camera`` (4x4) is the LiDAR's mounting in the frame of the camera that the
    trajectory describes. The sweep is instantaneous (no rolling motion during the spin).
    """
    traj = sequence.trajectory
    cam_to_world = traj.pose(index)
    sensor_to_world = cam_to_world @ sensor_to_camera
    rotation, origin = sensor_to_world[:3, :3], sensor_to_world[:3, 3]
    elev, az = config.elevations(), config.azimuths()
    ce = np.cos(elev)[:, None]
    local = np.stack(np.broadcast_arrays(ce * np.cos(az)[None, :], ce * np.sin(az)[None, :],
                                         np.sin(elev)[:, None]), axis=-1)
    dirs = (local @ rotation.T).astype(np.float32)
    posed = sequence.scene.boxes.at(float(traj.traffic_time[index]), sequence.scene.road)
    windows = spherical_windows(posed, origin, rotation, elev, az, config.max_range)
    hits = cast(origin, dirs, posed, windows, far=config.max_range)
    ok = hits.t < config.max_range
    points = local[ok] * hits.t[ok][:, None]
    material = np.where(hits.box[ok] >= 0, sequence.scene.boxes.material[np.maximum(hits.box[ok], 0)], -1)
    reflectance = np.where(material >= 0, _REFLECTANCE[np.maximum(material, 0)], 0.3)
    return np.concatenate([points, reflectance[:, None]], axis=1).astype(np.float32)

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


def cast(origin: np.ndarray, dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray, windows: np.ndarray,
         far: float = FAR) -> RayHits:
    """Cast a grid of rays ``dirs`` (R, C, 3) from one ``origin`` against the boxes and the ground.

    ``windows`` (N, 4) gives, per box, the slice [r0, r1) x [c0, c1) of the grid that can see it;
    an empty slice skips the box. The nearest hit wins.
    """
    rows, cols = dirs.shape[:2]
    t_best = np.full((rows, cols), np.inf, np.float32)
    box = np.full((rows, cols), -1, np.int32)
    axis = np.ones((rows, cols), np.int8)
    inv = _safe_inverse(dirs)
    o = origin.astype(np.float32)

    # Ground plane Y = 0: hit by rays heading down from a camera above it.
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = -o[1] / dirs[..., 1]
    ground = (dirs[..., 1] > 0) & (t_ground > NEAR) & (t_ground < far)
    t_best[ground] = t_ground[ground]

    lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
    for i in np.flatnonzero((windows[:, 1] > windows[:, 0]) & (windows[:, 3] > windows[:, 2])):
        r0, r1, c0, c1 = windows[i]
        sub_inv = inv[r0:r1, c0:c1]
        t1 = (lo32[i] - o) * sub_inv
        t2 = (hi32[i] - o) * sub_inv
        t_min = np.minimum(t1, t2)
        t_near = t_min.max(axis=-1)
        t_far = np.maximum(t1, t2).min(axis=-1)
        sub_t = t_best[r0:r1, c0:c1]
        hit = (t_near <= t_far) & (t_near > NEAR) & (t_near < sub_t)
        if not hit.any():
            continue
        sub_t[hit] = t_near[hit]
        box[r0:r1, c0:c1][hit] = i
        axis[r0:r1, c0:c1][hit] = t_min[hit].argmax(axis=-1)
    return RayHits(t_best, box, axis)


def box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N, 8, 3) corners of axis-aligned boxes."""
    sel = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    both = np.stack([lo, hi], axis=1)  # (N, 2, 3)
    return np.stack([both[:, sel[:, a], a] for a in range(3)], axis=-1)


def pinhole_windows(lo, hi, intrinsics: w.Intrinsics, rotation, centre, far: float = FAR) -> np.ndarray:
    """Per box, the pixel window its projection covers (the convex hull of its projected corners
    when all lie in front; the whole image when the box reaches behind the camera)."""
    cam = (box_corners(lo, hi) - centre) @ rotation  # world -> camera: R^T (X - C)
    z = cam[..., 2]
    windows = np.zeros((len(lo), 4), np.int64)
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

_FACE_NORMALS = np.eye(3)


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
    cloud = np.clip((cloud - 0.45) * 3.0, 0.0, 1.0)[..., None] * np.clip(up * 8, 0, 1)[..., None]
    return (sky * (1 - 0.8 * cloud) + 0.95 * 0.8 * cloud).astype(np.float32)


def _ground_albedo(x, z, footprint, scene: w.Scene) -> np.ndarray:
    style = scene.style
    seed = scene.ground_seed
    grain = fbm(x, z, seed, footprint, wavelengths=(6.0, 1.2, 0.3), amplitudes=(0.35, 0.25, 0.2))
    ax = np.abs(x)
    albedo = np.empty(x.shape + (3,), np.float32)
    road = ax < style.road_half_width
    walk = ~road & (ax < style.road_half_width + style.sidewalk_width)
    verge = ~road & ~walk
    asphalt = (0.30 + 0.12 * grain)[..., None] * np.array([1.0, 1.0, 1.04], np.float32)
    # Markings: dashed lines between lanes, solid lines along the parking lanes.
    dashes = pulse(z, 9.0, 0.0, 3.0, footprint)
    paint = pulse(x + 0.075, 1e6, 0.0, 0.15, footprint) * dashes
    for lane in range(1, style.lanes_per_side):
        paint = paint + pulse(ax - lane * style.lane_width + 0.075, 1e6, 0.0, 0.15, footprint) * dashes
    paint = paint + pulse(ax - (style.road_half_width - style.parking_width) + 0.075, 1e6, 0.0, 0.15, footprint)
    paint = np.clip(paint, 0.0, 1.0)[..., None]
    albedo[road] = (asphalt * (1 - paint) + 0.85 * paint)[road]
    tiles = 1.0 - 0.25 * np.maximum(pulse(x, 0.8, 0.0, 0.04, footprint), pulse(z, 0.8, 0.0, 0.04, footprint))
    walk_col = (0.60 + 0.1 * grain)[..., None] * tiles[..., None] * np.array([1.0, 0.98, 0.94], np.float32)
    kerb = pulse(ax - style.road_half_width + 0.1, 1e6, 0.0, 0.25, footprint)[..., None]
    walk_col = walk_col * (1 - kerb) + 0.72 * kerb
    albedo[walk] = walk_col[walk]
    if style.verge == "grass":
        verge_col = np.array([0.22, 0.36, 0.12], np.float32) * (1.0 + 1.2 * grain)[..., None]
    else:
        verge_col = np.array([0.50, 0.49, 0.47], np.float32) * (1.0 + 0.6 * grain)[..., None]
    albedo[verge] = verge_col[verge]
    return albedo


def _box_albedo(local: np.ndarray, axis: np.ndarray, box_idx: np.ndarray, footprint: np.ndarray,
                boxes: w.Boxes, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Albedo of box surface points; ``local`` is the point relative to the box's min corner."""
    mat = boxes.material[box_idx]
    colour = boxes.colour[box_idx].astype(np.float32)
    height_up = (hi[box_idx, 1] - lo[box_idx, 1]) - local[:, 1]  # metres above the box bottom
    along = np.where(axis == 0, local[:, 2], local[:, 0])  # horizontal coordinate on a wall
    seed = (box_idx * 7919).astype(np.int64) % 100003
    noise = fbm(along + 17.0 * (axis == 1), height_up + local[:, 2] * (axis == 1), int(0), footprint)
    noise += 0.15 * (_hash(box_idx, box_idx * 3, 11) - 0.5)
    albedo = colour * (1.0 + 0.35 * noise)[:, None]

    building = mat == w.BUILDING
    if building.any():
        wall = building & (axis != 1) & (hi[box_idx, 1] - lo[box_idx, 1] > 3.0)
        win = pulse(along, 2.6, 0.7, 1.9, footprint) * pulse(height_up, 3.2, 1.0, 2.4, footprint)
        win = win * (height_up > 2.5)
        lit = _hash(np.floor(along / 2.6).astype(np.int64) + seed * 31, np.floor(height_up / 3.2).astype(np.int64), 5)
        glass = np.stack([0.10 + 0.25 * lit, 0.13 + 0.25 * lit, 0.18 + 0.25 * lit], axis=-1)
        mix = (win * wall)[:, None]
        albedo = albedo * (1 - mix) + glass * mix
        roof = building & (axis == 1)
        albedo[roof] = (0.35 + 0.1 * noise[roof])[:, None]
    cabin = mat == w.CAR_CABIN
    if cabin.any():
        glass = (axis != 1)[:, None] * np.array([0.08, 0.1, 0.13], np.float32)
        albedo[cabin] = np.where((axis[cabin] != 1)[:, None], glass[cabin], colour[cabin])
    ped = mat == w.PEDESTRIAN
    if ped.any():
        legs = ped & (height_up < 0.85)
        albedo[legs] = np.array([0.12, 0.14, 0.25], np.float32)
        head = ped & (height_up > (hi[box_idx, 1] - lo[box_idx, 1]) - 0.25)
        albedo[head] = np.array([0.75, 0.58, 0.45], np.float32)
    canopy = mat == w.CANOPY
    if canopy.any():
        leaves = fbm(along * 3.0, height_up * 3.0 + local[:, 2], 3, footprint * 3.0)
        albedo[canopy] = colour[canopy] * (1.0 + 1.4 * leaves[canopy])[:, None]
    return np.clip(albedo, 0.0, 1.0)


def shade(scene: w.Scene, origin: np.ndarray, dirs: np.ndarray, hits: RayHits, lo: np.ndarray, hi: np.ndarray,
          focal: float) -> np.ndarray:
    """Colour (R, C, 3) float32 of each ray: albedo x (ambient + sun), or sky."""
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
    unit = d / norm[hit_mask][:, None]
    cos_incidence = np.abs(unit[np.arange(len(axis)), axis])
    footprint = (t * norm[hit_mask] / focal) / np.maximum(cos_incidence, 0.15)

    albedo = np.empty((len(t), 3), np.float32)
    normal = np.zeros((len(t), 3), np.float32)
    on_ground = box_idx < 0
    if on_ground.any():
        albedo[on_ground] = _ground_albedo(point[on_ground, 0], point[on_ground, 2], footprint[on_ground], scene)
        normal[on_ground] = (0.0, -1.0, 0.0)
    on_box = ~on_ground
    if on_box.any():
        idx = box_idx[on_box]
        local = point[on_box] - lo[idx]
        albedo[on_box] = _box_albedo(local, axis[on_box], idx, footprint[on_box], scene.boxes, lo, hi)
        # Outward normal: against the ray along the face's axis.
        ax = axis[on_box]
        sign = -np.sign(d[on_box][np.arange(len(ax)), ax])
        normal[on_box] = _FACE_NORMALS[ax] * sign[:, None]
    light = 0.55 + 0.65 * np.clip(normal @ scene.sun_direction.astype(np.float32), 0.0, 1.0)
    out[hit_mask] = albedo * light[:, None]
    return out


# --- views -------------------------------------------------------------------------------------

@dataclass
class View:
    """A rendered camera view: 8-bit colour and exact z-depth in metres (inf = sky)."""

    image: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32


def render_view(sequence: w.Sequence, index: int, intrinsics: w.Intrinsics | None = None,
                offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> View:
    """Render frame ``index`` of a sequence. ``offset`` moves the camera in its own frame
    (metres, x right): the right camera of a stereo rig with baseline b is ``(b, 0, 0)``."""
    intr = intrinsics or sequence.intrinsics
    traj = sequence.trajectory
    rotation = traj.rotation(index)
    centre = traj.position(index) + rotation @ np.asarray(offset, np.float64)
    lo, hi = sequence.scene.boxes.at(float(traj.traffic_time[index]))
    dirs = camera_rays(intr, rotation)
    windows = pinhole_windows(lo, hi, intr, rotation, centre)
    hits = cast(centre, dirs, lo, hi, windows)
    colour = shade(sequence.scene, centre, dirs, hits, lo, hi, focal=0.5 * (intr.fx + intr.fy))
    colour = colour * sequence.exposure.astype(np.float32)
    image = np.round(np.clip(colour, 0.0, 1.0) ** (1 / 1.15) * 255.0).astype(np.uint8)
    return View(image=image, depth=hits.t)


def spherical_windows(lo, hi, origin, rotation, elevations, azimuths, max_range) -> np.ndarray:
    """Per box, the beam rows and azimuth columns of a spinning LiDAR that can see it.

    Spherical projection bends box edges, so edges are sampled densely (not just corners) and the
    window is padded by one row and two columns. ``rotation`` is sensor-to-world; the sensor frame
    is x forward, y left, z up. Elevations must increase with the row index.
    """
    steps = np.linspace(0.0, 1.0, 17)
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
    sensor = (np.concatenate(pts, axis=1) - origin) @ rotation  # (N, P, 3) in the sensor frame
    horiz = np.hypot(sensor[..., 0], sensor[..., 1])
    elev = np.arctan2(sensor[..., 2], horiz)
    az = np.arctan2(sensor[..., 1], sensor[..., 0])
    windows = np.zeros((len(lo), 4), np.int64)
    dist = np.linalg.norm(sensor, axis=-1).min(axis=1)
    inside_xy = (lo[:, 0] - 1 < origin[0]) & (origin[0] < hi[:, 0] + 1) & \
                (lo[:, 2] - 1 < origin[2]) & (origin[2] < hi[:, 2] + 1)
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


_REFLECTANCE = np.array([0.25, 0.55, 0.1, 0.05, 0.35, 0.2, 0.15, 0.3], np.float32)


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
    lo, hi = sequence.scene.boxes.at(float(traj.traffic_time[index]))
    windows = spherical_windows(lo, hi, origin, rotation, elev, az, config.max_range)
    hits = cast(origin, dirs, lo, hi, windows, far=config.max_range)
    ok = hits.t < config.max_range
    points = local[ok] * hits.t[ok][:, None]
    material = np.where(hits.box[ok] >= 0, sequence.scene.boxes.material[np.maximum(hits.box[ok], 0)], -1)
    reflectance = np.where(material >= 0, _REFLECTANCE[np.maximum(material, 0)], 0.3)
    return np.concatenate([points, reflectance[:, None]], axis=1).astype(np.float32)

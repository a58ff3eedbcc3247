"""What a hit looks like: lattice-hash value noise, fbm and anti-aliased pulses; the sky; the
ground's albedo (lanes, markings, kerbs, sidewalks, verges, lots, parks) and each primitive's
(facades with windows, storeys and shop fronts, cars, trees, signs); :func:`shade`, which lights
them with sun, ambient light, shadows and haze; and the sensor's vignetting and noise. Textures
are functions of the surface point in the box's own frame (or of the ground point), so a surface
keeps its colour from frame to frame and brightness constancy holds exactly, moving objects
included. Texture detail fades out once it is finer than a pixel's footprint, which stops the
aliasing shimmer that would otherwise break that constancy.
"""

from __future__ import annotations

import numpy as np

from geopre.synth import textures
from geopre.synth import world as w
from geopre.synth.raycast import ROUND_AXIS, RayHits


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
    on_ground = box_idx < 0
    normal[on_ground] = posed.ground.normal(point[on_ground, 0], point[on_ground, 2])
    cos_incidence = np.abs(np.sum(normal * unit, axis=1))
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

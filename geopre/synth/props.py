"""The objects placed along a street while a scene is generated: parked and moving cars,
buildings with their facade parameters, boundary walls, fences and hedges, side-street mouths,
open spaces (lots and parks), trees and billboards. Each builder draws its look from the scene's
random generator and appends primitives to a ``_BoxList``; ``street.py`` decides where they go.
"""

from __future__ import annotations

import numpy as np

from geopre.synth import textures  # texture ids only: no photograph is loaded at import
from geopre.synth.road import Road, yaw_rotation
from geopre.synth.scene import (BUILDING, CANOPY, CAR_BODY, CAR_CABIN, CAR_UNDER, CYLINDER, HEDGE, N_PARAMS, PARK,
                                POLE, P_BALCONY, P_CONTRAST, P_FRAME, P_GROUND_FLOOR, P_PHOTO, P_SEED, P_SHOP_PITCH,
                                P_STOREY, P_TEXEL, P_TEXTURE, P_U0, P_V0, P_WIN_HEIGHT, P_WIN_PITCH, P_WIN_WIDTH,
                                SIGN, SPHEROID, TRUNK, WALL, _BoxList)
from geopre.synth.style import WorldStyle


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
    anchor = boxes.anchor_at(road, s, yaw, n)
    for lo, hi, mat in _car_parts(rng):
        lo, hi = np.array(lo), np.array(hi)
        if across:  # parked at right angles to the road: swap the car's x and z
            lo, hi = lo[[2, 1, 0]], hi[[2, 1, 0]]
        lo[0] += n
        hi[0] += n
        boxes.add_static(road, s, yaw, lo, hi, mat, (0.05, 0.05, 0.05) if mat == CAR_UNDER else colour, anchor=anchor)


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
    anchor = boxes.anchor_at(road, s, yaw, side * n)  # board and posts stand as one on a slope
    boxes.add_static(road, s, yaw, (x0, -bottom - height, -0.1), (x1, -bottom, 0.1), SIGN, (0.5, 0.5, 0.5),
                     params=params, anchor=anchor)
    for post in (x0 + 0.2, x1 - 0.2):
        boxes.add_static(road, s, yaw, (post - 0.06, -bottom, -0.06), (post + 0.06, 0.0, 0.06), POLE,
                         (0.35, 0.35, 0.37), anchor=anchor)

"""Street layout: :func:`generate_scene` lays out a whole street from a seed (road, lanes, parking,
sidewalks, the sequence of buildings, gaps, side streets and open spaces on each side, traffic and
pedestrians) on the scene's hills, then draws the scene's ground look (markings, kerb, sidewalk,
verge) and light (sun, overcast, haze). The objects themselves come from ``props.py``.
"""

from __future__ import annotations

import numpy as np

from geopre.synth import textures  # texture ids only: no photograph is loaded at import
from geopre.synth.props import (_add_moving_car, _add_parked_car, _bend_margin, _billboard, _boundary, _building,
                                _building_params, _jitter_colour, _open_space, _quantised_yaw, _side_street, _tree)
from geopre.synth.road import make_road
from geopre.synth.scene import (ASPHALT, CYLINDER, GRAVEL_LOT, PARK, PEDESTRIAN, POLE, SIDE_STREET, WALL, Scene,
                                _BoxList)
from geopre.synth.style import WorldStyle
from geopre.synth.terrain import make_terrain


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

    # The hills draw from a stream of their own, so the street's layout per seed is as before.
    terrain = make_terrain(np.random.default_rng([seed, 15]))
    scene = Scene(
        style=style,
        boxes=boxes.build(terrain),
        sun_direction=np.zeros(3),
        sky_horizon=np.zeros(3),
        sky_zenith=np.zeros(3),
        ground_seed=int(rng.integers(1 << 30)),
        ego_lane_x=centre(ego_lane),
        length=length,
        road=road,
        terrain=terrain,
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

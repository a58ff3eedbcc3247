"""Cross traffic: cars that drive along side streets straight across the main road at crossroads.

Each car drives a straight line down the middle of its side of the side street (right-hand
traffic) at constant speed on the traffic clock, so its position is a pure function of traffic
time, as every other moving object's: depth stays exact, both stereo cameras see the same instant,
and the car waits when the ego car stops. A car is timed to cross while the ego car approaches the
junction (20-90 m before it), and only when neither the ego car nor any car on the main road is
near the junction while it is on the main road; a time that fails is drawn again, and a car that
finds no safe time is left out. Poles at the corner must also leave its lane free.
"""

from __future__ import annotations

import numpy as np

from geopre.synth.props import _car_colour, _car_parts
from geopre.synth.road import yaw_rotation
from geopre.synth.scene import CAR_UNDER, CYLINDER, SIDE_STREET, Scene, _BoxList

CROSS_PROBABILITY = 0.75  # per crossroads the drive approaches
MAX_CARS = 3  # per crossroads
TRIES = 8  # crossing times drawn per car before it is left out
SPEED = (5.0, 11.0)  # m/s
APPROACH = (20.0, 90.0)  # m before the junction: where the ego car is when a car crosses
EGO_CLEAR = (8.0, 4.0)  # m the ego car's camera keeps from the side street's near and far edges
CAR_REACH = 2.6  # m: half a car's length, and a margin


def crossroads(scene: Scene) -> list[tuple[float, float]]:
    """(s_start, s_end) of the side streets that open on both sides of the road."""
    sections = scene.sections if scene.sections is not None else np.zeros((0, 4))
    streets = sections[sections[:, 3] == SIDE_STREET]
    left = {(a, b) for a, b, side, _ in streets if side < 0}
    return sorted((a, b) for a, b, side, _ in streets if side > 0 and (a, b) in left)


def add_cross_traffic(scene: Scene, times: np.ndarray, distances: np.ndarray, rng: np.random.Generator) -> int:
    """Add cross traffic for a drive whose ego car is at ``distances`` (m along the road) at
    traffic ``times`` (non-decreasing). Returns the number of cars added."""
    ground = scene.ground
    kerb = ground["lanes"] * ground["lane_width"] + ground["parking"] + ground["sidewalk"]
    boxes = scene.boxes
    # Cars on the main road (not pedestrians on the sidewalks), whose arc length must stay clear.
    lane_cars = (boxes.speed != 0) & (np.abs(boxes.path_n) < kerb - ground["sidewalk"])
    if boxes.lines is not None:
        lane_cars &= ~boxes.lines
    poles = (boxes.kind == CYLINDER) & (boxes.speed == 0)
    parts = _BoxList(rng)
    added = 0
    for a, b in crossroads(scene):
        mid, width = 0.5 * (a + b), b - a
        approach = times[(distances > mid - APPROACH[1]) & (distances < mid - APPROACH[0])]
        if len(approach) == 0 or rng.random() >= CROSS_PROBABILITY:
            continue
        # The side street's frame: z across the main road (towards its right side), x along it.
        yaw = float(np.round(scene.road.frame(mid)[2] / np.deg2rad(0.5)) * np.deg2rad(0.5)) + np.pi / 2
        x, z, _ = scene.road.point(mid, 0.0)
        origin = yaw_rotation(yaw).T @ np.array([x, 0.0, z])
        pole_local = (0.5 * (boxes.lo[poles] + boxes.hi[poles])) @ yaw_rotation(yaw) - origin
        crossings: list[tuple[float, float]] = []  # (lane x, crossing time) of this junction's cars
        for _ in range(int(rng.integers(1, MAX_CARS + 1))):
            for _ in range(TRIES):
                speed = float(rng.choice((-1.0, 1.0)) * rng.uniform(*SPEED))
                lane = np.sign(speed) * width / 4  # drive on the right of the side street
                t_cross = float(rng.choice(approach) + rng.uniform(-1.0, 1.0))
                if _clear(scene, times, distances, lane_cars, pole_local, crossings, mid, width, kerb, lane,
                          speed, t_cross):
                    break
            else:
                continue
            crossings.append((lane, t_cross))
            colour = _car_colour(rng)
            shift = origin + np.array([lane, 0.0, -speed * t_cross])  # its place at traffic time 0
            for lo, hi, material in _car_parts(rng):
                parts.add(shift + lo, shift + hi, material, (0.05, 0.05, 0.05) if material == CAR_UNDER else colour,
                          yaw=yaw, path=(shift[2], shift[0], speed))
            added += 1
    if added:
        more = parts.build()
        more.lines = np.ones(len(more), bool)
        boxes.append(more)
    return added


def _clear(scene, times, distances, lane_cars, pole_local, crossings, mid, width, kerb, lane, speed,
           t_cross) -> bool:
    """Whether a car in ``lane`` crossing the road's centre line at ``t_cross`` meets nobody."""
    # While any part of it is on the main road (between the far kerbs), nobody may be at the junction.
    half = (kerb + CAR_REACH) / abs(speed)
    window = np.linspace(t_cross - half, t_cross + half, 16)
    ego = np.interp(window, times, distances)
    if np.any((ego > mid - width / 2 - EGO_CLEAR[0]) & (ego < mid + width / 2 + EGO_CLEAR[1])):
        return False
    boxes = scene.boxes
    for tau in window:
        s = boxes.arc_length(float(tau))[lane_cars]
        if np.any(np.abs(s - mid) < width / 2 + CAR_REACH):
            return False
    # Poles at the corners stand clear of its lane, and a car ahead in its lane keeps its distance.
    if np.any((np.abs(pole_local[:, 0] - lane) < 1.5) & (np.abs(pole_local[:, 2]) < kerb + 6.0)):
        return False
    return all(other != lane or abs(t - t_cross) * abs(speed) > 12.0 for other, t in crossings)

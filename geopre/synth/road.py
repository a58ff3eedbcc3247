"""The street's centre line and the frame it gives: :class:`Road` (arc length -> position and
heading, straights, bends and clothoid-like transitions), :func:`make_road` that samples one for a
style, :func:`yaw_rotation` for frames turned about the vertical axis, and :class:`Posed`, the
primitives placed at one traffic time, which the ray caster reads. Coordinates follow KITTI/OpenCV:
X right, Y down, Z along the road at its start; the ground is the heightfield of ``terrain.py``
(Y = 0 where the road starts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geopre.synth.style import WorldStyle
from geopre.synth.terrain import FLAT, Terrain


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
    ``yaw`` about the origin); cylinders and spheroids have yaw 0 and ``lo``/``hi`` their bounds.
    ``ground`` is the terrain they stand on, which the ray caster casts too."""

    lo: np.ndarray
    hi: np.ndarray
    yaw: np.ndarray
    kind: np.ndarray
    ground: Terrain = FLAT

    def corners_world(self) -> np.ndarray:
        """(N, 8, 3) world corners of each primitive's box."""
        sel = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
        both = np.stack([self.lo, self.hi], axis=1)
        local = np.stack([both[:, sel[:, a], a] for a in range(3)], axis=-1)
        return np.einsum("nij,nkj->nki", yaw_rotation(self.yaw), local)

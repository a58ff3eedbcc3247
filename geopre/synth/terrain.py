"""The ground's shape: :class:`Terrain`, a smooth heightfield Y = h(x, z) (Y down, as everywhere in
the world) made of a few long plane waves, :func:`make_terrain` that draws one per scene, and
:meth:`Terrain.first_crossing`, the exact ray cast against it.

Why plane waves in world (x, z) and not a height profile along the road's arc length: a sum of
cosines is evaluated anywhere with a handful of multiply-adds (a profile along the road needs the
road coordinates of every point, a binary search per pixel), its slope and curvature have closed
bounds (which the ray cast needs to step safely), and side streets, parks and the buildings behind
the road all stand on the same hills without any special case.

The ray cast steps along each ray with a *safe* step: the terrain's curvature along the ray is
bounded by ``C = sum a_k (k_k . d)^2``, so ``f(t) = y(t) - h(t)`` (negative above the ground) stays
below the parabola ``f + f' s + C s^2 / 2``; stepping to that parabola's first root never passes the
first crossing, and near it the step becomes Newton's, so it converges quadratically. A flat scene
is the plane case, solved in one step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SLOPE = 0.08  # the steepest total gradient a scene draws (8 %); the shadow windows need < tan(8 deg)
CONVERGED = 2e-3  # m: a step shorter than this ends a ray's march (the remaining error is far smaller)
MAX_STEPS = 48


@dataclass(frozen=True)
class Terrain:
    """Ground height Y = offset + sum_k amplitude_k cos(wave_k . (x, z) + phase_k), Y down."""

    amplitude: np.ndarray  # (K,) m
    wave: np.ndarray  # (K, 2) rad/m along x and z
    phase: np.ndarray  # (K,) rad
    offset: float = 0.0

    def _waves(self, x, z):
        """Each wave's phase at the points (K, *shape), and its amplitude and wave vector shaped to
        broadcast against it, in the points' float precision (float32 stays float32)."""
        x, z = np.broadcast_arrays(np.asarray(x), np.asarray(z))
        dtype = np.result_type(x, z, np.float32)
        per_wave = (-1,) + (1,) * x.ndim
        kx, kz = (self.wave[:, a].astype(dtype).reshape(per_wave) for a in range(2))
        phases = kx * x + kz * z + self.phase.astype(dtype).reshape(per_wave)
        return phases, self.amplitude.astype(dtype).reshape(per_wave), kx, kz, dtype

    def height(self, x, z) -> np.ndarray:
        """Ground Y (down) at world (x, z), arrays of any shape."""
        phases, amp, _, _, dtype = self._waves(x, z)
        return dtype.type(self.offset) + np.sum(amp * np.cos(phases), axis=0)

    def gradient(self, x, z) -> tuple[np.ndarray, np.ndarray]:
        """(dY/dx, dY/dz): positive where the ground falls away (Y grows) along that axis."""
        phases, amp, kx, kz, _ = self._waves(x, z)
        s = -amp * np.sin(phases)
        return np.sum(s * kx, axis=0), np.sum(s * kz, axis=0)

    def normal(self, x, z) -> np.ndarray:
        """(..., 3) unit normal pointing up (towards -Y) at world (x, z)."""
        gx, gz = self.gradient(x, z)
        n = np.stack([gx, -np.ones_like(gx), gz], -1)
        return n / np.linalg.norm(n, axis=-1, keepdims=True)

    @property
    def slope_bound(self) -> float:
        """Upper bound of the gradient's length anywhere."""
        return float(np.sum(np.abs(self.amplitude) * np.linalg.norm(self.wave, axis=1)))

    @property
    def curvature_bound(self) -> float:
        """Upper bound of the second derivative along any unit horizontal direction."""
        return float(np.sum(np.abs(self.amplitude) * np.sum(self.wave**2, axis=1)))

    def bounds(self) -> tuple[float, float]:
        """(lowest, highest) Y the ground reaches."""
        spread = float(np.sum(np.abs(self.amplitude)))
        return self.offset - spread, self.offset + spread

    def first_crossing(self, origin: np.ndarray, dirs: np.ndarray, near: float, limit: np.ndarray) -> np.ndarray:
        """Ray parameter of the first ground crossing of each ray ``origin + t dirs`` (dirs (..., 3))
        in (near, limit) (``limit`` broadcasts with the rays), inf where there is none. Rays whose
        height never enters the terrain's band within that range are skipped."""
        shape = dirs.shape[:-1]
        d = dirs.reshape(-1, 3).astype(np.float32)
        end = np.broadcast_to(np.asarray(limit, np.float32), shape).reshape(-1)
        o = np.asarray(origin, np.float64)
        low, high = self.bounds()
        with np.errstate(divide="ignore", invalid="ignore"):
            t_low, t_high = (low - o[1]) / d[:, 1], (high - o[1]) / d[:, 1]
        # The stretch of each ray whose Y lies between the ground's lowest and highest points.
        level = d[:, 1] == 0
        enter = np.where(level, np.where((low <= o[1]) & (o[1] <= high), 0.0, np.inf), np.minimum(t_low, t_high))
        leave = np.where(level, np.inf, np.maximum(t_low, t_high))
        start = np.maximum(enter, near).astype(np.float32)
        end = np.minimum(end, leave + CONVERGED).astype(np.float32)  # past the band's edge: nothing to hit
        out = np.full(len(d), np.inf, np.float32)
        idx = np.flatnonzero(start < end)
        if len(idx) == 0:
            return out.reshape(shape)
        t, stop = start[idx], end[idx]
        dx, dy, dz = d[idx, 0], d[idx, 1], d[idx, 2]
        amp = self.amplitude.astype(np.float32)[:, None]
        kx, kz = self.wave.astype(np.float32)[:, 0:1], self.wave.astype(np.float32)[:, 1:2]
        phase = self.phase.astype(np.float32)[:, None]
        along = kx * dx + kz * dz  # (K, n): each wave's phase change per unit of t
        curvature = np.sum(np.abs(amp) * along**2, axis=0)
        o32 = o.astype(np.float32)
        for _ in range(MAX_STEPS):
            x, z = o32[0] + t * dx, o32[2] + t * dz
            phases = kx * x + kz * z + phase
            f = o32[1] + t * dy - (np.float32(self.offset) + np.sum(amp * np.cos(phases), axis=0))
            slope = dy + np.sum(amp * np.sin(phases) * along, axis=0)
            # First root of f + slope s + curvature s^2 / 2 (f < 0), in the form stable at curvature 0.
            with np.errstate(divide="ignore", invalid="ignore"):
                step = np.where(f >= 0, 0.0, -2 * f / (slope + np.sqrt(slope * slope - 2 * curvature * f)))
            step = np.where(np.isnan(step), np.inf, step)
            t = t + step
            done = (step < CONVERGED) | ~(t < stop)
            hit = done & (t < stop)
            out[idx[hit]] = t[hit]
            keep = ~done
            if not keep.any():
                break
            idx, t, stop, dx, dy, dz = idx[keep], t[keep], stop[keep], dx[keep], dy[keep], dz[keep]
            along, curvature = along[:, keep], curvature[keep]
        else:
            out[idx] = np.where(t < stop, t, np.inf)  # a grazing ray still creeping: its best bracket
        return out.reshape(shape)


FLAT = Terrain(np.zeros(0), np.zeros((0, 2)), np.zeros(0))


def make_terrain(rng: np.random.Generator, components: int = 3) -> Terrain:
    """A scene's hills: ``components`` plane waves of wavelength 80-300 m in random directions whose
    slopes add up to at most 2-8 % (a quarter of the scenes nearly flat, under 1 %), shifted so the
    ground at the start (x = z = 0) is Y = 0."""
    total = rng.uniform(0.0, 0.01) if rng.random() < 0.25 else rng.uniform(0.02, MAX_SLOPE)
    slopes = total * rng.dirichlet(np.ones(components))
    wavelength = rng.uniform(80.0, 300.0, components)
    k = 2 * np.pi / wavelength
    direction = rng.uniform(-np.pi, np.pi, components)
    wave = np.stack([k * np.sin(direction), k * np.cos(direction)], -1)
    amplitude = slopes / k
    phase = rng.uniform(-np.pi, np.pi, components)
    terrain = Terrain(amplitude, wave, phase)
    return Terrain(amplitude, wave, phase, -float(terrain.height(0.0, 0.0)))

"""The synthetic world's rendering API: :func:`render_view` (a camera frame: 8-bit colour and exact
z-depth), :class:`View`, and :func:`lidar_scan` with its :class:`LidarConfig` (a KITTI-like
64-beam sweep). The work happens in ``raycast.py`` (casting rays against the primitives, culling
windows, shadows) and ``shading.py`` (noise, albedo, sky, light, sensor effects); the names tests
and benchmarks reach for there are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geopre.synth import world as w
from geopre.synth.blur import motion_blur
from geopre.synth.raycast import camera_rays, cast, pinhole_windows, shadows, spherical_windows
from geopre.synth.shading import _sensor, pulse, shade  # noqa: F401 - pulse: re-exported for the tests


@dataclass
class View:
    """A rendered camera view: 8-bit colour and exact z-depth in metres (inf = sky)."""

    image: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32


def render_view(sequence: w.Sequence, index: int, intrinsics: w.Intrinsics | None = None,
                offset: tuple[float, float, float] = (0.0, 0.0, 0.0), clean: bool = False) -> View:
    """Render frame ``index`` of a sequence. ``offset`` moves the camera in its own frame
    (metres, x right): the right camera of a stereo rig with baseline b is ``(b, 0, 0)``.
    ``clean`` leaves out motion blur, vignetting and sensor noise (what a pixel-exact comparison needs)."""
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
    if not clean:
        colour = motion_blur(colour, sequence, index, intr, offset, hits.box, hits.t, posed)
    colour = np.clip(colour, 0.0, 1.0) ** (1 / 1.15) * 255.0
    if not clean:
        colour = _sensor(colour, sequence, intr, index, offset)
    image = np.round(np.clip(colour, 0.0, 255.0)).astype(np.uint8)
    return View(image=image, depth=hits.t)


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

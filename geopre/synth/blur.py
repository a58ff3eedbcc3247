"""Motion blur: what a camera moving during its exposure records.

A pixel integrates light over the shutter time, while the camera (and a moving car in front of it)
moves. The blur is a post-process on the rendered colour: every pixel's image motion during the
exposure follows exactly from its rendered depth and the camera's poses at the start and end of
the exposure (:func:`exposure_flow`, rigid flow; a moving object's pixels add that object's own
displacement), and the blurred pixel is the mean of bilinear taps along that motion
(:func:`blur_along`). The exact depth ground truth stays the sharp frame's, as a global-shutter
camera's depth label would be. A stopped camera (whose traffic clock stops too) gets no blur.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from geopre.data.camera import Intrinsics
from geopre.synth.road import yaw_rotation

MAX_TAPS = 12  # long streaks at video sizes are sampled every few pixels rather than costing more
FAR = 1e5  # metres: sky pixels move with the rotation only


def exposure_flow(depth: np.ndarray, intr: Intrinsics, pose: np.ndarray, start: np.ndarray, end: np.ndarray,
                  moved: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(H, W, 2) image motion (pixels, x and y) from the exposure's start to its end.

    ``depth`` is the frame's z-depth (inf = sky), seen from ``pose`` (4x4 camera-to-world);
    ``start``/``end`` are the camera's poses at the exposure's start and end. ``moved`` gives, per
    pixel, the world displacement (H, W, 3) of the surface it sees at the start and at the end
    (moving objects; None: the world stands still)."""
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = (u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy
    z = np.where(np.isfinite(depth), depth, FAR).astype(np.float32)
    ends = []
    for k, camera in enumerate((start, end)):
        # This frame's camera coordinates straight into the exposure end's: one 3x3 and a shift.
        turn = camera[:3, :3].T @ pose[:3, :3]
        shift = camera[:3, :3].T @ (pose[:3, 3] - camera[:3, 3])
        cam = [z * (turn[i, 0] * a + turn[i, 1] * b + turn[i, 2]) + np.float32(shift[i]) for i in range(3)]
        if moved is not None:
            extra = moved[k] @ camera[:3, :3].astype(np.float32)
            cam = [cam[i] + extra[..., i] for i in range(3)]
        zc = np.maximum(cam[2], 1e-3)
        ends.append((intr.fx * cam[0] / zc + intr.cx, intr.fy * cam[1] / zc + intr.cy))
    fx, fy = ends[1][0] - ends[0][0], ends[1][1] - ends[0][1]
    # A surface passing behind the camera during the exposure has no meaningful streak.
    bad = ~(np.isfinite(fx) & np.isfinite(fy))
    fx[bad], fy[bad] = 0.0, 0.0
    return np.stack([fx, fy], -1).astype(np.float32, copy=False)


def blur_along(image: np.ndarray, flow: np.ndarray, taps: int | None = None) -> np.ndarray:
    """Average ``image`` (H, W, C float) over bilinear taps spread evenly along each pixel's
    ``flow`` (H, W, 2), centred on the pixel: the exposure's mid-time is the frame time. Taps
    default to one per pixel of the longest streak along x or y (plus one), at most ``MAX_TAPS``; edges clamp."""
    # The longest streak along either axis: taps one pixel apart sample it without gaps.
    length = float(np.abs(flow).max()) if flow.size else 0.0
    if length < 1e-3:
        return image
    if taps is None:
        taps = int(min(MAX_TAPS, np.ceil(length) + 1))
    h, w = flow.shape[:2]
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    source = image.astype(np.float32, copy=False)
    total = np.zeros(image.shape, np.float32)
    for tau in np.linspace(-0.5, 0.5, taps, dtype=np.float32):
        total += cv2.remap(source, u + tau * flow[..., 0], v + tau * flow[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE).reshape(total.shape)
    return total / np.float32(taps)


def motion_blur(colour: np.ndarray, sequence, index: int, intr: Intrinsics, offset, box: np.ndarray,
                depth: np.ndarray, posed) -> np.ndarray:
    """Blur a rendered frame's linear ``colour`` by its camera's motion during ``sequence.shutter``,
    centred on the frame time. ``box`` (H, W) is the primitive each pixel sees (-1: ground or sky),
    so pixels on a moving car add its own motion; ``posed`` are the primitives at this frame's
    traffic time. Unchanged when the car stands or the shutter is 0."""
    traj = sequence.trajectory
    speed = float(traj.speed[index])
    if sequence.shutter <= 0.0 or speed <= 0.0:
        return colour
    # The camera's pose is a function of distance along the road, so the exposure's ends are the
    # poses half a shutter's travel either side of this frame.
    half = 0.5 * sequence.shutter * speed
    s = float(traj.distance[index])
    probe = replace(traj, distance=np.array([s, s - half, s + half]))
    mount = np.eye(4)
    mount[:3, 3] = offset
    pose, start, end = (probe.pose(k) @ mount for k in range(3))
    moved = None
    boxes, road = sequence.scene.boxes, sequence.scene.road
    moving = (boxes.speed != 0)[np.maximum(box, 0)] & (box >= 0)
    if moving.any():
        # The traffic clock's rate at this frame (it slows with the ego car): the moving boxes'
        # displacement over the exposure, each by its centre.
        times, tau = traj.times, traj.traffic_time
        k0, k1 = max(index - 1, 0), min(index + 1, len(times) - 1)
        rate = (tau[k1] - tau[k0]) / (times[k1] - times[k0]) if k1 > k0 else 1.0
        t, dt = float(tau[index]), 0.5 * sequence.shutter * rate
        centres = [_centres(p) for p in (posed, boxes.at(t - dt, road), boxes.at(t + dt, road))]
        shift = np.zeros((2, *box.shape, 3), np.float32)
        for k in range(2):
            shift[k][moving] = (centres[k + 1] - centres[0])[box[moving]]
        moved = (shift[0], shift[1])
    flow = exposure_flow(depth, intr, pose, start, end, moved)
    return blur_along(colour, flow)


def _centres(posed) -> np.ndarray:
    """(N, 3) world centre of each primitive."""
    return np.einsum("nij,nj->ni", yaw_rotation(posed.yaw), 0.5 * (posed.lo + posed.hi))

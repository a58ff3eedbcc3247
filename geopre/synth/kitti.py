"""A KITTI-raw-style tree rendered from the synthetic world, in KITTI's own on-disk formats.

Layout (as the KITTI raw release and monodepth2's split files expect)::

    OUT/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    OUT/<date>/<date>_drive_<NNNN>_sync/image_02/data/<10-digit>.png   left colour camera
    OUT/<date>/<date>_drive_<NNNN>_sync/image_03/data/<10-digit>.png   right colour camera
    OUT/<date>/<date>_drive_<NNNN>_sync/velodyne_points/data/<10-digit>.bin  float32 x,y,z,r
    OUT/splits/{eigen_zhou,eigen_full}/{train,val}_files.txt, OUT/splits/eigen/test_files.txt

Ground truth outside the format: ``<drive>/geopre_truth/depth_02/<10-digit>.npy`` (exact z-depth
of image_02, float32, inf for sky), ``poses.txt`` (camera-2-to-world, KITTI odometry layout) and
``speed.txt``.

Geometry follows the real rig: the trajectory is the rectified camera 0; camera 2 sits 6 cm to its
left and camera 3 at 0.54 m to the right of camera 2 (``P_rect_0c[0, 3] = -fx * x_c``). The
rectifying rotation ``R_rect_00`` is a small real rotation, not identity, and ``Tr_velo_to_cam``
is written so that ``P_rect_02 @ R_rect_00 @ Tr_velo_to_cam`` maps LiDAR points to image 2 exactly,
as the KITTI devkit composes them; a reader that skips ``R_rect_00`` is caught by the tests.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geopre.errors import UserError
from geopre.io import atomic_path, atomic_write_json, atomic_write_text, ensure_writable_dir, save_png
from geopre.progress import progress
from geopre.synth import render, world

log = logging.getLogger(__name__)

DATES = ("2011_09_26", "2011_09_28", "2011_09_29", "2011_09_30", "2011_10_03")
CAM2_X = -0.06  # camera 2 centre in the rectified camera-0 frame (m)
BASELINE = 0.54  # cameras 2 -> 3 (m)
FPS = 10.0


def _small_rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    def rot(axis, a):
        c, s = np.cos(a), np.sin(a)
        m = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        return m
    return rot(2, rz) @ rot(1, ry) @ rot(0, rx)


@dataclass(frozen=True)
class KittiRig:
    """Camera and LiDAR calibration of one recording day."""

    intrinsics: world.Intrinsics  # rectified cameras 0-3 (shared K, as in KITTI's P_rect)
    r_rect: np.ndarray  # 3x3 R_rect_00
    velo_to_rect: np.ndarray  # 4x4: LiDAR frame -> rectified camera-0 frame (the true mounting)

    @classmethod
    def for_date(cls, date_index: int, width: int, height: int) -> "KittiRig":
        rng = np.random.default_rng(1000 + date_index)
        f = 0.58 * width * rng.uniform(0.99, 1.01)  # KITTI: fx ~ 0.58 W (monodepth2's normalised K)
        intr = world.Intrinsics(f, f, (width - 1) / 2 + rng.uniform(-2, 2), (height - 1) / 2 + rng.uniform(-1, 1),
                                width, height)
        r_rect = _small_rotation(*np.deg2rad(rng.uniform(-0.6, 0.6, size=3)))
        # LiDAR axes: x forward, y left, z up; camera axes: x right, y down, z forward.
        axes = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
        mount = _small_rotation(*np.deg2rad(rng.uniform(-0.8, 0.8, size=3)))
        velo = np.eye(4)
        velo[:3, :3] = mount @ axes
        velo[:3, 3] = (rng.uniform(-0.02, 0.02), -0.08 + rng.uniform(-0.01, 0.01), -0.27 + rng.uniform(-0.01, 0.01))
        return cls(intr, r_rect, velo)

    def projection(self, camera_x: float) -> np.ndarray:
        """P_rect for a rectified camera centred at ``camera_x`` in the camera-0 frame."""
        p = np.zeros((3, 4))
        p[:, :3] = self.intrinsics.matrix
        p[0, 3] = -self.intrinsics.fx * camera_x
        return p

    def velo_to_cam_unrectified(self) -> np.ndarray:
        """What calib_velo_to_cam.txt stores: R_rect_00^-1 applied to the true mounting."""
        t = np.eye(4)
        t[:3, :3] = self.r_rect.T
        return t @ self.velo_to_rect


def _fmt(values) -> str:
    return " ".join(f"{v:.6e}" for v in np.asarray(values, dtype=np.float64).ravel() + 0.0)  # no "-0"


def calib_cam_to_cam_text(rig: KittiRig) -> str:
    intr = rig.intrinsics
    lines = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02"]
    for cam, x in enumerate((0.0, BASELINE, CAM2_X, CAM2_X + BASELINE)):
        lines += [
            f"S_{cam:02d}: {_fmt([intr.width, intr.height])}",
            f"K_{cam:02d}: {_fmt(intr.matrix)}",
            f"D_{cam:02d}: {_fmt(np.zeros(5))}",
            f"R_{cam:02d}: {_fmt(np.eye(3))}",
            f"T_{cam:02d}: {_fmt([-x, 0.0, 0.0])}",
            f"S_rect_{cam:02d}: {_fmt([intr.width, intr.height])}",
            f"R_rect_{cam:02d}: {_fmt(rig.r_rect)}",
            f"P_rect_{cam:02d}: {_fmt(rig.projection(x))}",
        ]
    return "\n".join(lines) + "\n"


def calib_velo_to_cam_text(rig: KittiRig) -> str:
    t = rig.velo_to_cam_unrectified()
    return "\n".join([
        "calib_time: 15-Mar-2012 11:37:16",
        f"R: {_fmt(t[:3, :3])}",
        f"T: {_fmt(t[:3, 3])}",
        f"delta_f: {_fmt([0.0, 0.0])}",
        f"delta_c: {_fmt([0.0, 0.0])}",
    ]) + "\n"


def calib_imu_to_velo_text() -> str:
    return "\n".join([
        "calib_time: 25-May-2012 16:47:16",
        f"R: {_fmt(np.eye(3))}",
        f"T: {_fmt([-0.81, 0.32, -0.80])}",
    ]) + "\n"


def _timestamps(start: dt.datetime, count: int) -> str:
    return "".join((start + dt.timedelta(seconds=i / FPS)).strftime("%Y-%m-%d %H:%M:%S.%f") + "000\n"
                   for i in range(count))


@dataclass(frozen=True)
class DriveSpec:
    date_index: int
    drive_number: int
    seed: int
    frames: int
    width: int
    height: int
    style: str = "suburban"

    @property
    def date(self) -> str:
        return DATES[self.date_index]

    @property
    def folder(self) -> str:
        return f"{self.date}/{self.date}_drive_{self.drive_number:04d}_sync"

    def sequence(self) -> world.Sequence:
        rig = KittiRig.for_date(self.date_index, self.width, self.height)
        # KITTI drives stop at lights too, but less often than a city dashcam.
        drive = world.DriveConfig(stop_probability=0.25, max_speed=13.0)
        return world.make_sequence(self.seed, self.frames / FPS, FPS, rig.intrinsics, world.STYLES[self.style],
                                   drive=drive, camera_height=1.65)


def render_drive(root: Path, spec: DriveSpec, save_depth: bool = True, on_frame=None) -> None:
    """Write one drive: both colour cameras, LiDAR sweeps, timestamps and truth. Frames already
    on disk are kept (each file is written atomically), so an interrupted run resumes."""
    rig = KittiRig.for_date(spec.date_index, spec.width, spec.height)
    seq = spec.sequence()
    drive_dir = root / spec.folder
    start = dt.datetime(2011, 9, 26, 13, 2, 25) + dt.timedelta(minutes=spec.drive_number)
    for sub in ("image_02", "image_03", "velodyne_points"):
        (drive_dir / sub / "data").mkdir(parents=True, exist_ok=True)
        atomic_write_text(drive_dir / sub / "timestamps.txt", _timestamps(start, spec.frames))
    truth = drive_dir / "geopre_truth"
    for i in range(spec.frames):
        name = f"{i:010d}"
        left = drive_dir / "image_02" / "data" / f"{name}.png"
        right = drive_dir / "image_03" / "data" / f"{name}.png"
        velo = drive_dir / "velodyne_points" / "data" / f"{name}.bin"
        depth = truth / "depth_02" / f"{name}.npy"
        if not left.exists() or (save_depth and not depth.exists()):
            view = render.render_view(seq, i, offset=(CAM2_X, 0.0, 0.0))
            save_png(left, view.image)
            if save_depth:
                with atomic_path(depth) as tmp:
                    np.save(tmp, view.depth.astype(np.float32))
        if not right.exists():
            save_png(right, render.render_view(seq, i, offset=(CAM2_X + BASELINE, 0.0, 0.0)).image)
        if not velo.exists():
            points = render.lidar_scan(seq, i, rig.velo_to_rect)
            with atomic_path(velo) as tmp:
                points.tofile(tmp)
        if on_frame:
            on_frame()
    traj = seq.trajectory
    cam2 = np.eye(4)
    cam2[0, 3] = CAM2_X
    atomic_write_text(truth / "poses.txt", "".join(
        " ".join(f"{v:.9e}" for v in (traj.pose(i) @ cam2)[:3].ravel()) + "\n" for i in range(len(traj))))
    atomic_write_text(truth / "speed.txt", "".join(f"{v:.6f}\n" for v in traj.speed))


def _drive_worker(root: str, spec: DriveSpec, save_depth: bool) -> str:
    render_drive(Path(root), spec, save_depth)
    return spec.folder


def plan_drives(drives: int, frames: int, width: int, height: int, seed: int, style: str = "suburban") -> list[DriveSpec]:
    if drives < 2:
        raise UserError(f"--drives must be at least 2 (train and test drives are disjoint), got {drives}")
    if frames < 3:
        raise UserError(f"--frames must be at least 3 (a frame needs both neighbours), got {frames}")
    if width < 16 or height < 16:
        raise UserError(f"--size must be at least 16x16, got {width}x{height}")
    rng = np.random.default_rng(seed)
    numbers = np.sort(rng.choice(np.arange(1, 120), size=drives, replace=False))
    return [DriveSpec(date_index=k % 2, drive_number=int(n), seed=int(rng.integers(1 << 31)), frames=frames,
                      width=width, height=height, style=style) for k, n in enumerate(numbers)]


def _moving(speed: np.ndarray, index: int) -> bool:
    """Zhou et al. drop frames without ego motion; the synthetic world knows the speed, so a
    frame counts as moving when the camera moved since its previous or to its next frame."""
    return bool(speed[index - 1] > 0 or speed[index] > 0 or speed[index + 1] > 0)


def write_splits(root: Path, specs: list[DriveSpec], test_drives: int, seed: int) -> dict[str, int]:
    """monodepth2-format split files: ``<date>/<drive> <frame> <l|r>``; test drives are disjoint
    from train drives; eigen test lines use zero-padded frame numbers as the real file does."""
    rng = np.random.default_rng(seed + 7)
    train_specs, test_specs = specs[:-test_drives], specs[-test_drives:]
    zhou, full = [], []
    for spec in train_specs:
        speed = np.loadtxt(root / spec.folder / "geopre_truth" / "speed.txt", ndmin=1)
        for i in range(1, spec.frames - 1):
            side = "l" if rng.random() < 0.5 else "r"
            full.append(f"{spec.folder} {i} {side}")
            if _moving(speed, i):
                zhou.append(f"{spec.folder} {i} {side}")
    test = [f"{spec.folder} {i:010d} l" for spec in test_specs for i in range(1, spec.frames - 1)]
    counts = {}
    for name, lines in (("eigen_zhou", zhou), ("eigen_full", full)):
        order = rng.permutation(len(lines))
        n_val = max(1, len(lines) // 10)
        val = sorted(order[:n_val])
        train = sorted(order[n_val:])
        atomic_write_text(root / "splits" / name / "train_files.txt", "".join(lines[k] + "\n" for k in train))
        atomic_write_text(root / "splits" / name / "val_files.txt", "".join(lines[k] + "\n" for k in val))
        counts[f"{name}_train"], counts[f"{name}_val"] = len(train), len(val)
    atomic_write_text(root / "splits" / "eigen" / "test_files.txt", "".join(line + "\n" for line in test))
    counts["eigen_test"] = len(test)
    return counts


def write_kitti(out: Path, drives: int = 4, test_drives: int = 1, frames: int = 40, width: int = 416,
                height: int = 128, seed: int = 0, workers: int = 1, save_depth: bool = True) -> dict:
    """Render a KITTI-raw-style tree; returns (and writes as ``synth.json``) a summary."""
    specs = plan_drives(drives, frames, width, height, seed)
    if not 1 <= test_drives < drives:
        raise UserError(f"--test-drives must be between 1 and {drives - 1} (got {test_drives})")
    out = ensure_writable_dir(out)
    for k in sorted({s.date_index for s in specs}):
        rig = KittiRig.for_date(k, width, height)
        atomic_write_text(out / DATES[k] / "calib_cam_to_cam.txt", calib_cam_to_cam_text(rig))
        atomic_write_text(out / DATES[k] / "calib_velo_to_cam.txt", calib_velo_to_cam_text(rig))
        atomic_write_text(out / DATES[k] / "calib_imu_to_velo.txt", calib_imu_to_velo_text())
    if workers <= 1:
        with progress(total=drives * frames, desc="kitti", unit="frame") as bar:
            for spec in specs:
                render_drive(out, spec, save_depth, on_frame=lambda: bar.update(1))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool, progress(total=drives, desc="kitti", unit="drive") as bar:
            for future in as_completed([pool.submit(_drive_worker, str(out), s, save_depth) for s in specs]):
                future.result()
                bar.update(1)
    counts = write_splits(out, specs, test_drives, seed)
    summary = {"kind": "kitti", "seed": seed, "size": [width, height], "fps": FPS,
               "train_drives": [s.folder for s in specs[:-test_drives]],
               "test_drives": [s.folder for s in specs[-test_drives:]], "frames_per_drive": frames,
               "splits": counts}
    atomic_write_json(out / "synth.json", summary)
    return summary

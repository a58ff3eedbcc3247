"""A KITTI-raw-style tree rendered from the synthetic world, in KITTI's own on-disk formats.

Layout (as the KITTI raw release and monodepth2's split files expect)::

    OUT/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    OUT/<date>/<date>_drive_<NNNN>_sync/image_00/data/<10-digit>.png   left grey camera (8-bit)
    OUT/<date>/<date>_drive_<NNNN>_sync/image_01/data/<10-digit>.png   right grey camera
    OUT/<date>/<date>_drive_<NNNN>_sync/image_02/data/<10-digit>.png   left colour camera
    OUT/<date>/<date>_drive_<NNNN>_sync/image_03/data/<10-digit>.png   right colour camera
    OUT/<date>/<date>_drive_<NNNN>_sync/velodyne_points/data/<10-digit>.bin  float32 x,y,z,r
    OUT/<date>/<date>_drive_<NNNN>_sync/oxts/data/<10-digit>.txt        GPS/IMU packet (30 fields)
    OUT/<date>/<date>_drive_<NNNN>_sync/*/timestamps.txt                10 Hz, on the drive's date
    OUT/splits/{eigen_zhou,eigen_full}/{train,val}_files.txt, OUT/splits/eigen/test_files.txt

Ground truth outside the format: ``<drive>/geopre_truth/depth_02/<10-digit>.npy`` (exact z-depth
of image_02, float32, inf for sky), ``poses.txt`` (camera-2-to-world, KITTI odometry layout) and
``speed.txt``.

Geometry follows the real rig: the trajectory is the rectified camera 0; camera 1 sits 0.54 m to
its right, camera 2 6 cm to its left and camera 3 0.54 m to the right of camera 2
(``P_rect_0c[0, 3] = -fx * x_c``); the grey cameras see the luminance of the same world. The
rectifying rotation ``R_rect_00`` is a small real rotation, not identity, and ``Tr_velo_to_cam``
is written so that ``P_rect_02 @ R_rect_00 @ Tr_velo_to_cam`` maps LiDAR points to image 2 exactly,
as the KITTI devkit composes them; a reader that skips ``R_rect_00`` is caught by the tests.
The OXTS packets place each drive on the map near Karlsruhe along its own heading: composing a
packet's pose with ``calib_imu_to_velo.txt`` and the camera calibration gives back the camera-0
trajectory (see :mod:`geopre.synth.oxts`).

Splits: train, validation and test frames come from disjoint drives (``--val-drives``,
``--test-drives``), so validation measures generalisation to unseen streets, like the test set.
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
from geopre.synth import oxts, render, world

log = logging.getLogger(__name__)

DATES = ("2011_09_26", "2011_09_28", "2011_09_29", "2011_09_30", "2011_10_03")
CAM2_X = -0.06  # camera 2 centre in the rectified camera-0 frame (m)
BASELINE = 0.54  # cameras 0 -> 1 and 2 -> 3 (m)
CAMERA_X = (0.0, BASELINE, CAM2_X, CAM2_X + BASELINE)  # centres of cameras 0-3 in the camera-0 frame
FPS = 10.0
SHUTTER_MS = (0.5, 2.0)  # the raw recordings' Flea2 cameras capped exposure at 2 ms


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
    imu_to_velo: np.ndarray  # 4x4: IMU frame (x forward, y left, z up) -> LiDAR frame

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
        # The IMU sits behind and below the LiDAR, almost but not exactly aligned with it, as in KITTI.
        imu = np.eye(4)
        imu[:3, :3] = _small_rotation(*np.deg2rad(rng.uniform(-0.5, 0.5, size=3)))
        imu[:3, 3] = np.array([-0.81, 0.32, -0.80]) + rng.uniform(-0.01, 0.01, size=3)
        return cls(intr, r_rect, velo, imu)

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

    def imu_to_rect(self) -> np.ndarray:
        """IMU frame -> rectified camera-0 frame, as a reader composes the calibration files."""
        return self.velo_to_rect @ self.imu_to_velo


def _fmt(values) -> str:
    return " ".join(f"{v:.6e}" for v in np.asarray(values, dtype=np.float64).ravel() + 0.0)  # no "-0"


def calib_cam_to_cam_text(rig: KittiRig) -> str:
    intr = rig.intrinsics
    lines = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02"]
    for cam, x in enumerate(CAMERA_X):
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


def calib_imu_to_velo_text(rig: KittiRig) -> str:
    return "\n".join([
        "calib_time: 25-May-2012 16:47:16",
        f"R: {_fmt(rig.imu_to_velo[:3, :3])}",
        f"T: {_fmt(rig.imu_to_velo[:3, 3])}",
    ]) + "\n"


def _timestamps(start: dt.datetime, count: int, shift: float = 0.0) -> str:
    """KITTI's timestamps.txt: one line per frame at 10 Hz, nanosecond digits."""
    return "".join((start + dt.timedelta(seconds=i / FPS + shift)).strftime("%Y-%m-%d %H:%M:%S.%f") + "000\n"
                   for i in range(count))


def world_to_enu(heading: float) -> np.ndarray:
    """3x3 rotation from the world frame (x right, y down, z along the road at the start) to
    East-North-Up, for a road that starts out heading ``heading`` (rad, 0 = east, counter-clockwise)."""
    along = np.array([np.cos(heading), np.sin(heading), 0.0])
    right = np.array([np.sin(heading), -np.cos(heading), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    return np.column_stack([right, -up, along])


def grey(image: np.ndarray) -> np.ndarray:
    """8-bit luminance (ITU-R 601-2, as PIL's "L" mode) of an RGB image: what a grey camera records."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).convert("L"))


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

    @property
    def start_time(self) -> dt.datetime:
        """First frame's time: on the drive's own date, drives numbered in the order they were driven."""
        day = dt.datetime.strptime(self.date, "%Y_%m_%d")
        return day + dt.timedelta(hours=13, minutes=2 + self.drive_number, seconds=25)

    def geography(self) -> tuple[tuple[float, float, float], float]:
        """Where the drive starts on the map (lat, lon, alt of its first IMU position) and the
        heading of its road there; drawn from the drive's seed, around Karlsruhe as in KITTI."""
        rng = np.random.default_rng([self.seed, 0x0715])
        origin = (49.0 + rng.uniform(-0.03, 0.03), 8.43 + rng.uniform(-0.05, 0.05), rng.uniform(110.0, 125.0))
        return origin, float(rng.uniform(-np.pi, np.pi))

    def sequence(self) -> world.Sequence:
        rig = KittiRig.for_date(self.date_index, self.width, self.height)
        # KITTI drives stop at lights too, but less often than a city dashcam.
        drive = world.DriveConfig(stop_probability=0.25, max_speed=13.0)
        return world.make_sequence(self.seed, self.frames / FPS, FPS, rig.intrinsics, world.STYLES[self.style],
                                   drive=drive, camera_height=1.65, shutter_ms=SHUTTER_MS)


def oxts_lines(spec: DriveSpec, rig: KittiRig, seq: world.Sequence) -> list[str]:
    """The drive's OXTS packets, one text line per frame, from the true camera-0 poses."""
    origin, heading = spec.geography()
    to_enu = np.eye(4)
    to_enu[:3, :3] = world_to_enu(heading)
    traj = seq.trajectory
    imu = np.array([to_enu @ traj.pose(i) @ rig.imu_to_rect() for i in range(len(traj))])
    imu[:, :3, 3] -= imu[0, :3, 3]  # the ENU origin is the first packet's position
    return [oxts.packet_line(p) for p in oxts.oxts_packets(imu, traj.times, origin)]


def render_drive(root: Path, spec: DriveSpec, save_depth: bool = True, grey_cameras: bool = True,
                 on_frame=None) -> None:
    """Write one drive: colour (and grey) cameras, LiDAR sweeps, OXTS packets, timestamps and
    truth. Frames already on disk are kept (each file is written atomically), so an interrupted
    run resumes."""
    rig = KittiRig.for_date(spec.date_index, spec.width, spec.height)
    seq = spec.sequence()
    drive_dir = root / spec.folder
    start = spec.start_time
    cameras = (0, 1, 2, 3) if grey_cameras else (2, 3)
    for sub in [f"image_{c:02d}" for c in cameras] + ["velodyne_points", "oxts"]:
        (drive_dir / sub / "data").mkdir(parents=True, exist_ok=True)
        atomic_write_text(drive_dir / sub / "timestamps.txt", _timestamps(start, spec.frames))
    # A sweep takes one turn (0.1 s); its timestamp is when it faces forward, mid-turn.
    atomic_write_text(drive_dir / "velodyne_points" / "timestamps_start.txt", _timestamps(start, spec.frames, -0.05))
    atomic_write_text(drive_dir / "velodyne_points" / "timestamps_end.txt", _timestamps(start, spec.frames, 0.05))
    atomic_write_text(drive_dir / "oxts" / "dataformat.txt", oxts.DATAFORMAT)
    for i, line in enumerate(oxts_lines(spec, rig, seq)):
        atomic_write_text(drive_dir / "oxts" / "data" / f"{i:010d}.txt", line)
    truth = drive_dir / "geopre_truth"
    for i in range(spec.frames):
        name = f"{i:010d}"
        depth = truth / "depth_02" / f"{name}.npy"
        for camera in cameras:
            path = drive_dir / f"image_{camera:02d}" / "data" / f"{name}.png"
            need_depth = camera == 2 and save_depth and not depth.exists()
            if path.exists() and not need_depth:
                continue
            view = render.render_view(seq, i, offset=(CAMERA_X[camera], 0.0, 0.0))
            save_png(path, view.image if camera >= 2 else grey(view.image))
            if need_depth:
                with atomic_path(depth) as tmp:
                    np.save(tmp, view.depth.astype(np.float32))
        velo = drive_dir / "velodyne_points" / "data" / f"{name}.bin"
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


def _drive_worker(root: str, spec: DriveSpec, save_depth: bool, grey_cameras: bool) -> str:
    render_drive(Path(root), spec, save_depth, grey_cameras)
    return spec.folder


def default_val_drives(drives: int) -> int:
    """One validation drive per ten drives, at least one."""
    return max(1, drives // 10)


def plan_drives(drives: int, frames: int, width: int, height: int, seed: int, style: str = "suburban") -> list[DriveSpec]:
    if drives < 3:
        raise UserError(f"--drives must be at least 3 (train, validation and test drives are disjoint), got {drives}")
    if frames < 3:
        raise UserError(f"--frames must be at least 3 (a frame needs both neighbours), got {frames}")
    if width < 16 or height < 16:
        raise UserError(f"--size must be at least 16x16, got {width}x{height}")
    rng = np.random.default_rng(seed)
    numbers = np.sort(rng.choice(np.arange(1, 120), size=drives, replace=False))
    return [DriveSpec(date_index=k % 2, drive_number=int(n), seed=int(rng.integers(1 << 31)), frames=frames,
                      width=width, height=height, style=style) for k, n in enumerate(numbers)]


def assign_drives(specs: list[DriveSpec], val_drives: int, test_drives: int) -> dict[str, list[DriveSpec]]:
    """Train, validation and test drives: disjoint, the last ones held out (test last)."""
    if test_drives < 1 or val_drives < 1 or val_drives + test_drives >= len(specs):
        raise UserError(f"--val-drives ({val_drives}) and --test-drives ({test_drives}) must each be at least 1 "
                        f"and leave at least one of the {len(specs)} drives for training")
    held = val_drives + test_drives
    return {"train": specs[:-held], "val": specs[-held:-test_drives], "test": specs[-test_drives:]}


def _moving(speed: np.ndarray, index: int) -> bool:
    """Zhou et al. drop frames without ego motion; the synthetic world knows the speed, so a
    frame counts as moving when the camera moved since its previous or to its next frame."""
    return bool(speed[index - 1] > 0 or speed[index] > 0 or speed[index + 1] > 0)


def _split_lines(root: Path, specs: list[DriveSpec], rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(eigen_zhou, eigen_full) lines of some drives, each frame on a random camera."""
    zhou, full = [], []
    for spec in specs:
        speed = np.loadtxt(root / spec.folder / "geopre_truth" / "speed.txt", ndmin=1)
        for i in range(1, spec.frames - 1):
            side = "l" if rng.random() < 0.5 else "r"
            full.append(f"{spec.folder} {i} {side}")
            if _moving(speed, i):
                zhou.append(f"{spec.folder} {i} {side}")
    return zhou, full


def write_splits(root: Path, roles: dict[str, list[DriveSpec]], seed: int) -> dict[str, int]:
    """monodepth2-format split files: ``<date>/<drive> <frame> <l|r>``. Train, val and test lines
    come from disjoint drives (``roles`` from :func:`assign_drives`); eigen test lines use
    zero-padded frame numbers as the real file does."""
    rng = np.random.default_rng(seed + 7)
    lines = {role: _split_lines(root, roles[role], rng) for role in ("train", "val")}
    counts = {}
    for k, name in enumerate(("eigen_zhou", "eigen_full")):
        for role in ("train", "val"):
            chosen = lines[role][k]
            atomic_write_text(root / "splits" / name / f"{role}_files.txt", "".join(line + "\n" for line in chosen))
            counts[f"{name}_{role}"] = len(chosen)
    test = [f"{spec.folder} {i:010d} l" for spec in roles["test"] for i in range(1, spec.frames - 1)]
    atomic_write_text(root / "splits" / "eigen" / "test_files.txt", "".join(line + "\n" for line in test))
    counts["eigen_test"] = len(test)
    return counts


def write_kitti(out: Path, drives: int = 4, test_drives: int = 1, frames: int = 40, width: int = 416,
                height: int = 128, seed: int = 0, workers: int = 1, save_depth: bool = True,
                val_drives: int | None = None, grey_cameras: bool = True) -> dict:
    """Render a KITTI-raw-style tree; returns (and writes as ``synth.json``) a summary.

    ``val_drives`` defaults to :func:`default_val_drives`; ``grey_cameras`` adds image_00/01
    (two more renders per frame)."""
    specs = plan_drives(drives, frames, width, height, seed)
    roles = assign_drives(specs, default_val_drives(drives) if val_drives is None else val_drives, test_drives)
    out = ensure_writable_dir(out)
    for k in sorted({s.date_index for s in specs}):
        rig = KittiRig.for_date(k, width, height)
        atomic_write_text(out / DATES[k] / "calib_cam_to_cam.txt", calib_cam_to_cam_text(rig))
        atomic_write_text(out / DATES[k] / "calib_velo_to_cam.txt", calib_velo_to_cam_text(rig))
        atomic_write_text(out / DATES[k] / "calib_imu_to_velo.txt", calib_imu_to_velo_text(rig))
    if workers <= 1:
        with progress(total=drives * frames, desc="kitti", unit="frame") as bar:
            for spec in specs:
                render_drive(out, spec, save_depth, grey_cameras, on_frame=lambda: bar.update(1))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool, progress(total=drives, desc="kitti", unit="drive") as bar:
            futures = [pool.submit(_drive_worker, str(out), s, save_depth, grey_cameras) for s in specs]
            for future in as_completed(futures):
                future.result()
                bar.update(1)
    counts = write_splits(out, roles, seed)
    summary = {"kind": "kitti", "seed": seed, "size": [width, height], "fps": FPS, "frames_per_drive": frames,
               "grey_cameras": grey_cameras, "splits": counts,
               **{f"{role}_drives": [s.folder for s in group] for role, group in roles.items()}}
    atomic_write_json(out / "synth.json", summary)
    return summary


def preview_views(drives: int, frames: int, width: int, height: int, seed: int, shown: int) -> list[render.View]:
    """The middle frame of camera 2 of the first ``shown`` drives a tree with these settings holds."""
    specs = plan_drives(drives, frames, width, height, seed)[:shown]
    return [render.render_view(s.sequence(), s.frames // 2, offset=(CAMERA_X[2], 0.0, 0.0)) for s in specs]

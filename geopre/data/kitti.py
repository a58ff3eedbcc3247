"""KITTI raw reader: calibration, velodyne ground truth, monodepth2 split files, gt export.

Over 400 lines on purpose: every fact about KITTI raw's on-disk format (below) is in this one
module, so it can be checked against the devkit in one place.

On-disk facts this module relies on (KITTI raw devkit and monodepth2):

* ``<root>/<date>/calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` hold ``KEY: v v v`` lines;
  ``calib_time`` is a date string, everything else is numbers.
* ``<root>/<date>/<drive>/image_0{2,3}/data/<10-digit frame>.png`` (or ``.jpg`` after monodepth2's
  recommended conversion), ``velodyne_points/data/<frame>.bin`` (float32 x, y, z, reflectance).
* Dense ("KITTI depth") ground truth: ``<drive>/proj_depth/groundtruth/image_0{2,3}/<frame>.png``,
  uint16, depth = value / 256, 0 = no measurement. The official release ships it in its own tree
  (``data_depth_annotated/{train,val}/<drive>/...``), which :class:`KittiRawTree` also accepts.
* Split files: one ``<date>/<drive> <frame> <l|r>`` per line, frame zero-padded or plain.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from geopre.data.images import read_uint16_png
from geopre.errors import UserError

# KITTI depth PNGs store metres * 256 in uint16 (devkit readme); 0 marks "no measurement".
DEPTH_PNG_SCALE = 256.0

# Left/right colour cameras of the KITTI rig; monodepth2 split files also allow "2"/"3".
SIDE_TO_CAMERA = {"l": 2, "r": 3}
_SIDE_ALIASES = {"l": "l", "r": "r", "2": "l", "3": "r"}

ForwardAxis = Literal["camera_z", "velodyne_x"]


# ---------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------


def read_calib_file(path: str | os.PathLike) -> dict[str, np.ndarray | str]:
    """Parse a KITTI ``KEY: v v v`` calibration file.

    Numeric values become float64 arrays; values that are not all numbers (``calib_time``) stay
    strings, because callers never need them as numbers and a date must not fail the parse.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: calibration file not found; check the KITTI root and the date folder")
    values: dict[str, np.ndarray | str] = {}
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, separator, text = line.partition(":")
        if not separator:
            raise UserError(f"{path}:{line_number}: expected 'KEY: values', got {line.strip()!r}")
        text = text.strip()
        try:
            values[key.strip()] = np.array([float(v) for v in text.split()], dtype=np.float64)
        except ValueError:
            values[key.strip()] = text
    return values


def _matrix(calib: dict, key: str, shape: tuple[int, int], path: Path) -> np.ndarray:
    value = calib.get(key)
    if not isinstance(value, np.ndarray) or value.size != shape[0] * shape[1]:
        raise UserError(
            f"{path}: key {key} missing or not {shape[0] * shape[1]} numbers; "
            "is this an unmodified KITTI raw calibration file?"
        )
    return value.reshape(shape)


@dataclass(frozen=True, eq=False)
class CameraCalibration:
    """The rectified colour-camera calibration of one KITTI recording day.

    ``image_size`` is ``(width, height)`` from ``S_rect_02``: the size of the rectified images
    that ``P_rect_0*`` project into.
    """

    P_rect_02: np.ndarray  # 3x4
    P_rect_03: np.ndarray  # 3x4
    R_rect_00: np.ndarray  # 3x3, rotates camera 0 into the rectified frame shared by all cameras
    image_size: tuple[int, int]

    def projection(self, cam: int) -> np.ndarray:
        """The 3x4 rectified projection matrix of colour camera 2 (left) or 3 (right)."""
        if cam == 2:
            return self.P_rect_02
        if cam == 3:
            return self.P_rect_03
        raise ValueError(f"KITTI colour cameras are 2 and 3, got {cam}")

    def intrinsics(self, cam: int = 2) -> np.ndarray:
        """3x3 K of camera 2 or 3 at the rectified full resolution."""
        return self.projection(cam)[:, :3].copy()

    @property
    def stereo_baseline(self) -> float:
        """Distance between cameras 2 and 3 in metres (about 0.54 m on the KITTI rig).

        Rectified projections differ only in ``P[0, 3] = -fx * tx``, so the baseline is the
        difference of those terms divided by fx.
        """
        fx = self.P_rect_02[0, 0]
        return float(abs(self.P_rect_02[0, 3] - self.P_rect_03[0, 3]) / fx)


def read_camera_calibration(path: str | os.PathLike) -> CameraCalibration:
    """Read ``<date>/calib_cam_to_cam.txt`` into a :class:`CameraCalibration`."""
    path = Path(path)
    calib = read_calib_file(path)
    width, height = _matrix(calib, "S_rect_02", (1, 2), path)[0]
    return CameraCalibration(
        P_rect_02=_matrix(calib, "P_rect_02", (3, 4), path),
        P_rect_03=_matrix(calib, "P_rect_03", (3, 4), path),
        R_rect_00=_matrix(calib, "R_rect_00", (3, 3), path),
        image_size=(int(round(width)), int(round(height))),
    )


def read_velo_to_cam(path: str | os.PathLike) -> np.ndarray:
    """4x4 rigid transform from velodyne to (unrectified) camera-0 coordinates.

    ``calib_velo_to_cam.txt`` stores ``R`` as 9 row-major numbers and ``T`` as 3.
    """
    path = Path(path)
    calib = read_calib_file(path)
    transform = np.eye(4)
    transform[:3, :3] = _matrix(calib, "R", (3, 3), path)
    transform[:3, 3] = _matrix(calib, "T", (1, 3), path)[0]
    return transform


def velodyne_to_image(calibration: CameraCalibration, velo_to_cam: np.ndarray, cam: int = 2) -> np.ndarray:
    """3x4 matrix taking homogeneous velodyne points to homogeneous pixels of camera ``cam``.

    KITTI devkit chain: ``P_rect_0c @ R_rect_00 (as 4x4) @ Tr_velo_to_cam``.
    """
    rectify = np.eye(4)
    rectify[:3, :3] = calibration.R_rect_00
    return calibration.projection(cam) @ rectify @ velo_to_cam


# ---------------------------------------------------------------------------------------------
# Velodyne ground truth
# ---------------------------------------------------------------------------------------------


def load_velodyne(path: str | os.PathLike) -> np.ndarray:
    """Read a velodyne scan: an ``(N, 4)`` float32 array of x (forward), y (left), z (up), reflectance."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: velodyne scan not found; download the KITTI raw 'sync' drive that holds it")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % 4:
        raise UserError(f"{path}: size is not a multiple of 16 bytes, so not a KITTI velodyne scan; re-download it")
    return raw.reshape(-1, 4)


def project_velodyne(
    points: np.ndarray,
    velo_to_image: np.ndarray,
    image_size: tuple[int, int],
    forward_axis: ForwardAxis = "camera_z",
) -> np.ndarray:
    """Render velodyne points into a sparse ``(height, width)`` float32 depth map, 0 = no point.

    Replicates the KITTI devkit / monodepth2 ``generate_depth_map`` conventions exactly:

    * keep points with velodyne x >= 0 (in front of the sensor; the devkit's approximation);
    * pixel = ``np.round(u) - 1``, ``np.round(v) - 1`` (the "-1" matches KITTI's MATLAB code;
      ``np.round`` rounds halves to even), keep ``0 <= col < width`` and ``0 <= row < height``;
    * depth = third homogeneous coordinate after projection (``forward_axis="camera_z"``, the
      rectified camera z plus ``P_rect[2, 3]``) or the raw velodyne x (``"velodyne_x"``, which is
      what monodepth2's ``export_gt_depth.py`` stores for the Eigen split);
    * several points on one pixel: the nearest wins; negative depths become 0.

    One deliberate difference: monodepth2 finds collisions through ``sub2ind`` with the index
    ``row * (width - 1) + col - 1``, which also merges the last pixel of a row with the first of
    the next. Here only points on the same pixel collide.
    """
    width, height = image_size
    points = points[points[:, 0] >= 0]
    homogeneous = np.concatenate([points[:, :3].astype(np.float64), np.ones((len(points), 1))], axis=1)
    projected = homogeneous @ velo_to_image.T
    with np.errstate(divide="ignore", invalid="ignore"):
        u = projected[:, 0] / projected[:, 2]
        v = projected[:, 1] / projected[:, 2]
    depth = projected[:, 2] if forward_axis == "camera_z" else homogeneous[:, 0]
    col = np.round(u) - 1
    row = np.round(v) - 1
    inside = (col >= 0) & (row >= 0) & (col < width) & (row < height)  # NaN compares False
    col, row, depth = col[inside].astype(np.int64), row[inside].astype(np.int64), depth[inside]

    depth_map = np.zeros((height, width), dtype=np.float64)
    # Write far points first so that the nearest point on each pixel is written last and wins.
    order = np.argsort(-depth, kind="stable")
    depth_map[row[order], col[order]] = depth[order]
    depth_map[depth_map < 0] = 0
    return depth_map.astype(np.float32)


def velodyne_depth_map(
    calib_dir: str | os.PathLike,
    velo_path: str | os.PathLike,
    cam: int = 2,
    size: tuple[int, int] | None = None,
    forward_axis: ForwardAxis = "camera_z",
) -> np.ndarray:
    """Sparse depth map of camera ``cam`` from one velodyne scan (see :func:`project_velodyne`).

    ``calib_dir`` is the date folder holding both calibration files; ``size`` is ``(width, height)``
    and defaults to ``S_rect_02`` from the calibration.
    """
    calib_dir = Path(calib_dir)
    calibration = read_camera_calibration(calib_dir / "calib_cam_to_cam.txt")
    velo_to_cam = read_velo_to_cam(calib_dir / "calib_velo_to_cam.txt")
    return project_velodyne(
        load_velodyne(velo_path),
        velodyne_to_image(calibration, velo_to_cam, cam),
        size or calibration.image_size,
        forward_axis,
    )


def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """Read a KITTI depth PNG (uint16, metres * 256, 0 = invalid) as float32 metres."""
    encoded = read_uint16_png(path, "KITTI depth", "check the KITTI depth download")
    return encoded.astype(np.float32) / DEPTH_PNG_SCALE


# ---------------------------------------------------------------------------------------------
# Split files and the directory tree
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitEntry:
    """One line of a monodepth2 split file: ``<date>/<drive> <frame> <l|r>``."""

    folder: str
    frame_index: int
    side: str  # "l" (camera 2) or "r" (camera 3)

    @property
    def camera(self) -> int:
        return SIDE_TO_CAMERA[self.side]


_SPLIT_LINE = re.compile(r"^(?P<folder>\S+)\s+(?P<frame>\d+)\s+(?P<side>\S+)$")


def read_split(path: str | os.PathLike) -> list[SplitEntry]:
    """Parse a monodepth2 split file; blank lines are skipped, frames may be zero-padded or plain."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: split file not found; pass e.g. monodepth2's splits/eigen/test_files.txt")
    entries = []
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = _SPLIT_LINE.match(line.strip())
        if match is None or match["side"] not in _SIDE_ALIASES:
            raise UserError(
                f"{path}:{line_number}: expected '<date>/<drive> <frame number> <l|r>', "
                f"got {line.strip()!r}; fix or delete that line"
            )
        entries.append(SplitEntry(match["folder"], int(match["frame"]), _SIDE_ALIASES[match["side"]]))
    return entries


def frame_name(frame_index: int) -> str:
    """KITTI raw file stem: the frame number zero-padded to 10 digits."""
    return f"{frame_index:010d}"


@dataclass(frozen=True)
class KittiRawTree:
    """Paths inside a KITTI raw download (``root/<date>/<date>_drive_XXXX_sync/...``).

    ``dense_root`` optionally points at the separate KITTI depth tree (``data_depth_annotated``),
    whose drives sit directly below it or below ``train/`` and ``val/``.
    """

    root: Path
    dense_root: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.dense_root is not None:
            object.__setattr__(self, "dense_root", Path(self.dense_root))

    def image_candidates(self, folder: str, frame_index: int, side: str) -> list[Path]:
        # PNG is the raw release; JPG is monodepth2's recommended conversion of it.
        data = self.root / folder / f"image_0{SIDE_TO_CAMERA[side]}" / "data"
        return [data / f"{frame_name(frame_index)}{ext}" for ext in (".png", ".jpg")]

    def image_path(self, folder: str, frame_index: int, side: str) -> Path:
        candidates = self.image_candidates(folder, frame_index, side)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise UserError(f"{candidates[0]}: image not found (nor .jpg); check the KITTI root and the split file")

    def velodyne_path(self, folder: str, frame_index: int) -> Path:
        path = self.root / folder / "velodyne_points" / "data" / f"{frame_name(frame_index)}.bin"
        if not path.is_file():
            raise UserError(f"{path}: velodyne scan not found; download the KITTI raw 'sync' drive that holds it")
        return path

    def dense_depth_path(self, folder: str, frame_index: int, cam: int = 2) -> Path:
        relative = Path("proj_depth") / "groundtruth" / f"image_0{cam}" / f"{frame_name(frame_index)}.png"
        drive = Path(folder).name
        candidates = [self.root / folder / relative]
        if self.dense_root is not None:
            candidates += [self.dense_root / sub / drive / relative for sub in (".", "train", "val")]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise UserError(
            f"{candidates[-1]}: dense ground truth not found (also looked in {candidates[0]}); "
            "download KITTI depth 'data_depth_annotated' and pass its folder as the dense root"
        )

    def calibration_dir(self, folder: str) -> Path:
        """The date folder (first component of ``folder``) holding the calibration files."""
        return self.root / Path(folder).parts[0]

    def calibration(self, folder: str) -> CameraCalibration:
        return read_camera_calibration(self.calibration_dir(folder) / "calib_cam_to_cam.txt")

    def has_frames(self, folder: str, frame_index: int, side: str, offsets: tuple[int, ...] = (-1, 1)) -> bool:
        """Whether the images at ``frame_index + offset`` exist, as monocular training needs them."""
        return all(
            frame_index + offset >= 0
            and any(p.is_file() for p in self.image_candidates(folder, frame_index + offset, side))
            for offset in offsets
        )


# ---------------------------------------------------------------------------------------------
# Ground-truth export
# ---------------------------------------------------------------------------------------------

GtSource = Literal["velodyne", "dense"]
_GT_KEY = "depth_{:05d}"


def export_gt_depths(
    root: str | os.PathLike,
    split_file: str | os.PathLike,
    out_path: str | os.PathLike,
    source: GtSource = "velodyne",
    dense_root: str | os.PathLike | None = None,
    forward_axis: ForwardAxis = "velodyne_x",
) -> int:
    """Write the ground-truth depth of every split entry to ``out_path`` (.npz); return the count.

    ``source="velodyne"`` projects the raw scan (monodepth2's ``eigen`` split); ``"dense"`` reads
    the KITTI depth PNGs (``eigen_benchmark``). ``forward_axis`` defaults to the velodyne x
    because monodepth2's published Eigen ground truth stores that (``vel_depth=True``); pass
    ``"camera_z"`` for the camera's forward distance.

    Maps have different sizes across recording days, so each is stored under its own key
    (``depth_00000``, ...): the file loads with plain ``np.load``, no pickle. Written atomically.
    """
    tree = KittiRawTree(Path(root), Path(dense_root) if dense_root is not None else None)
    if source not in ("velodyne", "dense"):
        raise UserError(f"unknown ground-truth source {source!r}; use 'velodyne' or 'dense'")
    depths = {}
    for index, entry in enumerate(read_split(split_file)):
        if source == "velodyne":
            depth = velodyne_depth_map(
                tree.calibration_dir(entry.folder),
                tree.velodyne_path(entry.folder, entry.frame_index),
                cam=entry.camera,
                forward_axis=forward_axis,
            )
        else:
            depth = read_depth_png(tree.dense_depth_path(entry.folder, entry.frame_index, entry.camera))
        depths[_GT_KEY.format(index)] = depth.astype(np.float32)
    if not depths:
        raise UserError(f"{split_file}: split file has no entries; nothing to export")

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=out_path.parent, prefix=out_path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            np.savez_compressed(temp_file, **depths)
        os.replace(temp_name, out_path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return len(depths)


def load_gt_depths(path: str | os.PathLike) -> list[np.ndarray]:
    """Load ground-truth depth maps written by :func:`export_gt_depths` or by monodepth2.

    monodepth2's ``gt_depths.npz`` keeps one object array under ``data``; reading it needs pickle,
    which is enabled only for that legacy key (only load such files from a source you trust).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: ground-truth file not found; create it with export_gt_depths")
    try:
        archive = np.load(path)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: not a readable .npz ground-truth file ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"{path}: expected an .npz ground-truth file, found a single array")
    with archive:
        # Sort by number, not text: keys widen past 99999 entries.
        keys = sorted((k for k in archive.files if k.startswith("depth_")), key=lambda k: int(k[6:]))
        if keys:
            return [archive[k] for k in keys]
        legacy = "data" in archive.files
    if legacy:
        with np.load(path, allow_pickle=True, fix_imports=True, encoding="latin1") as archive:
            return [np.asarray(depth, dtype=np.float32) for depth in archive["data"]]
    raise UserError(f"{path}: no 'depth_*' or 'data' arrays inside; not a ground-truth depth file")

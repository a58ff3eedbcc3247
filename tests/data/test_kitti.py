"""KITTI raw reader on tiny trees written in the real on-disk formats."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from geopre.data.kitti import (
    KittiRawTree,
    SplitEntry,
    export_gt_depths,
    load_gt_depths,
    read_calib_file,
    read_camera_calibration,
    read_split,
    read_velo_to_cam,
    velodyne_depth_map,
)
from geopre.errors import UserError

DATE = "2011_09_26"
DRIVE = f"{DATE}/{DATE}_drive_0002_sync"

# Real 2011_09_26 rectified projections and R_rect_00 (KITTI raw calib_cam_to_cam.txt).
REAL_P_RECT_02 = [7.215377e02, 0, 6.095593e02, 4.485728e01, 0, 7.215377e02, 1.728540e02, 2.163791e-01,
                  0, 0, 1, 2.745884e-03]  # fmt: skip
REAL_P_RECT_03 = [7.215377e02, 0, 6.095593e02, -3.395242e02, 0, 7.215377e02, 1.728540e02, 2.199936e00,
                  0, 0, 1, 2.729905e-03]  # fmt: skip

# A toy rig for hand-computed projections: f = 100 px, principal point (32, 16), 64x32 image,
# velodyne (x forward, y left, z up) -> camera (x right, y down, z forward) with no offset.
TOY_P_RECT = [100, 0, 32, 0, 0, 100, 16, 0, 0, 0, 1, 0]
VELO_AXES_TO_CAMERA = [0, -1, 0, 0, 0, -1, 1, 0, 0]


def _numbers(values) -> str:
    return " ".join(f"{float(v):e}" for v in values)


def write_calibration(
    date_dir: Path,
    p_rect_02=TOY_P_RECT,
    p_rect_03=TOY_P_RECT,
    rect_size=(64, 32),
    velo_rotation=VELO_AXES_TO_CAMERA,
    velo_translation=(0, 0, 0),
) -> None:
    """Both calibration files with every key and the layout of a real KITTI raw date folder."""
    identity = [1, 0, 0, 0, 1, 0, 0, 0, 1]
    lines = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02"]
    for cam in range(4):
        p_rect = {2: p_rect_02, 3: p_rect_03}.get(cam, TOY_P_RECT)
        lines += [
            f"S_0{cam}: {_numbers([1392, 512])}",
            f"K_0{cam}: {_numbers([984.2439, 0, 690, 0, 980.8141, 233.1966, 0, 0, 1])}",
            f"D_0{cam}: {_numbers([-0.3728755, 0.2037299, 0.002219027, 0.001383707, -0.07233722])}",
            f"R_0{cam}: {_numbers(identity)}",
            f"T_0{cam}: {_numbers([0, 0, 0])}",
            f"S_rect_0{cam}: {_numbers(rect_size)}",
            f"R_rect_0{cam}: {_numbers(identity)}",
            f"P_rect_0{cam}: {_numbers(p_rect)}",
        ]
    date_dir.mkdir(parents=True, exist_ok=True)
    (date_dir / "calib_cam_to_cam.txt").write_text("\n".join(lines) + "\n")
    (date_dir / "calib_velo_to_cam.txt").write_text(
        "calib_time: 15-Mar-2012 11:37:16\n"
        f"R: {_numbers(velo_rotation)}\nT: {_numbers(velo_translation)}\n"
        f"delta_f: {_numbers([0, 0])}\ndelta_c: {_numbers([0, 0])}\n"
    )


def write_velodyne(path: Path, xyz) -> None:
    points = np.zeros((len(xyz), 4), dtype=np.float32)
    points[:, :3] = xyz
    points[:, 3] = 0.5  # reflectance: ignored by the projection
    path.parent.mkdir(parents=True, exist_ok=True)
    points.tofile(path)


def test_calib_file_keeps_dates_as_text_and_numbers_as_arrays(tmp_path):
    write_calibration(tmp_path)
    calib = read_calib_file(tmp_path / "calib_cam_to_cam.txt")
    assert calib["calib_time"] == "09-Jan-2012 13:57:47"
    assert calib["corner_dist"].tolist() == [0.0995]
    assert calib["P_rect_02"].shape == (12,)


def test_real_kitti_calibration_gives_baseline_and_intrinsics(tmp_path):
    write_calibration(tmp_path, REAL_P_RECT_02, REAL_P_RECT_03, rect_size=(1242, 375))
    calibration = read_camera_calibration(tmp_path / "calib_cam_to_cam.txt")
    assert calibration.image_size == (1242, 375)
    assert calibration.stereo_baseline == pytest.approx((44.85728 + 339.5242) / 721.5377)  # 0.533 m
    assert calibration.intrinsics(3)[0, 2] == pytest.approx(609.5593)
    assert calibration.intrinsics(2) == pytest.approx(np.array([[721.5377, 0, 609.5593], [0, 721.5377, 172.854],
                                                                [0, 0, 1]]))


def test_velo_to_cam_is_rigid_4x4(tmp_path):
    write_calibration(tmp_path, velo_translation=(0.1, 0.2, 0.3))
    transform = read_velo_to_cam(tmp_path / "calib_velo_to_cam.txt")
    assert transform[:3, 3].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert transform[3].tolist() == [0, 0, 0, 1]


def test_velodyne_points_land_on_hand_computed_pixels(tmp_path):
    write_calibration(tmp_path)
    # u = 100 * x_cam / z + 32, pixel column = round(u) - 1 (KITTI MATLAB convention), likewise rows.
    write_velodyne(
        tmp_path / "scan.bin",
        [
            (5.0, 0.0, 0.0),  # straight ahead at 5 m: u = 32, v = 16 -> (row 15, col 31)
            (10.0, -1.0, 0.0),  # wall 10 m ahead, 1 m right: u = 42 -> col 41
            (10.0, 2.0, 0.5),  # 2 m left, 0.5 m up: u = 12, v = 11 -> (row 10, col 11)
            (10.0, -0.25, 0.0),  # u = 34.5 exactly; np.round rounds half to even -> 34 -> col 33
            (10.0, -3.24, 0.0),  # u = 64.4 -> col 63, the last column
            (10.0, -3.26, 0.0),  # u = 64.6 -> col 64: outside the 64-wide image
            (-10.0, 2.0, 1.0),  # behind the sensor; would otherwise land on (row 25, col 51)
            (10.0, 0.0, 0.0),  # same pixel as the 5 m point, written later: the nearer one wins
        ],
    )
    depth = velodyne_depth_map(tmp_path, tmp_path / "scan.bin")
    assert depth.shape == (32, 64) and depth.dtype == np.float32
    expected = {(15, 31): 5.0, (15, 41): 10.0, (10, 11): 10.0, (15, 33): 10.0, (15, 63): 10.0}
    assert {(int(r), int(c)): float(depth[r, c]) for r, c in zip(*np.nonzero(depth))} == pytest.approx(expected)
    assert depth[25, 51] == 0


def test_depth_is_camera_forward_distance_or_velodyne_x(tmp_path):
    # Camera 0.25 m ahead of the velodyne: camera z = velodyne x - 0.25.
    write_calibration(tmp_path, velo_translation=(0, 0, -0.25))
    write_velodyne(tmp_path / "scan.bin", [(10.0, 0.0, 0.0), (0.1, 0.0, 0.003)])
    camera = velodyne_depth_map(tmp_path, tmp_path / "scan.bin")
    velodyne = velodyne_depth_map(tmp_path, tmp_path / "scan.bin", forward_axis="velodyne_x")
    assert camera[15, 31] == pytest.approx(9.75)
    assert velodyne[15, 31] == pytest.approx(10.0)
    # x_velo = 0.1 passes the "in front" test but is 0.15 m behind the camera: v = 18 -> row 17,
    # and its negative camera depth is zeroed as in the devkit.
    assert camera[17, 31] == 0
    assert velodyne[17, 31] == pytest.approx(0.1)


def test_explicit_size_overrides_calibration_size(tmp_path):
    write_calibration(tmp_path)
    write_velodyne(tmp_path / "scan.bin", [(10.0, -1.0, 0.0)])
    depth = velodyne_depth_map(tmp_path, tmp_path / "scan.bin", size=(40, 20))
    assert depth.shape == (20, 40) and depth.sum() == 0  # col 41 is outside 40 columns


def test_split_accepts_padded_and_plain_frames_and_names_bad_line(tmp_path):
    split = tmp_path / "test_files.txt"
    split.write_text(f"{DRIVE} 0000000069 l\n\n{DATE}/{DATE}_drive_0022_sync 473 r\n")
    assert read_split(split) == [
        SplitEntry(DRIVE, 69, "l"),
        SplitEntry(f"{DATE}/{DATE}_drive_0022_sync", 473, "r"),
    ]
    split.write_text(f"{DRIVE} 1 l\n{DRIVE} 2 l\n{DRIVE} 12\n")
    with pytest.raises(UserError, match=r"test_files\.txt:3: .*got '.*drive_0002_sync 12'"):
        read_split(split)
    split.write_text(f"{DRIVE} 12 x\n")
    with pytest.raises(UserError, match=r"test_files\.txt:1:"):
        read_split(split)


def test_tree_finds_png_or_jpg_and_names_missing_files(tmp_path):
    tree = KittiRawTree(tmp_path)
    left = tmp_path / DRIVE / "image_02" / "data"
    left.mkdir(parents=True)
    (left / "0000000005.jpg").write_bytes(b"")
    (left / "0000000006.png").write_bytes(b"")
    assert tree.image_path(DRIVE, 5, "l") == left / "0000000005.jpg"
    assert tree.image_path(DRIVE, 6, "l") == left / "0000000006.png"
    with pytest.raises(UserError, match=r"image_03/data/0000000005\.png"):
        tree.image_path(DRIVE, 5, "r")
    with pytest.raises(UserError, match=r"velodyne_points/data/0000000005\.bin"):
        tree.velodyne_path(DRIVE, 5)
    assert tree.has_frames(DRIVE, 6, "l", offsets=(-1,))
    assert not tree.has_frames(DRIVE, 6, "l")  # frame 7 is missing
    assert tree.calibration_dir(DRIVE) == tmp_path / DATE


def test_dense_ground_truth_found_inside_raw_tree_or_separate_depth_tree(tmp_path):
    relative = Path("proj_depth/groundtruth/image_02/0000000005.png")
    separate = tmp_path / "data_depth_annotated" / "val" / f"{DATE}_drive_0002_sync" / relative
    separate.parent.mkdir(parents=True)
    separate.write_bytes(b"")
    tree = KittiRawTree(tmp_path / "raw", dense_root=tmp_path / "data_depth_annotated")
    assert tree.dense_depth_path(DRIVE, 5) == separate
    inside = tmp_path / "raw" / DRIVE / relative
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"")
    assert tree.dense_depth_path(DRIVE, 5) == inside
    with pytest.raises(UserError, match=r"0000000006\.png"):
        tree.dense_depth_path(DRIVE, 6)


def test_velodyne_export_round_trips_without_pickle(tmp_path):
    write_calibration(tmp_path / DATE)
    for frame, wall in ((0, 10.0), (1, 20.0)):
        write_velodyne(tmp_path / DRIVE / "velodyne_points/data" / f"{frame:010d}.bin", [(wall, 0.0, 0.0)])
    split = tmp_path / "test_files.txt"
    split.write_text(f"{DRIVE} 0000000000 l\n{DRIVE} 1 l\n")
    assert export_gt_depths(tmp_path, split, tmp_path / "out" / "gt_depths.npz") == 2

    with np.load(tmp_path / "out" / "gt_depths.npz") as archive:  # allow_pickle defaults to False
        assert sorted(archive.files) == ["depth_00000", "depth_00001"]
    depths = load_gt_depths(tmp_path / "out" / "gt_depths.npz")
    assert [d[15, 31] for d in depths] == [10.0, 20.0]
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "gt_depths.npz"]  # no temp left


def test_dense_export_keeps_ragged_sizes(tmp_path):
    for frame, shape in ((3, (4, 6)), (4, (5, 7))):
        path = tmp_path / DRIVE / "proj_depth/groundtruth/image_02" / f"{frame:010d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = np.zeros(shape, dtype=np.uint16)
        encoded[1, 2] = 2560 + frame  # (2560 + frame) / 256 metres
        assert cv2.imwrite(str(path), encoded)
    split = tmp_path / "test_files.txt"
    split.write_text(f"{DRIVE} 3 l\n{DRIVE} 4 l\n")
    export_gt_depths(tmp_path, split, tmp_path / "gt.npz", source="dense")
    depths = load_gt_depths(tmp_path / "gt.npz")
    assert [d.shape for d in depths] == [(4, 6), (5, 7)]
    assert depths[0][1, 2] == pytest.approx(2563 / 256) and depths[0][0, 0] == 0


def test_loads_monodepth2_legacy_object_array(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.ones((2, 3), np.float32), np.full((3, 2), 2.0, np.float32)
    np.savez_compressed(tmp_path / "gt_depths.npz", data=ragged)
    with pytest.raises(ValueError), np.load(tmp_path / "gt_depths.npz") as archive:
        archive["data"]  # why the legacy format needs special handling
    depths = load_gt_depths(tmp_path / "gt_depths.npz")
    assert [d.shape for d in depths] == [(2, 3), (3, 2)]


def test_missing_calibration_and_scan_name_the_file(tmp_path):
    with pytest.raises(UserError, match=r"calib_cam_to_cam\.txt"):
        velodyne_depth_map(tmp_path, tmp_path / "scan.bin")
    write_calibration(tmp_path)
    with pytest.raises(UserError, match=r"scan\.bin"):
        velodyne_depth_map(tmp_path, tmp_path / "scan.bin")

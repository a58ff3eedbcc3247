"""The KITTI-style tree, read back with parsing code written here and with pykitti, the reader
KITTI users already have; independent of geopre's readers."""

import datetime as dt
import json
import re

import numpy as np
import pykitti
import pytest
from PIL import Image

from geopre.synth import kitti


def parse_calib(path):
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        try:
            out[key] = np.array([float(x) for x in value.split()])
        except ValueError:
            out[key] = value.strip()
    return out


def drives(root):
    return sorted(p for p in root.glob("2011_*/2011_*_drive_*_sync") if p.is_dir())


def test_tree_layout_and_file_names(synth_kitti_root):
    found = drives(synth_kitti_root)
    assert len(found) == 3
    for drive in found:
        assert re.fullmatch(r"(\d{4}_\d{2}_\d{2})_drive_(\d{4})_sync", drive.name)
        assert drive.parent.name == drive.name[:10]
        for cam in ("image_00", "image_01", "image_02", "image_03"):
            names = sorted(p.name for p in (drive / cam / "data").iterdir())
            assert names == [f"{i:010d}.png" for i in range(6)]
        bins = sorted((drive / "velodyne_points" / "data").iterdir())
        assert [p.name for p in bins] == [f"{i:010d}.bin" for i in range(6)]
        for b in bins:
            assert b.stat().st_size % 16 == 0 and b.stat().st_size > 16 * 1000
        for cam, mode in (("image_00", "L"), ("image_01", "L"), ("image_02", "RGB"), ("image_03", "RGB")):
            image = Image.open(drive / cam / "data" / "0000000000.png")
            assert image.size == (208, 64) and image.mode == mode
        packets = sorted((drive / "oxts" / "data").iterdir())
        assert [p.name for p in packets] == [f"{i:010d}.txt" for i in range(6)]
        for packet in packets:
            fields = packet.read_text().split()
            assert len(fields) == 30 and all(re.fullmatch(r"-?\d+", f) for f in fields[-5:])
        names = [line.partition(":")[0] for line in (drive / "oxts" / "dataformat.txt").read_text().splitlines()]
        assert names == list(pykitti.utils.OxtsPacket._fields)


def test_timestamps_are_10_hz_on_the_drives_own_date(synth_kitti_root):
    dates = set()
    for drive in drives(synth_kitti_root):
        date = dt.datetime.strptime(drive.parent.name, "%Y_%m_%d").date()
        dates.add(date)
        for sensor in ("image_00", "image_01", "image_02", "image_03", "velodyne_points", "oxts"):
            lines = (drive / sensor / "timestamps.txt").read_text().splitlines()
            assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}", line) for line in lines)
            stamps = [dt.datetime.strptime(line[:26], "%Y-%m-%d %H:%M:%S.%f") for line in lines]
            assert len(stamps) == 6 and all(s.date() == date for s in stamps), sensor
            np.testing.assert_allclose(np.diff([s.timestamp() for s in stamps]), 0.1, atol=1e-6)
    assert len(dates) == 2  # the fixture's drives are filed under two dates


def test_calibration_files_use_kitti_keys(synth_kitti_root):
    for date_dir in {d.parent for d in drives(synth_kitti_root)}:
        cam = parse_calib(date_dir / "calib_cam_to_cam.txt")
        for c in range(4):
            for key, n in (("S", 2), ("K", 9), ("D", 5), ("R", 9), ("T", 3), ("S_rect", 2), ("R_rect", 9), ("P_rect", 12)):
                assert len(cam[f"{key}_{c:02d}"]) == n, f"{key}_{c:02d}"
        assert isinstance(cam["calib_time"], str)
        velo = parse_calib(date_dir / "calib_velo_to_cam.txt")
        assert len(velo["R"]) == 9 and len(velo["T"]) == 3 and len(velo["delta_f"]) == 2
        # Stereo baseline from the projection matrices, as monodepth2 users compute it.
        p2, p3 = cam["P_rect_02"].reshape(3, 4), cam["P_rect_03"].reshape(3, 4)
        assert (p2[0, 3] - p3[0, 3]) / p2[0, 0] == pytest.approx(kitti.BASELINE, abs=1e-4)
        assert not np.allclose(cam["R_rect_00"].reshape(3, 3), np.eye(3)), "R_rect_00 must matter"
        imu = parse_calib(date_dir / "calib_imu_to_velo.txt")
        assert len(imu["R"]) == 9 and len(imu["T"]) == 3
        assert not np.allclose(imu["R"].reshape(3, 3), np.eye(3)), "the IMU mounting must matter"


def open_with_pykitti(drive, frames=6):
    date, number = drive.parent.name, drive.name.split("_")[4]
    return pykitti.raw(str(drive.parent.parent), date, number, frames=range(frames))


def test_pykitti_loads_every_sensor(synth_kitti_root):
    for drive in drives(synth_kitti_root):
        data = open_with_pykitti(drive)
        assert len(data) == 6 and len(data.oxts) == 6
        assert data.timestamps[0].strftime("%Y_%m_%d") == drive.parent.name
        for get, mode in ((data.get_cam0, "L"), (data.get_cam1, "L"), (data.get_cam2, "RGB"), (data.get_cam3, "RGB")):
            image = get(5)
            assert image.mode == mode and image.size == (208, 64)
        scan = data.get_velo(5)
        assert scan.shape[1] == 4 and len(scan) > 1000
        assert data.calib.b_gray == pytest.approx(kitti.BASELINE, abs=1e-4)
        assert data.calib.b_rgb == pytest.approx(kitti.BASELINE, abs=1e-4)


def test_pykitti_oxts_poses_trace_the_true_camera_path(synth_kitti_root):
    for drive in drives(synth_kitti_root):
        data = open_with_pykitti(drive)
        truth = np.loadtxt(drive / "geopre_truth" / "poses.txt").reshape(-1, 3, 4)
        truth = np.concatenate([truth, np.tile([0.0, 0.0, 0.0, 1.0], (len(truth), 1, 1))], axis=1)
        # Camera 2 in pykitti's world (East-North-Up metres from the first packet) through the
        # written calibrations: IMU -> LiDAR -> unrectified camera 0 -> rectified camera 2.
        cam2 = np.array([o.T_w_imu @ np.linalg.inv(data.calib.T_cam2_imu) for o in data.oxts])
        align = cam2[0] @ np.linalg.inv(truth[0])
        for k in range(len(truth)):
            np.testing.assert_allclose(align @ truth[k], cam2[k], atol=1e-5)
        # The world's up (-y) is the map's up, so the packets' gravity axis is the true one.
        np.testing.assert_allclose(align[:3, :3] @ [0.0, -1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-9)
        # Forward speed from the packets is the drive's true speed.
        speed = np.loadtxt(drive / "geopre_truth" / "speed.txt")
        np.testing.assert_allclose([o.packet.vf for o in data.oxts][1:-1], speed[1:-1], atol=0.3)
        assert all(abs(o.packet.au - 9.81) < 0.5 for o in data.oxts)  # specific force, as real packets


def test_grey_cameras_see_the_luminance_of_the_colour_view_from_their_own_place(synth_kitti_root):
    drive = drives(synth_kitti_root)[0]
    fx = parse_calib(drive.parent / "calib_cam_to_cam.txt")["P_rect_02"][0]
    depth = np.load(drive / "geopre_truth" / "depth_02" / "0000000003.npy")
    colour = np.asarray(Image.open(drive / "image_02" / "data" / "0000000003.png"), dtype=float)
    luminance = colour @ [0.299, 0.587, 0.114]

    def errors(camera, shift):
        """Median and mean |grey - luminance| with camera ``camera`` at ``shift`` right of camera 2."""
        grey = np.asarray(Image.open(drive / f"image_{camera:02d}" / "data" / "0000000003.png"), dtype=float)
        v, u = np.nonzero(np.isfinite(depth) & (depth > 2.0))
        target = u - fx * shift / depth[v, u]
        ok = (target >= 0) & (target <= depth.shape[1] - 2)
        v, u, target = v[ok], u[ok], target[ok]
        u0 = np.floor(target).astype(int)
        a = target - u0
        error = np.abs((1 - a) * grey[v, u0] + a * grey[v, u0 + 1] - luminance[v, u])
        return np.median(error), error.mean()

    for camera in (0, 1):
        shift = kitti.CAMERA_X[camera] - kitti.CAMERA_X[2]
        median, mean = errors(camera, shift)
        # Grey is the luminance of the same world: 8-bit rounding plus each camera's own sensor noise
        # (<= 2.5 levels per channel, world.py; |difference| of two such luminances has median <= 0.7 x 2.5).
        assert median < 1.0 + 0.7 * 2.5
        # Occlusions and edges keep the mean above 0, but the true place fits best: 6 cm off is worse.
        assert mean < min(errors(camera, shift - 0.06)[1], errors(camera, shift + 0.06)[1])


def test_split_files_are_monodepth2_format_with_disjoint_train_val_test_drives(synth_kitti_root):
    pattern = re.compile(r"^(\d{4}_\d{2}_\d{2}/\d{4}_\d{2}_\d{2}_drive_\d{4}_sync) (\d+) ([lr])$")
    def read(name):
        lines = (synth_kitti_root / "splits" / name).read_text().splitlines()
        assert lines and all(pattern.match(line) for line in lines), name
        return [pattern.match(line).groups() for line in lines]
    test = read("eigen/test_files.txt")
    assert all(len(frame) == 10 for _, frame, _ in test)  # zero-padded, as the real eigen test file
    test_drives = {d for d, _, _ in test}
    summary = json.loads((synth_kitti_root / "synth.json").read_text())
    for split in ("eigen_zhou", "eigen_full"):
        train_drives = {d for d, _, _ in read(f"{split}/train_files.txt")}
        val_drives = {d for d, _, _ in read(f"{split}/val_files.txt")}
        assert train_drives == set(summary["train_drives"]) and val_drives == set(summary["val_drives"])
        assert test_drives == set(summary["test_drives"])
        assert len(train_drives | val_drives | test_drives) == 3  # one drive each, disjoint
    for d, frame, _ in read("eigen_full/train_files.txt") + read("eigen_full/val_files.txt"):
        assert 1 <= int(frame) <= 4  # both neighbours exist


def test_val_drives_default_grows_with_the_tree():
    assert [kitti.default_val_drives(n) for n in (3, 8, 10, 40)] == [1, 1, 1, 4]
    roles = kitti.assign_drives(kitti.plan_drives(12, 3, 32, 16, 0), 2, 3)
    assert [len(roles[r]) for r in ("train", "val", "test")] == [7, 2, 3]


def test_same_seed_gives_byte_identical_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        kitti.write_kitti(out, drives=3, test_drives=1, frames=3, width=64, height=32, seed=9, save_depth=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len([f for f in files if f.suffix == ".png"]) == 3 * 3 * 4
    assert len([f for f in files if f.parent.parent.name == "oxts"]) == 3 * 3
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_rerun_resumes_without_rewriting_finished_frames(tmp_path):
    kitti.write_kitti(tmp_path, drives=3, test_drives=1, frames=3, width=64, height=32, seed=1, save_depth=False)
    frame = next(tmp_path.rglob("image_02/data/0000000001.png"))
    before = frame.stat().st_mtime_ns
    frame_lost = next(tmp_path.rglob("image_03/data/0000000002.png"))
    frame_lost.unlink()
    kitti.write_kitti(tmp_path, drives=3, test_drives=1, frames=3, width=64, height=32, seed=1, save_depth=False)
    assert frame.stat().st_mtime_ns == before and frame_lost.exists()

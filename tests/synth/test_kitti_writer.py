"""The KITTI-style tree, read back with parsing code written here, independent of geopre's readers."""

import re

import numpy as np
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
        for cam in ("image_02", "image_03"):
            names = sorted(p.name for p in (drive / cam / "data").iterdir())
            assert names == [f"{i:010d}.png" for i in range(6)]
            assert len((drive / cam / "timestamps.txt").read_text().splitlines()) == 6
        bins = sorted((drive / "velodyne_points" / "data").iterdir())
        assert [p.name for p in bins] == [f"{i:010d}.bin" for i in range(6)]
        for b in bins:
            assert b.stat().st_size % 16 == 0 and b.stat().st_size > 16 * 1000
        image = Image.open(drive / "image_02" / "data" / "0000000000.png")
        assert image.size == (208, 64) and image.mode == "RGB"


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


def test_velodyne_points_project_onto_matching_rendered_depth(synth_kitti_root):
    drive = drives(synth_kitti_root)[0]
    cam = parse_calib(drive.parent / "calib_cam_to_cam.txt")
    velo = parse_calib(drive.parent / "calib_velo_to_cam.txt")
    tr = np.eye(4)
    tr[:3, :3], tr[:3, 3] = velo["R"].reshape(3, 3), velo["T"]
    r_rect = np.eye(4)
    r_rect[:3, :3] = cam["R_rect_00"].reshape(3, 3)
    p2 = cam["P_rect_02"].reshape(3, 4)
    width, height = cam["S_rect_02"].astype(int)
    for frame in (0, 3):
        points = np.fromfile(drive / "velodyne_points" / "data" / f"{frame:010d}.bin", dtype=np.float32).reshape(-1, 4)
        points = points[points[:, 0] > 0]
        homo = np.c_[points[:, :3], np.ones(len(points))]
        img = (p2 @ r_rect @ tr @ homo.T).T
        z = img[:, 2]
        u, v = img[:, 0] / z, img[:, 1] / z
        # Compare against the exact depth at the nearest pixel, away from the image border.
        ui, vi = np.round(u).astype(int), np.round(v).astype(int)
        ok = (ui >= 1) & (ui < width - 1) & (vi >= 1) & (vi < height - 1) & (z > 1)
        truth = np.load(drive / "geopre_truth" / "depth_02" / f"{frame:010d}.npy")
        rel = np.abs(truth[vi[ok], ui[ok]] - z[ok]) / z[ok]
        assert ok.sum() > 500
        assert np.median(rel) < 0.01
        assert np.mean(rel < 0.05) > 0.9  # the rest sit on depth edges, off by rounding to a pixel


def test_split_files_are_monodepth2_format_with_disjoint_test_drives(synth_kitti_root):
    pattern = re.compile(r"^(\d{4}_\d{2}_\d{2}/\d{4}_\d{2}_\d{2}_drive_\d{4}_sync) (\d+) ([lr])$")
    def read(name):
        lines = (synth_kitti_root / "splits" / name).read_text().splitlines()
        assert lines and all(pattern.match(line) for line in lines), name
        return [pattern.match(line).groups() for line in lines]
    test = read("eigen/test_files.txt")
    assert all(len(frame) == 10 for _, frame, _ in test)  # zero-padded, as the real eigen test file
    train_drives = {d for name in ("eigen_zhou/train_files.txt", "eigen_zhou/val_files.txt",
                                   "eigen_full/train_files.txt", "eigen_full/val_files.txt") for d, _, _ in read(name)}
    assert train_drives and not (train_drives & {d for d, _, _ in test})
    for d, frame, _ in read("eigen_full/train_files.txt"):
        assert 1 <= int(frame) <= 4  # both neighbours exist


def test_same_seed_gives_byte_identical_pngs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        kitti.write_kitti(out, drives=2, test_drives=1, frames=3, width=64, height=32, seed=9, save_depth=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 12
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_rerun_resumes_without_rewriting_finished_frames(tmp_path):
    kitti.write_kitti(tmp_path, drives=2, test_drives=1, frames=3, width=64, height=32, seed=1, save_depth=False)
    frame = next(tmp_path.rglob("image_02/data/0000000001.png"))
    before = frame.stat().st_mtime_ns
    frame_lost = next(tmp_path.rglob("image_03/data/0000000002.png"))
    frame_lost.unlink()
    kitti.write_kitti(tmp_path, drives=2, test_drives=1, frames=3, width=64, height=32, seed=1, save_depth=False)
    assert frame.stat().st_mtime_ns == before and frame_lost.exists()

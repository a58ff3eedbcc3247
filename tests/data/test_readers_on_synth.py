"""geopre's real-format readers on the synthetic trees: the writers and readers were written
independently from the formats, so agreement here checks both against each other."""

import numpy as np
import pytest

from geopre.data import cityscapes as cs
from geopre.data import kitti
from geopre.synth import kitti as synth_kitti


def test_kitti_reader_finds_the_rig_and_lidar_depth_matches_truth(synth_kitti_root):
    tree = kitti.KittiRawTree(synth_kitti_root)
    entries = kitti.read_split(synth_kitti_root / "splits" / "eigen" / "test_files.txt")
    assert entries and all(tree.has_frames(e.folder, e.frame_index, e.side) for e in entries)
    calib = tree.calibration(entries[0].folder)
    assert calib.stereo_baseline == pytest.approx(synth_kitti.BASELINE, abs=1e-4)
    entry = entries[0]
    depth = kitti.velodyne_depth_map(tree.calibration_dir(entry.folder), tree.velodyne_path(entry.folder, entry.frame_index))
    truth = np.load(synth_kitti_root / entry.folder / "geopre_truth" / "depth_02" / f"{entry.frame_index:010d}.npy")
    # monodepth2's rounding puts a point at round(u) - 1: compare with the truth one pixel over.
    truth_shifted = np.full_like(truth, np.nan)
    truth_shifted[:-1, :-1] = truth[1:, 1:]
    valid = (depth > 1.0) & np.isfinite(truth_shifted)
    rel = np.abs(depth[valid] - truth_shifted[valid]) / depth[valid]
    assert valid.sum() > 300 and np.median(rel) < 0.02


def test_gt_export_on_synthetic_split_loads_without_pickle(synth_kitti_root, tmp_path):
    out = tmp_path / "gt_depths.npz"
    count = kitti.export_gt_depths(synth_kitti_root, synth_kitti_root / "splits" / "eigen" / "test_files.txt", out)
    maps = kitti.load_gt_depths(out)
    assert count == len(maps) == 4 and all(m.shape == (64, 208) and (m > 0).sum() > 300 for m in maps)
    np.load(out, allow_pickle=False)


def test_cityscapes_reader_decodes_synthetic_disparity_to_true_depth(synth_city_root):
    sequences = cs.list_sequences(synth_city_root, "val")
    assert len(sequences) == 1
    frames = next(iter(sequences.values()))
    assert len(frames) == 30 and len(cs.subsample(frames)) == 15
    annotated = frames[19]
    depth = cs.read_depth(synth_city_root, "val", annotated)
    truth = np.load(synth_city_root / "geopre_truth" / "depth" / "val" / annotated.city / f"{annotated.stem}_depth.npy")
    valid = (depth > 0) & (truth < 40)
    np.testing.assert_allclose(depth[valid], truth[valid], rtol=0.01)
    kept = cs.bonnet_kept_rows(depth.shape[0])
    assert kept < depth.shape[0] and (depth[kept:] == 0).mean() > 0.5  # the cropped rows hold the bonnet

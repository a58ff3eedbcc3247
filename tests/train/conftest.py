import cv2
import numpy as np
import pytest
import torch

from geopre.data.kitti import read_split

from geopre.shards.sources import SourceSpec
from geopre.shards.write import WriteConfig, write_shards
from geopre.synth import kitti
from geopre.train.depth_model import DepthModel, ModelInfo, save_model


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    """An untrained M model saved as `geopre finetune` saves one (128x64 training size)."""
    torch.manual_seed(0)
    info = ModelInfo(mode="M", width=128, height=64)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    save_model(path, DepthModel(info.arch, info.scales, info.mode), info)
    return path


@pytest.fixture(scope="session")
def pretrain_shards(tmp_path_factory):
    """Shards of a synthetic KITTI-style tree at 96x32 (pretraining tests train at 64x32): 5 drives, of which
    1 is the test drive and 1 the val drive, so 3 drives (the shard split divides them by video) feed
    the shards, as many as before the tree had val drives of its own."""
    root = tmp_path_factory.mktemp("kitti")
    kitti.write_kitti(root, drives=5, test_drives=1, frames=8, width=96, height=32, seed=2, save_depth=False)
    out = tmp_path_factory.mktemp("shards")
    write_shards([SourceSpec("kitti", root)], WriteConfig(out, maxcount=4, val_fraction=0.34, seed=0))
    return out


@pytest.fixture
def dense_root(synth_kitti_root, tmp_path):
    """KITTI-depth-style dense ground truth (uint16 PNG, metres * 256, 0 = none) of the synthetic test
    split, from the renderer's true depth; the sky (infinitely far) has no measurement."""
    root = tmp_path / "data_depth_annotated"
    for entry in read_split(synth_kitti_root / "splits" / "eigen" / "test_files.txt"):
        truth = np.load(synth_kitti_root / entry.folder / "geopre_truth" / "depth_02" / f"{entry.frame_index:010d}.npy")
        encoded = np.where(np.isfinite(truth), np.clip(truth * 256, 0, 65535), 0).astype(np.uint16)
        path = root / entry.folder.split("/")[-1] / "proj_depth" / "groundtruth" / "image_02" / f"{entry.frame_index:010d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), encoded)
    return root


# KITTI's rectified projections of 2011_09_26 (calib_cam_to_cam.txt): baseline
# (44.85728 + 339.5242) / 721.5377 = 0.53273 m, so the stereo scale is 5.3273, not monodepth2's 5.4.
REAL_P_RECT = {
    "P_rect_02": "7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 "
                 "2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03",
    "P_rect_03": "7.215377e+02 0.000000e+00 6.095593e+02 -3.395242e+02 0.000000e+00 7.215377e+02 1.728540e+02 "
                 "2.199936e+00 0.000000e+00 0.000000e+00 1.000000e+00 2.729905e-03",
}


@pytest.fixture
def real_calibration_root(synth_kitti_root, tmp_path):
    """The synthetic tree (drives linked, not copied) with KITTI's real 2011_09_26 P_rect_02/03."""
    root = tmp_path / "kitti"
    for day in synth_kitti_root.iterdir():
        if not day.is_dir():
            continue
        (root / day.name).mkdir(parents=True)
        for item in day.iterdir():
            if item.name == "calib_cam_to_cam.txt":
                keys = [line.split(":")[0] for line in item.read_text().splitlines()]
                lines = [f"{key}: {REAL_P_RECT[key]}" if key in REAL_P_RECT else line
                         for key, line in zip(keys, item.read_text().splitlines())]
                (root / day.name / item.name).write_text("\n".join(lines) + "\n")
            else:
                (root / day.name / item.name).symlink_to(item)
    return root

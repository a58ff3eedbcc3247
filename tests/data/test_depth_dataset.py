import numpy as np
import pytest
import torch

from geopre.data.depth_dataset import DepthDataConfig, KittiDepthDataset, frame_ids_for, subset_indices
from geopre.errors import UserError


def config(root, **kw):
    base = dict(root=root, split_file=root / "splits" / "eigen_zhou" / "train_files.txt", width=104, height=32)
    base.update(kw)
    return DepthDataConfig(**base)


def test_mono_stereo_sample_has_every_frame_resized_and_scaled_intrinsics(synth_kitti_root):
    ds = KittiDepthDataset(config(synth_kitti_root, mode="MS", train=False))
    item = ds[0]
    assert set(item["images"]) == {"0", "-1", "1", "s"}
    assert all(v.shape == (3, 32, 104) and 0 <= v.min() and v.max() <= 1 for v in item["images"].values())
    # 208x64 calibration halved: fx = 0.58 * 208 / 2 (+-1 % per date), principal point near the centre.
    assert item["K"][0, 0] == pytest.approx(0.58 * 104, rel=0.02) and abs(item["K"][0, 2] - 52) < 2
    assert item["baseline"] == pytest.approx(0.54, abs=1e-3)
    assert abs(item["stereo_tx"]) == pytest.approx(0.1)
    assert torch.equal(item["images"]["0"], item["inputs"]["0"])  # no augmentation at eval


def test_training_augmentation_is_shared_by_frames_and_reproducible(synth_kitti_root):
    ds = KittiDepthDataset(config(synth_kitti_root, mode="S", train=True))
    flips = []
    for i in range(len(ds)):
        a, b = ds[i], ds[i]
        assert torch.equal(a["inputs"]["0"], b["inputs"]["0"])  # same (seed, epoch, index), same draw
        plain = KittiDepthDataset(config(synth_kitti_root, mode="S", train=False))[i]
        flipped = torch.equal(a["images"]["0"], torch.flip(plain["images"]["0"], dims=[2]))
        assert flipped or torch.equal(a["images"]["0"], plain["images"]["0"])
        # The stereo partner flips with the target, and the baseline's sign with it.
        assert flipped == (a["stereo_tx"] != plain["stereo_tx"])
        flips.append(flipped)
    ds.set_epoch(1)
    assert any(not torch.equal(ds[i]["inputs"]["0"], KittiDepthDataset(config(synth_kitti_root, mode="S"))[i]["inputs"]["0"])
               for i in range(len(ds)))


def test_fraction_picks_a_deterministic_subset():
    a = subset_indices(100, 0.05, seed=3)
    assert len(a) == 5 and np.array_equal(a, subset_indices(100, 0.05, seed=3))
    assert not np.array_equal(a, subset_indices(100, 0.05, seed=4))
    assert len(subset_indices(7, 0.1, 0)) == 1
    with pytest.raises(UserError):
        subset_indices(10, 0.0, 0)


def test_bad_mode_is_a_user_error():
    with pytest.raises(UserError, match="--mode"):
        frame_ids_for("X")


def test_flip_mirrors_the_principal_point_about_the_pixel_centres(synth_kitti_root):
    # Pixel x of a W-wide image lands on W - 1 - x when flipped (centres at integer coordinates,
    # as geopre.model.geometry backprojects them), so cx must land there too.
    ds = KittiDepthDataset(config(synth_kitti_root, mode="S", train=True))
    plain = KittiDepthDataset(config(synth_kitti_root, mode="S", train=False))
    flipped = [i for i in range(len(ds)) if ds[i]["stereo_tx"] != plain[i]["stereo_tx"]]
    assert flipped
    for i in flipped:
        k, k_plain = ds[i]["K"], plain[i]["K"]
        assert k[0, 2].item() == pytest.approx(104 - 1 - k_plain[0, 2].item(), abs=1e-4)
        assert torch.equal(k[1], k_plain[1]) and k[0, 0] == k_plain[0, 0]

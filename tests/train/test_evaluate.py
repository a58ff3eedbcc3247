"""`evaluate` on the synthetic KITTI and Cityscapes trees: finite, sane metrics and its files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from geopre.errors import UserError
from geopre.model.depth import DepthNet
from geopre.train.evaluate import EvaluateConfig, describe_stereo_scale, evaluate
from geopre.train.metrics import METRIC_NAMES, stereo_scale_factor

# real_calibration_root's 2011_09_26 baseline: (P_rect_02 - P_rect_03)[0, 3] / fx, over the nominal 0.1.
REAL_KITTI_STEREO_SCALE = (44.85728 + 339.5242) / 721.5377 / 0.1


def sane(metrics):
    assert set(metrics) == set(METRIC_NAMES) and all(math.isfinite(v) for v in metrics.values())
    assert 0 < metrics["abs_rel"] < 5 and 0 <= metrics["a1"] <= metrics["a2"] <= metrics["a3"] <= 1


def test_kitti_eigen_median_scaled_exports_gt_once_and_writes_json_markdown_predictions(
        synth_kitti_root, tiny_model_file, tmp_path):
    config = EvaluateConfig(tiny_model_file, synth_kitti_root, out_dir=tmp_path, save_predictions=True, device="cpu")
    result = evaluate(config)
    sane(result["metrics"])
    assert result["images"] == 4 and result["protocol"]["median_scaling"]
    # every image's metrics are kept, in split order, and average to the reported ones
    assert all(len(result["per_image"][name]) == 4 for name in METRIC_NAMES)
    assert sum(result["per_image"]["abs_rel"]) / 4 == pytest.approx(result["metrics"]["abs_rel"], abs=1e-6)
    assert result["scale_ratio"]["median"] > 0 and result["scale_ratio"]["std"] >= 0
    gt_file = synth_kitti_root / "splits" / "eigen" / "gt_depths.npz"
    assert gt_file.is_file()
    assert json.loads((tmp_path / "eval_kitti_eigen.json").read_text())["metrics"] == result["metrics"]
    table = (tmp_path / "eval_kitti_eigen.md").read_text().splitlines()
    assert table[0].startswith("| model | abs_rel") and table[2] == result["markdown"]
    assert np.load(tmp_path / "disparities_kitti_eigen.npy").shape == (4, 64, 128)

    stamp = gt_file.stat().st_mtime_ns
    stereo = evaluate(EvaluateConfig(tiny_model_file, synth_kitti_root, out_dir=tmp_path, median_scaling=False,
                                     device="cpu"))
    assert gt_file.stat().st_mtime_ns == stamp  # ground truth reused, not exported again
    assert stereo["stereo_scale"] == [pytest.approx(stereo_scale_factor(0.54), rel=1e-3)]
    assert "scale_ratio" not in stereo and stereo["metrics"] != result["metrics"]


def test_dense_gt_follows_monodepth2_eigen_benchmark_unless_eigen_crop_is_asked(
        synth_kitti_root, dense_root, tiny_model_file, tmp_path):
    common = dict(gt_source="dense", dense_root=dense_root, gt_file=tmp_path / "gt_dense.npz", out_dir=tmp_path,
                  device="cpu")
    dense = evaluate(EvaluateConfig(tiny_model_file, synth_kitti_root, **common))
    assert dense["protocol"]["gt_mask"] == "positive"
    assert dense["protocol"]["crop"] is None and dense["protocol"]["gt_range_mask"] is False
    cropped = evaluate(EvaluateConfig(tiny_model_file, synth_kitti_root, gt_mask="eigen-crop", **common))
    assert cropped["protocol"]["crop"] == "eigen" and cropped["protocol"]["gt_range_mask"] is True
    sane(dense["metrics"]), sane(cropped["metrics"])
    assert dense["metrics"] != cropped["metrics"]
    with pytest.raises(UserError, match="--gt-mask"):
        evaluate(EvaluateConfig(tiny_model_file, synth_kitti_root, gt_mask="garg", out_dir=tmp_path, device="cpu"))


def test_stereo_scale_and_its_source_follow_the_calibration(real_calibration_root, dense_root, tiny_model_file,
                                                             tmp_path):
    common = dict(gt_source="dense", dense_root=dense_root, gt_file=tmp_path / "gt_dense.npz", median_scaling=False,
                  out_dir=tmp_path, device="cpu")
    result = evaluate(EvaluateConfig(tiny_model_file, real_calibration_root, **common))
    recorded = json.loads(Path(result["json"]).read_text())
    assert recorded["stereo_scale"] == [pytest.approx(REAL_KITTI_STEREO_SCALE, abs=1e-6)]
    assert recorded["stereo_scale_source"] == "calibration"
    assert recorded["stereo_baselines"] == {"2011_09_26": pytest.approx(REAL_KITTI_STEREO_SCALE / 10, abs=1e-7)}
    assert "stereo scale 5.3273 = baseline / 0.1 from the calibration (2011_09_26 0.5327 m)" in \
        describe_stereo_scale(result)

    parity = evaluate(EvaluateConfig(tiny_model_file, real_calibration_root, stereo_scale=5.4, **common))
    assert parity["stereo_scale"] == [5.4] and parity["stereo_scale_source"] == "--stereo-scale"
    assert "stereo_baselines" not in parity and describe_stereo_scale(parity) == "stereo scale 5.4000 from --stereo-scale"


def test_cityscapes_is_scored_median_scaled_without_the_bonnet(synth_city_root, tiny_model_file, tmp_path):
    result = evaluate(EvaluateConfig(tiny_model_file, synth_city_root, dataset="cityscapes", out_dir=tmp_path,
                                     device="cpu"))
    sane(result["metrics"])
    assert result["protocol"]["drop_worst_fraction"] == 0.05 and result["protocol"]["crop"] is None
    assert (tmp_path / "eval_cityscapes_test.md").is_file()


class ImagesThroughDepthNet:
    """Counts the images every DepthNet forward pass receives, through torch's global module hook."""

    def __init__(self):
        self.images = 0

    def __enter__(self):
        def hook(module, inputs, output):
            if isinstance(module, DepthNet):
                self.images += inputs[0].shape[0]

        self.handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_cityscapes_runs_the_network_once_per_frame(synth_city_root, tiny_model_file, tmp_path):
    with ImagesThroughDepthNet() as counter:
        result = evaluate(EvaluateConfig(tiny_model_file, synth_city_root, dataset="cityscapes", out_dir=tmp_path,
                                         device="cpu"))
    assert counter.images == result["images"]


def test_post_processing_feeds_each_image_and_its_mirror_and_is_recorded(synth_kitti_root, tiny_model_file,
                                                                          tmp_path):
    plain = evaluate(EvaluateConfig(tiny_model_file, synth_kitti_root, out_dir=tmp_path, device="cpu"))
    with ImagesThroughDepthNet() as counter:
        processed = evaluate(EvaluateConfig(tiny_model_file, synth_kitti_root, out_dir=tmp_path, post_process=True,
                                            device="cpu"))
    assert counter.images == 2 * processed["images"]
    assert processed["post_process"] is True and plain["post_process"] is False
    assert json.loads(Path(processed["json"]).read_text())["post_process"] is True
    assert "+pp |" in processed["markdown"] and processed["metrics"] != plain["metrics"]
    sane(processed["metrics"])


def test_missing_model_is_a_user_error(synth_kitti_root, tmp_path):
    with pytest.raises(UserError, match="model not found"):
        evaluate(EvaluateConfig(tmp_path / "nothing.safetensors", synth_kitti_root))

"""Depth metrics and the evaluation protocol, checked against numbers worked out by hand."""

import math
from dataclasses import asdict, replace

import numpy as np
import pytest

from geopre.errors import UserError
from geopre.train.metrics import (
    CITYSCAPES_PAPER,
    KITTI_EIGEN_STEREO,
    KITTI_GT_MASKS,
    METRIC_NAMES,
    aggregate,
    compute_errors,
    constant_depth_errors,
    drop_worst,
    eigen_crop_mask,
    evaluate_depth_pair,
    markdown_header,
    markdown_row,
    post_process_disparity,
    scale_ratio_summary,
    stereo_scale_factor,
)


def test_compute_errors_on_four_hand_worked_pixels():
    gt = np.array([1.0, 2.0, 4.0, 8.0])
    pred = np.array([1.0, 4.0, 3.0, 8.0])
    # differences 0, -2, 1, 0; ratios max(gt/pred, pred/gt) = 1, 2, 4/3, 1
    errors = compute_errors(gt, pred)
    assert errors["abs_rel"] == pytest.approx((0 + 2 / 2 + 1 / 4 + 0) / 4)
    assert errors["sq_rel"] == pytest.approx((0 + 4 / 2 + 1 / 4 + 0) / 4)
    assert errors["rmse"] == pytest.approx(math.sqrt((4 + 1) / 4))
    assert errors["rmse_log"] == pytest.approx(math.sqrt((math.log(2) ** 2 + math.log(4 / 3) ** 2) / 4))
    assert errors["a1"] == pytest.approx(2 / 4)  # 4/3 > 1.25
    assert errors["a2"] == pytest.approx(3 / 4)  # 4/3 < 1.5625 < 2
    assert errors["a3"] == pytest.approx(3 / 4)  # 2 > 1.953125
    assert tuple(errors) == METRIC_NAMES


def test_eigen_crop_on_kitti_size_truncates_fraction_bounds():
    mask = eigen_crop_mask(375, 1242)
    rows, cols = np.nonzero(mask)
    # 0.40810811*375 = 153.04, 0.99189189*375 = 371.96, 0.03594771*1242 = 44.6, 0.96405229*1242 = 1197.4
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (153, 370, 44, 1196)
    assert mask.sum() == (371 - 153) * (1197 - 44)


def test_median_scaling_recovers_a_depth_map_off_by_a_constant_factor():
    gt = np.array([[2.0, 4.0], [6.0, 8.0]])
    pred_depth = gt / 2
    result = evaluate_depth_pair(gt, 1 / pred_depth, crop=None)
    assert result.scale_ratio == pytest.approx(2.0)  # median(gt) 5 / median(pred) 2.5
    assert result.errors["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert result.errors["a1"] == 1.0
    assert result.valid_pixels == 4


def test_fixed_stereo_scale_replaces_median_scaling():
    assert stereo_scale_factor(0.54) == pytest.approx(5.4)
    gt = np.array([[5.4, 10.8], [2.7, 54.0]])
    disp = 1 / (gt / 5.4)  # a stereo model predicts depth in units of the 0.1 nominal baseline
    assert (KITTI_EIGEN_STEREO.median_scaling, KITTI_EIGEN_STEREO.fixed_scale) == (False, stereo_scale_factor(0.54))
    result = evaluate_depth_pair(gt, disp, crop=None, median_scaling=False, fixed_scale=stereo_scale_factor(0.54))
    assert result.scale_ratio is None
    assert result.errors["rmse"] == pytest.approx(0.0, abs=1e-4)


def test_predictions_are_clamped_and_gt_outside_range_ignored():
    gt = np.array([[10.0, 0.0, 90.0]])  # 0 = no measurement, 90 m > 80 m cap
    disp = np.array([[1e-6, 1.0, 1.0]])  # 1e6 m prediction clamps to 80 m
    result = evaluate_depth_pair(gt, disp, crop=None, median_scaling=False)
    assert result.valid_pixels == 1
    assert result.errors["abs_rel"] == pytest.approx(70 / 10)


def test_prediction_is_resized_bilinearly_to_gt_size():
    gt = np.full((8, 12), 4.0)
    result = evaluate_depth_pair(gt, np.full((4, 6), 0.25), crop=None, median_scaling=False)
    assert result.errors["rmse"] == pytest.approx(0.0, abs=1e-6)


def test_eigen_crop_excludes_pixels_outside_it():
    gt = np.zeros((20, 30))
    gt[10, 10] = 5.0  # inside rows 8..18, cols 1..27
    gt[0, 0] = 5.0  # outside: its wrong prediction must not count
    disp = np.full((20, 30), 1 / 5.0)
    disp[0, 0] = 1.0
    result = evaluate_depth_pair(gt, disp, median_scaling=False)
    assert result.valid_pixels == 1
    assert result.errors["abs_rel"] == pytest.approx(0.0, abs=1e-6)


# A 4x4 ground truth (0 = no measurement) against a constant 10 m prediction, no scaling. The Eigen
# crop of a 4x4 map is rows int(1.63)..int(3.97) = 1, 2 and columns int(0.14)..int(3.86) = 0, 1, 2.
GT_4x4 = np.array([
    [5.0, 0.0, 0.0, 0.0],  # row 0: outside the crop
    [10.0, 20.0, 100.0, 0.0],  # 100 m: beyond the 80 m cap; column 3 outside the crop
    [0.0, 16.0, 10.0, 40.0],
    [0.0, 0.0, 0.0, 10.0],  # row 3: outside the crop
])


def test_eigen_crop_mask_keeps_capped_gt_inside_the_crop():
    result = evaluate_depth_pair(GT_4x4, np.full((4, 4), 0.1), **asdict(KITTI_GT_MASKS["eigen-crop"]) | {
        "median_scaling": False})
    # kept gt 10, 20, 16, 10: |gt - 10| / gt = 0, 0.5, 0.375, 0; max ratio 1, 2, 1.6, 1
    assert result.valid_pixels == 4
    assert result.errors["abs_rel"] == pytest.approx((0 + 0.5 + 0.375 + 0) / 4)
    assert result.errors["rmse"] == pytest.approx(math.sqrt((0 + 100 + 36 + 0) / 4))
    assert result.errors["a1"] == pytest.approx(2 / 4)


def test_positive_mask_keeps_every_measured_pixel_as_monodepth2_eigen_benchmark():
    result = evaluate_depth_pair(GT_4x4, np.full((4, 4), 0.1), **asdict(KITTI_GT_MASKS["positive"]) | {
        "median_scaling": False})
    # kept gt 5, 10, 20, 100, 16, 10, 40, 10: |gt - 10| / gt = 1, 0, 0.5, 0.9, 0.375, 0, 0.75, 0
    assert result.valid_pixels == 8
    assert result.errors["abs_rel"] == pytest.approx(3.525 / 8)
    assert result.errors["rmse"] == pytest.approx(math.sqrt((25 + 0 + 100 + 8100 + 36 + 0 + 900 + 0) / 8))
    assert result.errors["a1"] == pytest.approx(3 / 8)


def test_positive_mask_still_clamps_predictions_to_80_m():
    result = evaluate_depth_pair(np.array([[100.0, 10.0]]), np.array([[1e-4, 0.1]]),
                                 **asdict(KITTI_GT_MASKS["positive"]) | {"median_scaling": False})
    assert result.errors["abs_rel"] == pytest.approx((20 / 100 + 0) / 2)  # 1e4 m clamped to 80 m


def test_post_processing_ramps_on_a_hand_worked_41_column_map():
    # 41 columns sit at x = 0, 0.025, ..., 1; left weight 1 - clip(20 (x - 0.05), 0, 1) is
    # 1, 1, 1, 0.5 for columns 0-3 and 0 from column 4; the right weight mirrors it.
    disp, mirrored = np.ones((2, 41)), np.full((2, 41), 3.0)  # mean 2
    blended = post_process_disparity(disp, mirrored)
    expected = np.full(41, 2.0)
    expected[:3], expected[3] = 3.0, 0.5 * 3.0 + 0.5 * 2.0  # from the mirrored prediction, then the ramp
    expected[-3:], expected[-4] = 1.0, 0.5 * 1.0 + 0.5 * 2.0
    np.testing.assert_allclose(blended, np.stack([expected, expected]), rtol=1e-6)


def test_post_processing_keeps_a_left_right_symmetric_prediction():
    row = np.array([0.1, 0.3, 0.7, 0.2, 0.7, 0.3, 0.1], dtype=np.float32)  # symmetric about the middle
    disp = np.tile(row, (3, 4, 1))  # (batch, H, W)
    # A symmetric scene: the mirrored image's prediction, flipped back, is the same map.
    np.testing.assert_allclose(post_process_disparity(disp, disp[..., ::-1]), disp, rtol=1e-6)


def test_worst_five_percent_drop_removes_the_one_outlier_of_twenty():
    gt = np.full((4, 5), 10.0)
    pred_depth = np.full((4, 5), 10.0)
    pred_depth[2, 3] = 50.0  # a stereo-matching outlier
    kept = evaluate_depth_pair(gt, 1 / pred_depth, crop=None)
    assert kept.scale_ratio == pytest.approx(1.0)  # median is taken before the drop
    assert kept.errors["abs_rel"] == pytest.approx(40 / 10 / 20)
    dropped = evaluate_depth_pair(gt, 1 / pred_depth, **asdict(CITYSCAPES_PAPER))
    assert dropped.valid_pixels == 19
    assert dropped.errors["abs_rel"] == pytest.approx(0.0, abs=1e-6)


def test_drop_worst_ranks_by_absolute_not_relative_error():
    gt, pred = np.array([1.0, 100.0]), np.array([2.0, 110.0])  # abs errors 1, 10; relative 1.0, 0.1
    kept_gt, kept_pred = drop_worst(gt, pred, 0.5)
    assert kept_gt.tolist() == [1.0] and kept_pred.tolist() == [2.0]
    assert drop_worst(gt, pred, 0.4)[0].size == 2  # floor(0.4 * 2) = 0 pixels dropped


def test_no_valid_pixel_and_wrong_shape_are_user_errors():
    with pytest.raises(UserError, match="no ground-truth pixel"):
        evaluate_depth_pair(np.zeros((4, 4)), np.ones((4, 4)), crop=None)
    with pytest.raises(UserError, match="2-D"):
        evaluate_depth_pair(np.ones((1, 4, 4)), np.ones((4, 4)))


def test_aggregate_means_per_image_and_ratio_summary():
    first = dict.fromkeys(METRIC_NAMES, 1.0)
    second = dict.fromkeys(METRIC_NAMES, 3.0)
    assert aggregate([first, second]) == dict.fromkeys(METRIC_NAMES, 2.0)
    median, std = scale_ratio_summary([1.0, 2.0, 3.0])
    assert median == 2.0
    assert std == pytest.approx(np.std([0.5, 1.0, 1.5]))


def test_markdown_row_lines_up_with_header():
    errors = {"abs_rel": 0.1154, "sq_rel": 0.9, "rmse": 4.8638, "rmse_log": 0.19, "a1": 0.877, "a2": 0.959, "a3": 0.9814}
    row = markdown_row("kcd", errors)
    assert row == "| kcd | 0.115 | 0.900 | 4.864 | 0.190 | 0.877 | 0.959 | 0.981 |"
    assert markdown_header().splitlines()[0].count("|") == row.count("|")


def test_constant_depth_baseline_is_each_images_median_whatever_the_protocols_scale():
    # median 2.5: abs_rel = (1.5/1 + 0.5/2 + 0.5/3 + 1.5/4) / 4; a flat image scores 0
    gts = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.full((2, 2), 5.0)]
    expected = (1.5 + 0.25 + 0.5 / 3 + 0.375) / 4 / 2
    stereo = replace(KITTI_EIGEN_STEREO, crop=None)  # its fixed scale is replaced by the median
    errors = constant_depth_errors(gts, stereo)
    assert errors["abs_rel"] == pytest.approx(expected)
    assert errors["a1"] == pytest.approx((0.25 + 1.0) / 2)  # only 3 lies strictly within 1.25x of 2.5

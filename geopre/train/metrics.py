"""Depth-evaluation maths: the Eigen protocol as monodepth2 runs it, plus the paper's Cityscapes variant.

Per image: resize the predicted disparity to the ground-truth size (bilinear), depth = 1 / disp,
keep gt pixels inside (min_depth, max_depth) and the crop (or, for KITTI's dense ground truth as
monodepth2's ``eigen_benchmark``, every gt > 0), multiply by a fixed stereo scale or
the per-image median ratio, clamp to [min_depth, max_depth], optionally drop the worst pixels,
compute seven errors. The dataset score is the mean over images (:func:`aggregate`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import cv2
import numpy as np

from geopre.errors import UserError

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
# Metrics where a larger value is better (accuracy under threshold); the rest are errors.
HIGHER_IS_BETTER = frozenset({"a1", "a2", "a3"})

# "We follow the standard approach that caps depth values to 80 m" (paper, section V-A).
MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0

# Garg/Eigen crop as fractions of the KITTI image (monodepth2 evaluate_depth.py):
# rows top..bottom, columns left..right.
EIGEN_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)

# monodepth2 trains stereo models with a nominal baseline of 0.1 units.
STEREO_TRAINING_BASELINE = 0.1
# metres, nominal; 0.54 / 0.1 is monodepth2's STEREO_SCALE_FACTOR of 5.4. The rectified calibration
# of a real recording day gives slightly less (2011_09_26: 0.5327 m), which `evaluate` uses by default.
KITTI_BASELINE = 0.54

Crop = Literal["eigen"] | None


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The seven standard depth metrics over matching 1-D arrays of positive depths.

    abs_rel = mean(|gt - pred| / gt), sq_rel = mean((gt - pred)^2 / gt), rmse, rmse_log (natural
    log), and a_k = fraction of pixels with max(gt / pred, pred / gt) < 1.25^k.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    ratio = np.maximum(gt / pred, pred / gt)
    difference = gt - pred
    return {
        "abs_rel": float(np.mean(np.abs(difference) / gt)),
        "sq_rel": float(np.mean(difference**2 / gt)),
        "rmse": float(np.sqrt(np.mean(difference**2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(ratio < 1.25)),
        "a2": float(np.mean(ratio < 1.25**2)),
        "a3": float(np.mean(ratio < 1.25**3)),
    }


def eigen_crop_mask(height: int, width: int) -> np.ndarray:
    """Boolean mask of the Garg/Eigen crop; bounds are the fractions times the size, truncated.

    For KITTI's 375x1242 that is rows 153..370 and columns 44..1196 (inclusive).
    """
    top, bottom, left, right = (
        np.array([EIGEN_CROP[0] * height, EIGEN_CROP[1] * height, EIGEN_CROP[2] * width, EIGEN_CROP[3] * width])
        .astype(np.int32)
        .tolist()
    )
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def stereo_scale_factor(baseline: float = KITTI_BASELINE) -> float:
    """Metres per unit of a stereo-trained model's depth: the rig baseline over the nominal 0.1."""
    return baseline / STEREO_TRAINING_BASELINE


def resize_disparity(disparity: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize (OpenCV ``INTER_LINEAR``, as monodepth2) of a 2-D disparity map."""
    return cv2.resize(np.asarray(disparity, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def post_process_disparity(disp: np.ndarray, mirrored_disp: np.ndarray) -> np.ndarray:
    """Blend a disparity with the one predicted for the mirrored image (monodepth v1's post-processing).

    ``mirrored_disp`` is the network's output for the horizontally flipped image, flipped back, so
    both are (..., H, W) in the original orientation. A network sees nothing beyond an image's left
    border, and its left-most columns are where its errors gather (disocclusions); in the mirrored
    image those columns lie on the right. So the left-most 5 % of columns come from
    ``mirrored_disp``, the right-most 5 % from ``disp``, a linear ramp over the next 5 % on each
    side, and the mean of the two elsewhere: with column position ``x`` in [0, 1],
    ``left_weight = 1 - clip(20 (x - 0.05), 0, 1)``, ``right_weight`` its mirror image, and
    ``out = right_weight * disp + left_weight * mirrored + (1 - left - right) * mean``.
    """
    disp = np.asarray(disp, dtype=np.float32)
    mirrored_disp = np.asarray(mirrored_disp, dtype=np.float32)
    if disp.shape != mirrored_disp.shape:
        raise ValueError(f"disparity {disp.shape} and mirrored disparity {mirrored_disp.shape} differ in shape")
    columns = np.linspace(0.0, 1.0, disp.shape[-1])
    left_weight = (1.0 - np.clip(20.0 * (columns - 0.05), 0.0, 1.0)).astype(np.float32)
    right_weight = left_weight[::-1]
    mean = 0.5 * (disp + mirrored_disp)
    return right_weight * disp + left_weight * mirrored_disp + (1.0 - left_weight - right_weight) * mean


def drop_worst(gt: np.ndarray, pred: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Remove the ``floor(fraction * n)`` pixels with the largest absolute error ``|gt - pred|``.

    The paper (section V-C) removes "the largest 5% error terms" on Cityscapes because its stereo
    ground truth has outliers. Ranking by absolute metric error targets exactly those: a wrong
    stereo match far away produces metres of error. Ties keep the earlier pixel.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"drop fraction must be in [0, 1), got {fraction}")
    dropped = int(np.floor(fraction * gt.size))
    if dropped == 0:
        return gt, pred
    keep = np.sort(np.argsort(np.abs(gt - pred), kind="stable")[: gt.size - dropped])
    return gt[keep], pred[keep]


@dataclass(frozen=True)
class PairEvaluation:
    """Result of one image: the seven metrics, the median ratio used (if any), pixels scored."""

    errors: dict[str, float]
    scale_ratio: float | None
    valid_pixels: int


def evaluate_depth_pair(
    gt: np.ndarray,
    pred_disp: np.ndarray,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    median_scaling: bool = True,
    fixed_scale: float | None = None,
    crop: Crop = "eigen",
    drop_worst_fraction: float = 0.0,
    gt_range_mask: bool = True,
) -> PairEvaluation:
    """Score one predicted disparity map against one ground-truth depth map (0 = no measurement).

    Order (monodepth2's, then the paper's outlier drop): resize ``pred_disp`` to ``gt``'s size;
    depth = 1 / disp; keep pixels with ``min_depth < gt < max_depth`` (every ``gt > 0`` when
    ``gt_range_mask`` is False) inside ``crop``; multiply
    by ``fixed_scale`` (e.g. :func:`stereo_scale_factor`) if given; with ``median_scaling`` multiply
    by ``median(gt) / median(pred)`` over the kept pixels; clamp to [min_depth, max_depth]; drop
    the worst ``drop_worst_fraction`` pixels by ``|gt - pred|`` (:func:`drop_worst`); compute errors.
    """
    gt = np.asarray(gt)
    pred_disp = np.asarray(pred_disp)
    if gt.ndim != 2 or pred_disp.ndim != 2:
        raise UserError(
            f"depth evaluation needs 2-D maps, got gt {gt.shape} and prediction {pred_disp.shape}; "
            "squeeze batch/channel axes"
        )
    height, width = gt.shape
    with np.errstate(divide="ignore"):
        pred_depth = 1.0 / resize_disparity(pred_disp, height, width).astype(np.float64)

    valid = (gt > min_depth) & (gt < max_depth) if gt_range_mask else gt > 0
    if crop == "eigen":
        valid &= eigen_crop_mask(height, width)
    elif crop is not None:
        raise ValueError(f"unknown crop {crop!r}; use 'eigen' or None")
    if not valid.any():
        raise UserError(
            f"no ground-truth pixel lies within ({min_depth}, {max_depth}) m inside the crop; "
            "check that the gt map is metric depth with 0 for missing values"
        )
    gt_valid = gt[valid].astype(np.float64)
    pred_valid = pred_depth[valid]

    if fixed_scale is not None:
        pred_valid = pred_valid * fixed_scale
    ratio = None
    if median_scaling:
        ratio = float(np.median(gt_valid) / np.median(pred_valid))
        pred_valid = pred_valid * ratio
    pred_valid = np.clip(pred_valid, min_depth, max_depth)
    gt_valid, pred_valid = drop_worst(gt_valid, pred_valid, drop_worst_fraction)
    return PairEvaluation(compute_errors(gt_valid, pred_valid), ratio, int(gt_valid.size))


@dataclass(frozen=True)
class EvalProtocol:
    """Named settings for :func:`evaluate_depth_pair`; ``evaluate_depth_pair(gt, disp, **asdict(p))``."""

    min_depth: float = MIN_DEPTH
    max_depth: float = MAX_DEPTH
    median_scaling: bool = True
    fixed_scale: float | None = None
    crop: Crop = "eigen"
    drop_worst_fraction: float = 0.0
    gt_range_mask: bool = True  # False: score every gt > 0, not only gt in (min_depth, max_depth)


# Paper section V-A: monocular models are median scaled; stereo models use the rig's scale.
KITTI_EIGEN_MONO = EvalProtocol()
KITTI_EIGEN_STEREO = EvalProtocol(median_scaling=False, fixed_scale=stereo_scale_factor(KITTI_BASELINE))
# Which KITTI ground-truth pixels are scored (``geopre evaluate --gt-mask``). monodepth2's
# evaluate_depth.py uses "eigen-crop" for its eigen split (velodyne) and "positive" for every
# other split, eigen_benchmark (the dense, improved ground truth) included: no Garg crop, no cap on
# the ground truth; predictions are still clamped to [MIN_DEPTH, MAX_DEPTH].
KITTI_GT_MASKS = {
    "eigen-crop": KITTI_EIGEN_MONO,
    "positive": EvalProtocol(crop=None, gt_range_mask=False),
}
# Paper section V-C: median scaled, worst 5% removed. No Eigen crop: the caller bonnet-crops
# (geopre.data.cityscapes.bonnet_crop) the ground truth to match the image the network saw.
CITYSCAPES_PAPER = EvalProtocol(median_scaling=True, crop=None, drop_worst_fraction=0.05)


def aggregate(results: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over images (each image weighs the same, as in monodepth2)."""
    if not results:
        raise UserError("no images were evaluated; check the split file and the predictions")
    return {name: float(np.mean([result[name] for result in results])) for name in METRIC_NAMES}


def constant_depth_errors(gts: list[np.ndarray], protocol: EvalProtocol = KITTI_EIGEN_MONO) -> dict[str, float]:
    """Mean metrics of a constant depth map scaled to each image's ground-truth median.

    A network that ignores the image's content but is told each image's median depth scores this;
    a trained model below it has learned where things are, not only how far the road is on average.
    """
    scaled = replace(protocol, median_scaling=True, fixed_scale=None)
    return aggregate([evaluate_depth_pair(gt, np.ones_like(gt, dtype=np.float32), **asdict(scaled)).errors
                      for gt in gts])


def scale_ratio_summary(ratios: list[float]) -> tuple[float, float]:
    """(median, std of ratios / median) of per-image median-scaling ratios, as monodepth2 reports."""
    ratios_array = np.asarray(ratios, dtype=np.float64)
    median = float(np.median(ratios_array))
    return median, float(np.std(ratios_array / median))


def markdown_header() -> str:
    """Header and separator lines matching :func:`markdown_row`."""
    names = ["model", *METRIC_NAMES]
    return "| " + " | ".join(names) + " |\n|" + "|".join("---" for _ in names) + "|"


def markdown_row(name: str, errors: dict[str, float], digits: int = 3) -> str:
    """``| name | abs_rel | ... | a3 |`` with ``digits`` decimals, columns in METRIC_NAMES order."""
    return "| " + " | ".join([name, *(f"{errors[m]:.{digits}f}" for m in METRIC_NAMES)]) + " |"

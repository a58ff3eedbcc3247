"""What a depth model must beat before its numbers mean anything: depth maps that ignore the image.

- a *constant* depth: the training ground truth's median everywhere (metric), or any constant
  under median scaling (:func:`geopre.train.metrics.constant_depth_errors`'s floor);
- the *per-pixel prior*: the median (or mean) of the training ground truth at each pixel. On a
  road scene that is a good depth map already (near road below, far sky-line above), and a
  network can learn it from the image's position alone; only a model below it on abs_rel and rmse
  has learned something from the image (:func:`geopre.reproduce.statistics.beats_prior`).

Each baseline is scored exactly as a model's prediction is: its inverse goes through
:func:`~geopre.train.metrics.evaluate_depth_pair` as the "disparity", so resizing to another test
set's size, cropping, scaling and the outlier drop are the same code.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, replace

import numpy as np

from geopre.train.metrics import EvalProtocol, aggregate, evaluate_depth_pair

STATISTICS = {"median": np.nanmedian, "mean": np.nanmean}


def pixel_prior(gts: list[np.ndarray], statistic: str = "median") -> np.ndarray:
    """Per-pixel ``statistic`` ("median" or "mean") of depth maps of one size, ignoring missing
    values (0); a pixel no map measured gets the statistic of every measured value."""
    if not gts:
        raise ValueError("the prior needs at least one ground-truth map")
    if len({gt.shape for gt in gts}) != 1:
        raise ValueError(f"ground-truth maps differ in size: {sorted({gt.shape for gt in gts})}")
    stack = np.stack([np.where(gt > 0, gt, np.nan) for gt in gts]).astype(np.float64)
    reduce = STATISTICS[statistic]
    with warnings.catch_warnings():  # an all-NaN pixel warns; such pixels are filled on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        prior = reduce(stack, axis=0)
    return np.where(np.isnan(prior), reduce(stack), prior).astype(np.float32)


def constant_prior(gts: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The median of every measured training depth, as a map of ``shape``."""
    values = np.concatenate([gt[gt > 0].ravel() for gt in gts])
    return np.full(shape, np.median(values), dtype=np.float32)


def baseline_errors(test_gts: list[np.ndarray], depth: np.ndarray, protocol: EvalProtocol,
                    metric: bool) -> tuple[dict[str, float], list[dict[str, float]]]:
    """(mean, per-image) metrics of predicting ``depth`` (metres) for every test map.

    ``metric``: score the metres as they are (the S protocol, where the model's scale is the rig's);
    otherwise median-scale each image as the M and Cityscapes protocols do."""
    scoring = replace(protocol, fixed_scale=None, median_scaling=not metric)
    per_image = [evaluate_depth_pair(gt, 1.0 / depth, **asdict(scoring)).errors for gt in test_gts]
    return aggregate(per_image), per_image


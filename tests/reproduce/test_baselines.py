"""Baselines on hand-computed tiny depth maps."""

import numpy as np
import pytest

from geopre.reproduce.baselines import baseline_errors, constant_prior, pixel_prior
from geopre.train.metrics import EvalProtocol

NO_CROP = EvalProtocol(crop=None)


def test_pixel_prior_ignores_missing_values_and_fills_unmeasured_pixels():
    a = np.array([[1.0, 0.0], [4.0, 0.0]])
    b = np.array([[3.0, 2.0], [8.0, 0.0]])
    c = np.array([[8.0, 6.0], [6.0, 0.0]])
    median = pixel_prior([a, b, c], "median")
    # top-left median(1, 3, 8) = 3; top-right median(2, 6) = 4; bottom-left median(4, 8, 6) = 6;
    # bottom-right never measured: the median of all 8 values (1, 2, 3, 4, 6, 6, 8, 8) = 5
    assert median.tolist() == [[3.0, 4.0], [6.0, 5.0]]
    mean = pixel_prior([a, b, c], "mean")
    assert mean == pytest.approx(np.array([[4.0, 4.0], [6.0, 38 / 8]]))
    with pytest.raises(ValueError, match="differ in size"):
        pixel_prior([a, np.ones((3, 2))])


def test_constant_prior_is_the_median_of_every_measured_depth():
    assert constant_prior([np.array([[1.0, 0.0]]), np.array([[3.0, 10.0]])], (2, 3)).tolist() == [[3.0] * 3] * 2


def test_baseline_errors_metric_and_median_scaled():
    gt = np.array([[2.0, 4.0], [4.0, 8.0]])
    depth = np.full((2, 2), 4.0, dtype=np.float32)
    mean, per_image = baseline_errors([gt], depth, NO_CROP, metric=True)
    # |2-4|/2 = 1, 0, 0, |8-4|/8 = 0.5: abs_rel 1.5 / 4; rmse sqrt((4 + 16) / 4)
    assert mean["abs_rel"] == pytest.approx(0.375) and mean["rmse"] == pytest.approx(np.sqrt(5.0))
    assert per_image == [mean]
    # median scaled: the scale of the constant does not matter, the gt median (4) is what it becomes
    scaled, _ = baseline_errors([gt], depth * 10, NO_CROP, metric=False)
    assert scaled == pytest.approx(mean)
    far = baseline_errors([gt], depth * 10, NO_CROP, metric=True)[0]
    assert far["abs_rel"] > 5

import numpy as np
import pytest
from PIL import Image

from geopre.ingest.flow_filter import (MIN_FLOW_HEIGHT, FlowMeter, flow_scale_for, frame_flows, kept_flags,
                                       mean_flow_magnitude, to_grey)


def shifted_pair(shift: int):
    """Two 64x32 views of one smooth texture, the second moved ``shift`` px to the right."""
    rng = np.random.default_rng(0)
    small = (rng.random((4, 12)) * 255).astype(np.uint8)
    wide = np.asarray(Image.fromarray(small).resize((96, 32), Image.BICUBIC))
    return wide[:, 10:74].copy(), wide[:, 10 - shift:74 - shift].copy()


@pytest.mark.parametrize("shift", [2, 3])
def test_known_shift_is_measured(shift):
    a, b = shifted_pair(shift)
    assert mean_flow_magnitude(a, b) == pytest.approx(shift, abs=0.25)


def test_identical_frames_have_no_flow():
    a, _ = shifted_pair(0)
    assert mean_flow_magnitude(a, a) < 0.01


def test_half_size_flow_is_rescaled_to_full_size():
    a, b = shifted_pair(4)
    meter = FlowMeter(scale=0.5)
    assert meter(to_grey(a, 0.5), to_grey(b, 0.5)) == pytest.approx(4, abs=0.5)


def test_flow_scale_keeps_the_copy_tall_enough_for_dis():
    assert flow_scale_for(192, 0.5) == 0.5  # the paper's 640x192: flow on 320x96
    assert flow_scale_for(720, 0.1) == pytest.approx(MIN_FLOW_HEIGHT / 720)
    assert flow_scale_for(128, 0.5) == pytest.approx(0.75)
    assert flow_scale_for(64, 0.5) == 1.0  # never upscaled
    assert flow_scale_for(64, 1.0) == 1.0


def test_frame_zero_takes_the_flow_to_frame_one():
    assert frame_flows([2.0, 0.1, 3.0]) == [2.0, 2.0, 0.1, 3.0]
    assert frame_flows([]) == [0.0]
    assert kept_flags([2.0, 2.0, 0.1, 1.0], min_flow=1.0) == [True, True, False, True]


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        mean_flow_magnitude(np.zeros((32, 64), np.uint8), np.zeros((32, 63), np.uint8))

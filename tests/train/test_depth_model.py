"""Inference helpers of the trained depth model."""

import numpy as np
import torch
from torch import nn

from geopre.train.depth_model import ModelInfo, predict_disparity


class PerPixelDepthNet(nn.Module):
    """A depth network that looks at each pixel alone, so mirroring its input mirrors its output."""

    def forward(self, images):
        return {0: torch.sigmoid(images.mean(1, keepdim=True) * 4 - 2)}


def test_post_processing_changes_nothing_for_a_mirror_consistent_network():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 8, 40)  # two different, asymmetric images
    plain = predict_disparity(PerPixelDepthNet(), images, ModelInfo())
    processed = predict_disparity(PerPixelDepthNet(), images, ModelInfo(), post_process=True)
    assert processed.shape == plain.shape == (2, 8, 40)
    assert not np.allclose(plain, plain[..., ::-1])
    np.testing.assert_allclose(processed, plain, rtol=1e-6)

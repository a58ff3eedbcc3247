import torch
import torchvision.transforms.functional as TF

from geopre.data.colour import jitter_colours


def test_matches_torchvision_per_sample_and_leaves_identity_samples_untouched():
    torch.manual_seed(0)
    frames = torch.rand(3, 2, 3, 8, 10)
    factors = torch.tensor([[1.1, 0.9, 1.2, 0.07], [1.0, 1.0, 1.0, 0.0], [0.8, 1.15, 0.85, -0.1]])
    out = jitter_colours(frames, factors)
    assert torch.equal(out[1], frames[1])
    for b in (0, 2):
        bright, contrast, sat, hue = factors[b].tolist()
        x = (frames[b] * bright).clamp(0, 1)
        x = (x * contrast + TF.rgb_to_grayscale(x).mean() * (1 - contrast)).clamp(0, 1)
        x = TF.adjust_saturation(x, sat)
        x = TF.adjust_hue(x, hue)
        torch.testing.assert_close(out[b], x, atol=2e-5, rtol=0)
    # Every frame of a sample gets the same colour map: equal inputs stay equal.
    same = frames.clone()
    same[:, 1] = same[:, 0]
    out = jitter_colours(same, factors)
    assert torch.equal(out[:, 0], out[:, 1])

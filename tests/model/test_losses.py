import math

import pytest
import torch

from geopre.model.losses import (
    automask,
    edge_aware_smoothness,
    mean_normalised,
    min_reprojection,
    photometric_error,
    pretrain_loss,
    ssim,
    ssim_dissimilarity,
)

C1 = 0.01**2
C2 = 0.03**2

X = [[0.1, 0.5, 0.9], [0.3, 0.2, 0.8], [0.7, 0.4, 0.6]]
Y = [[0.2, 0.4, 0.7], [0.3, 0.5, 0.9], [0.6, 0.1, 0.8]]


def ssim_by_hand(xs, ys):
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    var_x = sum(v * v for v in xs) / n - mean_x**2
    var_y = sum(v * v for v in ys) / n - mean_y**2
    cov = sum(a * b for a, b in zip(xs, ys)) / n - mean_x * mean_y
    return ((2 * mean_x * mean_y + C1) * (2 * cov + C2)) / ((mean_x**2 + mean_y**2 + C1) * (var_x + var_y + C2))


def as_image(rows):
    return torch.tensor(rows, dtype=torch.float64)[None, None]


def test_ssim_centre_pixel_uses_the_whole_3x3_window():
    expected = ssim_by_hand([v for row in X for v in row], [v for row in Y for v in row])
    assert ssim(as_image(X), as_image(Y))[0, 0, 1, 1].item() == pytest.approx(expected, rel=1e-9)


def test_ssim_corner_pixel_sees_the_reflected_border():
    # Reflection padding mirrors about the border pixel: the window of (0, 0) is rows/columns 1, 0, 1.
    window = [(r, c) for r in (1, 0, 1) for c in (1, 0, 1)]
    expected = ssim_by_hand([X[r][c] for r, c in window], [Y[r][c] for r, c in window])
    assert ssim(as_image(X), as_image(Y))[0, 0, 0, 0].item() == pytest.approx(expected, rel=1e-9)


def test_ssim_of_an_image_with_itself_is_one_and_dissimilarity_zero():
    image = torch.rand(1, 3, 8, 8)
    assert torch.allclose(ssim(image, image), torch.ones_like(image), atol=1e-6)
    assert torch.allclose(ssim_dissimilarity(image, image), torch.zeros_like(image), atol=1e-6)


def test_photometric_error_of_two_flat_images_by_hand():
    # Flat images: no variance or covariance, so SSIM is the luminance term alone.
    pred = torch.full((1, 3, 4, 4), 0.2, dtype=torch.float64)
    target = torch.full((1, 3, 4, 4), 0.5, dtype=torch.float64)
    similarity = (2 * 0.2 * 0.5 + C1) / (0.2**2 + 0.5**2 + C1)
    expected = 0.85 * (1 - similarity) / 2 + 0.15 * 0.3
    error = photometric_error(pred, target)
    assert error.shape == (1, 1, 4, 4)
    assert torch.allclose(error, torch.full_like(error, expected))
    assert torch.allclose(photometric_error(pred, target, beta=0.0), torch.full_like(error, 0.3))


def test_photometric_error_is_zero_for_identical_images():
    image = torch.rand(2, 3, 8, 8)
    assert photometric_error(image, image).abs().max() < 1e-6


def test_smoothness_is_zero_for_a_constant_field_and_positive_otherwise():
    image = torch.rand(1, 3, 8, 8)
    assert edge_aware_smoothness(torch.full((1, 2, 8, 8), 2.5), image) == 0
    assert edge_aware_smoothness(torch.rand(1, 2, 8, 8), image) > 0


def test_smoothness_weights_field_gradients_by_the_channel_mean_image_gradient():
    # Two identical rows, so only the x direction contributes.
    field = torch.tensor([[[[0.0, 1.0, 3.0], [0.0, 1.0, 3.0]]]])
    # Colour channels step by 0.3, 0.6, 0.6 between columns 0 and 1 (mean 0.5), flat after.
    steps = torch.tensor([0.3, 0.6, 0.6]).view(1, 3, 1, 1)
    image = torch.cat([torch.zeros(1, 3, 2, 1), steps.expand(1, 3, 2, 2)], dim=3)
    expected = (1 * math.exp(-0.5) + 2 * math.exp(0.0)) / 2
    assert edge_aware_smoothness(field, image).item() == pytest.approx(expected, rel=1e-6)


def test_mean_normalised_disparity_has_unit_mean_per_image():
    disp = torch.rand(2, 1, 4, 6) + torch.tensor([0.1, 5.0]).view(2, 1, 1, 1)
    assert torch.allclose(mean_normalised(disp).mean(dim=(1, 2, 3)), torch.ones(2), atol=1e-5)


def test_min_reprojection_takes_the_per_pixel_minimum():
    a = torch.tensor([[[[0.1, 0.9]]]])
    b = torch.tensor([[[[0.5, 0.2]]]])
    assert torch.equal(min_reprojection([a, b]), torch.tensor([[[[0.1, 0.2]]]]))


def test_automask_keeps_pixels_the_warp_explains_better_and_ties():
    reprojection = torch.tensor([0.1, 0.5, 0.3]).view(1, 1, 1, 3)
    identity = torch.tensor([0.4, 0.2, 0.3]).view(1, 1, 1, 3)
    to_optimise, mask = automask(reprojection, identity)
    assert mask.tolist() == [[[[True, False, True]]]]
    assert torch.allclose(to_optimise, torch.tensor([0.1, 0.2 + 1e-5, 0.3]).view(1, 1, 1, 3))


def test_automask_with_two_sources_compares_against_all_of_them():
    reprojection = torch.tensor([[0.5], [0.6]]).view(1, 2, 1, 1)
    identity = torch.tensor([[0.9], [0.4]]).view(1, 2, 1, 1)
    _, mask = automask(reprojection, identity)
    assert not mask.item()


def shifted_pair(shift=3, height=32, width=64):
    canvas = torch.rand(1, 3, height, width + shift, generator=torch.Generator().manual_seed(7))
    return canvas[..., shift:], canvas[..., :width]  # next(x + shift) = t(x)


def test_pretrain_loss_is_zero_for_identical_frames_and_zero_flow():
    image = torch.rand(1, 3, 32, 64)
    flows = {s: torch.zeros(1, 2, 32 >> s, 64 >> s) for s in range(4)}
    total, parts = pretrain_loss(flows, image, image)
    assert total.item() < 1e-6
    assert parts["smoothness"].item() == 0


def test_pretrain_loss_rescales_coarse_flows_to_full_resolution_pixels():
    frame_t, frame_next = shifted_pair()
    true_flows = {}
    for scale in range(3):
        flow = torch.zeros(1, 2, 32 >> scale, 64 >> scale)
        flow[:, 0] = 3.0 / 2**scale  # the same 3 px motion in pixels of each scale
        true_flows[scale] = flow
    zero_flows = {s: torch.zeros_like(f) for s, f in true_flows.items()}
    right, right_parts = pretrain_loss(true_flows, frame_t, frame_next)
    wrong, _ = pretrain_loss(zero_flows, frame_t, frame_next)
    assert right < 0.2 * wrong
    assert right_parts["photometric/s2"].item() == pytest.approx(right_parts["photometric/s0"].item(), rel=1e-4)
    assert right_parts["smoothness"].item() == pytest.approx(0.0, abs=1e-6)


def test_pretrain_loss_is_photometric_plus_alpha_smoothness():
    frame_t, frame_next = shifted_pair()
    flows = {0: torch.randn(1, 2, 32, 64), 1: torch.randn(1, 2, 16, 32)}
    total, parts = pretrain_loss(flows, frame_t, frame_next, alpha=0.5)
    assert total.item() == pytest.approx((parts["photometric"] + 0.5 * parts["smoothness"]).item(), rel=1e-5)
    assert parts["photometric"].item() == pytest.approx(
        (parts["photometric/s0"] + parts["photometric/s1"]).item() / 2, rel=1e-5
    )


def test_default_pretrain_loss_is_the_papers_formula_by_hand():
    # Constant frames t = 0.2 and t+1 = 0.6: every local variance and covariance is 0, so
    # SSIM = (2ab + C1) / (a^2 + b^2 + C1) everywhere. The flow -0.9 x px (x = column) stays inside
    # the image, so the warped frame is still 0.6, and its x-gradient is 0.9 everywhere.
    a, b = 0.2, 0.6
    frame_t = torch.full((1, 3, 4, 6), a, dtype=torch.float64)
    frame_next = torch.full((1, 3, 4, 6), b, dtype=torch.float64)
    flow = torch.zeros(1, 2, 4, 6, dtype=torch.float64)
    flow[:, 0] = -0.9 * torch.arange(6, dtype=torch.float64)
    total, parts = pretrain_loss({0: flow}, frame_t, frame_next)
    ssim_value = (2 * a * b + C1) / (a * a + b * b + C1)
    photometric = 0.85 * (1 - ssim_value) / 2 + 0.15 * abs(b - a)  # eq. 4, beta = 0.85
    smoothness = (0.9 + 0.0) / 2  # eq. 5: |d_x f| averaged over the two flow channels, flat image, no d_y
    assert parts["photometric"].item() == pytest.approx(photometric, rel=1e-9)
    assert parts["smoothness"].item() == pytest.approx(smoothness, rel=1e-9)
    assert total.item() == pytest.approx(photometric + 0.001 * smoothness, rel=1e-9)  # eq. 3, alpha = 0.001


def test_depth_loss_is_near_zero_for_the_true_stereo_depth_and_larger_for_a_wrong_one():
    from geopre.model.depth import disp_to_depth
    from geopre.model.losses import depth_loss

    torch.manual_seed(0)
    height, width, shift, fx = 32, 64, 4, 50.0
    texture = torch.rand(1, 3, height, width + shift)
    # A fronto-parallel plane with disparity `shift`: left pixel u shows what the right camera
    # sees at u - shift (the right camera sits baseline to the right).
    left = texture[..., :width]
    right = texture[..., shift:]
    K = torch.tensor([[[fx, 0, width / 2], [0, fx, height / 2], [0, 0, 1.0]]])
    pose = torch.eye(4)[None].clone()
    pose[0, 0, 3] = -0.1  # left target, right source, monodepth2's nominal 0.1 baseline

    def loss_for(depth_value):
        scaled = torch.full((1, 1, height, width), 1 / depth_value)
        sigmoid = (scaled - 1 / 100) / (1 / 0.1 - 1 / 100)  # inverse of disp_to_depth
        assert disp_to_depth(sigmoid)[1][0, 0, 0, 0] == pytest.approx(depth_value, rel=1e-4)
        total, parts = depth_loss({0: sigmoid}, left, {"s": right}, K, {"s": pose}, automasking=False)
        return float(parts["photometric"])

    true_depth = fx * 0.1 / shift
    # Only the `shift` left-most columns (no match inside the right image) keep an error.
    assert loss_for(true_depth) < 0.6 * shift / width
    assert loss_for(true_depth * 2) > 5 * loss_for(true_depth)
    assert loss_for(true_depth / 2) > 5 * loss_for(true_depth)

import math

import pytest
import torch

from geopre.model.geometry import (
    axis_angle_to_matrix,
    backproject,
    pixel_grid,
    pose_vec_to_matrix,
    project,
    sample_at_pixels,
    stereo_transform,
    upsample_flow,
    upsample_to,
    warp_with_flow,
)


def shifted_pair(height, width, shift, seed=0):
    """Frame t and a frame t+1 whose content moved ``shift`` pixels right: next(x + shift) = t(x)."""
    generator = torch.Generator().manual_seed(seed)
    canvas = torch.rand(1, 3, height, width + 2 * abs(shift), generator=generator)
    margin = abs(shift)
    frame_t = canvas[..., margin:margin + width]
    frame_next = canvas[..., margin - shift:margin - shift + width]
    return frame_t, frame_next


@pytest.mark.parametrize("width", [64, 96])
def test_integer_flow_warps_a_shifted_frame_back_exactly(width):
    frame_t, frame_next = shifted_pair(32, width, shift=3)
    flow = torch.zeros(1, 2, 32, width)
    flow[:, 0] = 3.0
    warped = warp_with_flow(frame_next, flow)
    # The last three columns would need pixels from beyond the image edge.
    assert torch.allclose(warped[..., : width - 3], frame_t[..., : width - 3], atol=1e-5)


def test_vertical_flow_samples_the_row_below():
    image = torch.rand(1, 1, 6, 5)
    flow = torch.zeros(1, 2, 6, 5)
    flow[:, 1] = 1.0
    assert torch.allclose(warp_with_flow(image, flow)[..., :5, :], image[..., 1:, :], atol=1e-6)


def test_half_pixel_flow_averages_the_two_neighbouring_pixel_centres():
    image = torch.tensor([[[[0.0, 1.0, 4.0, 9.0]]]])
    flow = torch.zeros(1, 2, 1, 4)
    flow[:, 0] = 0.5
    warped = warp_with_flow(image, flow)
    assert torch.allclose(warped[..., :3], torch.tensor([0.5, 2.5, 6.5]), atol=1e-6)


def test_samples_beyond_the_edge_take_the_border_pixel():
    image = torch.tensor([[[[2.0, 3.0, 5.0]]]])
    pixels = torch.tensor([[[[-4.0, 7.0]], [[0.0, 0.0]]]])  # x = -4 and x = 7, y = 0
    assert torch.allclose(sample_at_pixels(image, pixels), torch.tensor([[[[2.0, 5.0]]]]))


def test_pixel_grid_holds_x_then_y():
    grid = pixel_grid(2, 3)
    assert torch.equal(grid[0, 0], torch.tensor([[0.0, 1, 2], [0, 1, 2]]))
    assert torch.equal(grid[0, 1], torch.tensor([[0.0, 0, 0], [1, 1, 1]]))


def test_upsample_flow_doubles_size_and_pixel_values():
    flow = torch.zeros(1, 2, 4, 8)
    flow[:, 0] = 1.5
    flow[:, 1] = -0.25
    full = upsample_flow(flow, (8, 32))  # x by 4, y by 2
    assert full.shape == (1, 2, 8, 32)
    assert torch.allclose(full[:, 0], torch.full((1, 8, 32), 6.0))
    assert torch.allclose(full[:, 1], torch.full((1, 8, 32), -0.5))


def test_upsample_to_is_bilinear_between_cell_centres():
    x = torch.tensor([[[[0.0, 4.0]]]])
    assert torch.allclose(upsample_to(x, (1, 4)), torch.tensor([[[[0.0, 1.0, 3.0, 4.0]]]]))


def intrinsics(batch=1):
    K = torch.tensor([[20.0, 0, 15.5], [0, 20.0, 7.5], [0, 0, 1]])
    return K.expand(batch, 3, 3), torch.linalg.inv(K).expand(batch, 3, 3)


def test_backproject_then_project_with_identity_pose_returns_every_pixel():
    K, inv_K = intrinsics(2)
    depth = 1 + 10 * torch.rand(2, 1, 16, 32)
    points = backproject(depth, inv_K)
    assert torch.allclose(points[:, 2:], depth, atol=1e-5)
    pixels = project(points, K, torch.eye(4).expand(2, 4, 4))
    assert torch.allclose(pixels, pixel_grid(16, 32).expand(2, -1, -1, -1), atol=1e-4)


def test_backproject_accepts_monodepth2_4x4_intrinsics():
    K, inv_K = intrinsics()
    inv_K4 = torch.eye(4)[None].clone()
    inv_K4[:, :3, :3] = inv_K
    depth = torch.full((1, 1, 2, 3), 2.0)
    assert torch.allclose(backproject(depth, inv_K4), backproject(depth, inv_K))


def test_project_moves_pixels_by_focal_times_translation_over_depth():
    K, inv_K = intrinsics()
    depth = torch.full((1, 1, 16, 32), 4.0)
    T = torch.eye(4)[None].clone()
    T[0, 0, 3] = 0.2
    pixels = project(backproject(depth, inv_K), K, T)
    assert torch.allclose(pixels[:, 0] - pixel_grid(16, 32)[:, 0], torch.full((1, 16, 32), 20 * 0.2 / 4.0), atol=1e-4)


def skew(v):
    x, y, z = v
    return torch.tensor([[0.0, -z, y], [z, 0, -x], [-y, x, 0]])


def test_axis_angle_matches_the_matrix_exponential():
    vectors = torch.tensor([[0.3, -0.2, 0.5], [0.0, 0.0, 0.0], [-1.0, 2.0, 0.5]])
    rotations = axis_angle_to_matrix(vectors)
    for vector, rotation in zip(vectors, rotations):
        assert torch.allclose(rotation, torch.linalg.matrix_exp(skew(vector)), atol=1e-5)


def test_quarter_turn_about_z_maps_x_to_y():
    rotation = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]))[0]
    assert torch.allclose(rotation @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0]), atol=1e-6)


def test_pose_rotates_then_translates_and_invert_gives_the_inverse():
    axis_angle = torch.tensor([[0.0, 0.0, math.pi / 2]])
    translation = torch.tensor([[1.0, 2.0, 3.0]])
    T = pose_vec_to_matrix(axis_angle, translation)
    point = torch.tensor([1.0, 0, 0, 1])
    assert torch.allclose(T[0] @ point, torch.tensor([1.0, 3.0, 3.0, 1.0]), atol=1e-6)
    T_inv = pose_vec_to_matrix(axis_angle, translation, invert=True)
    assert torch.allclose(T_inv[0] @ T[0], torch.eye(4), atol=1e-6)


def test_stereo_transform_gives_positive_disparity_from_left_to_right():
    K, inv_K = intrinsics()
    depth = torch.full((1, 1, 4, 8), 5.0)
    T = stereo_transform(0.1, "l")[None]
    pixels = project(backproject(depth, inv_K), K, T)
    # Seen from the right camera a point appears further left by f * b / Z.
    assert torch.allclose(pixel_grid(4, 8)[:, 0] - pixels[:, 0], torch.full((1, 4, 8), 20 * 0.1 / 5), atol=1e-5)
    assert stereo_transform(0.1, "r")[0, 3] == pytest.approx(0.1)
    assert stereo_transform(0.1, "l", flipped=True)[0, 3] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        stereo_transform(0.1, "s")

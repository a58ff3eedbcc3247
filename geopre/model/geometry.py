"""Pure geometry: image warping, camera projection, poses.

Pixel convention (used by every function here): pixel ``(x, y)`` has its centre at the integer
coordinates ``(x, y)``, x to the right and y down, origin at the centre of the top-left pixel. So a
flow of exactly +1 px samples the neighbouring pixel's value exactly, and the intrinsics ``K`` map
camera points to these same coordinates (as in monodepth2 and KITTI calibration).

Sampling uses ``grid_sample(..., align_corners=False)``, where -1 and +1 are the outer edges of the
border pixels; pixel centre ``x`` is therefore at normalised ``(2x + 1) / W - 1``. That is the same
sampling monodepth2 gets from ``x / (W - 1)`` with ``align_corners=True`` (both un-normalise to the
same pixel position), but it stays defined for a 1-pixel-wide image. Out-of-image samples take the
nearest border pixel (``padding_mode="border"``), as monodepth2 does: a constant colour there is a
milder error than the black a zero padding would paste in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Guards the perspective division against points on the camera plane (monodepth2 uses the same).
DEPTH_EPS = 1e-7


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(1, 2, H, W) tensor of pixel-centre coordinates: channel 0 is x, channel 1 is y."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys])[None]


def sample_at_pixels(image: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``image`` (B, C, H, W) at ``pixels`` (B, 2, H', W'), (x, y) in pixels."""
    height, width = image.shape[-2:]
    x_normalised = (2 * pixels[:, 0] + 1) / width - 1
    y_normalised = (2 * pixels[:, 1] + 1) / height - 1
    grid = torch.stack([x_normalised, y_normalised], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def warp_with_flow(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Warp ``image`` (frame t+1) back to frame t: ``out(p) = image(p + flow(p))`` (paper III-B).

    ``flow`` is (B, 2, H, W) in pixels of this resolution, channel 0 horizontal, channel 1
    vertical, and must have the image's spatial size.
    """
    height, width = flow.shape[-2:]
    grid = pixel_grid(height, width, device=flow.device, dtype=flow.dtype)
    return sample_at_pixels(image, grid + flow)


def upsample_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize (B, C, h, w) to ``size`` = (H, W), as monodepth2 up-samples disparities."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def upsample_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a flow field to ``size`` = (H, W) and rescale it to pixels of the new resolution.

    A displacement of 1 px at half resolution is 2 px at full resolution, so each component is
    multiplied by the resize factor of its own axis.
    """
    height, width = flow.shape[-2:]
    resized = upsample_to(flow, size)
    factors = torch.tensor([size[1] / width, size[0] / height], device=flow.device, dtype=flow.dtype)
    return resized * factors.view(1, 2, 1, 1)


def backproject(depth: torch.Tensor, inv_K: torch.Tensor) -> torch.Tensor:
    """Lift every pixel to a 3D camera point: ``D(p) * K^-1 [x, y, 1]^T``.

    ``depth`` is (B, 1, H, W); ``inv_K`` is (B, 3, 3) or (B, 4, 4) (monodepth2 stores 4x4).
    Returns (B, 3, H, W) points in the camera frame.
    """
    batch, _, height, width = depth.shape
    pixels = pixel_grid(height, width, device=depth.device, dtype=depth.dtype).reshape(1, 2, -1)
    homogeneous = torch.cat([pixels, torch.ones_like(pixels[:, :1])], dim=1).expand(batch, -1, -1)
    rays = inv_K[:, :3, :3] @ homogeneous
    return (rays * depth.reshape(batch, 1, -1)).reshape(batch, 3, height, width)


def project(points: torch.Tensor, K: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Move camera points by ``T`` and project them with ``K``: ``lambda(K (R X + t))``.

    ``points`` is (B, 3, H, W), ``K`` (B, 3, 3) or (B, 4, 4), ``T`` (B, 4, 4). Returns (B, 2, H, W)
    pixel coordinates in the convention of this module, ready for :func:`sample_at_pixels`.
    """
    batch, _, height, width = points.shape
    flat = points.reshape(batch, 3, -1)
    moved = T[:, :3, :3] @ flat + T[:, :3, 3:]
    camera = K[:, :3, :3] @ moved
    pixels = camera[:, :2] / (camera[:, 2:] + DEPTH_EPS)
    return pixels.reshape(batch, 2, height, width)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """(B, 3) axis-angle vectors (direction = axis, norm = angle in radians) to (B, 3, 3) rotations.

    Rodrigues' formula, ``R = cos(a) I + sin(a) [k]x + (1 - cos(a)) k k^T``.
    """
    angle = axis_angle.norm(dim=1, keepdim=True)
    # The epsilon keeps a zero rotation finite (axis 0, R = I) and differentiable.
    axis = axis_angle / (angle + DEPTH_EPS)
    cos = torch.cos(angle)[:, :, None]
    sin = torch.sin(angle)[:, :, None]
    x, y, z = axis.unbind(dim=1)
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).reshape(-1, 3, 3)
    identity = torch.eye(3, device=axis_angle.device, dtype=axis_angle.dtype)
    outer = axis[:, :, None] * axis[:, None, :]
    return cos * identity + sin * cross + (1 - cos) * outer


def pose_vec_to_matrix(axis_angle: torch.Tensor, translation: torch.Tensor, invert: bool = False) -> torch.Tensor:
    """(B, 4, 4) transform from a pose network's (B, 3) axis-angle and (B, 3) translation.

    Semantics of monodepth2's ``transformation_from_parameters``: the pose maps ``X`` to
    ``R X + t``; with ``invert`` it returns the exact inverse ``R^T (X - t)``, used when the network
    saw the frame pair in the opposite order.
    """
    rotation = axis_angle_to_matrix(axis_angle)
    shift = translation
    if invert:
        rotation = rotation.transpose(1, 2)
        shift = -(rotation @ translation[:, :, None])[:, :, 0]
    batch = axis_angle.shape[0]
    matrix = torch.eye(4, device=axis_angle.device, dtype=axis_angle.dtype).repeat(batch, 1, 1)
    matrix[:, :3, :3] = rotation
    matrix[:, :3, 3] = shift
    return matrix


def stereo_transform(baseline: float, side: str, flipped: bool = False) -> torch.Tensor:
    """(4, 4) transform from the target camera of a rectified stereo pair to the other camera.

    ``side`` is the target image's side, ``"l"`` or ``"r"``. Seen from the left camera the right
    one sits ``baseline`` to the right, so a left-camera point has x reduced by ``baseline`` in the
    right camera. A horizontally flipped pair swaps the roles, hence ``flipped`` negates the shift
    (monodepth2 applies its fixed 0.1 baseline the same way).
    """
    if side not in ("l", "r"):
        raise ValueError(f"side must be 'l' or 'r', got {side!r}")
    sign = -1.0 if side == "l" else 1.0
    if flipped:
        sign = -sign
    transform = torch.eye(4)
    transform[0, 3] = sign * baseline
    return transform

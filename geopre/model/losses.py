"""Pure loss functions of geometric pretraining (paper III-B) and monodepth2 fine-tuning (IV).

Per-pixel functions return (B, 1, H, W) maps (averaged over colour channels) so that callers can
mask or take per-pixel minima before reducing; the smoothness terms return scalars.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from geopre.model.depth import disp_to_depth
from geopre.model.geometry import backproject, project, sample_at_pixels, upsample_flow, upsample_to, warp_with_flow

# SSIM stabilisers for images in [0, 1]: (0.01 L)^2 and (0.03 L)^2 with dynamic range L = 1.
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2

SSIM_WEIGHT = 0.85  # beta of eq. 4, paper III-B
SMOOTHNESS_WEIGHT = 0.001  # alpha of eq. 3, paper III-B

# Added to the identity (un-warped) error before the auto-mask comparison, so that an exact tie
# (e.g. a textureless region) counts as explained by the warp. monodepth2 adds random noise of
# this size instead; a constant gives the same tie-breaking without making the loss random.
AUTOMASK_TIE_BREAKER = 1e-5


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel, per-channel structural similarity of two (B, C, H, W) images in [0, 1].

    Local statistics are 3x3 box averages over a reflection-padded image (monodepth2's SSIM), so
    the output has the input's size. 1 means identical neighbourhoods.
    """
    def local_mean(z: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(z, (1, 1, 1, 1), mode="reflect"), kernel_size=3, stride=1)

    mu_x = local_mean(x)
    mu_y = local_mean(y)
    var_x = local_mean(x * x) - mu_x * mu_x
    var_y = local_mean(y * y) - mu_y * mu_y
    cov_xy = local_mean(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov_xy + SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return numerator / denominator


def ssim_dissimilarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(1 - SSIM) / 2`` per pixel and channel, clamped to [0, 1]: 0 for identical images.

    The clamp removes the small excursions the box-filter variance estimate can produce.
    """
    return torch.clamp((1 - ssim(x, y)) / 2, 0, 1)


def photometric_error(pred: torch.Tensor, target: torch.Tensor, beta: float = SSIM_WEIGHT) -> torch.Tensor:
    """Paper eq. 4 per pixel: ``beta (1 - SSIM)/2 + (1 - beta) |pred - target|``, channel mean.

    Returns (B, 1, H, W).
    """
    structural = ssim_dissimilarity(pred, target).mean(dim=1, keepdim=True)
    absolute = (pred - target).abs().mean(dim=1, keepdim=True)
    return beta * structural + (1 - beta) * absolute


def edge_aware_smoothness(field: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Paper eq. 5: mean of ``|d_x f| e^{-|d_x I|} + |d_y f| e^{-|d_y I|}``.

    ``field`` is (B, C, H, W) (flow: C = 2, disparity: C = 1) and is averaged over its channels;
    the image gradient is averaged over colour channels, so one weight per pixel lets the field
    change where the image has an edge. Forward differences; each direction is averaged over its
    own valid pixels. Returns a scalar.
    """
    field_dx = (field[:, :, :, 1:] - field[:, :, :, :-1]).abs()
    field_dy = (field[:, :, 1:, :] - field[:, :, :-1, :]).abs()
    image_dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean(dim=1, keepdim=True)
    image_dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean(dim=1, keepdim=True)
    return (field_dx * torch.exp(-image_dx)).mean() + (field_dy * torch.exp(-image_dy)).mean()


def mean_normalised(disp: torch.Tensor) -> torch.Tensor:
    """Divide each disparity map by its spatial mean, as monodepth2 does before smoothness.

    Without it the smoothness term could be lowered by shrinking all disparities, i.e. by moving
    the whole scene away, which the scale-ambiguous photometric loss would not resist.
    """
    return disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)


def min_reprojection(errors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-pixel minimum over source frames of (B, 1, H, W) errors (monodepth2, paper IV).

    A pixel occluded in one source frame is usually visible in the other; the minimum lets that
    view explain it instead of averaging in the occlusion's large error.
    """
    return torch.cat(list(errors), dim=1).min(dim=1, keepdim=True).values


def automask(reprojection: torch.Tensor, identity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """monodepth2's auto-masking: keep a pixel only if warping explains it better than not warping.

    ``reprojection`` is (B, N, H, W), the errors of the N warped source frames; ``identity`` is
    (B, M, H, W), the errors of the un-warped source frames against the target. Pixels that a
    still source frame matches best (a static camera, objects moving with the camera) are masked
    out. Returns the per-pixel loss to optimise, the minimum over all N + M errors, and the (B, 1,
    H, W) boolean mask of pixels where a warped frame won. Ties go to the warped frames, see
    ``AUTOMASK_TIE_BREAKER``.
    """
    combined = torch.cat([identity + AUTOMASK_TIE_BREAKER, reprojection], dim=1)
    to_optimise, winner = combined.min(dim=1, keepdim=True)
    return to_optimise, winner >= identity.shape[1]


def pretrain_loss(
    flows: Mapping[int, torch.Tensor],
    image_t: torch.Tensor,
    image_source: torch.Tensor,
    alpha: float = SMOOTHNESS_WEIGHT,
    beta: float = SSIM_WEIGHT,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Geometric pretraining loss (paper eq. 3), averaged over the predicted scales.

    ``flows[s]`` is the flow from ``image_t`` to ``image_source`` (frame t+1) at 1/2**s of the input
    resolution, in pixels of that resolution. Each is up-sampled to full resolution first (as
    monodepth2 does with its multi-scale disparities), so every scale is judged on the full image
    and coarse scales cannot hide errors in blurred images. Photometric error (eq. 4) is averaged
    over pixels; smoothness (eq. 5) is taken on that full-resolution flow, in full-resolution pixels,
    weighted by ``image_t``'s edges.

    Returns the scalar total and a dict of detached parts: ``photometric``, ``smoothness`` (both
    averaged over scales) and ``photometric/s{s}``, ``smoothness/s{s}`` for each scale.
    """
    size = tuple(image_t.shape[-2:])
    parts: dict[str, torch.Tensor] = {}
    photometric_by_scale = []
    smoothness_by_scale = []
    for scale, flow in sorted(flows.items()):
        full_flow = upsample_flow(flow, size)
        warped = warp_with_flow(image_source, full_flow)
        photometric = photometric_error(warped, image_t, beta=beta).mean()
        smoothness = edge_aware_smoothness(full_flow, image_t)
        photometric_by_scale.append(photometric)
        smoothness_by_scale.append(smoothness)
        parts[f"photometric/s{scale}"] = photometric.detach()
        parts[f"smoothness/s{scale}"] = smoothness.detach()
    photometric_mean = torch.stack(photometric_by_scale).mean()
    smoothness_mean = torch.stack(smoothness_by_scale).mean()
    parts["photometric"] = photometric_mean.detach()
    parts["smoothness"] = smoothness_mean.detach()
    return photometric_mean + alpha * smoothness_mean, parts


def depth_loss(
    disps: Mapping[int, torch.Tensor],
    target: torch.Tensor,
    sources: Mapping[str, torch.Tensor],
    K: torch.Tensor,
    poses: Mapping[str, torch.Tensor],
    min_depth: float = 0.1,
    max_depth: float = 100.0,
    smoothness_weight: float = SMOOTHNESS_WEIGHT,
    automasking: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """monodepth2's self-supervised depth loss (paper IV), averaged over scales.

    ``disps[s]`` is the depth network's sigmoid output at 1/2**s resolution; ``target`` the
    (B, 3, H, W) un-augmented target image; ``sources[f]`` the source frames and ``poses[f]``
    the (B, 4, 4) transforms from the target camera to each source camera (pose network output
    for temporal frames, the known stereo transform for ``"s"``); ``K`` (B, 3, 3) full-resolution
    intrinsics. Per scale: the disparity is up-sampled to full resolution and turned into depth,
    every source is warped into the target view, the per-pixel minimum photometric error over
    sources is taken (with auto-masking against the un-warped sources, as monodepth2 does by
    default in every mode) and averaged; the edge-aware smoothness of the mean-normalised
    disparity at that scale, against the target at that scale, is added with weight
    ``smoothness_weight / 2**s``.

    Returns the total and detached parts: ``photometric``, ``smoothness``, ``automask``
    (fraction of pixels where a warped source won, at full resolution, over scales).
    """
    size = tuple(target.shape[-2:])
    inv_K = torch.linalg.inv(K[:, :3, :3].float()).to(K.dtype)
    frame_ids = sorted(sources)
    identity = [photometric_error(sources[f], target) for f in frame_ids] if automasking else []
    photometric_terms, smoothness_terms, kept_fractions = [], [], []
    for scale, disp in sorted(disps.items()):
        _, depth = disp_to_depth(upsample_to(disp, size), min_depth, max_depth)
        points = backproject(depth, inv_K)
        warped_errors = [
            photometric_error(sample_at_pixels(sources[f], project(points, K, poses[f])), target) for f in frame_ids
        ]
        if automasking:
            per_pixel, kept = automask(torch.cat(warped_errors, dim=1), torch.cat(identity, dim=1))
            kept_fractions.append(kept.float().mean())
        else:
            per_pixel = min_reprojection(warped_errors)
        photometric_terms.append(per_pixel.mean())
        image_at_scale = F.interpolate(target, size=disp.shape[-2:], mode="area") if scale else target
        smoothness_terms.append(edge_aware_smoothness(mean_normalised(disp), image_at_scale) / 2**scale)
    photometric = torch.stack(photometric_terms).mean()
    smoothness = torch.stack(smoothness_terms).mean()
    parts = {"photometric": photometric.detach(), "smoothness": smoothness.detach()}
    if kept_fractions:
        parts["automask"] = torch.stack(kept_fractions).mean().detach()
    return photometric + smoothness_weight * smoothness, parts

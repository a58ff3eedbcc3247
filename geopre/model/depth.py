"""Depth and pose networks for monodepth2-style fine-tuning (paper IV).

The depth network's encoder is where a geometrically pretrained structure encoder goes: both are
:class:`~geopre.model.resnet.ResnetEncoder` with torchvision parameter names, so its state dict
loads directly into ``DepthNet.encoder``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from geopre.errors import UserError
from geopre.model.layers import DECODER_CHANNELS, Conv3x3, SkipDecoderTrunk
from geopre.model.resnet import ResnetEncoder

# monodepth2 scales the raw pose output so an untrained network predicts nearly no motion; a
# large initial pose would warp the images far apart and give the depth network no usable signal.
POSE_OUTPUT_SCALE = 0.01
POSE_CHANNELS = 256  # monodepth2's pose decoder width


class DepthDecoder(nn.Module):
    """Encoder features -> sigmoid disparity in (0, 1) at ``scales`` resolutions (monodepth2).

    ``outputs[s]`` is (B, 1, H / 2**s, W / 2**s). Same trunk as the flow decoder; the heads differ.
    Use :func:`disp_to_depth` to turn the output into depth.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        scales: int = 4,
        decoder_channels: Sequence[int] = DECODER_CHANNELS,
    ):
        super().__init__()
        if not 1 <= scales <= 5:
            raise UserError(f"the depth decoder predicts 1 to 5 scales, got {scales}")
        self.scales = scales
        self.trunk = SkipDecoderTrunk(encoder_channels[-1], encoder_channels, decoder_channels)
        self.heads = nn.ModuleList(Conv3x3(decoder_channels[scale], 1) for scale in range(scales))

    def forward(self, features: Sequence[torch.Tensor]) -> dict[int, torch.Tensor]:
        levels = self.trunk(features[-1], features)
        return {scale: torch.sigmoid(self.heads[scale](levels[scale])) for scale in range(self.scales)}

    @torch.no_grad()
    def start_at(self, disp: float) -> None:
        """Bias every head so an untrained decoder outputs about ``disp`` (a sigmoid value in (0, 1)).

        Zero biases start at 0.5, which :func:`disp_to_depth` maps to 0.2 m: views warped by such
        depths fall outside the image and the loss gives little signal until the heads' logits
        have drifted by several units at Adam's 1e-4 per step, a plateau of hundreds of steps.
        """
        if not 0 < disp < 1:
            raise UserError(f"a starting disparity must lie in (0, 1), got {disp}")
        for head in self.heads:
            head.conv.bias.fill_(math.log(disp / (1 - disp)))


class DepthNet(nn.Module):
    """Single image (B, 3, H, W) in [0, 1] -> ``{scale: disparity}`` (encoder + DepthDecoder)."""

    def __init__(self, arch: str = "resnet18", scales: int = 4):
        super().__init__()
        self.encoder = ResnetEncoder(arch, num_input_images=1)
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, scales)

    def forward(self, image: torch.Tensor) -> dict[int, torch.Tensor]:
        return self.decoder(self.encoder(image))


class PoseDecoder(nn.Module):
    """Deepest encoder feature of a frame pair -> (B, 3) axis-angle and (B, 3) translation.

    monodepth2's pose head: 1x1 squeeze, two 3x3 convolutions, a 1x1 to six numbers, mean over
    space, then the small output scale (``POSE_OUTPUT_SCALE``).
    """

    def __init__(self, in_channels: int):
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, POSE_CHANNELS, kernel_size=1)
        self.conv1 = nn.Conv2d(POSE_CHANNELS, POSE_CHANNELS, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(POSE_CHANNELS, POSE_CHANNELS, kernel_size=3, padding=1)
        self.out = nn.Conv2d(POSE_CHANNELS, 6, kernel_size=1)
        self.relu = nn.ReLU()

    def forward(self, deepest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.relu(self.squeeze(deepest))
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        pose = POSE_OUTPUT_SCALE * self.out(x).mean(dim=(2, 3))
        return pose[:, :3], pose[:, 3:]

    @torch.no_grad()
    def start_moving(self, forward: float) -> None:
        """Bias the output so an untrained decoder says the camera moved ``forward`` along its
        optical axis from the first frame of a pair to the second (translation (0, 0, -forward)).

        A random decoder's translations are ~1e-3 and grow by ~1e-5 per Adam step at 1e-4 (the
        output scale is 0.01): consistent with monodepth2's ~0.2 m starting depth, but ~1000x too
        small for a decoder started at ~10 m (:meth:`DepthDecoder.start_at`), whose warps then stay
        the identity and give the depth network no gradient. Monocular depth has no scale of its
        own, so a forward motion matched to the starting depth (a tenth of it for a car at 10 Hz)
        only fixes the units the two networks agree on.
        """
        if not forward > 0:
            raise UserError(f"a starting forward motion must be positive, got {forward}")
        self.out.bias[3:5] = 0.0
        self.out.bias[5] = -forward / POSE_OUTPUT_SCALE


class PoseNet(nn.Module):
    """Frame pair -> relative camera pose (monodepth2's separate ResNet pose network).

    ``forward(frame_a, frame_b)`` stacks the frames into 6 channels. Turn the output into the
    transform from ``frame_a``'s camera to ``frame_b``'s with
    :func:`~geopre.model.geometry.pose_vec_to_matrix`; monodepth2 always feeds the temporally
    earlier frame first and inverts for the previous frame, so the network sees one direction.
    """

    def __init__(self, arch: str = "resnet18"):
        super().__init__()
        self.encoder = ResnetEncoder(arch, num_input_images=2)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc[-1])

    def forward(self, frame_a: torch.Tensor, frame_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder(self.encoder(torch.cat([frame_a, frame_b], dim=1))[-1])


def disp_to_depth(
    disp: torch.Tensor, min_depth: float = 0.1, max_depth: float = 100.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid output -> (scaled disparity, depth), monodepth2's ``disp_to_depth``.

    The sigmoid is mapped linearly onto disparities [1/max_depth, 1/min_depth], so depth is
    bounded to [min_depth, max_depth]; depth = 1 / scaled disparity.
    """
    min_disp = 1 / max_depth
    max_disp = 1 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1 / scaled_disp


def depth_to_disp(depth: float, min_depth: float = 0.1, max_depth: float = 100.0) -> float:
    """The sigmoid output that :func:`disp_to_depth` maps to ``depth`` (its inverse)."""
    if not min_depth < depth < max_depth:
        raise UserError(f"a depth must lie strictly between {min_depth} and {max_depth}, got {depth}")
    min_disp, max_disp = 1 / max_depth, 1 / min_depth
    return (1 / depth - min_disp) / (max_disp - min_disp)

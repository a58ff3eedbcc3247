"""Small convolutional building blocks shared by the flow, depth and pose decoders."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Decoder widths from the finest level (full resolution) to the coarsest (1/16): monodepth2's
# depth decoder, used by both our decoders.
DECODER_CHANNELS = (16, 32, 64, 128, 256)


class Conv3x3(nn.Module):
    """3x3 convolution that keeps the spatial size.

    Reflection padding rather than zeros: a zero border looks like a dark frame around the image,
    which decoders predicting dense maps (flow, disparity) learn as a spurious edge. A map one
    pixel high or wide (the 1/32 features of a 32-pixel image) has nothing to reflect; its mirror
    image is the pixel itself, so it is padded by replication, which is exactly that.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
        return self.conv(F.pad(x, (1, 1, 1, 1), mode=mode))


class ConvBlock(nn.Module):
    """Conv3x3 followed by ELU, the decoder unit of monodepth2.

    ELU instead of ReLU keeps a gradient for negative pre-activations, which matters in small
    decoders whose every channel counts.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.activation = nn.ELU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x))


def upsample_nearest_x2(x: torch.Tensor) -> torch.Tensor:
    """Double the spatial size by nearest-neighbour up-sampling (paper III-A-3: nearest-upsample)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


class SkipDecoderTrunk(nn.Module):
    """The up-sampling trunk shared by the flow decoder and the depth decoder.

    Five levels, coarse to fine. Level ``i`` runs a ConvBlock on the incoming map, up-samples it x2
    (nearest), concatenates the encoder feature of the same resolution (a skip connection; level 0
    has none, the encoder has no full-resolution feature) and runs a second ConvBlock. That is two
    convolutions per level, ten in all. The output of level ``i`` has ``decoder_channels[i]``
    channels at 1/2**i of the input resolution, so heads for "scale i" attach to it.
    """

    def __init__(
        self,
        bottom_channels: int,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int] = DECODER_CHANNELS,
    ):
        super().__init__()
        if len(encoder_channels) != 5 or len(decoder_channels) != 5:
            raise ValueError("the trunk expects five encoder and five decoder channel counts")
        self.decoder_channels = tuple(decoder_channels)
        self.reduce = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for level in range(5):
            incoming = bottom_channels if level == 4 else decoder_channels[level + 1]
            self.reduce.append(ConvBlock(incoming, decoder_channels[level]))
            skip = encoder_channels[level - 1] if level > 0 else 0
            self.fuse.append(ConvBlock(decoder_channels[level] + skip, decoder_channels[level]))

    def forward(self, bottom: torch.Tensor, encoder_features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Return the five level outputs, index ``i`` at 1/2**i of the input resolution."""
        coarse_to_fine: list[torch.Tensor] = []
        x = bottom
        for level in range(4, -1, -1):
            x = upsample_nearest_x2(self.reduce[level](x))
            if level > 0:
                x = torch.cat([x, encoder_features[level - 1]], dim=1)
            x = self.fuse[level](x)
            coarse_to_fine.append(x)
        return coarse_to_fine[::-1]

"""The geometric-pretraining network (paper III-A): structure encoder, motion encoder, flow decoder.

The structure encoder sees only frame t, the motion encoder sees frames t and t+1 but must squeeze
everything into a short vector, and the decoder reconstructs the dense flow from both. Since the
motion path is far too narrow to carry a flow field (128 numbers against 640x192x2), the structure
encoder is forced to supply the scene's geometry; that encoder is what depth fine-tuning reuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from geopre.errors import UserError
from geopre.model.geometry import upsample_flow
from geopre.model.layers import DECODER_CHANNELS, Conv3x3, SkipDecoderTrunk
from geopre.model.resnet import ResnetEncoder

# Shrinks the flow heads' initial weights so an untrained decoder predicts nearly zero flow.
HEAD_INIT_SCALE = 0.01


@dataclass(frozen=True)
class PretrainModelConfig:
    """Architecture of the pretraining network; defaults are the paper's."""

    arch: str = "resnet18"  # structure encoder: standard ResNet-18, paper III-A-1 (ResNet-50 for kcd_hd, Table I)
    motion_arch: str = "resnet18"  # motion encoder: monodepth2's pose ResNet on stacked frames, paper III-A-2
    motion_dim: int = 128  # latent motion vector size, paper III-A-2
    # Coarse-to-fine flow heads at 1/1, 1/2, 1/4, 1/8 (paper III-A-3; monodepth2's four scales).
    # With the trunk's ten convolutions, four heads make the paper's 14 decoder layers.
    scales: int = 4
    decoder_channels: tuple[int, ...] = DECODER_CHANNELS  # monodepth2's decoder widths


class MotionEncoder(nn.Module):
    """Two stacked frames -> a latent motion vector of ``motion_dim`` numbers (paper III-A-2).

    A ResNet over the 6-channel frame pair, global average pooling of its deepest features, then a
    linear bottleneck. The pooled vector has no spatial layout, so the flow's spatial detail must
    come from the structure encoder.
    """

    def __init__(self, arch: str = "resnet18", motion_dim: int = 128):
        super().__init__()
        self.encoder = ResnetEncoder(arch, num_input_images=2)
        self.bottleneck = nn.Linear(self.encoder.num_ch_enc[-1], motion_dim)

    def forward(self, image_t: torch.Tensor, image_next: torch.Tensor) -> torch.Tensor:
        deepest = self.encoder(torch.cat([image_t, image_next], dim=1))[-1]
        return self.bottleneck(deepest.mean(dim=(2, 3)))


class FlowDecoder(nn.Module):
    """Structure features + motion vector -> optical flow at ``scales`` resolutions (paper III-A-3).

    The motion vector is tiled over the deepest structure feature's grid and concatenated with it;
    the shared :class:`SkipDecoderTrunk` (ten ConvBlocks, nearest x2 up-sampling, skips to the
    structure encoder) decodes that, and one 3x3 convolution per scale predicts two flow channels.
    Layer count, as the paper's "14 layers": 10 trunk convolutions + 4 flow heads = 14 ``Conv2d``.

    Flow units: ``flows[s]`` is at 1/2**s of the input resolution and measured in pixels of that
    resolution, so ``flows[0]`` is the flow at the input resolution in input pixels. Coarse to
    fine: the coarsest head predicts the flow outright; each finer head predicts a correction added
    to the coarser flow up-sampled x2 (and so doubled in pixel units).
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        motion_dim: int = 128,
        scales: int = 4,
        decoder_channels: Sequence[int] = DECODER_CHANNELS,
    ):
        super().__init__()
        if not 1 <= scales <= 5:
            raise UserError(f"the flow decoder predicts 1 to 5 scales, got {scales}")
        self.scales = scales
        self.trunk = SkipDecoderTrunk(encoder_channels[-1] + motion_dim, encoder_channels, decoder_channels)
        self.heads = nn.ModuleList(Conv3x3(decoder_channels[scale], 2) for scale in range(scales))
        for head in self.heads:
            # Start from (almost) zero flow. With default initialisation the heads' outputs, summed
            # coarse to fine and doubled at each step, begin several pixels off in a random
            # direction; flows that point outside the image sample the constant border and get no
            # photometric gradient back. Small, not zero, so gradients reach the trunk at step one.
            with torch.no_grad():
                head.conv.weight.mul_(HEAD_INIT_SCALE)
                head.conv.bias.zero_()

    def forward(self, structure_features: Sequence[torch.Tensor], motion: torch.Tensor) -> dict[int, torch.Tensor]:
        deepest = structure_features[-1]
        tiled_motion = motion[:, :, None, None].expand(-1, -1, *deepest.shape[-2:])
        levels = self.trunk(torch.cat([deepest, tiled_motion], dim=1), structure_features)
        flows: dict[int, torch.Tensor] = {}
        flow = None
        for scale in range(self.scales - 1, -1, -1):
            correction = self.heads[scale](levels[scale])
            flow = correction if flow is None else upsample_flow(flow, correction.shape[-2:]) + correction
            flows[scale] = flow
        return dict(sorted(flows.items()))


class GeometricPretrainNet(nn.Module):
    """Structure encoder (frame t) + motion encoder (frames t, t+1) + flow decoder (paper Fig. 2a).

    ``forward(image_t, image_next)`` takes (B, 3, H, W) images in [0, 1], H and W multiples of 32,
    and returns ``{scale: flow}`` as described in :class:`FlowDecoder`; ``flows[0]`` is at the
    input resolution. The flow maps frame t to frame t+1: ``image_t(p) ~ image_next(p + flow(p))``.
    """

    def __init__(self, config: PretrainModelConfig = PretrainModelConfig()):
        super().__init__()
        self.config = config
        self.structure_encoder = ResnetEncoder(config.arch, num_input_images=1)
        self.motion_encoder = MotionEncoder(config.motion_arch, config.motion_dim)
        self.flow_decoder = FlowDecoder(
            self.structure_encoder.num_ch_enc, config.motion_dim, config.scales, config.decoder_channels
        )

    def forward(self, image_t: torch.Tensor, image_next: torch.Tensor | list[torch.Tensor]) -> dict[int, torch.Tensor]:
        """``image_next`` may be a list of frames (e.g. [I_t+1, I_t-1]): the flows to each are then
        stacked along the batch in that order, and frame t's structure is encoded once and shared
        by every pair (one encoder pass saved per extra frame; same result as one call per pair)."""
        sources = image_next if isinstance(image_next, (list, tuple)) else [image_next]
        structure = self.structure_encoder(image_t)
        n = len(sources)
        motion = self.motion_encoder(torch.cat([image_t] * n), torch.cat(list(sources)))
        return self.flow_decoder([torch.cat([f] * n) for f in structure] if n > 1 else structure, motion)

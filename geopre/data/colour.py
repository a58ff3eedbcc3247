"""Colour augmentation for frame stacks, vectorised over a batch (one kernel chain, not a loop).

monodepth2's jitter (brightness, contrast, saturation 0.8-1.2, hue +-0.1, drawn with probability
1/2) is applied with one draw per sample to all of its frames, so the frames of a triplet or a
stereo pair keep exactly the same colour map and the photometric loss stays meaningful.
"""

from __future__ import annotations

import torch

IDENTITY = (1.0, 1.0, 1.0, 0.0)  # brightness, contrast, saturation factors; hue shift (turns)


def _grey(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, as torchvision's rgb_to_grayscale; keeps a channel axis of 1."""
    r, g, b = rgb.unbind(dim=-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(dim=-3)
    maxc, _ = rgb.max(dim=-3)
    minc, _ = rgb.min(dim=-3)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], dim=-3)


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Branch-free HSV -> RGB: channel n is v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6."""
    h, s, v = hsv.unbind(dim=-3)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (n + h * 6.0) % 6.0
        channels.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(channels, dim=-3)


def jitter_colours(frames: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """``frames`` (B, F, 3, H, W) in [0, 1]; ``factors`` (B, 4) = brightness, contrast, saturation,
    hue per sample. Contrast pivots on the mean grey of all of a sample's frames. Samples whose
    factors are the identity come back unchanged, bit for bit."""
    identity = (factors == torch.tensor(IDENTITY, dtype=factors.dtype)).all(dim=1)
    if identity.all():
        return frames
    # Only the jittered samples (about half, with monodepth2's probability) go through the chain.
    changed = torch.nonzero(~identity).squeeze(1)
    out = frames.clone()
    out[changed.to(frames.device)] = _jitter(frames[changed.to(frames.device)], factors[changed])
    return out


def _jitter(frames: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    f = factors.to(frames.device, frames.dtype).view(-1, 4, 1, 1, 1, 1).unbind(1)
    brightness, contrast, saturation, hue = f
    out = (frames * brightness).clamp(0, 1)
    mean_grey = _grey(out).mean(dim=(1, 2, 3, 4), keepdim=True)
    out = (out * contrast + mean_grey * (1 - contrast)).clamp(0, 1)
    out = (out * saturation + _grey(out) * (1 - saturation)).clamp(0, 1)
    hsv = _rgb_to_hsv(out)
    hsv = torch.stack([(hsv[..., 0, :, :] + hue.squeeze(-3)) % 1.0, hsv[..., 1, :, :], hsv[..., 2, :, :]], dim=-3)
    return _hsv_to_rgb(hsv)

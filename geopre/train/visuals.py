"""Pictures of what a network sees and predicts, for logs and reports."""

from __future__ import annotations

import numpy as np
import torch


def flow_to_colour(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """(2, H, W) flow -> (H, W, 3) uint8 on the usual colour wheel: hue = direction, saturation =
    magnitude (white = no motion). ``max_magnitude`` fixes the scale (default: the largest)."""
    u, v = flow[0].astype(np.float64), flow[1].astype(np.float64)
    magnitude = np.hypot(u, v)
    scale = max_magnitude or max(float(magnitude.max()), 1e-6)
    hue = (np.arctan2(-v, -u) / np.pi + 1.0) / 2.0  # [0, 1)
    saturation = np.clip(magnitude / scale, 0.0, 1.0)
    h6 = hue * 6.0
    i = np.floor(h6).astype(int) % 6
    f = h6 - np.floor(h6)
    p, q, t = 1 - saturation, 1 - saturation * f, 1 - saturation * (1 - f)
    one = np.ones_like(saturation)
    r = np.choose(i, [one, q, p, p, t, one])
    g = np.choose(i, [t, one, one, q, p, p])
    b = np.choose(i, [p, p, t, one, one, q])
    return (np.stack([r, g, b], axis=-1) * 255).round().astype(np.uint8)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    return (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def error_map(error: torch.Tensor) -> np.ndarray:
    """(1, H, W) per-pixel error -> grey (H, W, 3) uint8, scaled to its 99th percentile."""
    e = error.detach().float().squeeze(0).cpu().numpy()
    top = max(float(np.percentile(e, 99)), 1e-6)
    grey = (np.clip(e / top, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def grid(tiles: list[np.ndarray], columns: int = 1) -> np.ndarray:
    """Stack equally sized (H, W, 3) tiles into rows of ``columns``."""
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, axis=0)

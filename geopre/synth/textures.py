"""Photographic textures for the synthetic world: real photographs tiled over its surfaces.

Procedural noise has none of the statistics of real images (edges, occlusions, 1/f spectra,
materials), so walls, ground, trees and billboards sample photographs that ship inside
scikit-image's installed package (``skimage/data``: brick, gravel, grass and a handful of colour
photos). Only the bundled files are read, by path, so nothing is downloaded and the pixels are
those pinned by scikit-image's data registry hashes.

Each texture is a mip pyramid packed into one flat array so a single gather samples every pixel
at its own level. The level follows the pixel's footprint on the surface (trilinear filtering):
detail finer than a pixel fades out instead of aliasing, so a surface keeps its colour from frame
to frame and the right stereo image is the left one warped.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from geopre.errors import UserError

SIZE = 256  # texels per side at level 0; photos are resized to it
# Grey materials (zero-mean, unit-variance detail) and colour photos (for signs and posters).
MATERIALS = ("brick.png", "gravel.png", "grass.png", "camera.png", "moon.png", "rocket.jpg")
BRICK, GRAVEL, GRASS, CAMERA, MOON, ROCKET = range(len(MATERIALS))
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "color.png",
          "hubble_deep_field.jpg", "retina.jpg")


def _data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the synthetic world's textures come from scikit-image's bundled photos: "
                        "pip install scikit-image")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@dataclass(frozen=True)
class Atlas:
    """Mip pyramids of several same-size textures packed into one array."""

    texels: np.ndarray  # (total, C) float32
    offsets: np.ndarray  # (count, levels) int64: start of texture k's level l in ``texels``
    levels: int

    def sizes(self, level: np.ndarray) -> np.ndarray:
        return SIZE >> level


def _pyramid(image: np.ndarray) -> list[np.ndarray]:
    levels = [image]
    while levels[-1].shape[0] > 1:
        a = levels[-1]
        levels.append(0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))
    return levels


def _load(name: str, colour: bool) -> np.ndarray:
    path = _data_dir() / name
    if not path.exists():
        raise UserError(f"scikit-image's bundled photo {name} is missing from {path.parent}; reinstall scikit-image")
    with Image.open(path) as image:
        image = image.convert("RGB" if colour else "L")
        side = min(image.size)
        left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return np.asarray(image, np.float32) / 255.0


def _atlas(images: list[np.ndarray]) -> Atlas:
    pyramids = [_pyramid(im if im.ndim == 3 else im[..., None]) for im in images]
    levels = len(pyramids[0])
    flat, offsets, start = [], np.zeros((len(images), levels), np.int64), 0
    for k, pyramid in enumerate(pyramids):
        for level, array in enumerate(pyramid):
            offsets[k, level] = start
            flat.append(array.reshape(-1, array.shape[-1]))
            start += len(flat[-1])
    return Atlas(np.concatenate(flat).astype(np.float32), offsets, levels)


@lru_cache(maxsize=None)
def materials() -> Atlas:
    """Grey surface materials, each normalised to zero mean and unit standard deviation."""
    images = []
    for name in MATERIALS:
        grey = _load(name, colour=False)
        images.append((grey - grey.mean()) / max(float(grey.std()), 1e-3))
    return _atlas(images)


@lru_cache(maxsize=None)
def photos() -> Atlas:
    """Colour photographs in [0, 1] for billboards and posters."""
    return _atlas([_load(name, colour=True) for name in PHOTOS])


def _mirror(i: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Mirrored repeat: tiles meet without a seam."""
    m = np.mod(i, 2 * size)
    return np.where(m >= size, 2 * size - 1 - m, m)


def sample(atlas: Atlas, texture: np.ndarray, u: np.ndarray, v: np.ndarray, texel: np.ndarray,
           footprint: np.ndarray) -> np.ndarray:
    """Trilinear samples (M, C) of ``texture`` (M,) at surface coordinates ``u, v`` (metres) with
    ``texel`` metres per level-0 texel, for pixels of ``footprint`` metres."""
    lod = np.log2(np.maximum(1.5 * footprint / texel, 1.0)).astype(np.float32)
    lod = np.minimum(lod, atlas.levels - 1)
    base = np.floor(lod).astype(np.int64)
    frac = (lod - base)[:, None]
    out = None
    for level, weight in ((base, 1.0 - frac), (np.minimum(base + 1, atlas.levels - 1), frac)):
        size = SIZE >> level
        scale = (1 << level).astype(np.float32) * texel
        x = (u / scale).astype(np.float32) - 0.5
        y = (v / scale).astype(np.float32) - 0.5
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = (x - x0)[:, None], (y - y0)[:, None]
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        start = atlas.offsets[texture, level]
        xs = (_mirror(x0, size), _mirror(x0 + 1, size))
        ys = (_mirror(y0, size), _mirror(y0 + 1, size))
        t = atlas.texels
        top = t[start + ys[0] * size + xs[0]] * (1 - fx) + t[start + ys[0] * size + xs[1]] * fx
        bottom = t[start + ys[1] * size + xs[0]] * (1 - fx) + t[start + ys[1] * size + xs[1]] * fx
        value = (top * (1 - fy) + bottom * fy) * weight
        out = value if out is None else out + value
    return out

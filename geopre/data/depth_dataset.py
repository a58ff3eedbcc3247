"""PyTorch datasets for depth fine-tuning and evaluation on KITTI-raw-style trees.

One item of :class:`KittiDepthDataset` follows monodepth2's training sample: the target frame,
its temporal neighbours (monocular modes) and/or the other camera of the stereo pair (stereo
modes), all resized to the training size; the intrinsics read from the drive's calibration and
scaled to that size; colour-jittered copies for the network input (the loss sees the originals);
and a random horizontal flip that also flips the sign of the stereo baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from geopre.data import camera, kitti
from geopre.data.colour import jitter_colours
from geopre.errors import UserError

STEREO = "s"  # frame id of the other stereo camera, as in monodepth2

# monodepth2's colour augmentation: applied with probability 1/2, same parameters for every frame.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.2, 0.2, 0.2, 0.1


def frame_ids_for(mode: str) -> tuple:
    """Frames a training sample needs: S = stereo pair, M = triplet, MS = both (paper IV)."""
    ids = {"S": (0, STEREO), "M": (0, -1, 1), "MS": (0, -1, 1, STEREO)}
    if mode not in ids:
        raise UserError(f"--mode must be S, M or MS (got {mode!r})")
    return ids[mode]


def subset_indices(count: int, fraction: float, seed: int) -> np.ndarray:
    """A deterministic random subset of ``ceil(fraction * count)`` items (few-shot study, V-B)."""
    if not 0 < fraction <= 1:
        raise UserError(f"--fraction must be in (0, 1] (got {fraction})")
    keep = max(1, math.ceil(fraction * count))
    return np.sort(np.random.default_rng(seed).permutation(count)[:keep])


def image_tensor(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """A PIL image as a (3, H, W) float tensor in [0, 1], resized to ``size`` = (W, H) with
    Lanczos, as monodepth2's loader does."""
    image = image.convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.LANCZOS)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def load_image(path: Path, size: tuple[int, int], keep_rows: int | None = None) -> torch.Tensor:
    """:func:`image_tensor` of an image file; ``keep_rows`` first drops every row below it (the
    Cityscapes bonnet)."""
    with Image.open(path) as image:
        if keep_rows is not None:
            image = image.crop((0, 0, image.width, keep_rows))
        return image_tensor(image, size)


def colour_jitter(images: dict, generator: torch.Generator) -> dict:
    """One random brightness/contrast/saturation/hue draw applied to every frame of the sample."""
    def draw(spread):
        return float(1 - spread + 2 * spread * torch.rand((), generator=generator))

    factors = torch.tensor([[draw(BRIGHTNESS), draw(CONTRAST), draw(SATURATION),
                             float((torch.rand((), generator=generator) * 2 - 1) * HUE)]])
    keys = list(images)
    stacked = jitter_colours(torch.stack([images[k] for k in keys])[None], factors)[0]
    return dict(zip(keys, stacked.unbind(0)))


@dataclass(frozen=True)
class DepthDataConfig:
    root: Path
    split_file: Path
    width: int = 640  # paper III-D / monodepth2 default training size
    height: int = 192
    mode: str = "M"
    train: bool = True
    fraction: float = 1.0
    seed: int = 0


class KittiDepthDataset(torch.utils.data.Dataset):
    def __init__(self, config: DepthDataConfig):
        self.config = config
        self.tree = kitti.KittiRawTree(config.root)
        self.frame_ids = frame_ids_for(config.mode)
        entries = kitti.read_split(config.split_file)
        if not entries:
            raise UserError(f"{config.split_file}: the split file lists no frames")
        self.entries = [entries[i] for i in subset_indices(len(entries), config.fraction, config.seed)]
        self._calibration: dict[str, kitti.CameraCalibration] = {}
        self._epoch = 0

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        """Augmentation draws depend on (seed, epoch, index), so a resumed run sees the same data."""
        self._epoch = epoch

    def calibration(self, folder: str) -> kitti.CameraCalibration:
        date = Path(folder).parts[0]
        if date not in self._calibration:
            self._calibration[date] = self.tree.calibration(folder)
        return self._calibration[date]

    def __getitem__(self, index: int) -> dict:
        cfg = self.config
        entry = self.entries[index]
        size = (cfg.width, cfg.height)
        generator = torch.Generator().manual_seed(hash((cfg.seed, self._epoch, index)) & 0x7FFFFFFF)
        flip = cfg.train and bool(torch.rand((), generator=generator) < 0.5)
        jitter = cfg.train and bool(torch.rand((), generator=generator) < 0.5)
        other_side = {"l": "r", "r": "l"}[entry.side]
        images = {}
        for fid in self.frame_ids:
            if fid == STEREO:
                path = self.tree.image_path(entry.folder, entry.frame_index, other_side)
            else:
                path = self.tree.image_path(entry.folder, entry.frame_index + fid, entry.side)
            images[fid] = load_image(path, size)
        if flip:
            images = {k: torch.flip(v, dims=[2]) for k, v in images.items()}
        augmented = colour_jitter(images, generator) if jitter else images
        calib = self.calibration(entry.folder)
        full = calib.intrinsics(kitti.SIDE_TO_CAMERA[entry.side])
        K = camera.to_matrix(camera.transform(camera.from_matrix(full), (0, 0, *calib.image_size), size, flip))
        # Stereo transform: the other camera sits on the right of a left image (and vice versa);
        # a flip swaps the two. monodepth2 trains with a unit baseline of 0.1 (so S-mode depth is in
        # units of baseline / 0.1; evaluation multiplies by baseline / 0.1 = 5.4 on KITTI).
        side_sign = -1.0 if entry.side == "l" else 1.0
        flip_sign = -1.0 if flip else 1.0
        return {
            "images": {str(k): v for k, v in images.items()},
            "inputs": {str(k): v for k, v in augmented.items()},
            "K": torch.from_numpy(K.astype(np.float32)),
            "stereo_tx": torch.tensor(side_sign * flip_sign * 0.1, dtype=torch.float32),
            "baseline": torch.tensor(calib.stereo_baseline, dtype=torch.float32),
            "index": torch.tensor(index),
        }

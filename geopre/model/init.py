"""Where encoder weights come from: scratch, ImageNet (torchvision's file), or a file of ours.

Nothing is downloaded: ImageNet weights are used only when torchvision's file is already in the
torch hub cache or given explicitly, so runs are reproducible offline and never stall on a fetch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from geopre.errors import UserError
from geopre.model.resnet import ResnetEncoder, load_encoder_file

# torchvision's published ImageNet checkpoints (IMAGENET1K_V1), by architecture.
IMAGENET_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
}


def imagenet_weights_path(arch: str, explicit: Path | None = None) -> Path:
    """The ImageNet weights file for ``arch``: ``explicit`` if given, else torchvision's file in
    the torch hub cache; a one-line UserError says where to put it when there is none."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise UserError(f"--imagenet-weights {explicit}: no such file")
        return Path(explicit)
    if arch not in IMAGENET_FILES:
        raise UserError(f"no ImageNet weights known for {arch!r} (choose from {', '.join(IMAGENET_FILES)})")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILES[arch]
    if not cached.is_file():
        raise UserError(f"ImageNet weights for {arch} not found: put torchvision's {IMAGENET_FILES[arch]} at "
                        f"{cached} or pass --imagenet-weights FILE (or use --init scratch)")
    return cached


def initialise_encoders(encoders: list[ResnetEncoder], init: str, imagenet_weights: Path | None = None) -> str:
    """Load ``init`` (``scratch``, ``imagenet`` or a weights file) into every encoder; returns a
    description for logs. Multi-image encoders get the first conv repeated (monodepth2's rule)."""
    if init == "scratch":
        return "scratch"
    if init == "imagenet":
        path = imagenet_weights_path(encoders[0].arch, imagenet_weights)
    else:
        path = Path(init)
        if not path.is_file():
            raise UserError(f"--init {init}: expected scratch, imagenet or an existing weights file")
    for encoder in encoders:
        load_encoder_file(encoder, path)
    return f"{init} ({path})" if init == "imagenet" else str(path)

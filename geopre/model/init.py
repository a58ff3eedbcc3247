"""Where encoder weights come from: scratch, ImageNet (torchvision's file), or a file of ours.

Nothing is downloaded: ImageNet weights are used only when torchvision's file is already in the
torch hub cache or given explicitly, so runs are reproducible offline and never stall on a fetch.
``auto`` (the commands' default) takes ImageNet when that file is there and scratch otherwise.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision

from geopre.errors import UserError
from geopre.model.resnet import ResnetEncoder, load_encoder_file
from geopre.train.checkpoint import run_part


def imagenet_weights_path(arch: str, explicit: Path | None = None) -> Path:
    """The ImageNet weights file for ``arch``: ``explicit`` if given, else torchvision's file in
    the torch hub cache; a one-line UserError says where to put it when there is none."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise UserError(f"--imagenet-weights {explicit}: no such file")
        return Path(explicit)
    cached = _cached_imagenet_file(arch)
    if not cached.is_file():
        url = torchvision.models.get_model_weights(arch).IMAGENET1K_V1.url
        raise UserError(f"--init imagenet needs torchvision's {cached.name}: download {url} to {cached} "
                        f"or pass --imagenet-weights FILE (or use --init scratch)")
    return cached


def _cached_imagenet_file(arch: str) -> Path:
    """Where torchvision keeps its ImageNet (IMAGENET1K_V1) file for ``arch``."""
    try:
        url = torchvision.models.get_model_weights(arch).IMAGENET1K_V1.url
    except (ValueError, AttributeError) as err:
        raise UserError(f"no ImageNet weights known for {arch!r}") from err
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def initialise_encoders(encoders: list[ResnetEncoder], init: str, imagenet_weights: Path | None = None) -> str:
    """Load ``init`` (``auto``, ``scratch``, ``imagenet`` or a weights file) into every encoder;
    returns a description for logs. Multi-image encoders get the first conv repeated and divided by
    the number of images (monodepth2's rule for its pose encoder)."""
    if init == "auto":
        init = "imagenet" if imagenet_weights is not None or _cached_imagenet_file(encoders[0].arch).is_file() \
            else "scratch"
    if init == "scratch":
        return "scratch"
    if init == "imagenet":
        path = imagenet_weights_path(encoders[0].arch, imagenet_weights)
    else:
        path = Path(init)
        if not path.exists():
            raise UserError(f"--init {init}: no such file (expected auto, scratch, imagenet or a weights file)")
        part = run_part(path)
        if part is not None:  # its weights are a whole network's, its state no weights file at all
            raise UserError(f"--init {init} is {part}, not an encoder: export a pretraining run's encoder with "
                            "`geopre export RUN --output encoder.pth` and pass encoder.pth")
    for encoder in encoders:
        load_encoder_file(encoder, path)
    return f"{init} ({path})" if init == "imagenet" else str(path)

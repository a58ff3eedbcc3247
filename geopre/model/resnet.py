"""ResNet encoder returning the five feature maps a U-Net style decoder needs.

The encoder is built from ``torchvision.models.resnetXX(weights=None)`` and keeps torchvision's
parameter names (``conv1.weight``, ``layer1.0.conv1.weight``, ...), minus the classifier ``fc``.
So an encoder trained here (e.g. the structure encoder of geometric pretraining) is a plain
torchvision state dict, and ImageNet or monodepth2 weights load into it without renaming.
"""

from __future__ import annotations

import pickle
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import nn

from geopre.errors import UserError

# Output channels of the five feature maps (1/2, 1/4, 1/8, 1/16, 1/32 of the input).
ENCODER_CHANNELS: dict[str, tuple[int, ...]] = {
    "resnet18": (64, 64, 128, 256, 512),
    "resnet34": (64, 64, 128, 256, 512),
    "resnet50": (64, 256, 512, 1024, 2048),
}

# The five stride-2 stages need both image sides to be multiples of this for the decoder's x2
# up-sampling to land exactly on the encoder's feature sizes.
INPUT_MULTIPLE = 32

# monodepth2's input normalisation, kept so its encoders and ours read images the same way.
INPUT_MEAN = 0.45
INPUT_STD = 0.225

# Keys monodepth2 adds to the encoder's state dict when saving ``encoder.pth``.
MONODEPTH2_METADATA_KEYS = ("height", "width", "use_stereo")
MONODEPTH2_PREFIX = "encoder."


class ResnetEncoder(nn.Module):
    """ResNet trunk (no pooling head, no ``fc``) over ``num_input_images`` stacked RGB images.

    ``forward`` takes images in [0, 1] with ``3 * num_input_images`` channels and returns the five
    feature maps, after conv1 (1/2) and after layer1..layer4 (1/4 ... 1/32).
    """

    def __init__(self, arch: str = "resnet18", num_input_images: int = 1):
        super().__init__()
        if arch not in ENCODER_CHANNELS:
            raise UserError(f"unknown encoder architecture {arch!r}; choose one of {sorted(ENCODER_CHANNELS)}")
        if num_input_images < 1:
            raise UserError(f"num_input_images must be at least 1, got {num_input_images}")
        self.arch = arch
        self.num_input_images = num_input_images
        self.num_ch_enc = ENCODER_CHANNELS[arch]

        resnet = getattr(torchvision.models, arch)(weights=None)
        if num_input_images > 1:
            # Same geometry as torchvision's conv1, wider input; initialised as torchvision does.
            resnet.conv1 = nn.Conv2d(3 * num_input_images, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(resnet.conv1.weight, mode="fan_out", nonlinearity="relu")
        # Registered under torchvision's own names so state dict keys match it exactly.
        self.conv1 = resnet.conv1
        self.bn1 = resnet.bn1
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        check_input_size(images)
        x = (images - INPUT_MEAN) / INPUT_STD
        first = self.relu(self.bn1(self.conv1(x)))
        features = [first]
        x = self.maxpool(first)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features


def check_input_size(images: torch.Tensor) -> None:
    """Raise a UserError unless height and width are multiples of 32."""
    height, width = images.shape[-2:]
    if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
        raise UserError(
            f"image size {width}x{height} is not a multiple of {INPUT_MULTIPLE} in both sides; "
            f"resize or crop it (e.g. to 640x192)"
        )


def repeat_first_conv(state_dict: Mapping[str, torch.Tensor], num_input_images: int) -> dict[str, torch.Tensor]:
    """Adapt a 3-channel state dict to an encoder over ``num_input_images`` stacked images.

    ``conv1.weight`` is repeated along the input channels and divided by the number of images
    (monodepth2's convention): on identical stacked frames the first layer then responds exactly
    as the single-image network did, so pretrained features stay meaningful.
    """
    adapted = dict(state_dict)
    weight = state_dict["conv1.weight"]
    adapted["conv1.weight"] = torch.cat([weight] * num_input_images, dim=1) / num_input_images
    return adapted


def load_torchvision_state_dict(
    encoder: ResnetEncoder, state_dict: Mapping[str, torch.Tensor], source: str = "state dict"
) -> None:
    """Load a torchvision ResNet state dict into ``encoder``, strictly except for ``fc.*``.

    A 3-channel ``conv1`` is adapted with :func:`repeat_first_conv` when the encoder takes several
    images. Any other mismatch raises a one-line UserError naming ``source``.
    """
    trunk = {key: value for key, value in state_dict.items() if not key.startswith("fc.")}
    conv1 = trunk.get("conv1.weight")
    if encoder.num_input_images > 1 and conv1 is not None and conv1.shape[1] == 3:
        trunk = repeat_first_conv(trunk, encoder.num_input_images)

    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(trunk))
    unexpected = sorted(set(trunk) - set(expected))
    wrong_shape = sorted(
        key for key in set(expected) & set(trunk) if tuple(expected[key].shape) != tuple(trunk[key].shape)
    )
    if missing or unexpected or wrong_shape:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if keys:
                shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
                problems.append(f"{label}: {shown}")
        raise UserError(
            f"{source} does not match a {encoder.arch} encoder over {encoder.num_input_images} image(s) "
            f"({'; '.join(problems)})"
        )
    encoder.load_state_dict(trunk, strict=True)


# What load_encoder_file reads, for messages when a file is something else.
ENCODER_FILES = ("an encoder from `geopre export RUN --output encoder.pth` (or its _torchvision.pth), a torchvision "
                 "ResNet state dict such as ImageNet's resnet18-f37072fd.pth, or a monodepth2 encoder.pth")


def load_encoder_file(encoder: ResnetEncoder, path: str | Path) -> None:
    """Load encoder weights from a torchvision state dict file or a monodepth2 ``encoder.pth``.

    monodepth2 saves its encoder with every key prefixed ``encoder.`` plus the training
    ``height``, ``width`` and ``use_stereo``; those entries are dropped and the prefix stripped.
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as error:  # a wrong file fails in any way: KeyError for text, IndexError for random bytes...
        # ...and torch's advice for some (weights_only=False) is no answer to a wrong file.
        raise UserError(f"{path} is {file_kind(Path(path), error)}, not encoder weights; expected {ENCODER_FILES}") \
            from error
    if not isinstance(state, Mapping):
        raise UserError(f"{path} does not hold a state dict (found {type(state).__name__}); expected {ENCODER_FILES}")
    if any(key.startswith(MONODEPTH2_PREFIX) for key in state):
        state = {
            key.removeprefix(MONODEPTH2_PREFIX): value
            for key, value in state.items()
            if key not in MONODEPTH2_METADATA_KEYS
        }
    load_torchvision_state_dict(encoder, state, source=str(path))


def file_kind(path: Path, error: Exception) -> str:
    """What a file that ``torch.load`` failed on with ``error`` is, in a few words."""
    if path.is_dir():
        return "a folder"
    if isinstance(error, OSError):
        return f"unreadable ({error.strerror or error})"
    if tarfile.is_tarfile(path):
        return "a tar archive (a shard?)"
    with open(path, "rb") as file:
        head = file.read(4096)
    try:
        if b"\0" not in head and head.decode("utf-8"):
            return "a text file"
    except UnicodeDecodeError:  # a multi-byte character cut at 4096 bytes is unlikely; binary data likely
        pass
    if isinstance(error, pickle.UnpicklingError) and zipfile.is_zipfile(path):  # torch.save's format, refused
        return "a PyTorch file of Python objects besides tensors (a training checkpoint's state.pt?)"
    return f"no file torch.load reads ({type(error).__name__})"

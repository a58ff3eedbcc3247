"""Click parameter types shared by the stage commands.

Every numeric option takes one of the ranged types below, so nonsense (``--batch-size 0``,
``--workers -1``, ``--seed -3``) is refused while parsing, as one line naming the option, by
every command alike; the library still checks its configs for callers that skip the CLI.
"""

from __future__ import annotations

import re

import click

POSITIVE_INT = click.IntRange(min=1)
NON_NEGATIVE_INT = click.IntRange(min=0)
SEED = NON_NEGATIVE_INT  # numpy's generators refuse negative seeds
POSITIVE_FLOAT = click.FloatRange(min=0, min_open=True)
NON_NEGATIVE_FLOAT = click.FloatRange(min=0)
FRACTION = click.FloatRange(min=0, max=1, min_open=True)  # (0, 1]
PORT = click.IntRange(min=0, max=65535)


class ImageSize(click.ParamType):
    """``WIDTHxHEIGHT`` in pixels, e.g. ``640x192``."""

    name = "WxH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(value))
        if not match or int(match.group(1)) == 0 or int(match.group(2)) == 0:
            self.fail(f"{value!r} is not a size like 640x192 (WIDTHxHEIGHT, positive integers)", param, ctx)
        return int(match.group(1)), int(match.group(2))


IMAGE_SIZE = ImageSize()


class Device(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; whether that GPU exists is checked when it is
    used (:func:`geopre.train.runtime.resolve_device`), so ``--help`` never initialises CUDA."""

    name = "DEVICE"

    def convert(self, value, param, ctx):
        text = str(value).strip().lower()
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
            self.fail(f"{value!r} is not a device: use auto, cpu, cuda or cuda:N", param, ctx)
        return text


DEVICE = Device()

"""Click parameter types shared by the stage commands."""

from __future__ import annotations

import re

import click


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

"""Click parameter types and option conventions shared by the stage commands.

Every numeric option takes one of the ranged types below, so nonsense (``--batch-size 0``,
``--workers -1``, ``--seed -3``) is refused while parsing, as one line naming the option, by
every command alike; the library still checks its configs for callers that skip the CLI.

One spelling per concept, on every command (README "Command line"): ``-o/--out DIR`` is the folder
a command creates, ``-o/--output FILE`` the one file it writes, ``-j/--jobs`` the videos, renders or
trainings done at once in parallel processes, ``--workers`` the data-loader workers feeding one
training process. Old spellings stay for a release as hidden aliases that warn (:func:`deprecated_alias`).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import click

from geopre.errors import UserError

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

_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
               "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


class ByteSize(click.ParamType):
    """``1GB``, ``500MB``, ``2GiB`` or a plain number of bytes."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        match = _BYTES.match(str(value))
        unit = (match.group(2) or "").lower().rstrip("b") if match else None
        if not match or unit not in _BYTE_UNITS or int(float(match.group(1)) * _BYTE_UNITS[unit]) < 1:
            self.fail(f"{value!r} is not a size like 1GB, 500MB or 2GiB", param, ctx)
        return int(float(match.group(1)) * _BYTE_UNITS[unit])


BYTE_SIZE = ByteSize()


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


# Closed sets of values. The library owns the real tables (geopre.model.resnet.ENCODER_CHANNELS,
# geopre.train.metrics.KITTI_GT_MASKS, ...) but imports torch; these copies keep `--help` fast and
# tests/test_cli_consistency.py keeps them equal to the tables.
ARCHS = ("resnet18", "resnet34", "resnet50")
MODES = ("S", "M", "MS")
DATASETS = ("kitti", "cityscapes")
GT_SOURCES = ("velodyne", "dense")
GT_MASKS = ("eigen-crop", "positive")
CITYSCAPES_SPLITS = ("train", "val", "test")


class AnyCaseChoice(click.Choice):
    """A closed set of values matched regardless of case (``--mode ms``, ``--dataset KITTI``); the
    value passed on is the listed spelling, and help and refusals list the values as written (click's
    would lower-case them: [s|m|ms])."""

    def __init__(self, values):
        super().__init__(list(values), case_sensitive=False)

    def get_metavar(self, param, ctx) -> str:
        return f"[{'|'.join(self.choices)}]"

    def get_invalid_choice_message(self, value, ctx) -> str:
        return f"{value!r} is not one of {', '.join(map(repr, self.choices))}."


choice = AnyCaseChoice


# Where a command writes: a folder it creates (--out) or one file (--output); never both on one command.
OUT_DIR = click.Path(file_okay=False, path_type=Path)
OUTPUT_FILE = click.Path(dir_okay=False, path_type=Path)


def warn_deprecated(old: str, new: str) -> None:
    click.echo(f"geopre: warning: {old} is deprecated and will be removed in the next release; use {new}", err=True)


def deprecated_alias(old: str, target: str, new: str, type=None, multiple: bool = False):
    """Keep the old option spelling ``old`` working, hidden, as an alias of parameter ``target``
    (spelled ``new`` now): it warns on stderr, and giving both spellings is a usage error."""
    alias_name = "deprecated_" + old.lstrip("-").replace("-", "_")

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            value = kwargs.pop(alias_name)
            if value is not None and value != ():
                ctx = click.get_current_context()
                if ctx.get_parameter_source(target) is click.core.ParameterSource.COMMANDLINE:
                    raise click.UsageError(f"{old} is the old spelling of {new}: give only {new}", ctx)
                warn_deprecated(old, new)
                kwargs[target] = value
            return function(*args, **kwargs)

        return click.option(old, alias_name, type=type, multiple=multiple, hidden=True,
                            help=f"Deprecated spelling of {new}.")(wrapper)

    return decorate


def out_dir_or_positional(out: Path | None, positional: Path | None, name: str, required: bool = True) -> Path | None:
    """``--out DIR``, or the positional spelling a command took before (deprecated: warns)."""
    if positional is not None:
        if out is not None:
            raise UserError(f"give the output folder once: --out {out} (the positional {name} is its old spelling)")
        warn_deprecated(f"the positional {name}", "--out DIR")
        return positional
    if out is None and required:
        raise UserError("missing --out DIR: the folder to write into")
    return out

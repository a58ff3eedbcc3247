"""The command line as a user meets it: help, version, and one-line errors for bad input."""

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import geopre
from geopre.cli import cli


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "geopre.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def walk(command, path=()):
    """``(command, the words that name it)`` for the command and every sub-command below it."""
    yield command, path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


def test_version_and_help_list_every_stage():
    assert run("--version").stdout.strip().endswith(geopre.__version__)
    out = run("--help").stdout
    assert cli.commands and all(f"  {name} " in out for name in cli.commands), out


@pytest.mark.parametrize("path", [path for _, path in walk(cli) if path], ids=" ".join)
def test_every_command_help_runs_and_lists_its_options(path):
    command = cli
    for name in path:
        command = command.commands[name]
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    options = [opt for param in command.params if isinstance(param, click.Option) and not param.hidden
               for opt in param.opts]
    assert all(opt in result.output for opt in options), (options, result.output)


def test_every_option_has_help_text():
    for command, _ in walk(cli):
        assert command.help, command.name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{command.name} {param.opts}"


@pytest.mark.parametrize("args,message", [
    (("synth", "videos", "--out", "/proc/geopre-cannot-write", "--count", "1"), "cannot write to"),
    (("synth", "videos", "--out", "OUT", "--count", "0"), "'--count': 0 is not in the range x>=1"),
    (("synth", "videos", "--out", "OUT", "--seconds", "-2"), "'--seconds': -2.0 is not in the range x>0"),
    (("synth", "kitti", "--out", "OUT", "--drives", "2"), "'--drives': 2 is not in the range x>=3"),
    (("synth", "kitti", "--out", "OUT", "--drives", "4", "--val-drives", "2", "--test-drives", "2"), "--val-drives (2)"),
    (("synth", "kitti"), "missing --out DIR"),
    (("synth", "cityscapes", "--out", "OUT", "--sequences", "0"), "'--sequences': 0 is not in the range x>=3"),
    (("synth", "kitti", "--out", "OUT", "--size", "416by128"), "not a size like 640x192"),
    (("serve", "does-not-exist"), "not a folder"),
    (("serve", ".", "--port", "70000"), "'--port': 70000 is not in the range"),
    (("shard", "write", "IN", "--out", "OUT", "--maxsize", "0"), "'0' is not a size like 1GB"),
    (("shard", "write", "IN", "--out", "OUT", "--val-fraction", "1"), "'--val-fraction': 1.0 is not in the range"),
    (("demo", "--seed", "-1"), "'--seed': -1 is not in the range x>=0"),
    (("reproduce", "--device", "gpu"), "'gpu' is not a device: use auto, cpu, cuda or cuda:N"),
    (("finetune",), "Missing argument 'DATA_ROOT'"),
])
def test_bad_input_is_one_clear_line_and_nonzero_exit(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_every_numeric_option_has_a_ranged_type():
    """Plain int/float options accept 0 and negatives: each must say what range makes sense."""
    plain = [f"{command.name} {param.opts[0]}" for command, _ in walk(cli) for param in command.params
             if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType))
             and not isinstance(param.type, click.types._NumberRangeBase)]
    assert plain == []


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "synth", "videos", "--out", "/proc/geopre-cannot-write", "--count", "1", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr

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
    (("synth", "videos", "/proc/geopre-cannot-write", "--count", "1"), "cannot write to"),
    (("synth", "videos", "OUT", "--count", "0"), "--count must be at least 1"),
    (("synth", "videos", "OUT", "--seconds", "-2"), "--seconds must be positive"),
    (("synth", "kitti", "OUT", "--drives", "2"), "--drives must be at least 3"),
    (("synth", "kitti", "OUT", "--drives", "4", "--val-drives", "2", "--test-drives", "2"), "--val-drives (2)"),
    (("synth", "kitti"), "missing OUT"),
    (("synth", "cityscapes", "OUT", "--sequences", "0"), "--sequences must be at least 3"),
    (("serve", "does-not-exist"), "not a folder"),
])
def test_bad_input_is_one_clear_line_and_nonzero_exit(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_bad_size_option_is_rejected_by_click(tmp_path):
    result = run("synth", "kitti", "OUT", "--size", "416by128", cwd=tmp_path)
    assert result.returncode == 2 and "not a size like 640x192" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "synth", "videos", "OUT", "--count", "0", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr

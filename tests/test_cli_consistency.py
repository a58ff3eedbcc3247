"""One spelling per concept across every command (README "Command line"), read off the click objects.

A user who learned `--out` on one command expects it to mean a folder on the next; these tests walk
every command's parameters and hold the shared options to one type and one meaning.
"""

from __future__ import annotations

import json
from collections import defaultdict

import click
import pytest
from click.testing import CliRunner

from geopre import cliutil
from geopre.cli import cli
from tests.test_cli import walk

# Same name, different unit: pretrain counts steps, finetune validates per epoch and also
# checkpoints "only at epoch ends" (0). Listed so a new difference cannot slip in unnoticed.
DIFFERENT_BY_DESIGN = {"--val-every", "--checkpoint-every"}

# Options whose values are a closed set: each must be a Choice.
CLOSED_SETS = {"--arch", "--mode", "--dataset", "--gt-source", "--gt-mask", "--worker-kind", "--distributor",
               "--format", "--crop", "--split", "--preset"}


def options():
    """``(command path, option)`` for every visible option of every command."""
    return [(" ".join(path), param) for command, path in walk(cli) for param in command.params
            if isinstance(param, click.Option) and not param.hidden]


def long_name(option: click.Option) -> str:
    return max(option.opts, key=len)


def type_key(kind: click.ParamType) -> tuple:
    """What makes two option types accept the same values (a Choice's values may differ)."""
    if isinstance(kind, click.types._NumberRangeBase):
        return type(kind).__name__, kind.min, kind.max, kind.min_open, kind.max_open
    if isinstance(kind, click.Path):
        return "Path", kind.file_okay, kind.dir_okay
    return (type(kind).__name__,)


def test_options_of_one_name_have_one_type_everywhere():
    by_name = defaultdict(set)
    for where, option in options():
        by_name[long_name(option)].add((type_key(option.type), option.is_flag))
    clashes = {name: kinds for name, kinds in by_name.items() if len(kinds) > 1 and name not in DIFFERENT_BY_DESIGN}
    assert clashes == {}


def test_shared_concepts_take_their_one_type_and_short_flag():
    for where, option in options():
        name = long_name(option)
        short = [opt for opt in option.opts if not opt.startswith("--")]
        if name == "--device":
            assert option.type is cliutil.DEVICE, where
        if name == "--seed":
            assert type_key(option.type) == type_key(cliutil.SEED), where
        if name == "--out":  # a folder the command creates (shard write: also an fsspec URL)
            assert isinstance(option.type, click.Path) and not option.type.file_okay, where
            assert short == ["-o"], where
        if name == "--output":  # the one file the command writes
            assert isinstance(option.type, click.Path) and not option.type.dir_okay, where
            assert short == ["-o"], where
        if name == "--jobs":
            assert short == ["-j"] and "at once" in option.help, where
        if name == "--workers":
            assert option.help.startswith("Data-loader workers per training process"), where
        # -h is help everywhere; -o, -j and ingest's yt-dlp-style -a mean one thing each.
        assert {"-o": {"--out", "--output"}, "-j": {"--jobs"}, "-a": {"--batch-file"}}.get(
            short[0], {None}) >= {name} if short else True, (where, option.opts)


def test_every_closed_set_is_a_choice_matched_in_any_case():
    for where, option in options():
        if long_name(option) in CLOSED_SETS:
            assert isinstance(option.type, cliutil.AnyCaseChoice), (where, long_name(option))
        if isinstance(option.type, click.Choice):
            assert isinstance(option.type, cliutil.AnyCaseChoice), (where, long_name(option))


def test_no_command_takes_its_output_folder_as_a_visible_positional():
    for command, path in walk(cli):
        visible = [p.name for p in command.params if isinstance(p, click.Argument) and p.metavar != ""]
        assert not [name for name in visible if name.startswith("out") or name.endswith("_positional")], path
    assert [p.name for p in cli.commands["finetune"].params if isinstance(p, click.Argument)
            and p.metavar != ""] == ["data_root"]


def test_the_cli_copies_of_closed_sets_match_the_library():
    from geopre.model.resnet import ENCODER_CHANNELS
    from geopre.train import evaluate, finetune, metrics

    assert set(cliutil.ARCHS) == set(ENCODER_CHANNELS)
    assert set(cliutil.MODES) == set(finetune.DEFAULT_SPLIT)
    assert set(cliutil.GT_SOURCES) == set(evaluate.DEFAULT_GT_MASK)
    assert set(cliutil.GT_MASKS) == set(metrics.KITTI_GT_MASKS)
    assert cliutil.CITYSCAPES_SPLITS == evaluate.CITYSCAPES_SPLITS


def test_a_closed_set_matches_any_case_and_refuses_with_the_listed_spellings():
    runner = CliRunner()
    refused = runner.invoke(cli, ["finetune", "ROOT", "--out", "RUN", "--mode", "X"])
    assert refused.exit_code == 2 and "'X' is not one of 'S', 'M', 'MS'" in refused.output
    assert cliutil.choice(cliutil.MODES).convert("ms", None, None) == "MS"
    assert "--mode [S|M|MS]" in runner.invoke(cli, ["finetune", "--help"]).output


def test_deprecated_option_spelling_warns_and_still_reaches_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a folder")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"arch": "resnet18", "size": [64, 32]}))
    old = CliRunner().invoke(cli, ["export", "run", "--out", "notes.txt/encoder.pth"])
    both = CliRunner().invoke(cli, ["export", "run", "--out", "a.pth", "--output", "b.pth"])
    assert "--out is deprecated" in old.stderr and "use --output" in old.stderr
    assert "notes.txt is a file" in str(old.exception)  # --out's value went on to the library as --output
    assert both.exit_code == 2 and "give only --output" in both.output


def test_deprecated_positional_out_warns_and_is_used(tmp_path):
    out, sheet = tmp_path / "OUT", tmp_path / "sheet.png"
    result = CliRunner().invoke(cli, ["synth", "kitti", str(out), "--drives", "3", "--frames", "5",
                                      "--size", "64x32", "--preview", str(sheet)])
    assert result.exit_code == 0, result.output
    assert "positional OUT is deprecated" in result.stderr and f"{out} not written" in result.stdout
    both = CliRunner().invoke(cli, ["synth", "kitti", str(out), "--out", str(out)])
    assert both.exit_code != 0 and "give the output folder once" in str(both.exception)


@pytest.mark.parametrize("args", [["ingest", "--workers", "0", "SRC", "--out", "o"],
                                  ["synth", "videos", "--workers", "0", "--out", "o"]])
def test_old_workers_spelling_of_jobs_keeps_its_range(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "'--workers': 0 is not in the range x>=1" in result.output

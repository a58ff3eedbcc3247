"""`geopre shard` as a user types it: the default write command, info and preview."""

from click.testing import CliRunner
from PIL import Image

from geopre.cli import cli
from geopre.errors import UserError


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=True)


def test_shard_write_is_the_default_then_info_and_preview(tmp_path, ingest_dir):
    out = tmp_path / "shards"
    result = invoke("shard", ingest_dir, "--out", out, "--maxcount", 4, "--maxsize", "1MB", "--val-fraction", 0.25)
    assert result.exit_code == 0, result.output
    assert "train: 9 samples in 3 shards" in result.output
    info = invoke("shard", "info", out)
    assert info.exit_code == 0 and "val: 3 samples in 1 shards" in info.output and "ingest: 9 train / 3 val" in info.output
    grid = tmp_path / "grid.png"
    preview = invoke("shard", "preview", out, "--output", grid, "--count", 3)
    assert preview.exit_code == 0, preview.output
    with Image.open(grid) as image:
        assert image.size[1] == 3 * (96 + 14)


def test_shard_errors_speak_to_the_user(tmp_path):
    result = invoke("shard", "info", tmp_path)
    assert isinstance(result.exception, UserError) and "index.json" in str(result.exception)
    assert invoke("shard", tmp_path, "--out", tmp_path / "o", "--maxsize", "lots").exit_code == 2


def test_shard_refuses_mixed_ingest_folders_in_one_line_unless_allowed(tmp_path, ingest_dir):
    from tests.shards.conftest import make_ingest_folder

    (tmp_path / "big").mkdir()
    big = make_ingest_folder(tmp_path / "big", videos=("echo",), size=(96, 64))
    refused = invoke("shard", ingest_dir, big, "--out", tmp_path / "s")
    assert isinstance(refused.exception, UserError) and "size 48x32 in" in str(refused.exception)
    allowed = invoke("shard", ingest_dir, big, "--out", tmp_path / "s", "--allow-mixed")
    assert allowed.exit_code == 0, allowed.output


def test_city_min_flow_reaches_the_cityscapes_filter(tmp_path, synth_city_root):
    # The synthetic sequences move (the default 1 px keeps triplets); no sequence moves 1e6 px.
    result = invoke("shard", "--from", "cityscapes", synth_city_root, "--city-min-flow", 1e6, "--out", tmp_path / "s")
    assert isinstance(result.exception, UserError) and "no triplets" in str(result.exception)

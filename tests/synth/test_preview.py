"""`geopre synth ... --preview`: a contact sheet of frames and their depth, without the tree."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from geopre.cli import cli
from geopre.synth import kitti, preview
from geopre.train.predict import colourise_disparity


@pytest.mark.parametrize("args,rows,tile", [
    (("kitti", "--drives", "3", "--frames", "5", "--size", "64x32"), 3, (64, 32)),
    (("cityscapes", "--sequences", "3", "--size", "64x32"), 3, (64, 32)),
    (("videos", "--count", "2", "--seconds", "1", "--size", "96x54", "--render-scale", "1"), 2, (96, 54)),
])
def test_preview_is_a_sheet_of_frame_and_depth_rows_and_writes_no_tree(tmp_path, args, rows, tile):
    result = CliRunner().invoke(cli, ["synth", *args, "--out", str(tmp_path / "OUT"), "--seed", "2",
                                      "--preview", str(tmp_path / "sheet.png")])
    assert result.exit_code == 0, result.output
    width, height = tile
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.mode == "RGB"
    assert sheet.size == (2 * width + preview.GAP, rows * height + (rows - 1) * preview.GAP)
    assert not (tmp_path / "OUT").exists() and "OUT not written" in result.output


def test_sheet_rows_are_the_tree_frames_beside_depth_coloured_as_predict_does(tmp_path):
    views = kitti.preview_views(drives=3, frames=5, width=64, height=32, seed=2, shown=2)
    preview.write_preview(tmp_path / "s.png", views)
    sheet = np.asarray(Image.open(tmp_path / "s.png"))
    # The first row is the middle frame of the first drive's camera 2, as the tree would hold it.
    kitti.render_drive(tmp_path / "tree", kitti.plan_drives(3, 5, 64, 32, 2)[0], grey_cameras=False)
    frame = np.asarray(Image.open(next((tmp_path / "tree").rglob("image_02/data/0000000002.png"))))
    np.testing.assert_array_equal(sheet[:32, :64], frame)
    np.testing.assert_array_equal(sheet[:32, 64 + preview.GAP:], colourise_disparity(1.0 / views[0].depth))
    assert (sheet[32:32 + preview.GAP] == preview.BACKGROUND).all()
    assert not np.array_equal(sheet[:32], sheet[32 + preview.GAP:])  # another drive, another street

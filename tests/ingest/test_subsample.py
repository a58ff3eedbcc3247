import numpy as np
import pytest

from geopre.ingest.config import SubsampleConfig
from geopre.ingest.subsample import VideoError, crop_window, decode, frame_time, probe


def test_resize_then_crop_rule():
    assert crop_window(1280, 720, (640, 192), "center") == (640, 360, 0, 84)
    assert crop_window(1280, 720, (640, 192), "top") == (640, 360, 0, 0)
    assert crop_window(1280, 720, (640, 192), "bottom") == (640, 360, 0, 168)
    # A tall portrait video covers the width, a very wide one the height: never stretched.
    assert crop_window(720, 1280, (640, 192), "center") == (640, 1138, 0, 473)
    assert crop_window(1920, 200, (640, 192), "center") == (1844, 192, 602, 0)


def test_30fps_clip_gives_10hz_frames_at_the_right_times(clips):
    config = SubsampleConfig(fps=10, size=(64, 32))
    info = probe(clips["counter30"])
    assert (info.width, info.height, info.fps) == (160, 96, 30.0)
    frames = list(decode(clips["counter30"], info, config))
    assert len(frames) == 30 and frames[0].shape == (32, 64, 3)
    assert [frame_time(i, config) for i in (0, 1, 29)] == [0.0, 0.1, 2.9]


def test_trim_keeps_only_the_chosen_seconds(clips):
    config = SubsampleConfig(fps=10, size=(64, 32), start=1.0, end=2.5)
    frames = list(decode(clips["counter30"], probe(clips["counter30"]), config))
    assert len(frames) == 15 and frame_time(0, config) == 1.0


def test_crop_band_picks_top_or_bottom(tmp_path, encode_clip):
    # White top half, black bottom half: the top band is bright, the bottom band dark.
    image = np.zeros((96, 160, 3), np.uint8)
    image[:48] = 255
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "half.png")
    encode_clip(["-loop", "1", "-i", str(tmp_path / "half.png")], tmp_path / "half.mp4", 0.5)
    info = probe(tmp_path / "half.mp4")
    top = next(decode(tmp_path / "half.mp4", info, SubsampleConfig(size=(160, 32), crop="top")))
    bottom = next(decode(tmp_path / "half.mp4", info, SubsampleConfig(size=(160, 32), crop="bottom")))
    assert top.mean() > 240 and bottom.mean() < 15


def test_non_video_file_is_a_one_line_error(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video at all\n")
    with pytest.raises(VideoError, match="not a readable video") as err:
        probe(tmp_path / "notes.mp4")
    assert "\n" not in str(err.value)


def test_truncated_mp4_is_detected(clips, tmp_path):
    data = clips["counter30"].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError) as err:
        info = probe(tmp_path / "cut.mp4")
        list(decode(tmp_path / "cut.mp4", info, SubsampleConfig(size=(64, 32))))
    assert "\n" not in str(err.value)

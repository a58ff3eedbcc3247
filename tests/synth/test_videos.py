import json
import subprocess

import numpy as np
import pytest
from dataclasses import replace

from geopre.errors import UserError
from geopre.synth import videos, world


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,width,height,r_frame_rate,nb_read_frames", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["streams"][0]


def test_videos_probe_with_the_asked_size_fps_and_frame_count(synth_videos_dir):
    summary = json.loads((synth_videos_dir / "synth.json").read_text())
    assert len(summary["videos"]) == 2
    for video in summary["videos"]:
        stream = probe(synth_videos_dir / video["file"])
        assert stream["codec_name"] == "h264"
        assert (stream["width"], stream["height"]) == (video["width"], video["height"])
        num, den = map(int, stream["r_frame_rate"].split("/"))
        assert num / den == video["fps"]
        assert int(stream["nb_read_frames"]) == round(2.0 * video["fps"]) == video["frames"]


def test_truth_records_the_unpublished_camera(synth_videos_dir):
    summary = json.loads((synth_videos_dir / "synth.json").read_text())
    for video in summary["videos"]:
        truth = videos.load_truth(synth_videos_dir, video["name"])
        n = video["frames"]
        assert len(truth["frames"]["pose"]) == n and len(truth["frames"]["stopped"]) == n
        intr = truth["intrinsics"]
        assert intr["width"] == video["width"] and 0.4 * intr["width"] < intr["fx"] < 1.0 * intr["width"]


def test_index_page_and_batch_file_list_every_video_once(synth_videos_dir):
    page = (synth_videos_dir / "index.html").read_text()
    urls = [line for line in (synth_videos_dir / "urls.txt").read_text().splitlines() if not line.startswith("#")]
    names = [p.name for p in (synth_videos_dir / "videos").glob("*.mp4")]
    assert len(set(names)) == len(names) == len(urls) == 2
    for name in names:
        assert page.count(f'<source src="videos/{name}"') == 1
        assert sum(url.endswith("/" + name) for url in urls) == 1


def test_specs_vary_and_are_reproducible():
    a = videos.plan_videos(6, 3.0, seed=1)
    assert a == videos.plan_videos(6, 3.0, seed=1)
    assert len({s.hfov_deg for s in a}) == 6 and len({s.name for s in a}) == 6
    assert {s.fps for s in videos.plan_videos(30, 3.0, seed=2)} == {24.0, 25.0, 30.0}


@pytest.mark.parametrize("count,seconds", [(0, 1.0), (2, -1.0), (2, 0.0)])
def test_bad_counts_are_user_errors(count, seconds):
    with pytest.raises(UserError):
        videos.plan_videos(count, seconds, seed=0)


def test_stop_segment_gives_identical_decoded_frames(tmp_path):
    spec = videos.plan_videos(1, 6.0, seed=0, sizes=((96, 64),), fps_choices=(10.0,), render_scale=1.0)[0]
    spec = replace(spec, drive=world.DriveConfig(start_stopped=1.0))  # the drive opens at a red light
    truth = videos.render_video(spec, tmp_path / "stop.mp4", tmp_path)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "stop.mp4"), "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 64, 96, 3).astype(int)
    stopped = np.array(truth["frames"]["stopped"])
    assert stopped[:3].all() and not stopped.all()
    # Identical rendered frames; H.264 (I- then P-frame) wobbles a few code values at most.
    still = np.abs(frames[1] - frames[0])
    assert still.max() <= 8 and still.mean() < 0.5
    moving = int(np.flatnonzero(~stopped)[-1])
    assert np.abs(frames[moving] - frames[moving - 1]).mean() > 5 * still.mean() + 1

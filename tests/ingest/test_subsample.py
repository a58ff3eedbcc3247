import subprocess

import numpy as np
import pytest

from geopre.ingest.config import SubsampleConfig
from geopre.ingest.subsample import VideoError, VideoInfo, crop_window, decode, frame_time, probe, stream_config


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


# --- displayed size: phone clips with a rotation in their display matrix ---------------------------

def _raw_frame(args: list[str], size: tuple[int, int]) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", *args, "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "bgr24", "pipe:"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(size[1], size[0], 3)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotated_phone_clip_is_decoded_upright_at_its_displayed_size(tmp_path, encode_clip, run_ffmpeg,
                                                                   texture_png, rotate):
    texture_png(tmp_path / "t.png", 320, 192, seed=3)  # asymmetric: every rotation looks different
    encode_clip(["-loop", "1", "-i", str(tmp_path / "t.png")], tmp_path / "stored.mp4", 0.3)
    # Tag it like a phone does: same stored 320x192 pixels, a display matrix saying "turn me".
    run_ffmpeg("-i", str(tmp_path / "stored.mp4"), "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}",
           str(tmp_path / "phone.mp4"))
    info = probe(tmp_path / "phone.mp4")
    displayed = (192, 320) if rotate in (90, 270) else (320, 192)
    assert (info.width, info.height, info.rotation) == (*displayed, rotate)

    # Half the displayed size, then a centre crop of 32 rows: whole pixels, so ffmpeg's rounding
    # and ours cannot differ by a pixel.
    size = (96, 128) if rotate in (90, 270) else (160, 64)
    ours = next(decode(tmp_path / "phone.mp4", info, SubsampleConfig(size=size)))
    # ffmpeg's own answer: autorotate, scale to cover, centre crop.
    reference = _raw_frame(["-i", str(tmp_path / "phone.mp4"), "-vf",
                            f"scale={size[0]}:{size[1]}:force_original_aspect_ratio=increase:flags=area,"
                            f"crop={size[0]}:{size[1]}"], size)
    assert psnr(ours, reference) > 30


def test_non_square_pixels_are_widened_to_the_displayed_size(tmp_path, encode_clip):
    encode_clip(["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30", "-vf", "setsar=2"], tmp_path / "sar.mp4", 0.2)
    info = probe(tmp_path / "sar.mp4")
    assert (info.width, info.height) == (320, 96)


# --- frame k is the source frame nearest to k / fps ------------------------------------------------

BANDS = 8  # a frame shows its own index in binary: 8 vertical bands, black = 0, white = 1


def counting_clip(path, frames: int, fps: int = 30, times: str | None = None) -> None:
    """A 128x32 clip whose frame n shows n as bars; ``times`` is a setpts expression in seconds
    of N (frame number) for variable frame rate."""
    code = "geq=lum='255*mod(floor(N/pow(2\\,floor(X/(W/8))))\\,2)':cb=128:cr=128"
    vfr = [f",settb=1/1000,setpts='({times})/TB'", "-fps_mode", "passthrough"] if times else [""]
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"color=gray:size=128x32:rate={fps}", "-frames:v", str(frames),
                    "-vf", code + vfr[0], *vfr[1:], "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
                    "-pix_fmt", "yuv420p", str(path)], check=True)


def frame_number(frame: np.ndarray) -> int:
    bits = frame[16, 8::16].mean(axis=1) > 128
    return sum(int(bit) << band for band, bit in enumerate(bits[:BANDS]))


def frame_times(path) -> list[float]:
    """ffprobe's presentation time of every frame, in display order."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
                          "-of", "default=nw=1:nk=1", str(path)], capture_output=True, text=True, check=True).stdout
    return sorted(float(t) for t in out.split())


@pytest.mark.parametrize("name, times, fps", [
    ("cfr30-to-10", None, 10.0),
    ("cfr30-to-8.5", None, 8.5),
    ("vfr-to-10", "N/30+0.011*sin(N*1.7)", 10.0),  # gaps of 13-53 ms, like a phone under load
])
def test_frame_k_is_the_source_frame_nearest_k_over_fps(tmp_path, name, times, fps):
    clip = tmp_path / f"{name}.mp4"
    counting_clip(clip, 90, times=times)
    source_times = np.array(frame_times(clip))
    assert len(source_times) == 90
    config = SubsampleConfig(fps=fps, size=(128, 32))
    picked = [frame_number(f) for f in decode(clip, probe(clip), config)]
    assert len(picked) == int(source_times[-1] * fps) + 1
    for k, number in enumerate(picked):
        target = frame_time(k, config)
        nearest = np.abs(source_times - target).min()
        # Equal up to the container's timestamp rounding (a tie between two frames may go either way).
        assert abs(source_times[number] - target) <= nearest + 1e-3, (k, number, source_times[number], target)
    if times is None and fps == 10.0:
        assert picked[:4] == [0, 3, 6, 9]


def test_a_source_slower_than_fps_keeps_its_own_rate_with_a_warning(tmp_path):
    clip = tmp_path / "c.mp4"
    counting_clip(clip, 60)
    info = probe(clip)
    config, warnings = stream_config(info, SubsampleConfig(fps=60, size=(128, 32)))
    assert config.fps == 30.0 and len(warnings) == 1 and "above the video's 30 fps" in warnings[0]
    picked = [frame_number(f) for f in decode(clip, info, config)]
    assert picked == list(range(60)), "every source frame once, no duplicates"


def test_upscaling_is_a_warning():
    info = VideoInfo(duration=1.0, fps=30.0, width=64, height=48, frames=30)
    config, warnings = stream_config(info, SubsampleConfig(fps=10, size=(640, 192)))
    assert config.fps == 10 and len(warnings) == 1 and "upscaled 10x" in warnings[0]
    assert stream_config(VideoInfo(1.0, 30.0, 1280, 720, 30), SubsampleConfig())[1] == []

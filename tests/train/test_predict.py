"""`predict` on real files: a folder of PNGs and an mp4 in, magma PNGs and depth .npy out."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from geopre.errors import UserError
from geopre.train.predict import PredictConfig, colourise_disparity, predict


def test_colourise_saturates_at_the_95th_percentile_with_magma():
    disp = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    image = colourise_disparity(disp)
    assert image.shape == (10, 10, 3) and image.dtype == np.uint8
    top = (np.array(matplotlib.colormaps["magma"](1.0)[:3]) * 255).astype(np.uint8)
    assert (image.reshape(-1, 3)[-5:] == top).all()  # the top 5 % share the brightest colour
    assert (image[0, 0] == (np.array(matplotlib.colormaps["magma"](0.0)[:3]) * 255).astype(np.uint8)).all()


def test_images_folder_and_video_give_one_png_per_frame_at_input_size(synth_kitti_root, synth_videos_dir,
                                                                      tiny_model_file, tmp_path):
    folder = next((synth_kitti_root).glob("*/*_sync/image_02/data"))
    video = sorted((synth_videos_dir / "videos").glob("*.mp4"))[0]
    summary = predict(PredictConfig(tiny_model_file, (folder, video), tmp_path, save_depth=True, video_stride=10,
                                    device="cpu"))
    # Outputs keep the inputs' paths below their common folder (here pytest's temporary root).
    base = Path(os.path.commonpath([folder, video.parent]))
    image_out, video_out = tmp_path / folder.relative_to(base), tmp_path / video.parent.relative_to(base)
    pngs = sorted(tmp_path.rglob("*_disp.png"))
    assert summary["frames"] == len(pngs) == 6 + len(list(video_out.glob(f"{video.stem}_*_disp.png")))
    assert len(pngs) > 6 and not summary["metric_depth"]
    with Image.open(image_out / "0000000000_disp.png") as png:
        assert png.size == (208, 64) and png.mode == "RGB"
    depth = np.load(image_out / "0000000000_depth.npy")
    assert depth.shape == (64, 208) and np.isfinite(depth).all() and (depth > 0).all()


def test_post_processed_depth_of_a_mirrored_image_is_the_mirrored_depth(synth_kitti_root, tiny_model_file, tmp_path):
    source = next(synth_kitti_root.glob("*/*_sync/image_02/data/0000000000.png"))
    with Image.open(source) as image:
        image.save(tmp_path / "a.png")
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "b.png")
    inputs = (tmp_path / "a.png", tmp_path / "b.png")
    # An untrained network does not treat an image and its mirror alike; post-processing blends the
    # two views symmetrically, so its output does.
    for post_process in (False, True):
        out = tmp_path / f"pp_{post_process}"
        predict(PredictConfig(tiny_model_file, inputs, out, save_depth=True, post_process=post_process, device="cpu"))
        original, mirrored = np.load(out / "a_depth.npy"), np.load(out / "b_depth.npy")
        assert np.allclose(mirrored, original[:, ::-1], rtol=1e-4) == post_process


def test_a_single_folder_writes_its_images_flat(synth_kitti_root, tiny_model_file, tmp_path):
    folder = next(synth_kitti_root.glob("*/*_sync/image_02/data"))
    assert predict(PredictConfig(tiny_model_file, (folder,), tmp_path, device="cpu"))["frames"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{p.stem}_disp.png" for p in folder.iterdir())


def test_both_cameras_keep_their_folders_instead_of_overwriting(synth_kitti_root, tiny_model_file, tmp_path):
    drive = next(synth_kitti_root.glob("*/*_sync"))
    summary = predict(PredictConfig(tiny_model_file, (drive / "image_02" / "data", drive / "image_03" / "data"),
                                    tmp_path, device="cpu"))
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*_disp.png"))
    assert summary["frames"] == len(written) == 12
    assert written == sorted(f"{camera}/data/{p.stem}_disp.png" for camera in ("image_02", "image_03")
                             for p in (drive / camera / "data").iterdir())


def test_inputs_that_would_write_the_same_file_are_refused_before_any_work(synth_kitti_root, tiny_model_file,
                                                                           tmp_path):
    frames = sorted(next(synth_kitti_root.glob("*/*_sync/image_02/data")).iterdir())
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(frames[0].read_bytes())
    with Image.open(frames[1]) as image:
        image.convert("RGB").save(tmp_path / "in" / "a.jpg")
    with pytest.raises(UserError, match="would both be written as a_disp.png"):
        predict(PredictConfig(tiny_model_file, (tmp_path / "in",), tmp_path / "out", device="cpu"))
    assert not (tmp_path / "out").exists()


def test_an_image_named_like_a_video_frame_is_refused(synth_videos_dir, tiny_model_file, tmp_path):
    video = tmp_path / "drive.mp4"
    video.write_bytes(sorted((synth_videos_dir / "videos").glob("*.mp4"))[0].read_bytes())
    Image.new("RGB", (32, 32)).save(tmp_path / "drive_000000.png")
    with pytest.raises(UserError, match="drive_000000.png and a frame of .*drive.mp4"):
        predict(PredictConfig(tiny_model_file, (video, tmp_path / "drive_000000.png"),
                              tmp_path / "out", device="cpu"))


def test_a_file_named_twice_is_predicted_once(synth_kitti_root, tiny_model_file, tmp_path):
    folder = next(synth_kitti_root.glob("*/*_sync/image_02/data"))
    first = sorted(folder.iterdir())[0]
    assert predict(PredictConfig(tiny_model_file, (folder, first), tmp_path, device="cpu"))["frames"] == 6


def test_unknown_input_is_a_user_error(tiny_model_file, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="unknown input type"):
        predict(PredictConfig(tiny_model_file, (tmp_path / "notes.txt",), tmp_path / "out"))

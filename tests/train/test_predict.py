"""`predict` on real files: a folder of PNGs and an mp4 in, magma PNGs and depth .npy out."""

from __future__ import annotations

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
    pngs = sorted(tmp_path.glob("*_disp.png"))
    assert summary["frames"] == len(pngs) == 6 + len(list(tmp_path.glob(f"{video.stem}_*_disp.png")))
    assert len(pngs) > 6 and not summary["metric_depth"]
    with Image.open(pngs[0]) as png:
        assert png.size == (208, 64) and png.mode == "RGB"
    depth = np.load(tmp_path / "0000000000_depth.npy")
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


def test_unknown_input_is_a_user_error(tiny_model_file, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="unknown input type"):
        predict(PredictConfig(tiny_model_file, (tmp_path / "notes.txt",), tmp_path / "out"))

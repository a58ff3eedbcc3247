"""The Cityscapes-style tree, read back with parsing code written here and with cityscapesscripts'
file-name helpers (the official scripts have no reader for camera JSON or disparity: those are
checked against the documented encodings)."""

import json
import re

import numpy as np
from cityscapesscripts.helpers import csHelpers
from PIL import Image

from geopre.synth import cityscapes

NAME = re.compile(r"^([a-z]+)_(\d{6})_(\d{6})_leftImg8bit\.png$")


def test_sequence_file_names_and_frame_rate_layout(synth_city_root):
    frames = sorted((synth_city_root / "leftImg8bit_sequence").rglob("*.png"))
    assert len(frames) == 3 * 30
    splits = set()
    for path in frames:
        match = NAME.match(path.name)
        assert match, path.name
        assert path.parent.name == match.group(1)
        splits.add(path.parent.parent.name)
    assert splits == {"train", "val", "test"}


def test_camera_json_and_disparity_encoding_match_true_depth(synth_city_root):
    cameras = sorted((synth_city_root / "camera").rglob("*_camera.json"))
    assert len(cameras) == 3  # the annotated frame of each sequence, as in the real release
    for cam_path in cameras:
        cam = json.loads(cam_path.read_text())
        assert set(cam["extrinsic"]) == {"baseline", "pitch", "roll", "x", "y", "yaw", "z"}
        assert set(cam["intrinsic"]) == {"fx", "fy", "u0", "v0"}
        stem = cam_path.name[: -len("_camera.json")]
        assert int(stem.split("_")[2]) % 50 == 19
        rel = cam_path.parent.relative_to(synth_city_root / "camera")
        p = np.array(Image.open(synth_city_root / "disparity" / rel / f"{stem}_disparity.png"))
        assert p.dtype == np.uint16
        valid = p > 0
        depth = cam["extrinsic"]["baseline"] * cam["intrinsic"]["fx"] / ((p[valid].astype(float) - 1.0) / 256.0)
        truth = np.load(synth_city_root / "geopre_truth" / "depth" / rel / f"{stem}_depth.npy")[valid]
        close = truth < 40  # disparity quantisation (1/256 px) dominates far away
        np.testing.assert_allclose(depth[close], truth[close], rtol=0.01)
        # Sky and the bonnet are invalid.
        h, w = p.shape
        assert not valid[-1, w // 2] and valid.mean() > 0.5


def test_bonnet_is_static_in_every_frame(synth_city_root):
    seq = sorted((synth_city_root / "leftImg8bit_sequence" / "train").rglob("*.png"))
    a, b = np.array(Image.open(seq[0])), np.array(Image.open(seq[-1]))
    mask = cityscapes.bonnet_mask(a.shape[1], a.shape[0])
    np.testing.assert_array_equal(a[mask], b[mask])
    assert not np.array_equal(a[~mask], b[~mask])


def test_file_names_parse_with_cityscapesscripts_helpers(synth_city_root):
    cores = {}
    for folder, kind, ext in (("leftImg8bit_sequence", "leftImg8bit", "png"), ("camera", "camera", "json"),
                              ("disparity", "disparity", "png")):
        paths = sorted((synth_city_root / folder).rglob(f"*.{ext}"))
        assert paths, folder
        for path in paths:
            info = csHelpers.getCsFileInfo(str(path))
            assert (info.type, info.type2, info.ext) == (kind, "", ext)
            assert csHelpers.getDirectory(str(path)) == info.city
            assert len(info.sequenceNb) == len(info.frameNb) == 6
        cores[folder] = {(path.parent.parent.name, csHelpers.getCoreImageFileName(str(path))) for path in paths}
    # Every annotated frame (camera + disparity) is a frame of its sequence, in the same split.
    assert cores["camera"] == cores["disparity"] and cores["camera"] <= cores["leftImg8bit_sequence"]

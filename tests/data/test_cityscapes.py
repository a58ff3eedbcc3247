"""Cityscapes reader on a tiny tree in the real layout (mcordts/cityscapesScripts README)."""

import json

import cv2
import numpy as np
import pytest

from geopre.data.cityscapes import (
    FrameId,
    bonnet_crop,
    bonnet_kept_rows,
    camera_path,
    decode_disparity,
    disparity_path,
    disparity_to_depth,
    image_path,
    list_sequences,
    list_splits,
    parse_frame_name,
    read_camera,
    read_depth,
    snippets,
    subsample,
)
from geopre.errors import UserError

# A real camera file (aachen): baseline in metres, intrinsics in 2048x1024 pixels.
CAMERA = {
    "extrinsic": {"baseline": 0.209313, "pitch": 0.038, "roll": 0.0, "x": 1.7, "y": 0.1, "yaw": -0.0195, "z": 1.22},
    "intrinsic": {"fx": 2262.52, "fy": 2265.3017905988554, "u0": 1096.98, "v0": 513.137},
}


def test_parse_frame_names_of_any_type_and_cities_with_underscores():
    assert parse_frame_name("aachen_000000_000019_leftImg8bit.png") == FrameId("aachen", 0, 19)
    assert parse_frame_name("/x/bochum_000000_000313_camera.json") == FrameId("bochum", 0, 313)
    assert parse_frame_name("stuttgart_00_000000_000001_leftImg8bit.png") == FrameId("stuttgart_00", 0, 1)
    assert parse_frame_name("ulm_000001_000019_gtFine_labelIds.png") == FrameId("ulm", 1, 19)
    with pytest.raises(UserError, match="aachen_19.png"):
        parse_frame_name("aachen_19.png")


def test_paths_follow_the_official_layout(tmp_path):
    frame = FrameId("aachen", 0, 19)
    assert image_path(tmp_path, "train", frame) == (
        tmp_path / "leftImg8bit_sequence/train/aachen/aachen_000000_000019_leftImg8bit.png"
    )
    assert camera_path(tmp_path, "val", frame) == tmp_path / "camera/val/aachen/aachen_000000_000019_camera.json"
    assert disparity_path(tmp_path, "val", frame) == (
        tmp_path / "disparity/val/aachen/aachen_000000_000019_disparity.png"
    )


def test_list_sequences_groups_and_sorts_frames(tmp_path):
    frames = [FrameId("ulm", 1, 2), FrameId("aachen", 0, 1), FrameId("aachen", 0, 0), FrameId("ulm", 1, 1)]
    for frame in frames:
        path = image_path(tmp_path, "train", frame)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    sequences = list_sequences(tmp_path, "train")
    assert list(sequences) == [("aachen", 0), ("ulm", 1)]
    assert [f.frame for f in sequences[("aachen", 0)]] == [0, 1]
    with pytest.raises(UserError, match="leftImg8bit_sequence/val"):
        list_sequences(tmp_path, "val")


def test_list_splits_names_the_sequence_folders(tmp_path):
    assert list_splits(tmp_path) == []
    for split in ("val", "train"):
        (tmp_path / "leftImg8bit_sequence" / split).mkdir(parents=True)
    (tmp_path / "leftImg8bit_sequence/README").write_text("")
    assert list_splits(tmp_path) == ["train", "val"]


def test_snippets_cut_a_sequence_where_frame_numbers_jump():
    frames = [FrameId("ulm", 0, n) for n in (31, 30, 2, 1, 0)] + [FrameId("ulm", 1, 3), FrameId("ulm", 1, 4)]
    assert [[f.frame for f in run] for run in snippets(frames)] == [[0, 1, 2], [30, 31], [3, 4]]
    assert snippets([]) == []


def test_subsample_keeps_every_second_frame_and_restarts_after_a_gap():
    frames = [FrameId("ulm", 0, n) for n in (0, 1, 2, 3, 4, 30, 31, 32)]
    assert [f.frame for f in subsample(frames)] == [0, 2, 4, 30, 32]


def test_read_camera_gives_intrinsics_and_baseline(tmp_path):
    path = tmp_path / "aachen_000000_000019_camera.json"
    path.write_text(json.dumps(CAMERA, indent=4))
    camera = read_camera(path)
    assert camera.baseline == pytest.approx(0.209313)
    assert camera.intrinsics.tolist() == [[2262.52, 0, 1096.98], [0, 2265.3017905988554, 513.137], [0, 0, 1]]
    path.write_text(json.dumps({"intrinsic": CAMERA["intrinsic"]}))
    with pytest.raises(UserError, match="aachen_000000_000019_camera.json"):
        read_camera(path)


def test_disparity_decoding_and_depth_by_hand():
    encoded = np.array([[0, 1, 257, 513]], dtype=np.uint16)  # invalid, d = 0, d = 1, d = 2
    assert decode_disparity(encoded).tolist() == [[0.0, 0.0, 1.0, 2.0]]
    depth = disparity_to_depth(encoded, baseline=0.209313, fx=2262.52)
    assert depth[0, :2].tolist() == [0.0, 0.0]  # no measurement and infinitely far are both invalid
    assert depth[0, 2] == pytest.approx(0.209313 * 2262.52)  # 473.6 m at one pixel of disparity
    assert depth[0, 3] == pytest.approx(0.209313 * 2262.52 / 2)


def test_read_depth_from_png_and_camera_files(tmp_path):
    frame = FrameId("aachen", 0, 19)
    camera = camera_path(tmp_path, "val", frame)
    camera.parent.mkdir(parents=True)
    camera.write_text(json.dumps(CAMERA))
    with pytest.raises(UserError, match="aachen_000000_000019_disparity.png"):
        read_depth(tmp_path, "val", frame)
    encoded = np.zeros((4, 8), dtype=np.uint16)
    encoded[2, 3] = 1 + 256 * 40  # 40 px of disparity
    disparity = disparity_path(tmp_path, "val", frame)
    disparity.parent.mkdir(parents=True)
    assert cv2.imwrite(str(disparity), encoded)
    depth = read_depth(tmp_path, "val", frame)
    assert depth[2, 3] == pytest.approx(0.209313 * 2262.52 / 40)
    assert np.count_nonzero(depth) == 1


def test_bonnet_crop_removes_the_bottom_quarter():
    assert bonnet_kept_rows(1024) == 768
    assert bonnet_kept_rows(171) == 128  # int(171 * 0.75) = int(128.25)
    image = np.arange(8 * 3).reshape(8, 3)
    assert bonnet_crop(image).tolist() == image[:6].tolist()
    assert bonnet_crop(image, fraction=0.0).shape == (8, 3)

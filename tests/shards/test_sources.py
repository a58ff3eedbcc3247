"""Triplet sources on real trees: the hand-made ingest folder and the synthetic KITTI/Cityscapes."""

import json

import cv2
import numpy as np
import pytest

from geopre.data import cityscapes
from geopre.errors import UserError
from geopre.shards import sources
from geopre.synth.kitti import KittiRig


def test_ingest_triplets_follow_the_manifests(ingest_dir):
    triplets = list(sources.ingest_triplets(ingest_dir))
    assert len(triplets) == 4 * 3
    first = triplets[0]
    assert first.key == "ingest_alpha_000001" and "." not in first.key
    assert first.indices == (0, 1, 2) and first.files[1] == ingest_dir / "frames/alpha/000001.jpg"
    assert first.intrinsics is None and first.url == "http://127.0.0.1:1/alpha" and first.fps == 10.0
    assert first.mean_flow == (2.0, 3.0, 4.0)


def test_ingest_triplet_naming_a_dropped_frame_is_a_user_error(tmp_path, ingest_dir):
    manifest = json.loads((ingest_dir / "manifests/alpha.json").read_text())
    manifest["frames"][1].update(kept=False, file=None)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests/alpha.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="not kept"):
        list(sources.ingest_triplets(tmp_path))


def test_key_part_removes_dots_and_slashes():
    assert sources.key_part("a.b/c d") == "a-b-c-d"


def test_kitti_triplets_cover_the_split_with_calibrated_intrinsics(synth_kitti_root):
    lines = (synth_kitti_root / "splits/eigen_zhou/train_files.txt").read_text().split("\n")
    triplets = list(sources.kitti_triplets(synth_kitti_root))
    assert len(triplets) == len([line for line in lines if line])
    for t, line in zip(triplets, lines):
        folder, frame, side = line.split()
        assert t.video_id == folder.split("/")[1] and t.indices == (int(frame) - 1, int(frame), int(frame) + 1)
        assert f"image_0{2 if side == 'l' else 3}" in str(t.files[0])
        assert t.times[2] - t.times[1] == pytest.approx(0.1, abs=1e-3)
    date_index = 0 if triplets[0].video_id.startswith("2011_09_26") else 1
    truth = KittiRig.for_date(date_index, 208, 64).intrinsics
    k = triplets[0].intrinsics
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == pytest.approx(
        (truth.fx, truth.fy, truth.cx, truth.cy, 208, 64), rel=1e-5)


def test_cityscapes_triplets_are_8_5_hz_and_include_the_annotated_frame(synth_city_root):
    triplets = list(sources.cityscapes_triplets(synth_city_root, min_flow=0.0))
    by_video = {}
    for t in triplets:
        by_video.setdefault(t.video_id, []).append(t)
    assert len(by_video) == 3
    for video, ts in by_video.items():
        assert len(ts) == 13  # 30 frames -> 15 at 8.5 Hz -> 13 triplets
        numbers = [int(p.name.split("_")[2]) for p in ts[0].files]
        assert np.diff(numbers).tolist() == [2, 2] and ts[0].fps == 8.5
        assert (numbers[0] - 19) % 2 == 0  # phase of the annotated frame (offset 19) in a 30-frame run
        assert ts[0].intrinsics is not None and ts[0].intrinsics.width == 128


def test_cityscapes_min_flow_drops_static_triplets(synth_city_root):
    moving = list(sources.cityscapes_triplets(synth_city_root, min_flow=1.0))
    everything = list(sources.cityscapes_triplets(synth_city_root, min_flow=0.0))
    assert all(min(t.mean_flow[1], t.mean_flow[2]) >= 1.0 for t in moving)
    assert len(list(sources.cityscapes_triplets(synth_city_root, min_flow=1e6))) == 0
    assert len(moving) <= len(everything)


def write_city_sequence(root, frames, annotated, width=832, height=64, shift=2):
    """Frames of one real-layout Cityscapes sequence (ulm, 000000): a texture moving ``shift`` px
    right per 17 Hz frame; the ``annotated`` frames get a camera JSON."""
    texture = np.random.default_rng(0).integers(0, 255, size=(height // 4, width // 4), dtype=np.uint8)
    image = np.repeat(np.kron(texture, np.ones((4, 4), dtype=np.uint8))[..., None], 3, axis=2)
    camera = {"extrinsic": {"baseline": 0.2}, "intrinsic": {"fx": 400.0, "fy": 400.0, "u0": width / 2, "v0": height / 2}}
    for n in frames:
        frame = cityscapes.FrameId("ulm", 0, n)
        path = cityscapes.image_path(root, "train", frame)
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), np.roll(image, shift * n, axis=1))
        if n in annotated:
            camera_file = cityscapes.camera_path(root, "train", frame)
            camera_file.parent.mkdir(parents=True, exist_ok=True)
            camera_file.write_text(json.dumps(camera))


def test_cityscapes_flow_is_measured_in_pixels_at_the_reference_width(tmp_path):
    # 2 px per 17 Hz frame at 832 wide: 4 px per 8.5 Hz step, which is 2 px at 416 wide.
    write_city_sequence(tmp_path, frames=range(6), annotated={3})
    [triplet] = sources.cityscapes_triplets(tmp_path, min_flow=1.0)
    assert triplet.frame == "000003" and triplet.indices == (0, 1, 2)
    assert triplet.mean_flow[1:] == pytest.approx((2.0, 2.0), abs=0.5)
    assert triplet.intrinsics.width == 832
    assert list(sources.cityscapes_triplets(tmp_path, min_flow=2.6)) == []


def test_cityscapes_triplets_never_span_the_gap_between_snippets(tmp_path):
    write_city_sequence(tmp_path, frames=[*range(6), *range(20, 26)], annotated={3, 23})
    triplets = list(sources.cityscapes_triplets(tmp_path, min_flow=0.0))
    numbers = [[int(p.name.split("_")[2]) for p in t.files] for t in triplets]
    assert numbers == [[1, 3, 5], [21, 23, 25]]
    assert [t.indices for t in triplets] == [(0, 1, 2), (3, 4, 5)]  # positions in one 8.5 Hz stream
    assert triplets[1].times[1] == pytest.approx(22 / 17)  # seconds since frame 1, gap included


def test_ingest_triplets_carry_the_video_own_rate(tmp_path, ingest_dir):
    manifest = json.loads((ingest_dir / "manifests/alpha.json").read_text())
    manifest["fps"] = 8.0  # a source slower than the run's --fps 10 keeps its own rate
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests/alpha.json").write_text(json.dumps(manifest))
    assert {t.fps for t in sources.ingest_triplets(tmp_path)} == {8.0}

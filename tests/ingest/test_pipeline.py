"""The whole ingest on real files: synthetic videos served on loopback through the real yt-dlp,
ffmpeg clips on disk, and the failures users meet (404, not a video, truncated, no video on page)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from geopre.errors import UserError
from geopre.ingest import manifest as layout
from geopre.ingest.config import FilterConfig, IngestConfig, SubsampleConfig
from geopre.ingest.pipeline import failure_lines, run_ingest, summary_table
from geopre.ingest.sources import Source, url_key, video_id
from geopre.synth.serve import serving

SMALL = SubsampleConfig(fps=10, size=(128, 64))


def config(out: Path, **kwargs) -> IngestConfig:
    return IngestConfig(out=out, subsample=kwargs.pop("subsample", SMALL), **kwargs)


def test_served_playlist_and_failures(web, tmp_path):
    out = tmp_path / "out"
    with serving(web) as base:
        sources = [Source(base + name) for name in ("index.html", "missing.mp4", "bad.mp4", "cut.mp4", "empty.html")]
        stats = run_ingest(sources, config(out, workers=2))
        media = sorted(base + f"videos/{p.name}" for p in (web / "videos").glob("*.mp4"))

    assert stats["videos"] == {"ok": 2, "failed": 4, "skipped": 0, "total": 6}
    reasons = {Path(f["url"]).name: f["reason"] for f in stats["failed"]}
    assert "404" in reasons["missing.mp4"]
    assert "not a readable video" in reasons["bad.mp4"]
    assert "truncated" in reasons["cut.mp4"]
    assert "Unsupported URL" in reasons["empty.html"]
    assert all("\n" not in r for r in reasons.values())
    assert "videos failed                  4" in summary_table(stats)

    # The same media URL gives the same id however it was found (page entry or direct link).
    assert sorted(stats["ok"]) == sorted(video_id(url_key(u)) for u in media)
    for vid in stats["ok"]:
        record = json.loads((out / "manifests" / f"{vid}.json").read_text())
        assert record["version"] == 1 and record["video_id"] == vid
        assert record["source"]["url"] in media and record["source"]["extractor"] == "HTML5MediaEmbed"
        assert record["source"]["fps"] in (24.0, 30.0) and record["source"]["width"] in (192, 160)
        assert record["params"] == {"fps": 10, "size": [128, 64], "crop": "center", "min_flow": 1.0,
                                    "max_gap": 1, "format": "jpg", "start": None, "end": None,
                                    "flow_scale": 0.5, "jpeg_quality": 95, "min_height": None}
        assert record["fps"] == 10 and record["warnings"] == []
        frames = record["frames"]
        assert [f["index"] for f in frames] == list(range(20))  # 2 s at 10 Hz
        assert [f["time"] for f in frames[:3]] == [0.0, 0.1, 0.2]
        on_disk = sorted(p.name for p in (out / "frames" / vid).iterdir())
        assert on_disk == [Path(f["file"]).name for f in frames if f["kept"]]
        assert all((f["file"] is None) != f["kept"] for f in frames)
        for prev, centre, nxt in record["triplets"]:
            assert centre - prev == 1 and nxt - centre == 1 and frames[prev]["kept"] and frames[nxt]["kept"]
    assert not list((out / "downloads").glob("*")), "downloads are removed once ingested"

    # Rerun offline (server gone): finished direct URLs are skipped without a request, and the
    # failures of the first run are reported again, not retried.
    rerun = run_ingest([Source(u) for u in media] + [Source(f["url"]) for f in stats["failed"]], config(out))
    assert rerun["videos"] == {"ok": 0, "failed": 4, "skipped": 2, "total": 6}
    assert rerun["frames"] == stats["frames"] and rerun["triplets"] == stats["triplets"]


def test_retry_failed_retries_only_the_failures(web, tmp_path):
    out = tmp_path / "out"
    with serving(web) as base:
        first = run_ingest([Source(base + "index.html"), Source(base + "cut.mp4")], config(out))
        assert first["videos"]["failed"] == 1
        shutil.copy(sorted((web / "videos").glob("*.mp4"))[0], web / "cut.mp4")  # the site fixed its file
        retry = run_ingest([], config(out, retry_failed=True))
    assert retry["videos"] == {"ok": 1, "failed": 0, "skipped": 0, "total": 1}
    assert not list((out / "failures").glob("*.json"))


def test_still_image_is_all_static_and_scrolling_is_all_moving(clips, tmp_path):
    out = tmp_path / "out"
    stats = run_ingest([Source(str(clips["still"]), local=True), Source(str(clips["scroll"]), local=True)],
                       config(out))
    assert stats["videos"]["ok"] == 1 and stats["videos"]["failed"] == 1
    assert "too little motion: 0 of 20 frames" in stats["failed"][0]["reason"]
    assert not (out / "frames" / stats["failed"][0]["video_id"]).exists()
    record = layout.load_manifest(out, stats["ok"][0])
    assert all(f["kept"] for f in record["frames"]) and len(record["triplets"]) == 18
    assert min(f["mean_flow"] for f in record["frames"]) > 3.0
    assert record["source"]["extractor"] == "local" and record["source"]["title"] == "scroll"


def test_png_format_and_trim(clips, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GEOPRE_PROGRESS_SECONDS", "0")  # a progress line at every update (stderr is no terminal)
    out = tmp_path / "out"
    stats = run_ingest([Source(str(clips["scroll"]), local=True)],
                       config(out, image_format="png", subsample=SubsampleConfig(size=(64, 32), start=0.5, end=1.5),
                              filter=FilterConfig(min_flow=0.5)))
    record = layout.load_manifest(out, stats["ok"][0])
    assert len(record["frames"]) == 10 and record["frames"][0]["time"] == 0.5
    assert record["frames"][0]["file"].endswith("000000.png")
    # The frames' total is estimated before decoding, from the probed duration, the trim and --fps.
    progress = [line.split(",")[0] for line in capsys.readouterr().err.splitlines()]
    assert progress == ["videos: 1/1 videos (100%)", "frames: 10/10 frames (100%)"]


def test_max_videos_counts_videos_done_earlier(clips, tmp_path):
    out = tmp_path / "out"
    sources = [Source(str(clips["scroll"]), local=True), Source(str(clips["counter30"]), local=True)]
    first = run_ingest(sources, config(out, max_videos=1))
    assert first["videos"] == {"ok": 1, "failed": 0, "skipped": 0, "total": 1}
    again = run_ingest(sources, config(out, max_videos=1))
    assert again["videos"] == {"ok": 0, "failed": 0, "skipped": 1, "total": 1}


def test_a_one_frame_video_says_how_many_frames_it_has(tmp_path, encode_clip):
    encode_clip(["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30", "-frames:v", "1"], tmp_path / "one.mp4", 1)
    stats = run_ingest([Source(str(tmp_path / "one.mp4"), local=True)], config(tmp_path / "out"))
    assert stats["failed"][0]["reason"] == "only 1 frame decoded at 10 fps; a triplet needs at least 3 moving frames"


def test_small_videos_are_skipped_by_min_height_or_upscaled_with_a_warning(tmp_path, encode_clip, texture_png):
    texture_png(tmp_path / "wide.png", 256, 48, seed=4)
    encode_clip(["-loop", "1", "-i", str(tmp_path / "wide.png"), "-vf", "crop=64:48:'t*60':0"],
                tmp_path / "tiny.mp4", 1)
    tiny = [Source(str(tmp_path / "tiny.mp4"), local=True)]
    skipped = run_ingest(tiny, config(tmp_path / "a", filter=FilterConfig(min_height=100)))
    assert skipped["failed"][0]["reason"] == "video is 64x48: height below --min-height 100"

    stats = run_ingest(tiny, config(tmp_path / "b", filter=FilterConfig(min_flow=0.0)))
    record = layout.load_manifest(tmp_path / "b", stats["ok"][0])
    assert record["warnings"] == ["video is 64x48: upscaled 2x to cover 128x64 "
                                  "(blurry frames; --min-height skips small videos)"]
    assert stats["warnings"] == [{"video_id": stats["ok"][0], "url": str(tmp_path / "tiny.mp4"),
                                  "warning": record["warnings"][0]}]
    assert any(line.startswith("warning: ") for line in failure_lines(stats, tmp_path))


def test_rotated_phone_clip_records_its_displayed_size(clips, tmp_path, run_ffmpeg):
    run_ffmpeg("-i", str(clips["scroll"]), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(tmp_path / "phone.mp4"))
    out = tmp_path / "out"
    stats = run_ingest([Source(str(tmp_path / "phone.mp4"), local=True)],
                       config(out, subsample=SubsampleConfig(size=(64, 96)), filter=FilterConfig(min_flow=0.0)))
    record = layout.load_manifest(out, stats["ok"][0])
    assert (record["source"]["width"], record["source"]["height"]) == (180, 320)


def test_fps_above_the_source_rate_takes_each_frame_once(clips, tmp_path):
    out = tmp_path / "out"
    stats = run_ingest([Source(str(clips["scroll"]), local=True)],
                       config(out, subsample=SubsampleConfig(fps=120, size=(64, 32))))
    record = layout.load_manifest(out, stats["ok"][0])
    assert record["fps"] == 30.0 and record["params"]["fps"] == 120 and len(record["frames"]) == 60
    assert "above the video's 30 fps" in record["warnings"][0]
    assert record["frames"][1]["time"] == pytest.approx(1 / 30, abs=1e-6)


def test_a_rerun_with_other_settings_is_refused_unless_forced(clips, tmp_path, snapshot):
    out = tmp_path / "out"
    scroll = [Source(str(clips["scroll"]), local=True)]
    first = run_ingest(scroll, config(out, subsample=SubsampleConfig(fps=10, size=(128, 64))))
    assert json.loads((out / "ingest_params.json").read_text())["size"] == [128, 64]
    before = snapshot(out)

    other = config(out, subsample=SubsampleConfig(fps=5, size=(96, 48)), filter=FilterConfig(min_flow=2.0))
    with pytest.raises(UserError) as err:
        run_ingest([Source(str(clips["counter30"]), local=True)], other)
    assert str(err.value).startswith(f"{out} was ingested with other settings: --fps 5 (folder: 10); "
                                     "--size 96x48 (folder: 128x64); --min-flow 2.0 (folder: 1.0).")
    assert snapshot(out) == before and not (out / "failures").exists(), "a refused run writes nothing"

    forced = run_ingest(scroll, replace(other, force=True))
    assert forced["videos"]["ok"] == 1 and forced["ok"] == first["ok"]
    record = layout.load_manifest(out, forced["ok"][0])
    assert record["params"]["size"] == [96, 48] and len(record["frames"]) == 10
    assert json.loads((out / "ingest_params.json").read_text())["fps"] == 5


def test_a_folder_from_before_the_params_file_is_checked_against_its_manifests(clips, tmp_path):
    out = tmp_path / "out"
    run_ingest([Source(str(clips["scroll"]), local=True)], config(out))
    (out / "ingest_params.json").unlink()
    with pytest.raises(UserError, match=r"--size 64x32 \(folder: 128x64\)"):
        run_ingest([], config(out, subsample=SubsampleConfig(size=(64, 32)), retry_failed=True))
    again = run_ingest([Source(str(clips["scroll"]), local=True)], config(out))
    assert again["videos"]["skipped"] == 1 and (out / "ingest_params.json").is_file()
    # A folder an older geopre already mixed: said as such, whatever this run asks for.
    manifest = layout.load_manifest(out, again["skipped"][0])
    manifest["video_id"], manifest["params"]["fps"] = "other", 5.0
    (out / "manifests" / "other.json").write_text(json.dumps(manifest))
    (out / "ingest_params.json").unlink()
    with pytest.raises(UserError, match=r"already mixes settings across its manifests \(--fps 10 and 5.0\)"):
        run_ingest([], config(out, retry_failed=True))


def test_a_rerun_removes_the_half_written_records_of_a_killed_run(clips, tmp_path):
    out = tmp_path / "out"
    sources = [Source(str(clips["scroll"]), local=True)]
    run_ingest(sources, config(out))
    (out / "failures").mkdir(exist_ok=True)
    stale = [out / "manifests" / ".03aa298ab79c1a26.uqdu1m9e.tmp.json",  # a kill mid-write leaves these
             out / "failures" / ".ab12.k3j4l5m6.tmp.json", out / ".ingest_stats.a1b2c3d4.tmp.json"]
    mine = [out / "manifests" / "notes.tmp.json", out / ".backup.tmp.json"]  # not geopre's temporaries
    for path in stale:
        path.write_bytes(b"{")
    for path in mine:
        path.write_text("mine")
    run_ingest(sources, config(out))
    assert not any(path.exists() for path in stale)
    assert all(path.read_text() == "mine" for path in mine)

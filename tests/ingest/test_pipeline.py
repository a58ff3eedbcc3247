"""The whole ingest on real files: synthetic videos served on loopback through the real yt-dlp,
ffmpeg clips on disk, and the failures users meet (404, not a video, truncated, no video on page)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from geopre.ingest import manifest as layout
from geopre.ingest.config import FilterConfig, IngestConfig, SubsampleConfig
from geopre.ingest.pipeline import run_ingest, summary_table
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
    assert "failed: " in summary_table(stats)

    # The same media URL gives the same id however it was found (page entry or direct link).
    assert sorted(stats["ok"]) == sorted(video_id(url_key(u)) for u in media)
    for vid in stats["ok"]:
        record = json.loads((out / "manifests" / f"{vid}.json").read_text())
        assert record["version"] == 1 and record["video_id"] == vid
        assert record["source"]["url"] in media and record["source"]["extractor"] == "HTML5MediaEmbed"
        assert record["source"]["fps"] in (24.0, 30.0) and record["source"]["width"] in (192, 160)
        assert record["params"] == {"fps": 10, "size": [128, 64], "crop": "center", "min_flow": 1.0,
                                    "max_gap": 1, "format": "jpg", "start": None, "end": None}
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

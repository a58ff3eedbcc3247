"""Downloads through the real yt-dlp from a loopback server that fails on purpose (see
flaky_server.py): every transient fault is retried, resumed and ends in the same bytes; a URL that
never answers is one failed video with a one-line reason, and the other videos finish."""

from __future__ import annotations

import shutil
import urllib.request

import pytest
from flaky_server import flaky_serving

from geopre.ingest import pipeline
from geopre.ingest.config import DownloadConfig, IngestConfig, SubsampleConfig
from geopre.ingest.download import backoff_seconds
from geopre.ingest.pipeline import run_ingest
from geopre.ingest.sources import Source

SMALL = SubsampleConfig(fps=10, size=(64, 32))
# No waiting between retries; a stalled reply fails after 2 s without a byte (the server never resumes it).
QUICK = DownloadConfig(retries=3, backoff=0.0, socket_timeout=2.0)


@pytest.fixture
def site(clips, tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(clips["scroll"], root / "clip.mp4")
    return root


@pytest.mark.parametrize("faults", [
    ["drop", "drop", "drop"],  # cut mid-file three times (the listing reads headers only)
    ["503", "ok", "503"],  # the listing, then the download, meet a 503 once each
    ["stall", "stall"],  # the download stops sending: the socket timeout ends it, the retry resumes
    ["long", "long"],  # Content-Length 1000 bytes more than the body
], ids=["dropped", "503", "stall", "wrong-length"])
def test_transient_faults_are_retried_until_the_video_ingests(site, tmp_path, faults):
    out = tmp_path / "out"
    with flaky_serving(site, {"/clip.mp4": faults}) as server:
        stats = run_ingest([Source(server.url("clip.mp4"))],
                           IngestConfig(out=out, subsample=SMALL, download=QUICK, keep_downloads=True))
    assert stats["videos"] == {"ok": 1, "failed": 0, "skipped": 0, "total": 1}, stats["failed"]
    assert server.faults_met("/clip.mp4") == faults + ["ok"], "each fault met once, then one clean request"
    [downloaded] = (out / "downloads").iterdir()
    assert downloaded.read_bytes() == (site / "clip.mp4").read_bytes()


def test_a_broken_download_resumes_where_it_stopped(site, tmp_path):
    with flaky_serving(site, {"/clip.mp4": ["drop", "drop"]}) as server:
        stats = run_ingest([Source(server.url("clip.mp4"))], IngestConfig(out=tmp_path / "out", subsample=SMALL,
                                                                          download=QUICK))
    assert stats["videos"]["ok"] == 1
    last = server.log[-1]
    assert last.fault == "ok" and last.range and not last.range.startswith("bytes=0-"), server.log


def test_a_url_that_keeps_failing_is_one_failure_and_the_rest_finish(site, clips, tmp_path):
    out = tmp_path / "out"
    download = DownloadConfig(retries=2, backoff=0.0)
    with flaky_serving(site, {"/clip.mp4": ["503"] * 10}) as server:
        stats = run_ingest([Source(server.url("clip.mp4")), Source(str(clips["scroll"]), local=True)],
                           IngestConfig(out=out, subsample=SMALL, download=download))
    assert server.faults_met("/clip.mp4") == ["503"] * 3, "the first try and two retries"
    assert stats["videos"] == {"ok": 1, "failed": 1, "skipped": 0, "total": 2}
    [failure] = stats["failed"]
    assert failure["url"] == server.url("clip.mp4") and "HTTP Error 503" in failure["reason"]
    assert "\n" not in failure["reason"]
    assert (out / "ingest_stats.json").is_file() and len(list((out / "failures").iterdir())) == 1


def test_an_unexpected_error_in_one_source_is_that_sources_failure(clips, tmp_path, monkeypatch):
    # A bug (here: a TypeError from yt-dlp's side) must not end the run or lose the other videos.
    real_resolve = pipeline.resolve

    def resolve(source, config, is_known):
        if source.url.endswith("broken.mp4"):
            raise TypeError("backoff() got an unexpected keyword argument 'n'")
        return real_resolve(source, config, is_known)

    monkeypatch.setattr(pipeline, "resolve", resolve)
    stats = run_ingest([Source("http://127.0.0.1:9/broken.mp4"), Source(str(clips["scroll"]), local=True)],
                       IngestConfig(out=tmp_path / "out", subsample=SMALL))
    assert stats["videos"]["ok"] == 1
    assert stats["failed"] == [{"video_id": stats["failed"][0]["video_id"], "url": "http://127.0.0.1:9/broken.mp4",
                                "reason": "unexpected TypeError in listing: backoff() got an unexpected keyword "
                                          "argument 'n'"}]


def test_backoff_doubles_from_the_first_wait_up_to_the_cap():
    config = DownloadConfig(backoff=0.5, max_backoff=3.0)
    assert [backoff_seconds(n, config) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_seconds(10_000, config) == 3.0
    assert backoff_seconds(3, DownloadConfig(backoff=0.0)) == 0.0


def test_flaky_server_stops_by_itself(site):
    with flaky_serving(site, {}, max_requests=1) as server:
        assert urllib.request.urlopen(server.url("clip.mp4"), timeout=10).read()
        assert server.stopping.wait(10), "the serving thread ends after max_requests"

"""`--distributor ray`: the same per-video work as Ray tasks on a local Ray instance, compared with
the local distributor on the same served site; a crashed worker and a missing ray are one line."""

from __future__ import annotations

import os
import sys

import pytest

from geopre.errors import UserError
from geopre.ingest.config import IngestConfig, SubsampleConfig
from geopre.ingest.download import Video
from geopre.ingest.pipeline import distributor, run_ingest
from geopre.ingest.sources import Source
from geopre.synth.serve import serving


def config(out, distributor: str = "local", **kwargs) -> IngestConfig:
    return IngestConfig(out=out, subsample=SubsampleConfig(fps=10, size=(128, 64)), distributor=distributor, **kwargs)


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module: starting one takes seconds (see docs/ingest.md)."""
    ray = pytest.importorskip("ray")
    # address="local": a new instance of our own, never a cluster someone started on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_ray_matches_local_and_isolates_failures(ray_instance, web, clips, tmp_path, snapshot):
    with serving(web) as base:
        sources = [Source(base + name) for name in ("index.html", "missing.mp4", "bad.mp4")]
        local = run_ingest(sources, config(tmp_path / "local"))
        on_ray = run_ingest(sources, config(tmp_path / "ray", "ray"))
        outputs = snapshot(tmp_path / "ray")
        # A rerun with one new video: only that one runs; the done ones are skipped, failures reported again.
        rerun = run_ingest(sources + [Source(str(clips["scroll"]), local=True)], config(tmp_path / "ray", "ray"))

    assert on_ray["videos"] == local["videos"] == {"ok": 2, "failed": 2, "skipped": 0, "total": 4}
    # The same one-line reasons (404, not a video), which may name the download in each run's folder.
    assert [{**f, "reason": f["reason"].replace("/ray/", "/local/")} for f in on_ray["failed"]] == local["failed"]
    assert on_ray["frames"] == local["frames"] and on_ray["triplets"] == local["triplets"]
    assert outputs == snapshot(tmp_path / "local")  # frames and manifests, byte for byte
    assert not list((tmp_path / "ray" / "downloads").glob("*")), "workers remove their downloads"
    assert rerun["videos"] == {"ok": 1, "failed": 2, "skipped": 2, "total": 5}


def test_a_dead_worker_or_a_bug_is_one_failed_video(ray_instance):
    from geopre.ingest.ray_distributor import outcome

    def die():
        os._exit(1)

    def parse(text):
        return int(text)

    video = Video("0123456789abcdef", "file:/x.mp4", "/x.mp4", local=True)
    crashed = outcome(video, ray_instance.remote(max_retries=0)(die).remote())
    assert crashed.status == "failed" and crashed.reason.startswith("WorkerCrashedError: ")
    bug = outcome(video, ray_instance.remote(parse).remote("not a number"))
    assert bug.status == "failed" and bug.reason.startswith("unexpected ValueError in ray task: invalid literal")
    assert "\n" not in crashed.reason + bug.reason


def test_info_with_live_objects_is_listed_again_on_the_worker(ray_instance):
    from geopre.ingest.ray_distributor import _portable

    plain = Video("0123456789abcdef", "k", "http://x/v.mp4", info={"formats": [{"url": "u", "height": 720}]})
    live = Video("0123456789abcdef", "k", "http://x/v.mp4", info={"formats": [{"fragments": print}]})
    assert _portable(plain).info == plain.info and _portable(live).info is None


def test_ray_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "geopre.ingest.ray_distributor", raising=False)
    with pytest.raises(UserError, match=r"pip install 'geopre\[ray\]'"):
        distributor(config(tmp_path, "ray"))

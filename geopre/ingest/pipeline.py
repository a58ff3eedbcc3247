"""The ingest run: reader -> downloader -> subsampler -> static filter -> triplets -> writer.

:func:`geopre.ingest.video.ingest_video` is the whole per-video worker (testable alone on a
local file); :func:`run_ingest` schedules it: downloads run in threads (network-bound) up to
``workers + 1`` videos ahead, processing runs in ``workers`` processes (a thread when
``workers == 1``), so the next video downloads while this one is decoded. A video is done when its manifest exists; a rerun
skips it without a request, and a video that failed is skipped (reported again) unless
``retry_failed``. Killing the run at any moment loses at most the videos in flight: their frames
live in a ``.partial`` folder until the manifest is written, and are discarded on the next run.
With ``distributor="ray"`` the same per-video work runs as Ray tasks instead (see
:mod:`geopre.ingest.ray_distributor`); everything else here is shared.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable

from geopre.errors import UserError
from geopre.ingest import manifest as layout
from geopre.ingest.config import IngestConfig, output_params
from geopre.ingest.download import Video, resolve
from geopre.ingest.sources import Source, source_key, video_id
from geopre.ingest.subsample import VideoError, VideoInfo, expected_frames, probe
from geopre.ingest.video import VideoResult, failed, failure_reason, fetch, plain_metadata, process
from geopre.io import atomic_write_json, ensure_writable_dir
from geopre.progress import progress

def check_ffmpeg() -> None:
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise UserError(f"{' and '.join(missing)} not found on PATH: install ffmpeg (e.g. `apt-get install ffmpeg`)")


def _skipped(out: Path, video: Video) -> VideoResult:
    record = layout.load_manifest(out, video.video_id)
    kept = sum(1 for f in record["frames"] if f["kept"])
    return VideoResult(video.video_id, record["source"]["url"], "skipped", None, len(record["frames"]), kept,
                       len(record["triplets"]), warnings=record.get("warnings", []))


def plan(sources: list[Source], config: IngestConfig) -> tuple[list[Video], list[VideoResult]]:
    """Expand the sources into videos; returns (videos to ingest, results already known)."""
    out = config.out
    retrying = {f["video_id"]: f for f in layout.load_failures(out)} if config.retry_failed else {}
    if config.retry_failed:
        # Only what failed before: re-list the failed sources (a failed page may have grown videos).
        sources = list(dict.fromkeys(Source(f["source"], f["local"]) for f in retrying.values()))

    def is_known(vid: str) -> bool:
        return layout.is_done(out, vid) or (vid not in retrying and layout.failure_path(out, vid).is_file())

    todo: list[Video] = []
    known: list[VideoResult] = []
    seen: set[str] = set()
    limit = config.max_videos
    for source in sources:
        if limit is not None and len(seen) >= limit:
            break
        source_vid = video_id(source_key(source))
        # Retrying a source whose listing failed: all its videos are part of that failure.
        listing_failed = source_vid in retrying
        try:
            for video in resolve(source, config.download, is_known):
                if video.video_id in seen:
                    continue
                if config.retry_failed and video.video_id not in retrying and not listing_failed:
                    continue  # finished (or new) videos of a playlist that had one failure
                seen.add(video.video_id)
                if layout.is_done(out, video.video_id):
                    known.append(_skipped(out, video))
                elif video.video_id not in retrying and (earlier := layout.load_failure(out, video.video_id)):
                    known.append(VideoResult(video.video_id, earlier["url"], "failed",
                                             f"{earlier['reason']} (earlier run; --retry-failed retries it)"))
                else:
                    todo.append(video)
                if limit is not None and len(seen) >= limit:
                    break
        except Exception as err:  # a source that cannot be listed is one failure; the others go on
            reason = failure_reason(err, "listing", source.url)
            seen.add(source_vid)
            layout.record_failure(out, source_vid, source.url, source.local, reason)
            known.append(VideoResult(source_vid, source.url, "failed", reason))
            continue
        if listing_failed and source_vid not in {v.video_id for v in todo}:
            layout.failure_path(out, source_vid).unlink(missing_ok=True)  # the page lists fine now
    return todo, known


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return ThreadPoolExecutor(1, thread_name_prefix="geopre-ingest")
    # spawn, not fork: the parent runs download threads (and a test server) that fork would copy mid-state.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


Distributor = Callable[[list[Video], IngestConfig, Callable[[VideoResult], None]], None]


def distributor(config: IngestConfig) -> Distributor:
    """Where the per-video work runs: here (:func:`schedule_local`) or as Ray tasks. Ray is optional,
    so its module is imported only when asked for; without ray installed that import is a UserError."""
    if config.distributor == "ray":
        from geopre.ingest.ray_distributor import schedule_ray

        return schedule_ray
    return schedule_local


def schedule_local(todo: list[Video], config: IngestConfig, on_result: Callable[[VideoResult], None]) -> None:
    """The local distributor: download ahead in threads, process in the pool; each finished video goes
    to ``on_result``."""
    queue = deque(todo)
    ahead = config.workers + 1  # videos downloading or downloaded but not yet processed, beyond the busy ones
    in_flight: dict = {}
    downloads = ThreadPoolExecutor(max(1, min(ahead, 4)), thread_name_prefix="geopre-download")
    processing = _executor(config.workers)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < config.workers + ahead:
                video = queue.popleft()
                in_flight[downloads.submit(fetch, video, config)] = ("download", video)
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                stage, video = in_flight.pop(future)
                try:
                    value = future.result()
                except Exception as err:
                    on_result(failed(video, err, stage))
                    continue
                if stage == "download":
                    media, info = value
                    # Only plain metadata crosses to the worker process: yt-dlp's info may hold callables.
                    video.info = None
                    in_flight[processing.submit(process, video, media, plain_metadata(info), config)] = ("process", video)
                else:
                    on_result(value)
    except BaseException:
        downloads.shutdown(wait=False, cancel_futures=True)
        processing.shutdown(wait=False, cancel_futures=True)
        raise
    downloads.shutdown()
    processing.shutdown()


def run_ingest(sources: list[Source], config: IngestConfig) -> dict:
    """Ingest every video of ``sources`` into ``config.out``; returns (and writes) the run's stats."""
    check_ffmpeg()
    schedule = distributor(config)
    started = time.perf_counter()
    out = ensure_writable_dir(config.out)
    layout.claim_output(out, output_params(config), config.force)
    todo, results = plan(sources, config)
    if not todo and not results:
        raise UserError("the sources list no videos" + (" (no failures recorded to retry)" if config.retry_failed else ""))
    sources_by_id = {v.video_id: v for v in todo}
    with progress(total=len(todo) + len(results), desc="videos", unit="video") as bar, \
            progress(total=estimated_frames(todo, config), desc="frames", unit="frame") as frames_bar:
        bar.update(len(results))

        def on_result(result: VideoResult) -> None:
            if result.status == "failed":
                video = sources_by_id[result.video_id]
                layout.discard_unfinished(out, result.video_id)
                layout.record_failure(out, result.video_id, video.url, video.local, result.reason, video.source)
            results.append(result)
            bar.update(1)
            frames_bar.update(result.frames_decoded)

        schedule(todo, config, on_result)
    stats = make_stats(results, time.perf_counter() - started)
    atomic_write_json(out / "ingest_stats.json", stats)
    return stats


def estimated_frames(todo: list[Video], config: IngestConfig) -> int | None:
    """Subsampled frames the videos to ingest should give, for the progress total: duration x fps,
    the duration probed for local files (in parallel: ffprobe is a process) and as the site states
    it for URLs; videos of unknown duration count as the known ones' mean (None: none known)."""
    def frames(video: Video) -> int | None:
        try:
            if video.local:
                video.probed = info = probe(video.url)  # kept: processing the video needs it again
            else:
                info = VideoInfo(duration=(video.info or {}).get("duration"), fps=None, width=0, height=0, frames=None)
        except VideoError:
            return None  # its own failure is reported when it is processed
        return expected_frames(info, config.subsample)

    with ThreadPoolExecutor(8, thread_name_prefix="geopre-probe") as pool:
        known = [count for count in pool.map(frames, todo) if count is not None]
    return round(sum(known) / len(known) * len(todo)) if known else None


def make_stats(results: list[VideoResult], seconds: float) -> dict:
    ok = [r for r in results if r.status == "ok"]
    skipped = [r for r in results if r.status == "skipped"]
    failed = [r for r in results if r.status == "failed"]
    finished = ok + skipped
    return {
        "videos": {"ok": len(ok), "failed": len(failed), "skipped": len(skipped), "total": len(results)},
        "ok": sorted(r.video_id for r in ok),
        "skipped": sorted(r.video_id for r in skipped),
        "failed": [{"video_id": r.video_id, "url": r.url, "reason": r.reason} for r in failed],
        # Totals over every finished video (ingested now or skipped as done), so a resumed run
        # reports what an uninterrupted one would.
        "frames": {"decoded": sum(r.frames_decoded for r in finished), "kept": sum(r.frames_kept for r in finished)},
        "triplets": sum(r.triplets for r in finished),
        "seconds": round(seconds, 3),
        "frames_per_second": round(sum(r.frames_decoded for r in ok) / seconds, 1) if seconds > 0 else None,
        "warnings": [{"video_id": r.video_id, "url": r.url, "warning": w} for r in finished for w in r.warnings],
    }


def all_failed(stats: dict) -> bool:
    return stats["videos"]["failed"] > 0 and stats["videos"]["ok"] + stats["videos"]["skipped"] == 0


def summary_table(stats: dict) -> str:
    """The final report, one row per outcome (for stdout; the failures go to stderr, see
    :func:`failure_lines`)."""
    v, f = stats["videos"], stats["frames"]
    kept_share = f"{100 * f['kept'] / f['decoded']:.0f}%" if f["decoded"] else "-"
    rows = [("videos ingested", v["ok"]), ("videos skipped (done earlier)", v["skipped"]),
            ("videos failed", v["failed"]), ("frames decoded", f["decoded"]),
            ("frames kept (moving)", f"{f['kept']} ({kept_share})"), ("triplets", stats["triplets"]),
            ("seconds", stats["seconds"])]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def failure_lines(stats: dict, out: Path, max_failures: int = 20) -> list[str]:
    """Warnings and failures, one line each (the first ``max_failures`` of each), then where all
    the reasons are: for stderr, apart from the summary table."""
    failures = stats["failed"]
    lines = [f"warning: {w['url']}: {w['warning']}" for w in stats.get("warnings", [])[:max_failures]]
    lines += [f"failed: {failure['url']}: {failure['reason']}" for failure in failures[:max_failures]]
    if len(failures) > max_failures:
        lines.append(f"... and {len(failures) - max_failures} more failures")
    if failures:
        lines.append(f"{len(failures)} of {stats['videos']['total']} videos failed: reasons in "
                     f"{Path(out) / 'ingest_stats.json'} and {Path(out) / 'failures'}/; "
                     "`geopre ingest --retry-failed --out OUT` retries them")
    return lines

"""One video's work: download it, then subsample, filter and write it (:func:`ingest_one`).

Both distributors run exactly this: :mod:`geopre.ingest.pipeline` in its threads and processes,
:mod:`geopre.ingest.ray_distributor` as one Ray task per video. It lives apart from both so that
neither imports the other.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2

from geopre.ingest import manifest as layout
from geopre.ingest.config import IngestConfig, output_params
from geopre.ingest.download import DownloadFailed, Video, download, one_line_reason, remove_downloads
from geopre.ingest.flow_filter import FlowMeter, flow_scale_for, frame_flows, is_moving, to_grey
from geopre.ingest.subsample import VideoError, VideoInfo, decode, frame_time, probe, stream_config
from geopre.ingest.triplets import make_triplets

log = logging.getLogger(__name__)


@dataclass
class VideoResult:
    video_id: str
    url: str
    status: str  # "ok" (ingested now), "skipped" (done earlier), "failed"
    reason: str | None = None
    frames_decoded: int = 0
    frames_kept: int = 0
    triplets: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def source_record(video: Video, info: dict | None, probed: VideoInfo) -> dict:
    """The manifest's ``source``: what the site says, with fps and size from the file itself (``probed``)."""
    info = info or {}
    return {
        "url": video.url,
        "webpage_url": info.get("webpage_url") or (video.source if not video.local else None),
        "title": info.get("title") or (Path(video.url).stem if video.local else None),
        "uploader": info.get("uploader"),
        "duration": probed.duration if probed.duration is not None else info.get("duration"),
        "fps": probed.fps or info.get("fps"),
        "width": probed.width,
        "height": probed.height,
        "extractor": info.get("extractor_key") or ("local" if video.local else None),
        "extractor_id": info.get("id"),
    }


def _write_frame(path: Path, frame, config: IngestConfig) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality] if config.image_format == "jpg" else []
    if not cv2.imwrite(str(path), frame, params):
        raise OSError(f"could not write {path}")


def ingest_video(out: Path, vid: str, media: Path, source: dict, config: IngestConfig,
                 on_frame: Callable[[], None] | None = None, info: VideoInfo | None = None) -> VideoResult:
    """Subsample, filter and write one video; the manifest is written last. Raises VideoError.
    ``info`` is ``probe(media)`` when the caller has it (an ffprobe run is ~60 ms of CPU)."""
    started = time.perf_counter()
    out = Path(out)
    layout.discard_unfinished(out, vid)
    partial = layout.partial_frames_dir(out, vid)
    partial.mkdir(parents=True)
    flt = config.filter
    info = info or probe(media)
    if flt.min_height is not None and info.height < flt.min_height:
        raise VideoError(f"video is {info.width}x{info.height}: height below --min-height {flt.min_height}")
    sub, warnings = stream_config(info, config.subsample)
    for warning in warnings:
        log.warning("%s: %s", source["url"], warning)
    flow_scale = flow_scale_for(sub.size[1], flt.flow_scale)
    meter = FlowMeter(flow_scale)
    pair_flows: list[float] = []
    kept: list[bool] = []
    first = previous_grey = None
    try:
        for index, frame in enumerate(decode(media, info, sub)):
            grey = to_grey(frame, flow_scale)
            if previous_grey is not None:
                pair_flows.append(meter(previous_grey, grey))
                keep = is_moving(pair_flows[-1], flt.min_flow)
                if index == 1:  # frame 0 takes the flow to frame 1 (see flow_filter.frame_flows)
                    kept.append(keep)
                    if keep:
                        _write_frame(partial / layout.frame_name(0, config.image_format), first, config)
                    first = None
                kept.append(keep)
                if keep:
                    _write_frame(partial / layout.frame_name(index, config.image_format), frame, config)
            else:
                first = frame  # held until frame 1's flow decides it
            previous_grey = grey
            if on_frame:
                on_frame()
        decoded = len(pair_flows) + 1 if previous_grey is not None else 0
        if decoded < 3:
            trimmed = " between --start and --end" if sub.start is not None or sub.end is not None else ""
            raise VideoError(f"only {decoded} frame{'' if decoded == 1 else 's'} decoded{trimmed} at {sub.fps:g} fps; "
                             "a triplet needs at least 3 moving frames")
        mean_flows = frame_flows(pair_flows)
        triplets = make_triplets(kept, flt.max_gap)
        if not triplets:
            raise VideoError(f"too little motion: {sum(kept)} of {decoded} frames have mean flow >= "
                             f"{flt.min_flow} px, no triplet of 3 moving frames (max gap {flt.max_gap})")
        record = layout.make_manifest(vid, source, output_params(config), sub.fps,
                                      [frame_time(i, sub) for i in range(decoded)], mean_flows, kept, triplets,
                                      config.image_format, warnings)
        layout.publish(out, vid, record)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return VideoResult(vid, source["url"], "ok", None, decoded, sum(kept), len(triplets),
                       time.perf_counter() - started, warnings)


def plain_metadata(info: dict | None) -> dict | None:
    """The fields of yt-dlp's info that the source record uses: plain data, safe to pickle."""
    keys = ("webpage_url", "title", "uploader", "duration", "fps", "extractor_key", "id")
    return {key: info.get(key) for key in keys} if info else None


def fetch(video: Video, config: IngestConfig) -> tuple[Path, dict | None]:
    """The media file to process (a local video is its own) and yt-dlp's info for a download."""
    if video.local:
        return Path(video.url), None
    return download(video, layout.downloads_dir(config.out), config.download)


def process(video: Video, media: Path, info: dict | None, config: IngestConfig) -> VideoResult:
    """:func:`ingest_video` on fetched media; a bad video is a failed result, and the download goes."""
    try:
        probed = video.probed if video.local and video.probed is not None else probe(media)
        result = ingest_video(config.out, video.video_id, media, source_record(video, info, probed), config,
                              info=probed)
    except VideoError as err:
        return VideoResult(video.video_id, video.url, "failed", str(err))
    finally:
        if not video.local and not config.keep_downloads:
            remove_downloads(layout.downloads_dir(config.out), video.video_id)
    return result


def ingest_one(video: Video, config: IngestConfig) -> VideoResult:
    """Download and process one video in one place: a Ray task, so the media stays on its worker's node."""
    try:
        media, info = fetch(video, config)
    except DownloadFailed as err:
        return failed(video, err, "download")
    return process(video, media, plain_metadata(info), config)


def failed(video: Video, err: Exception, stage: str) -> VideoResult:
    """``video`` failed with ``err`` in ``stage`` (see :func:`failure_reason`)."""
    return VideoResult(video.video_id, video.url, "failed", failure_reason(err, stage, video.url))


def failure_reason(err: Exception, stage: str, url: str) -> str:
    """A download error is yt-dlp's one-line reason; anything else is a bug, which must not sink the
    other videos and is reported, not hidden."""
    if isinstance(err, DownloadFailed):
        return str(err)
    log.debug("unexpected error on %s", url, exc_info=err)
    return f"unexpected {type(err).__name__} in {stage}: {one_line_reason(err)}"

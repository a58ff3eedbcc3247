"""What one `geopre ingest` run does, as one typed object (defaults follow the paper)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CROP_BANDS = ("center", "bottom", "top")
FRAME_FORMATS = ("jpg", "png")


@dataclass(frozen=True)
class SubsampleConfig:
    """How a video becomes a stream of small frames (see :mod:`geopre.ingest.subsample`)."""

    fps: float = 10.0  # section III-C: "subsampled images in 10Hz" (8.5 Hz for Cityscapes)
    size: tuple[int, int] = (640, 192)  # (width, height); the pretraining resolution of Table I
    crop: str = "center"  # which band survives the resize-then-crop: center, bottom or top
    start: float | None = None  # seconds into the video; None = from the start
    end: float | None = None  # seconds into the video; None = to the end


@dataclass(frozen=True)
class FilterConfig:
    """Static-frame filter and triplet rule (see flow_filter.py and triplets.py)."""

    min_flow: float = 1.0  # px at the output size; Zhou et al.'s static-frame threshold
    max_gap: int = 1  # a triplet's neighbours are at most this many subsampled frames apart
    flow_scale: float = 1.0  # compute flow on a copy scaled by this (0.5 = half size), rescaled back


@dataclass(frozen=True)
class DownloadConfig:
    """yt-dlp options (see download.py)."""

    max_height: int = 1080
    retries: int = 3
    rate_limit: str | None = None  # e.g. "2M" bytes/s, parsed by yt-dlp
    cookies: Path | None = None
    socket_timeout: float = 30.0


@dataclass(frozen=True)
class IngestConfig:
    out: Path
    subsample: SubsampleConfig = SubsampleConfig()
    filter: FilterConfig = FilterConfig()
    download: DownloadConfig = DownloadConfig()
    image_format: str = "jpg"
    jpeg_quality: int = 95
    workers: int = 1
    max_videos: int | None = None
    retry_failed: bool = False
    keep_downloads: bool = False

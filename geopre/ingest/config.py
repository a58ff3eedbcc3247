"""What one `geopre ingest` run does, as one typed object (defaults follow the paper)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CROP_BANDS = ("center", "bottom", "top")
FRAME_FORMATS = ("jpg", "png")
DISTRIBUTORS = ("local", "ray")


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
    """What is kept: videos tall enough, moving frames, and the triplet rule (flow_filter.py, triplets.py)."""

    min_flow: float = 1.0  # px at the output size; Zhou et al.'s static-frame threshold
    max_gap: int = 1  # a triplet's neighbours are at most this many subsampled frames apart
    # Flow on a half-size copy, rescaled back: a quarter of full-size DIS's CPU (0.8 vs 3.1 ms a
    # frame at 640x192), which was a third of ingest's CPU, with the static filter still at
    # precision/recall 1.00/1.00 against the synthetic world's truth (bench/ingest.py, docs/ingest.md).
    flow_scale: float = 0.5
    min_height: int | None = None  # skip videos whose displayed height is below this (px); None = keep all


@dataclass(frozen=True)
class DownloadConfig:
    """yt-dlp options (see download.py)."""

    max_height: int = 1080
    retries: int = 3
    rate_limit: str | None = None  # e.g. "2M" bytes/s, parsed by yt-dlp
    cookies: Path | None = None
    socket_timeout: float = 30.0  # seconds without a byte before a request counts as failed (and is retried)
    backoff: float = 1.0  # seconds before the first retry; doubles for each further retry
    max_backoff: float = 30.0  # no single wait is longer than this


@dataclass(frozen=True)
class IngestConfig:
    out: Path
    subsample: SubsampleConfig = SubsampleConfig()
    filter: FilterConfig = FilterConfig()
    download: DownloadConfig = DownloadConfig()
    image_format: str = "jpg"
    jpeg_quality: int = 95
    workers: int = 1  # local distributor only: on Ray, the cluster's CPUs set the parallelism
    distributor: str = "local"  # where the per-video work runs: "local" (threads + processes) or "ray"
    ray_address: str | None = None  # "auto" or "HOST:PORT" of a Ray cluster; None = a new local Ray instance
    max_videos: int | None = None
    retry_failed: bool = False
    keep_downloads: bool = False
    force: bool = False  # re-ingest everything: remove the outputs of an earlier run into `out` first


def output_params(config: IngestConfig) -> dict:
    """The options that decide what lands in frames/ and manifests/: recorded in every manifest and
    in ``OUT/ingest_params.json``, so a rerun with other values cannot mix two settings in one
    folder. Download options (format height, retries, cookies) and scheduling are not among them."""
    sub, flt = config.subsample, config.filter
    return {"fps": sub.fps, "size": list(sub.size), "crop": sub.crop, "min_flow": flt.min_flow,
            "max_gap": flt.max_gap, "format": config.image_format, "start": sub.start, "end": sub.end,
            "flow_scale": flt.flow_scale, "jpeg_quality": config.jpeg_quality, "min_height": flt.min_height}


def validate(config: IngestConfig) -> IngestConfig:
    """Raise a one-line UserError naming the option at fault; return the config unchanged."""
    from geopre.errors import UserError

    sub, flt, dl = config.subsample, config.filter, config.download
    problems = [
        (not sub.fps > 0, f"--fps must be positive (got {sub.fps})"),
        (sub.crop not in CROP_BANDS, f"--crop must be one of {', '.join(CROP_BANDS)} (got {sub.crop!r})"),
        (sub.size[0] < 8 or sub.size[1] < 8, f"--size must be at least 8x8 (got {sub.size[0]}x{sub.size[1]})"),
        (sub.start is not None and sub.start < 0, f"--start must be >= 0 seconds (got {sub.start})"),
        (sub.end is not None and sub.end <= (sub.start or 0.0),
         f"--end ({sub.end}) must be after --start ({sub.start or 0.0})"),
        (not flt.min_flow >= 0, f"--min-flow must be >= 0 px (got {flt.min_flow})"),
        (flt.max_gap < 1, f"--max-gap must be at least 1 (got {flt.max_gap})"),
        (not 0 < flt.flow_scale <= 1, f"--flow-scale must be in (0, 1] (got {flt.flow_scale})"),
        (flt.min_height is not None and flt.min_height < 1, f"--min-height must be positive (got {flt.min_height})"),
        (config.image_format not in FRAME_FORMATS, f"--format must be jpg or png (got {config.image_format!r})"),
        (not 1 <= config.jpeg_quality <= 100, f"--jpeg-quality must be 1..100 (got {config.jpeg_quality})"),
        (config.workers < 1, f"--jobs must be at least 1 (got {config.workers})"),
        (config.distributor not in DISTRIBUTORS,
         f"--distributor must be one of {', '.join(DISTRIBUTORS)} (got {config.distributor!r})"),
        (config.ray_address is not None and config.distributor != "ray", "--ray-address needs --distributor ray"),
        (config.force and config.retry_failed,
         "--force re-ingests everything and --retry-failed only earlier failures: choose one"),
        (config.max_videos is not None and config.max_videos < 1, f"--max-videos must be at least 1 (got {config.max_videos})"),
        (dl.max_height < 1, f"--max-height must be positive (got {dl.max_height})"),
        (dl.retries < 0, f"--retries must be >= 0 (got {dl.retries})"),
        (not dl.socket_timeout > 0, f"--socket-timeout must be positive (got {dl.socket_timeout})"),
        (not 0 <= dl.backoff <= dl.max_backoff, f"--retry-backoff must be 0..{dl.max_backoff} s (got {dl.backoff})"),
        (dl.cookies is not None and not Path(dl.cookies).is_file(), f"--cookies file {dl.cookies} does not exist"),
    ]
    for failed, message in problems:
        if failed:
            raise UserError(message)
    if dl.cookies is not None and _starts_with_bom(Path(dl.cookies)):
        # yt-dlp then rejects the file for every video ("does not look like a Netscape format cookies file").
        raise UserError(f"--cookies file {dl.cookies} starts with a byte-order mark (as Notepad saves it), "
                        "which yt-dlp cannot read: save it as UTF-8 without BOM")
    if dl.rate_limit is not None:
        from yt_dlp.utils import parse_bytes

        if parse_bytes(dl.rate_limit) is None:
            raise UserError(f"--rate-limit {dl.rate_limit!r} is not a rate like 500K or 2M (bytes per second)")
    return config


def _starts_with_bom(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(3)
    return head == b"\xef\xbb\xbf" or head[:2] in (b"\xff\xfe", b"\xfe\xff")

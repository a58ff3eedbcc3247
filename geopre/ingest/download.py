"""Downloader: yt-dlp's Python API, with every failure kept as a one-line reason.

Two steps. :func:`resolve` asks yt-dlp what a URL is (one request, no media): a single video or
a playlist/channel/page, whose entries become one :class:`Video` each, keyed as in
:mod:`geopre.ingest.sources`. :func:`download` then fetches one video into ``DIR/downloads``.

We do not pass yt-dlp a ``download_archive``: it keys generic URLs by file name, so a second
``clip.mp4`` from another site would be skipped as already done. Our proof that a video is done is
its manifest (``DIR/manifests/<video_id>.json``), checked before any request; a half-finished
download resumes from yt-dlp's ``.part`` file. Errors are never ignored (``ignoreerrors`` off):
each one raises :class:`DownloadFailed` with yt-dlp's own message.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from geopre.ingest.config import DownloadConfig
from geopre.ingest.sources import GENERIC_EXTRACTORS, Source, site_extractor, source_key, url_key, video_id
from geopre.ingest.subsample import VideoInfo

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class DownloadFailed(Exception):
    """yt-dlp could not list or fetch a video; the message is yt-dlp's reason on one line."""


@dataclass
class Video:
    """One video to ingest. ``info`` is what yt-dlp already knows (None for local files)."""

    video_id: str
    key: str
    url: str  # the URL keyed on (media URL for generic pages), or the local file's path
    local: bool = False
    source: str = ""  # the SOURCE that listed it (for --retry-failed of playlist-level errors)
    info: dict | None = field(default=None, repr=False)
    probed: VideoInfo | None = field(default=None, repr=False)  # a local file's ffprobe, once it was run


class _CollectingLogger:
    """yt-dlp logger that keeps errors (for the failure reason) and stays quiet otherwise."""

    def __init__(self):
        self.errors: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        self.errors.append(msg)


def one_line_reason(err: BaseException) -> str:
    text = _ANSI.sub("", str(err)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    text = re.sub(r"^ERROR:\s*", "", text)
    return text if len(text) <= 300 else text[:297] + "..."


def backoff_seconds(retry: int, config: DownloadConfig) -> float:
    """How long to wait before retry number ``retry`` (0 = the first): exponential, capped."""
    return min(config.max_backoff, config.backoff * 2.0 ** min(retry, 64))


def _params(config: DownloadConfig, outtmpl: str | None, logger: _CollectingLogger) -> dict:
    from yt_dlp.utils import parse_bytes

    def sleep(n: int) -> float:  # yt-dlp calls its retry_sleep_functions with the keyword n=
        return backoff_seconds(n, config)

    params = {
        "logger": logger,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "ignoreerrors": False,
        "noplaylist": True,  # a video URL with &list= means that video; playlists come as their own URL
        # Video only (we throw audio away), best up to max height; ? keeps formats of unknown height.
        "format": f"bv[height<=?{config.max_height}]/b[height<=?{config.max_height}]/bv/b",
        "retries": config.retries,
        "fragment_retries": config.retries,
        "extractor_retries": config.retries,
        "file_access_retries": config.retries,
        "retry_sleep_functions": {"http": sleep, "fragment": sleep, "extractor": sleep, "file_access": sleep},
        "socket_timeout": config.socket_timeout,
        "continuedl": True,
        "overwrites": False,
        "cachedir": False,
    }
    if outtmpl:
        params["outtmpl"] = {"default": outtmpl}
    if config.rate_limit:
        params["ratelimit"] = parse_bytes(config.rate_limit)
    if config.cookies:
        params["cookiefile"] = str(config.cookies)
    return params


def _entry_video(entry: dict, source: str) -> Video:
    extractor = entry.get("ie_key") or entry.get("extractor_key")
    if entry.get("_type") in ("url", "url_transparent"):
        url = entry["url"]
    elif extractor in GENERIC_EXTRACTORS and entry.get("formats"):
        url = entry["formats"][0].get("url") or entry.get("webpage_url") or source
    else:
        url = entry.get("webpage_url") or entry.get("url") or source
    key = url_key(url, extractor, entry.get("id"))
    return Video(video_id(key), key, url, source=source, info=entry)


def resolve(source: Source, config: DownloadConfig, is_known: Callable[[str], bool] = lambda _id: False) -> Iterator[Video]:
    """The videos of one source, lazily (a channel can be long).

    A single-video URL whose id ``is_known`` (finished or failed earlier) is yielded without any
    request. Raises :class:`DownloadFailed` when yt-dlp cannot list the URL (404, no video on the
    page, unsupported site)."""
    key = source_key(source)
    if source.local or is_known(video_id(key)):
        yield Video(video_id(key), key, source.url, local=source.local, source=source.url)
        return
    import yt_dlp

    logger = _CollectingLogger()
    params = _params(config, None, logger) | {"extract_flat": "in_playlist"}
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            info = _list_with_retries(ydl, source.url, config)
            if info.get("_type") in ("playlist", "multi_video"):
                for entry in info.get("entries") or []:
                    if entry:
                        yield _entry_video(entry, source.url)
                return
    except yt_dlp.utils.YoutubeDLError as err:
        raise DownloadFailed(one_line_reason(err)) from None
    # One video: key it by the URL the user gave, so a rerun can skip it without a request.
    yield Video(video_id(key), key, source.url, source=source.url, info=info)


def is_transient(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) is one a later attempt may not meet: a server error (5xx),
    a timeout or a connection that broke; not a 404, an unsupported page or a bad certificate."""
    from yt_dlp.networking.exceptions import CertificateVerifyError, HTTPError, TransportError

    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, HTTPError):
            return 500 <= err.status < 600
        if isinstance(err, TransportError):
            return not isinstance(err, CertificateVerifyError)
        exc_info = getattr(err, "exc_info", None)
        err = getattr(err, "cause", None) or (exc_info[1] if exc_info else None) or err.__cause__ or err.__context__
    return False


def _list_with_retries(ydl, url: str, config: DownloadConfig) -> dict:
    """yt-dlp's listing request, retried on transient errors like its downloads. Site extractors
    (YouTube...) retry their own requests (``extractor_retries``); the generic one (direct links,
    pages with <video>) tries once, so one 503 or timeout would fail the video for good."""
    retries = 0 if site_extractor(url) else config.retries
    retry = 0
    while True:
        try:
            return ydl.extract_info(url, download=False, process=False)
        except Exception as err:
            if retry >= retries or not is_transient(err):
                raise
        time.sleep(backoff_seconds(retry, config))
        retry += 1


def download(video: Video, folder: Path, config: DownloadConfig) -> tuple[Path, dict]:
    """Fetch ``video`` into ``folder/<video_id>.<ext>``; returns the file and yt-dlp's info."""
    import yt_dlp

    logger = _CollectingLogger()
    params = _params(config, str(folder / f"{video.video_id}.%(ext)s"), logger)
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            info = video.info
            if info is not None and info.get("_type") not in ("url", "url_transparent"):
                result = ydl.process_ie_result(dict(info), download=True)
            elif info is not None:
                result = ydl.extract_info(info["url"], ie_key=info.get("ie_key"), download=True)
            else:
                result = ydl.extract_info(video.url, download=True)
    except yt_dlp.utils.YoutubeDLError as err:
        raise DownloadFailed(one_line_reason(err)) from None
    if result is None:
        raise DownloadFailed(one_line_reason(Exception(logger.errors[-1])) if logger.errors else "yt-dlp returned nothing")
    if result.get("_type") in ("playlist", "multi_video"):
        raise DownloadFailed("the URL is a playlist, not one video")
    files = [d.get("filepath") for d in result.get("requested_downloads") or [] if d.get("filepath")]
    if not files or not Path(files[0]).is_file():
        raise DownloadFailed("yt-dlp finished without a file")
    return Path(files[0]), result


def remove_downloads(folder: Path, vid: str) -> None:
    """Delete a video's download and yt-dlp's leftovers (``.part``, ``.ytdl``)."""
    if folder.is_dir():
        for path in folder.glob(f"{vid}.*"):
            path.unlink(missing_ok=True)

"""Reader: turn the SOURCE arguments into a flat list of things to ingest, and name each video.

A SOURCE is a URL (one video, or a playlist/channel/page that yt-dlp expands later), a local
video file, a folder of videos, a CSV or Parquet table with a ``url`` column, or a text batch
file (one URL or path a line, ``#`` comments and blank lines ignored; also ``--batch-file``).

Every video gets a *video id* that is safe as a file name and stable across runs: the first 16
hex digits of the SHA-1 of its *key*. The key is ``<Extractor>:<id>`` when a site extractor
recognises the URL (``Youtube:dQw4w9WgXcQ``: the same video under any URL spelling), the media
URL itself for the generic extractor (yt-dlp's own archive keys those by file name, so two
``clip.mp4`` at different paths would collide), and ``file:<absolute path>`` for local files.
Titles and other remote metadata never reach a path.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from geopre.errors import UserError

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".ts", ".flv", ".mpg", ".mpeg", ".3gp"})
BATCH_EXTENSIONS = frozenset({".txt", ".list", ".urls"})
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# yt-dlp extractors whose ids are derived from the page, not the media: key these by media URL.
GENERIC_EXTRACTORS = frozenset({"Generic", "HTML5MediaEmbed"})


@dataclass(frozen=True)
class Source:
    """One URL for yt-dlp, or one local video file (``url`` is then its absolute path)."""

    url: str
    local: bool = False


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def video_id(key: str) -> str:
    """The safe, stable id of the video with this key (16 hex digits)."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


@lru_cache(maxsize=1)
def _site_extractors():
    from yt_dlp.extractor import gen_extractor_classes

    return [ie for ie in gen_extractor_classes() if ie.ie_key() not in GENERIC_EXTRACTORS]


def url_key(url: str, extractor: str | None = None, extractor_id: str | None = None) -> str:
    """The key of a video URL, found offline (no request): see the module docstring."""
    if extractor and extractor_id and extractor not in GENERIC_EXTRACTORS:
        return f"{extractor}:{extractor_id}"
    ie = site_extractor(url)
    if ie is not None:
        try:
            found = ie.get_temp_id(url)
        except Exception:  # an extractor's URL regex without an id group: fall back to the URL
            found = None
        if found:
            return f"{ie.ie_key()}:{found}"
    return url.strip()


def site_extractor(url: str):
    """The yt-dlp extractor class made for this URL's site, or None (the generic extractor's)."""
    return next((ie for ie in _site_extractors() if ie.suitable(url)), None)


def source_key(source: Source) -> str:
    return f"file:{source.url}" if source.local else url_key(source.url)


def read_text(path: Path, what: str) -> str:
    """A text input of ingest, as Windows tools save it too: UTF-8 with or without the byte-order
    mark Excel and Notepad put first, or UTF-16 with its mark (Excel's "Unicode text"); any line
    ending. ``what`` names the file in the one-line error."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err.strerror or err}") from err
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise UserError(f"cannot read {what} {path}: not {encoding.upper()} text ({err.reason} at byte "
                        f"{err.start}); save it as UTF-8") from err


def read_batch_file(path: Path) -> list[str]:
    """Lines of a batch file, without blank lines and ``#`` comments."""
    lines = [line.strip() for line in read_text(path, "batch file").splitlines()]
    return [_unquote(line) for line in lines if line and not line.startswith("#")]


def _unquote(line: str) -> str:
    """Excel's text export quotes a cell that holds a comma or a quote, doubling the quotes inside."""
    if len(line) >= 2 and line[0] == line[-1] == '"':
        return line[1:-1].replace('""', '"').strip()
    return line


def read_url_table(path: Path) -> list[str]:
    """The non-empty ``url`` column of a CSV or Parquet file."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        values = _read_parquet_urls(path)
    else:
        values = _read_csv_urls(path)
    return [str(v).strip() for v in values if v is not None and str(v).strip() and str(v).strip() != "nan"]


def _read_csv_urls(path: Path) -> list:
    """The ``url`` column (any case, quoted or not) of a CSV separated by commas, or by the semicolons
    or tabs that Excel writes where the comma is the decimal point."""
    text = read_text(path, "CSV")

    def rows(delimiter: str):
        return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    try:
        for delimiter in (",", ";", "\t"):
            names = [name.strip().lower() for name in next(rows(delimiter), [])]
            if "url" in names:
                column = names.index("url")
                return [row[column] for row in list(rows(delimiter))[1:] if len(row) > column]
        columns = next(rows(","), [])
    except csv.Error as err:
        raise UserError(f"cannot read {path} as CSV: {err}") from err
    raise UserError(f"{path} has no 'url' column (columns: {', '.join(columns) or 'none'})")


def _read_parquet_urls(path: Path) -> list:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        table = pq.read_table(path)
        if "url" not in table.column_names:
            raise UserError(f"{path} has no 'url' column (columns: {', '.join(table.column_names)})")
        return table.column("url").to_pylist()
    try:
        import pandas as pd

        frame = pd.read_parquet(path)  # pandas alone cannot: it needs pyarrow or fastparquet as engine
    except ImportError:
        raise UserError(f"reading {path} needs pyarrow (pip install pyarrow); "
                        "or give the URLs as a CSV with a 'url' column") from None
    if "url" not in frame.columns:
        raise UserError(f"{path} has no 'url' column (columns: {', '.join(map(str, frame.columns))})")
    return frame["url"].tolist()


def _videos_in_folder(folder: Path) -> list[Source]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
                   and not p.name.startswith("."))
    if not files:
        raise UserError(f"folder {folder} has no video files ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    return [Source(str(p.resolve()), local=True) for p in files]


def _expand_one(item: str, allow_lists: bool) -> list[Source]:
    if is_url(item):
        return [Source(item)]
    path = Path(item).expanduser()
    if path.is_dir():
        return _videos_in_folder(path)
    if not path.is_file():
        raise UserError(f"source {item!r} is neither a URL (http://...) nor an existing file or folder")
    suffix = path.suffix.lower()
    if allow_lists and suffix in (".csv", ".parquet"):
        return [s for url in read_url_table(path) for s in _expand_one(url, allow_lists=False)]
    if allow_lists and suffix in BATCH_EXTENSIONS:
        return [s for line in read_batch_file(path) for s in _expand_one(line, allow_lists=False)]
    return [Source(str(path.resolve()), local=True)]


def expand_sources(items: list[str] | tuple[str, ...], batch_files: list[Path] | tuple[Path, ...] = ()) -> list[Source]:
    """All sources in order, duplicates removed. A URL playlist stays one Source here: yt-dlp
    expands it in :func:`geopre.ingest.download.resolve`."""
    sources: list[Source] = []
    for batch in batch_files:
        for line in read_batch_file(batch):
            sources.extend(_expand_one(line, allow_lists=False))
    for item in items:
        sources.extend(_expand_one(str(item), allow_lists=True))
    return list(dict.fromkeys(sources))

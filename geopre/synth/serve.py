"""Serve a folder over HTTP on loopback, with byte ranges, so yt-dlp downloads the synthetic
"internet" videos through its real generic extractor and HTTP downloader, offline.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import re
import shutil
import threading
from functools import partial
from pathlib import Path
from typing import Iterator

from geopre.errors import UserError

log = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte-range requests (``Range: bytes=a-b``), as video players and
    download managers send them to resume or to read an mp4's index at the end."""

    _remaining: int | None = None

    def send_head(self):  # noqa: D401 - overrides the stdlib hook
        header = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not header or os.path.isdir(path):
            self._remaining = None
            return super().send_head()
        match = _RANGE.match(header.strip())
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(404, "File not found")
            return None
        size = os.fstat(f.fileno()).st_size
        if not match or (not match.group(1) and not match.group(2)):
            f.close()
            self.send_error(400, "Malformed Range header")
            return None
        if match.group(1):
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else size - 1
        else:  # suffix range: the last N bytes
            start, end = max(0, size - int(match.group(2))), size - 1
        end = min(end, size - 1)
        if start >= size or start > end:
            f.close()
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        f.seek(start)
        self._remaining = end - start + 1
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(self._remaining))
        self.end_headers()
        return f

    def end_headers(self) -> None:
        if self._remaining is None:
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:
        if self._remaining is None:
            shutil.copyfileobj(source, outputfile)
            return
        left = self._remaining
        while left > 0:
            chunk = source.read(min(64 * 1024, left))
            if not chunk:
                break
            outputfile.write(chunk)
            left -= len(chunk)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-download (yt-dlp probing, a cancelled test) is not an error.
        log.debug("connection from %s ended early", client_address)


def make_server(root: Path | str, port: int = 0, host: str = "127.0.0.1",
                any_port_if_taken: bool = False) -> QuietServer:
    """An HTTP server for ``root`` (not yet serving). Port 0 picks a free port; so does a taken
    ``port`` with ``any_port_if_taken``.

    Pipelines that serve the same folder on every run (the demo, the study) ask for a fixed port:
    the URLs, and so ingest's video ids, then stay the same and a rerun finds its finished videos.
    When that port is taken they still run, re-ingesting under new ids, which costs time only.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"cannot serve {root}: not a folder (render one with `geopre synth videos {root}`)")
    handler = partial(RangeRequestHandler, directory=str(root))
    try:
        return QuietServer((host, port), handler)
    except OSError as err:
        if any_port_if_taken and port:
            return make_server(root, 0, host)
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror} (choose another --port)") from err


@contextlib.contextmanager
def serving(root: Path | str, port: int = 0, host: str = "127.0.0.1",
            any_port_if_taken: bool = False) -> Iterator[str]:
    """Serve ``root`` in a background thread for the duration of a ``with`` block; yields the
    base URL (``http://127.0.0.1:PORT/``). See :func:`make_server` for the port."""
    server = make_server(root, port, host, any_port_if_taken)
    thread = threading.Thread(target=server.serve_forever, name="geopre-serve", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

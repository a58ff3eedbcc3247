"""A loopback HTTP server that fails on purpose, for retry and fault-injection tests.

``with flaky_serving(folder, {"/clip.mp4": ["drop", "drop"]}) as server:`` serves ``folder`` on
127.0.0.1 like :func:`geopre.synth.serve.serving` (byte ranges included, so a client can resume),
except that the first GETs of a path meet that path's faults, in order; later GETs are served
fully. ``server.url(path)`` is the address, ``server.log`` what each GET asked for and met.

Faults, each what a real server or network does to a long download:

- ``"ok"``: served normally (to let one request through between faults);
- ``"503"``: ``503 Service Unavailable``, no body;
- ``"drop"``: headers, then half the body, then the connection is closed;
- ``"stall"``: headers and half the body, then silence on an open connection until the client
  gives up (its socket timeout) or the server stops;
- ``"long"``: a ``Content-Length`` 1000 bytes larger than the body, which is sent whole before
  the connection closes.

It stops by itself: after ``max_requests`` connections or ``lifetime`` seconds the serving thread
ends, and a stalled reply waits at most that long, so a test that hangs fails instead of blocking.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Iterator

from geopre.synth.serve import QuietServer, RangeRequestHandler

FAULTS = ("ok", "503", "drop", "stall", "long")


@dataclass
class Served:
    """One GET: its path, its ``Range`` header (None for a whole-file request) and the fault it met."""

    path: str
    range: str | None
    fault: str


@dataclass
class FlakyServer:
    base: str
    faults: dict[str, list[str]]
    log: list[Served] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def next_fault(self, path: str, range_header: str | None) -> str:
        with self.lock:
            queue = self.faults.get(path) or []
            fault = queue.pop(0) if queue else "ok"
            self.log.append(Served(path, range_header, fault))
            return fault

    def faults_met(self, path: str) -> list[str]:
        return [s.fault for s in self.log if s.path == path]


class _FlakyHandler(RangeRequestHandler):
    fault = "ok"  # HEAD requests meet no fault

    def __init__(self, *args, flaky: FlakyServer, lifetime: float, **kwargs):
        self.flaky, self.lifetime = flaky, lifetime
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.fault = self.flaky.next_fault(self.path, self.headers.get("Range"))
        if self.fault == "503":
            self.send_error(503, "Service Unavailable")
            return
        super().do_GET()

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "content-length" and self.fault in ("drop", "stall", "long"):
            self.body_length = int(value)
            if self.fault == "long":
                value = str(int(value) + 1000)
        super().send_header(keyword, value)

    def copyfile(self, source, outputfile) -> None:
        if self.fault not in ("drop", "stall"):
            super().copyfile(source, outputfile)
            return
        outputfile.write(source.read(self.body_length // 2))
        outputfile.flush()
        if self.fault == "stall":
            self.flaky.stopping.wait(self.lifetime)
        self.close_connection = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass


class _CountingServer(QuietServer):
    accepted = 0

    def process_request(self, request, client_address) -> None:
        self.accepted += 1
        super().process_request(request, client_address)


@contextlib.contextmanager
def flaky_serving(root: Path | str, faults: dict[str, list[str]], max_requests: int = 40,
                  lifetime: float = 60.0) -> Iterator[FlakyServer]:
    """Serve ``root`` on 127.0.0.1 with ``faults`` ({path: [fault, ...]}, paths as in the URL)."""
    unknown = {f for queue in faults.values() for f in queue} - set(FAULTS)
    assert not unknown, f"unknown faults {unknown}; known: {FAULTS}"
    flaky = FlakyServer("", {path: list(queue) for path, queue in faults.items()})
    handler = partial(_FlakyHandler, flaky=flaky, lifetime=lifetime, directory=os.fspath(root))
    server = _CountingServer(("127.0.0.1", 0), handler)
    server.timeout = 0.05  # handle_request returns this often to check the bounds
    flaky.base = f"http://127.0.0.1:{server.server_address[1]}/"
    deadline = time.monotonic() + lifetime

    def serve() -> None:
        while server.accepted < max_requests and time.monotonic() < deadline and not flaky.stopping.is_set():
            server.handle_request()
        flaky.stopping.set()

    thread = threading.Thread(target=serve, name="flaky-server", daemon=True)
    thread.start()
    try:
        yield flaky
    finally:
        flaky.stopping.set()
        thread.join(timeout=5)
        server.server_close()

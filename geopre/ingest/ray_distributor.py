"""The Ray distributor: each video is one Ray task that downloads and processes it on a worker node.

The task is :func:`geopre.ingest.video.ingest_one`, the same per-video work the local distributor
runs in its threads and processes, so outputs are identical. The driver lists the sources, ships
each task a :class:`Video` and the config, and gets a small :class:`VideoResult` back: media never
crosses the network twice. Every node must see the same paths (``--out``, local videos,
``--cookies``): a shared filesystem. The output contract is unchanged: frames go to a ``.partial``
folder and the manifest is written last, on the worker, so a task that dies leaves nothing half
written; the driver records it as failed (a dead worker is retried once first).
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections import deque
from pathlib import Path
from typing import Callable

from geopre.errors import UserError
from geopre.ingest.config import IngestConfig
from geopre.ingest.download import Video, one_line_reason
from geopre.ingest.video import VideoResult, failed, ingest_one

try:
    import ray
except ModuleNotFoundError:
    raise UserError("--distributor ray needs Ray, which is not installed: pip install 'geopre[ray]'") from None

_HOST_PORT = re.compile(r"^(?P<host>[^:/]+):(?P<port>\d+)$")
TASKS_PER_CPU = 2  # in flight per cluster CPU: keeps every CPU busy without queueing the whole list in Ray


def schedule_ray(todo: list[Video], config: IngestConfig, on_result: Callable[[VideoResult], None]) -> None:
    """Run ``ingest_one`` for each video as a Ray task; each finished video goes to ``on_result``."""
    if not todo:
        return
    started_here = connect(config.ray_address)
    # max_retries: a worker that dies (out of memory, node lost) is retried once; a Python exception
    # is not retried (it would fail the same way) and comes back as RayTaskError.
    task = ray.remote(max_retries=1)(ingest_one)
    config = _absolute_paths(config)
    window = TASKS_PER_CPU * max(1, int(ray.cluster_resources().get("CPU", 1)))
    queue = deque(todo)
    in_flight: dict = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < window:
                video = queue.popleft()
                in_flight[task.remote(_portable(video), config)] = video
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            on_result(outcome(in_flight.pop(ref), ref))
    except BaseException:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (``auto``: the one ``ray start`` began on this machine, or
    ``HOST:PORT``); None starts a local Ray instance of our own, or joins ``$RAY_ADDRESS`` (as ``ray job
    submit`` sets it). Does nothing if this process is connected already; returns whether it connected.

    Not ray.init's own default for None, which joins the last cluster ``ray start`` began here, even
    one that has died since (ray.init then retries for minutes)."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    try:
        if host_port := _HOST_PORT.match(address):
            # ray.init waits minutes for a head that is not there; a plain connect says so in seconds.
            socket.create_connection((host_port["host"], int(host_port["port"])), timeout=10).close()
        ray.init(address=address, logging_level="WARNING")
    except OSError as err:  # ConnectionError among them: no cluster at that address
        reason = one_line_reason(err).split(". ")[0]  # Ray's next sentence names its own CLI's flags
        if address == "local":
            raise UserError(f"cannot start a local Ray instance: {reason}") from None
        raise UserError(f"cannot join a Ray cluster at {address}: {reason} (start one with `ray start --head`, "
                        "or leave --ray-address out for a local one)") from None
    return True


def outcome(video: Video, ref: ray.ObjectRef) -> VideoResult:
    """The finished task's result, or ``video`` failed with a one-line reason."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:  # ingest_one raised: a bug, reported like the local one
        return failed(video, err.cause, "ray task")
    except ray.exceptions.RayError as err:  # the worker or its node died (after the retry), or cancelled
        return VideoResult(video.video_id, video.url, "failed", f"{type(err).__name__}: {one_line_reason(err)}")


def _absolute_paths(config: IngestConfig) -> IngestConfig:
    """Workers need not share the driver's working directory."""
    download = config.download
    if download.cookies is not None:
        download = dataclasses.replace(download, cookies=Path(download.cookies).resolve())
    return dataclasses.replace(config, out=Path(config.out).resolve(), download=download)


def _portable(video: Video) -> Video:
    """``video`` as a task argument. yt-dlp's listing info travels when it is plain data, so the worker
    downloads without listing again (the same source record as the local run); info holding live
    objects (some extractors put callables in it) is dropped and the worker lists the URL again."""
    return video if _is_plain(video.info) else dataclasses.replace(video, info=None)


def _is_plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    return value is None or isinstance(value, (str, int, float, bool))

"""Progress of long commands, the one way every stage reports it, on stderr.

On a terminal: a tqdm bar. Anywhere else (nohup, SLURM, CI logs, a pipe) a bar is either hidden
or thousands of carriage returns, so :class:`LineProgress` prints a plain line instead, at most
every ``GEOPRE_PROGRESS_SECONDS`` seconds (default 30; ``0``: every update; ``off``: never):
count/total, rate, time left, and what the loop set with ``set_postfix`` (the loss).
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Callable, TextIO

from geopre.errors import UserError

INTERVAL_ENV = "GEOPRE_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0
_FROM_ENV = object()


def interval_from_env() -> float | None:
    """Seconds between progress lines off a terminal, from ``GEOPRE_PROGRESS_SECONDS``; None: never."""
    text = os.environ.get(INTERVAL_ENV, "").strip().lower()
    if not text:
        return DEFAULT_INTERVAL
    if text in ("off", "never", "none"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or math.isinf(seconds):
        raise UserError(f"{INTERVAL_ENV}={text!r}: give the seconds between progress lines (0: every update) or 'off'")
    return seconds


def format_duration(seconds: float) -> str:
    """``75`` -> ``1m15s``, ``3725`` -> ``1h02m``: short enough for a log line."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_line(desc: str, count: int, total: int | None, unit: str, done_here: int, elapsed: float,
                  postfix: dict[str, str]) -> str:
    """``finetune: 120/1000 steps (12%), 3.40 steps/s, 4m19s left, loss 0.1234``.

    ``done_here`` is the part of ``count`` done since the start (a resumed run starts above 0), the
    rate's numerator."""
    head = f"{desc}: {count}/{total} {unit}s ({100 * count / total:.0f}%)" if total else f"{desc}: {count} {unit}s"
    parts = [head]
    if elapsed > 0 and done_here > 0:
        rate = done_here / elapsed
        parts.append(f"{rate:.0f} {unit}s/s" if rate >= 100 else f"{rate:.3g} {unit}s/s")
        if total and count < total:
            parts.append(f"{format_duration((total - count) / rate)} left")
    parts.extend(f"{key} {value}" for key, value in postfix.items())
    return ", ".join(parts)


class LineProgress:
    """tqdm's interface (``update``, ``set_postfix``, ``close``, context manager) printing a
    :func:`progress_line` at most every ``interval`` seconds, and a last one on close when
    something was printed already (so a log ends on the final count)."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 interval: float | None = DEFAULT_INTERVAL, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.interval, self.stream, self.clock = interval, stream, clock
        self.initial = initial
        self.started = self.last_print = clock()
        self.printed = None  # count at the last line, None before the first
        self.postfix: dict[str, str] = {}

    def update(self, n: int = 1) -> None:
        self.n += n
        if n and self.interval is not None and self.clock() - self.last_print >= self.interval:
            self._print()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs) -> None:
        self.postfix = {key: str(value) for key, value in {**(ordered_dict or {}), **kwargs}.items()}

    def close(self) -> None:
        if self.printed is not None and self.printed != self.n:
            self._print()

    def _print(self) -> None:
        now = self.clock()
        line = progress_line(self.desc, self.n, self.total, self.unit, self.n - self.initial, now - self.started,
                             self.postfix)
        print(line, file=self.stream or sys.stderr, flush=True)
        self.last_print, self.printed = now, self.n

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
             stream: TextIO | None = None, interval=_FROM_ENV):
    """A bar on a terminal, else a :class:`LineProgress` every ``interval`` seconds
    (default: ``GEOPRE_PROGRESS_SECONDS``). Both write to ``stream`` (default: stderr)."""
    stream = stream or sys.stderr
    if stream.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=stream, dynamic_ncols=True, leave=False)
    return LineProgress(total, desc, unit, initial, interval_from_env() if interval is _FROM_ENV else interval, stream)

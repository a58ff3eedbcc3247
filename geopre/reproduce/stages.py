"""A list of cached stages run in order, with a progress line and an estimate of the time left.

A stage is done when ``stages.json`` records it *and* its output exists; the record is written
(atomically) only after the stage returned, so an interrupted stage simply runs again, and every
stage's own work is resumable or cheap to redo (ingest resumes per video, shards check their
fingerprint, training resumes from its latest checkpoint).

A stage's recorded seconds are the sum over every run that worked on it: an interrupted attempt
(Ctrl-C, an error) adds its time when the stage finally finishes, and the record says how many
attempts it took (``attempts``, ``resumed``). An attempt killed outright (SIGKILL, power loss)
cannot report its time; the record marks it (``untimed_attempts``) and such a stage does not
feed the rate estimates.

Consecutive stages marked ``parallel`` run ``jobs`` at a time in separate processes, each with
``cores / jobs`` torch threads: on a small CPU two single-threaded trainings finish sooner than
two in turn with two threads each, because small convolutions scale poorly across threads.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from geopre.io import atomic_write_json

STATE_FILE = "stages.json"


@dataclass
class Stage:
    name: str
    kind: str  # stages of a kind share a cost rate for the estimate (seconds per unit)
    units: float  # work in the kind's unit (training steps, frames, ...)
    output: Path  # exists once the stage has finished
    run: Callable[[], Any]  # picklable (a module-level function or a partial of one) when parallel
    parallel: bool = False
    # A parallel stage that needs the stages before it (a fine-tuning that loads a pretrained
    # encoder) starts a new group: it runs only once every stage before it has finished.
    after_previous: bool = False


def format_minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class StageRunner:
    """Runs stages, skipping recorded ones; learns each kind's seconds per unit as it goes.

    ``prior_rates`` (seconds per unit by kind) seed the estimate until a stage of the kind has run
    here; rates measured by an earlier, interrupted run of the same folder are reused.
    """

    def __init__(self, folder: Path, prior_rates: dict[str, float], echo: Callable[[str], None] = print,
                 jobs: int = 1, label: str = "reproduce"):
        self.path = Path(folder) / STATE_FILE
        self.state: dict = json.loads(self.path.read_text()) if self.path.exists() else {"stages": {}}
        self.prior_rates = prior_rates
        self.echo = echo
        self.jobs = max(1, jobs)
        self.label = label  # the command whose progress lines these are

    def rate(self, kind: str) -> float:
        measured = [(r["seconds"], r["units"]) for r in self.state["stages"].values()
                    if r["kind"] == kind and not r.get("cached") and r["units"] > 0 and not r.get("untimed_attempts")]
        if measured:
            return sum(s for s, _ in measured) / sum(u for _, u in measured)
        return self.prior_rates.get(kind, 0.0)

    def is_done(self, stage: Stage) -> bool:
        return stage.name in self.state["stages"] and stage.output.exists()

    def estimate(self, stages: list[Stage]) -> float:
        return sum(self.rate(s.kind) * s.units / (self.jobs if s.parallel else 1)
                   for s in stages if not self.is_done(s))

    def _started(self, stage: Stage) -> float:
        """Note an attempt (before it runs, so even a killed one is counted); returns its start time."""
        attempt = self.state.setdefault("attempts", {}).setdefault(
            stage.name, {"seconds": 0.0, "attempts": 0, "open": False, "untimed": 0})
        attempt["untimed"] += attempt["open"]  # the previous attempt died without a word
        attempt["attempts"] += 1
        attempt["open"] = True
        atomic_write_json(self.path, self.state)
        return time.perf_counter()

    def _interrupted(self, stage: Stage, started: float) -> None:
        attempt = self.state["attempts"][stage.name]
        attempt["seconds"] += time.perf_counter() - started
        attempt["open"] = False

    def _record(self, stage: Stage, seconds: float) -> None:
        attempt = self.state.get("attempts", {}).pop(stage.name, {"seconds": 0.0, "attempts": 1, "untimed": 0})
        self.state["stages"][stage.name] = {
            "kind": stage.kind, "units": stage.units, "seconds": round(seconds + attempt["seconds"], 2),
            "parallel": stage.parallel, "attempts": attempt["attempts"], "resumed": attempt["attempts"] > 1,
            "untimed_attempts": attempt["untimed"], "finished": dt.datetime.now().isoformat(timespec="seconds")}
        atomic_write_json(self.path, self.state)

    def run(self, stages: list[Stage]) -> dict[str, dict]:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        self.echo(f"[{self.label}] {len(stages)} stages, {sum(self.is_done(s) for s in stages)} already done; "
                  f"about {format_minutes(self.estimate(stages))} of work left")
        self.state.setdefault("runs", []).append({"started": dt.datetime.now().isoformat(timespec="seconds"),
                                                  "jobs": self.jobs})
        atomic_write_json(self.path, self.state)
        try:
            index = 0
            while index < len(stages):
                end = index + 1
                if stages[index].parallel and self.jobs > 1:
                    while end < len(stages) and stages[end].parallel and not stages[end].after_previous:
                        end += 1
                    self._run_parallel(stages, index, end)
                elif not self.is_done(stages[index]):
                    self._run_one(stages, index)
                index = end
        except BaseException as error:
            self.state["runs"][-1]["stopped_by"] = type(error).__name__
            raise
        finally:
            self.state["runs"][-1]["finished"] = dt.datetime.now().isoformat(timespec="seconds")
            atomic_write_json(self.path, self.state)
        return {name: self.state["stages"][name] for name in names}

    def _progress(self, stages: list[Stage], index: int, text: str) -> None:
        self.echo(f"[{self.label} {index + 1}/{len(stages)}] {stages[index].name}{text}")

    def _finished(self, stages: list[Stage], index: int, seconds: float) -> None:
        self._record(stages[index], seconds)
        left = self.estimate(stages)
        self._progress(stages, index, f": {format_minutes(seconds)}; about {format_minutes(left)} left")

    def _run_one(self, stages: list[Stage], index: int) -> None:
        self._progress(stages, index, " ...")
        start = self._started(stages[index])
        try:
            stages[index].run()
        except BaseException:
            self._interrupted(stages[index], start)
            raise
        self._finished(stages, index, time.perf_counter() - start)

    def _run_parallel(self, stages: list[Stage], begin: int, end: int) -> None:
        todo = [k for k in range(begin, end) if not self.is_done(stages[k])]
        if not todo:
            return
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_limit_threads,
                                 initargs=(threads,)) as pool:
            queue, running, starts = list(todo), {}, {}
            try:
                while queue or running:
                    while queue and len(running) < self.jobs:  # submit as slots free up: honest progress lines
                        k = queue.pop(0)
                        self._progress(stages, k, " ...")
                        starts[k] = self._started(stages[k])
                        running[pool.submit(_timed, stages[k].run)] = k
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        k = running.pop(future)
                        try:
                            seconds = future.result()
                        except BaseException:
                            running[future] = k  # counted with the others below
                            raise
                        self._finished(stages, k, seconds)
            except BaseException:
                for future, k in running.items():
                    future.cancel()
                    self._interrupted(stages[k], starts[k])
                raise


def _limit_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start

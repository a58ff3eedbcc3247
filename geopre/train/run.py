"""One lifecycle for every training run: what ``geopre pretrain`` and ``geopre finetune`` share.

A loop opens a :class:`TrainingRun` and keeps only its own maths in view; the run does the rest
the same way for both:

- **the run folder**, checked on every rank: a folder holding a checkpoint is refused unless
  resuming (checked on rank 0 alone, the other ranks would train on until their first collective);
- ``config.json``, the metrics log (:class:`~geopre.train.logs.RunLog`), the progress line and the
  checkpoints (:class:`~geopre.train.checkpoint.Checkpointer`, rank 0 writes);
- **the NaN policy**: the loss is checked at every step, before the update, and the weights before
  every checkpoint and model save. Checking only at log steps would save a GPU sync per step, but
  a diverged step's NaN weights give the next step NaN flows, and ``grid_sample``'s backward pass
  with NaN coordinates can crash the process (it segfaults on the CPU) before any later check:
  the run must stop at the step that diverged, with the last good checkpoint intact;
- **Ctrl-C and SIGTERM** (what SLURM sends before it kills a job): the step in progress finishes,
  then a resumable checkpoint, logs closed, and :class:`RunInterrupted`, whose message is the one
  line the CLI prints;
- ``summary.json`` and the DDP teardown at the end.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from geopre.errors import UserError
from geopre.io import atomic_write_json, ensure_writable_dir
from geopre.progress import progress
from geopre.train.checkpoint import Checkpointer, check_finite, diverged
from geopre.train.logs import RunLog
from geopre.train.runtime import Runtime, unwrap


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run after it saved a resumable checkpoint; the message says
    which. A KeyboardInterrupt still, so whatever stops on Ctrl-C stops on it too."""


def claim_run_dir(out: Path | str, resume: bool, is_main: bool, name: str) -> Path:
    """The run folder, created by rank 0. Every rank refuses a fresh run into a folder that holds a
    checkpoint (it would overwrite that run's logs and mix two runs' checkpoints)."""
    out = Path(out)
    if is_main:
        ensure_writable_dir(out)
    if not resume and Checkpointer(out).latest() is not None:
        raise UserError(f"{out} already holds a {name} run: add --resume to continue it, or choose another folder")
    return out


def weights_finite(model: torch.nn.Module) -> bool:
    return bool(torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all())


@contextlib.contextmanager
def stop_requests(request: Callable[[int], None]):
    """Ctrl-C (SIGINT) and SIGTERM call ``request(signum)`` instead of raising wherever they land:
    an interrupt inside ``optimizer.step()`` would save half-updated weights, one inside the forward
    pass batch-norm statistics of a step that never happened. A second Ctrl-C raises at once (the
    user insists). Handlers can only be set from the main thread; elsewhere signals keep their meaning."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        request(signum)

    for signum in previous:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class TrainingRun:
    """Set-up and tear-down of one run in ``out``; see the module's docstring."""

    def __init__(self, name: str, out: Path | str, resume: bool, runtime: Runtime):
        self.name, self.resume, self.runtime = name, resume, runtime
        self.out = claim_run_dir(out, resume, runtime.is_main, name)
        self.checkpoints = Checkpointer(self.out)
        self.log = RunLog(self.out, enabled=False)  # the real one opens in start(), once the step is known
        self.bar = None
        self._stop_signal: str | None = None
        self._save: Callable[[], Path | None] = lambda: None

    def write_json(self, name: str, values: dict) -> None:
        if self.runtime.is_main:
            atomic_write_json(self.out / name, {k: str(v) if isinstance(v, Path) else v for k, v in values.items()})

    def start(self, config, step: int, total_steps: int, **facts) -> None:
        """Write config.json (the config's fields and ``facts``), open the logs (a resume at
        ``step`` drops the rows logged after it) and the progress line."""
        self.write_json("config.json", {**asdict(config), **facts})
        self.log = RunLog(self.out, enabled=self.runtime.is_main, resume_step=step if self.resume else None)
        if self.runtime.is_main:
            self.bar = progress(total=total_steps, initial=step, desc=self.name, unit="step")

    def check(self, loss: torch.Tensor, step: int) -> None:
        """The NaN check of every step's loss, before the update (see the module's docstring)."""
        check_finite(loss, step, self.checkpoints.latest)

    def save(self, step: int, epoch: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler, extra: dict | None = None) -> Path | None:
        """A resumable checkpoint (rank 0; nothing before the first step), only of finite weights."""
        self.check_weights(model, step)
        if not self.runtime.is_main or step == 0:
            return None
        self.log.flush()
        return self.checkpoints.save(step, epoch, unwrap(model), optimizer, scaler, extra=extra)

    def check_weights(self, model: torch.nn.Module, step: int) -> None:
        if not weights_finite(model):
            raise diverged("weights are NaN or infinite", step, self.checkpoints.latest())

    @contextlib.contextmanager
    def training(self, save: Callable[[], Path | None]):
        """The loop runs inside, calling :meth:`step_done` after every step: a Ctrl-C or SIGTERM
        stops the run there with ``save()`` (a checkpoint of the state the loop has reached) and
        :class:`RunInterrupted`. Logs close however the loop ends."""
        self._save = save
        try:
            with stop_requests(self._request_stop):
                yield
        except RunInterrupted:
            raise
        except KeyboardInterrupt:  # a second Ctrl-C: out now, mid-step, so nothing saved
            last = self.checkpoints.latest()
            raise RunInterrupted(f"{self.name} interrupted mid-step, nothing saved "
                                 f"({f'last checkpoint {last}' if last else 'no checkpoint was written'})") from None
        finally:
            if self.bar is not None:
                self.bar.close()
            self.log.close()

    def _request_stop(self, signum: int) -> None:
        self._stop_signal = signal.Signals(signum).name

    def step_done(self) -> None:
        """After each whole step: the progress line, and the stop a signal asked for."""
        if self.bar is not None:
            self.bar.update(1)
        if self._stop_signal is not None:
            saved = self._save() or self.checkpoints.latest()
            where = f"checkpoint {saved}; add --resume to continue" if saved else "no checkpoint was written"
            raise RunInterrupted(f"{self.name} stopped by {self._stop_signal} ({where})")

    def finish(self, summary: dict) -> dict:
        """Write summary.json and leave the DDP group. Only after a run that ended well: after a
        failure another rank may still wait in a collective, and the process's exit tears it down."""
        self.write_json("summary.json", summary)
        self.runtime.close()
        return summary

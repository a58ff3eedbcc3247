"""Checkpoints that survive a crash at any moment and resume a run exactly.

A checkpoint is a folder ``RUN/checkpoints/step_<N>/`` holding ``model.safetensors`` (the weights,
loadable without pickle) and ``state.pt`` (optimiser, grad scaler, step, epoch, every RNG state and
the run's config). It is assembled under a temporary name and renamed into place, and the file
``RUN/checkpoints/latest`` (also replaced atomically) names the newest complete one, so a kill
during a save leaves the previous checkpoint as the one a resume picks up.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from geopre.errors import UserError
from geopre.io import atomic_write_text

WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.pt"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Resumed:
    step: int
    epoch: int
    extra: dict[str, Any]
    path: Path


class Checkpointer:
    """Saves and restores a run's model, optimiser, scaler, counters and RNG streams."""

    def __init__(self, run_dir: Path | str, keep: int = 2):
        self.root = Path(run_dir) / "checkpoints"
        self.keep = keep

    def latest(self) -> Path | None:
        pointer = self.root / "latest"
        if not pointer.exists():
            return None
        path = self.root / pointer.read_text().strip()
        return path if (path / STATE_FILE).exists() and (path / WEIGHTS_FILE).exists() else None

    def save(self, step: int, epoch: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler | None = None, extra: dict[str, Any] | None = None) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"step_{step:08d}"
        final = self.root / name
        tmp = self.root / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"step": str(step)})
        torch.save({"step": step, "epoch": epoch, "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": rng_state(), "extra": extra or {}}, tmp / STATE_FILE)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        atomic_write_text(self.root / "latest", name + "\n")
        self._prune(final)
        return final

    def _prune(self, newest: Path) -> None:
        steps = sorted(p for p in self.root.glob("step_*") if p.is_dir())
        for old in steps[:-self.keep]:
            if old != newest:
                shutil.rmtree(old, ignore_errors=True)

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
             scaler: torch.amp.GradScaler | None = None, path: Path | None = None,
             restore_rng: bool = True) -> Resumed:
        """Restore from ``path`` (default: the latest checkpoint) into the given objects."""
        path = path or self.latest()
        if path is None:
            raise UserError(f"no checkpoint to resume in {self.root} (start without --resume)")
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        if restore_rng:
            set_rng_state(state["rng"])
        return Resumed(step=state["step"], epoch=state["epoch"], extra=state["extra"], path=path)


def run_part(path: Path | str) -> str | None:
    """What ``path`` is in a training run's layout (``RUN/checkpoints/step_N/`` with the weights and
    the state file), in a few words; None when it is no part of one. For messages when it is given
    where another file belongs."""
    path = Path(path)
    if path.is_dir():
        if (path / "checkpoints").is_dir():
            return "a training run folder"
        if (path / "latest").is_file():
            return "a run's checkpoints folder"
        return "a checkpoint folder" if (path / STATE_FILE).is_file() else None
    if path.name in (WEIGHTS_FILE, STATE_FILE) and (path.parent / STATE_FILE).is_file() \
            and (path.parent / WEIGHTS_FILE).is_file():
        return f"a training checkpoint's {path.name}"
    return None


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


def check_finite(loss: torch.Tensor, step: int, last_good) -> None:
    """Raise :class:`TrainingDiverged` if ``loss`` is NaN or infinite. ``last_good`` is the newest
    checkpoint, or a callable returning it (looked up only when the loss is bad)."""
    if not torch.isfinite(loss.detach()).all():
        raise diverged(f"loss is {loss.item()}", step, last_good() if callable(last_good) else last_good)


def diverged(what: str, step: int, last_good: Path | None) -> TrainingDiverged:
    """The one-line error of a run that diverged: what went bad, at which step, what to resume from."""
    where = f"last good checkpoint: {last_good}" if last_good else "no checkpoint was written yet"
    return TrainingDiverged(f"{what} at step {step}; stopped ({where}); "
                            f"lower --lr or check the input data, then rerun with --resume")

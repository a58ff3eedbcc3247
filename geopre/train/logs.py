"""Training logs: a CSV of scalars per step and TensorBoard events, written by rank 0 only.

On resume from step N, rows after N (written by the run that crashed after its last checkpoint)
are dropped from the CSV and TensorBoard is told to purge them, so the curves continue as if the
run had never stopped.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from geopre.io import atomic_write_text


class RunLog:
    def __init__(self, run_dir: Path | str, enabled: bool = True, resume_step: int | None = None,
                 tensorboard: bool = True):
        self.enabled = enabled
        self.csv_path = Path(run_dir) / "metrics.csv"
        self._rows: list[dict[str, float]] = []
        self._pending: dict[str, float] | None = None
        self._header: list[str] = []
        self._writer = None
        if not enabled:
            return
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.csv_path.exists():
            with self.csv_path.open(newline="") as f:
                self._rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
            self._rows = [r for r in self._rows if r["step"] <= resume_step]
            self._rewrite()
        elif self.csv_path.exists():
            self.csv_path.unlink()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(Path(run_dir) / "tensorboard"),
                                         purge_step=resume_step + 1 if resume_step is not None else None)

    def _columns(self) -> list[str]:
        keys = {k for row in self._rows for k in row}
        return ["step"] + sorted(keys - {"step"})

    def _rewrite(self) -> None:
        self._header = self._columns()
        lines = [",".join(self._header)] + [self._line(row) for row in self._rows]
        atomic_write_text(self.csv_path, "\n".join(lines) + "\n")

    def _line(self, row: dict[str, float]) -> str:
        return ",".join("" if k not in row else repr(float(row[k])) for k in self._header)

    def _flush_row(self, row: dict[str, float]) -> None:
        # Append in the common case; rewrite the file only when a new column appears.
        if not self.csv_path.exists() or any(k not in self._header for k in row):
            self._rewrite()
        else:
            with self.csv_path.open("a") as f:
                f.write(self._line(row) + "\n")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Record scalars for a step (a step may be logged in several calls, e.g. train then val)."""
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}
        if self._pending is not None and self._pending["step"] != step:
            self.flush()
        if self._pending is None:
            self._pending = {"step": float(step)}
            self._rows.append(self._pending)
        self._pending.update(clean)
        if self._writer is not None:
            for key, value in clean.items():
                self._writer.add_scalar(key, value, step)

    def flush(self) -> None:
        """Write the step being collected (call before a checkpoint so the CSV matches it)."""
        if self._pending is not None:
            self._flush_row(self._pending)
            self._pending = None
        if self._writer is not None:
            self._writer.flush()

    def image(self, step: int, tag: str, image_hwc) -> None:
        if self._writer is not None:
            self._writer.add_image(tag, image_hwc, step, dataformats="HWC")

    def rows(self) -> list[dict[str, float]]:
        return list(self._rows)

    def close(self) -> None:
        if not self.enabled:
            return
        self.flush()
        if self._writer is not None:
            self._writer.close()

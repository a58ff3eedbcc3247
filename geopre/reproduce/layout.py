"""What a study is and where its files lie: the stages write them (study.py), the report reads them.

Folder layout under ``OUT``: ``REPORT.md``, ``figures/``, ``baselines.json``, ``evals/<cell>.json``
(each run's test scores, per image, and its test scores along training) and ``curves/<cell>.json``
(its validation history): small, meant to be read and committed with the report. ``cache/`` (the
world, shards, training runs: large, regenerable), ``stages.json`` (what ran, for how long).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from geopre.reproduce.presets import Preset

KITTI_EVAL = "eval_kitti_eigen.json"
CITY_EVAL = "eval_cityscapes_all.json"
BASELINES_FILE = "baselines.json"


@dataclass(frozen=True)
class Cell:
    """One fine-tuning run of the study."""

    mode: str  # S or M
    fraction: float
    init: str  # "scratch", "imagenet", "geo-<mixture>" or "geo-imagenet-<mixture>"
    seed: int

    @property
    def name(self) -> str:
        return f"{self.mode}_{round(self.fraction * 100):03d}pct_{self.init}_seed{self.seed}"


@dataclass(frozen=True)
class Study:
    preset: Preset
    out: Path
    imagenet_weights: Path | None = None
    device: str = "auto"
    jobs: int = 1  # stages run at once (training runs in parallel processes; see stages.py)
    bench_results: Path | None = None  # a bench/gpu.py result shown in the report, apart from this run's numbers

    @property
    def cache(self) -> Path:
        return self.out / "cache"

    @property
    def kitti(self) -> Path:
        return self.cache / "kitti"

    @property
    def cityscapes(self) -> Path:
        return self.cache / "cityscapes"

    @property
    def cityscapes_test(self) -> Path:
        return self.cache / "cityscapes_test"

    @property
    def pretrainings(self) -> list[str]:
        """One pretraining per mixture from scratch and, given ImageNet weights, one from ImageNet
        (``imagenet-<mixture>``: the paper's encoders start from ImageNet)."""
        mixtures = list(self.preset.mixtures)
        return mixtures + ([f"imagenet-{m}" for m in mixtures] if self.imagenet_weights else [])

    def encoder(self, pretraining: str) -> Path:
        return self.cache / "pretrain" / pretraining / "encoder.pth"

    def run_dir(self, cell: Cell) -> Path:
        return self.cache / "finetune" / cell.name

    @property
    def inits(self) -> list[str]:
        """``scratch``, ``geo-<pretraining>`` for each pretraining, and ``imagenet`` with ImageNet weights."""
        inits = (["scratch"] if self.preset.scratch else []) + [f"geo-{m}" for m in self.preset.mixtures]
        if self.imagenet_weights:
            inits += ["imagenet"] + [f"geo-imagenet-{m}" for m in self.preset.mixtures]
        return inits

    @staticmethod
    def comparator(init: str) -> str:
        """The init a geometric one is compared with: what its pretraining started from."""
        return "imagenet" if init.startswith("geo-imagenet-") else "scratch"

    def cells(self) -> list[Cell]:
        p = self.preset
        cells = [Cell("S", f, init, seed) for seed in p.seeds for f in sorted(p.fractions, reverse=True)
                 for init in self.inits]
        if p.mono:
            cells += [Cell("M", 1.0, init, seed) for seed in p.seeds for init in self.inits]
        return cells


def init_label(init: str) -> str:
    """Row names that say what each encoder started from, so the comparator is plain."""
    if init.startswith("geo-imagenet-"):
        return f"ImageNet -> geometric {init[len('geo-imagenet-'):]} (the paper's)"
    if init.startswith("geo-"):
        return f"geometric {init[4:]} (no ImageNet)"
    return {"scratch": "scratch (random init)", "imagenet": "ImageNet"}.get(init, init)


"""The study's run folders read into records: one per fine-tuning cell, from its ``summary.json``
(validation history) and evaluation JSONs (test metrics, per image, for the selected model and every
validated one), plus ``baselines.json``; the small files a reader needs to re-check the report are
copied to ``OUT/evals/`` and ``OUT/curves/`` (:func:`export_small_files`). The tables, verdicts and
figures only select from these records (:func:`metric_values`, :func:`study_groups`).
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np

from geopre.io import atomic_write_json
from geopre.reproduce import statistics
from geopre.reproduce.layout import BASELINES_FILE, CITY_EVAL, KITTI_EVAL, Study
from geopre.train.finetune import VALIDATED_DIR


def mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def collect(study: Study) -> list[dict]:
    """One record per fine-tuning cell that has its evaluations (``city`` is None without a
    generalisation test set); ``along`` is the KITTI-style test score of every validated model."""
    records = []
    for cell in study.cells():
        run = study.run_dir(cell)
        try:
            kitti = json.loads((run / KITTI_EVAL).read_text())
            city = json.loads((run / CITY_EVAL).read_text()) if study.preset.city_test_sequences else None
            summary = json.loads((run / "summary.json").read_text())
        except FileNotFoundError:
            continue
        along = []
        for folder in sorted((run / VALIDATED_DIR).glob("step_*")):
            if (folder / KITTI_EVAL).is_file():
                along.append({"step": int(folder.name[5:]),
                              "metrics": json.loads((folder / KITTI_EVAL).read_text())["metrics"]})
        history = [h for h in summary["history"] if "val/abs_rel" in h]
        converged = statistics.convergence([h["step"] for h in history], [h["val/abs_rel"] for h in history],
                                           summary["steps"])
        records.append({"cell": cell, "kitti": kitti["metrics"], "city": city["metrics"] if city else None,
                        "kitti_frames": kitti.get("per_image"), "city_frames": city.get("per_image") if city else None,
                        "summary": summary, "summary_dir": run, "along": along, "convergence": converged,
                        "final": along[-1]["metrics"] if along else None})
    return records


def export_small_files(study: Study, records: list[dict]) -> None:
    """``OUT/evals/<cell>.json`` (test scores, per image, and along training) and
    ``OUT/curves/<cell>.json`` (validation history and the convergence check): small files to
    commit with the report, from which every table and verdict can be recomputed."""
    for r in records:
        name = r["cell"].name
        atomic_write_json(study.out / "evals" / f"{name}.json", {
            "cell": asdict(r["cell"]), "selected": r["summary"]["best"],
            "kitti": {"metrics": r["kitti"], "per_image": r["kitti_frames"]},
            "city": None if r["city"] is None else {"metrics": r["city"], "per_image": r["city_frames"]},
            "along_training": r["along"]})
        atomic_write_json(study.out / "curves" / f"{name}.json", {
            "cell": asdict(r["cell"]), "steps": r["summary"]["steps"], "history": r["summary"]["history"],
            "convergence": r["convergence"]})


def load_baselines(study: Study) -> dict:
    path = study.out / BASELINES_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def constant_baseline(study: Study) -> dict[str, float]:
    """Eigen-test metrics of a constant depth at each test image's true median (the baselines stage's
    median-scaled constant)."""
    return load_baselines(study)["kitti"]["M"]["constant"]


def metric_values(records, mode, fraction, init, dataset, metric) -> list[float]:
    return [r[dataset][metric] for r in records if r[dataset] is not None
            and r["cell"].mode == mode and r["cell"].fraction == fraction and r["cell"].init == init]


def study_groups(study) -> list[tuple[str, float]]:
    groups = [("S", f) for f in sorted(study.preset.fractions, reverse=True)]
    return groups + ([("M", 1.0)] if study.preset.mono else [])


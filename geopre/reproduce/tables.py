"""The report's markdown tables: metrics per init with the baselines under them (Table II style),
few-shot and generalisation by fraction, convergence and selected/final test scores per cell, the
gain along training in words, and the pretraining runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geopre.reproduce import statistics
from geopre.reproduce.collect import mean_std, metric_values, study_groups
from geopre.reproduce.layout import init_label
from geopre.reproduce.verdicts import best_prior, learned
from geopre.train.metrics import METRIC_NAMES


def _baseline_rows(baselines: dict, dataset: str, mode: str, columns: int) -> list[str]:
    rows = baselines.get(dataset, {}).get("M" if dataset == "kitti" and mode == "M" else "S", {})
    return [f"| baseline: {name} depth | – | " + " | ".join(f"{errors[m]:.3f}" for m in METRIC_NAMES)
            + " |" + " |" * (columns - len(METRIC_NAMES) - 2) for name, errors in rows.items()]


def metric_table(records, study, mode: str, fraction: float, dataset: str, baselines: dict | None = None) -> str:
    """Mean ± std over seeds per init, the baselines under it, and whether each init learned."""
    baselines = baselines or {}
    header = ("| init | seeds | " + " | ".join(METRIC_NAMES) + " | beats the per-pixel prior |\n|"
              + "---|" * (len(METRIC_NAMES) + 3))
    rows = [header]
    for init in study.inits:
        cells = []
        seeds = len(metric_values(records, mode, fraction, init, dataset, "abs_rel"))
        if not seeds:
            continue
        for metric in METRIC_NAMES:
            mean, std = mean_std(metric_values(records, mode, fraction, init, dataset, metric))
            cells.append(f"{mean:.3f} ± {std:.3f}")
        verdict = {True: "yes", False: "**did not learn**", None: "–"}[
            learned(records, baselines, mode, fraction, init, dataset)]
        rows.append(f"| {init_label(init)} | {seeds} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(rows + _baseline_rows(baselines, dataset, mode, len(METRIC_NAMES) + 3))


def fewshot_table(records, study, dataset: str, metric: str = "abs_rel", baselines: dict | None = None) -> str:
    fractions = sorted(study.preset.fractions)
    header = "| init | " + " | ".join(f"{f:.0%}" for f in fractions) + " |\n|" + "---|" * (len(fractions) + 1)
    rows = [header]
    for init in study.inits:
        cells = []
        for fraction in fractions:
            values = metric_values(records, "S", fraction, init, dataset, metric)
            mark = "" if learned(records, baselines or {}, "S", fraction, init, dataset) is not False else " (did not learn)"
            cells.append("–" if not values else "{:.3f} ± {:.3f}".format(*mean_std(values)) + mark)
        rows.append(f"| {init_label(init)} | " + " | ".join(cells) + " |")
    prior = best_prior(baselines or {}, dataset, "S")
    if prior is not None:
        rows.append("| baseline: per-pixel prior (best of median, mean) | "
                    + " | ".join(f"{prior[metric]:.3f}" for _ in fractions) + " |")
    return "\n".join(rows)


def training_table(records, study) -> str:
    """Per (mode, fraction, init): how many seeds converged by the written rule, the val abs_rel gain
    of the last quarter, and the test abs_rel of the selected (best val) and the final model."""
    rows = ["| mode | fraction | init | steps | converged (seeds) | last-quarter val improvement | "
            "test abs_rel, selected | test abs_rel, final |", "|---|---|---|---|---|---|---|---|"]
    for mode, fraction in study_groups(study):
        for init in study.inits:
            cells = [r for r in records if r["cell"].mode == mode and r["cell"].fraction == fraction
                     and r["cell"].init == init]
            if not cells:
                continue
            marks = [r["convergence"]["converged"] for r in cells]
            gains = [r["convergence"]["improvement"] for r in cells if r["convergence"]["improvement"] is not None]
            finals = [r["final"]["abs_rel"] for r in cells if r["final"]]
            rows.append(f"| {mode} | {fraction:.0%} | {init_label(init)} | {cells[0]['summary']['steps']} | "
                        f"{sum(m is True for m in marks)} of {len(marks)}"
                        + (f" ({sum(m is None for m in marks)} too few validations)" if None in marks else "")
                        + " | " + (f"{np.median(gains):.1%} (median)" if gains else "–") + " | "
                        + "{:.3f} ± {:.3f}".format(*mean_std([r["kitti"]["abs_rel"] for r in cells])) + " | "
                        + ("{:.3f} ± {:.3f}".format(*mean_std(finals)) if finals else "–") + " |")
    return "\n".join(rows)


def gain_along_training(records, study) -> tuple[list[str], dict]:
    """Per (mode, fraction) and pretrained init: the mean test abs_rel gap to its comparator at each
    validated step (seeds both ran), and the rule's word for how it ends (statistics.gain_trend)."""
    sentences, curves = [], {}
    for mode, fraction in study_groups(study):
        for init in study.inits:
            if not init.startswith("geo-"):
                continue
            base = study.comparator(init)

            def along(which):
                return {r["cell"].seed: {a["step"]: a["metrics"]["abs_rel"] for a in r["along"]} for r in records
                        if r["cell"].mode == mode and r["cell"].fraction == fraction and r["cell"].init == which}

            b, c = along(base), along(init)
            seeds = sorted(set(b) & set(c))
            steps = sorted(set.intersection(*[set(b[s]) & set(c[s]) for s in seeds])) if seeds else []
            if not steps:
                continue
            gaps = [float(np.mean([b[s][k] - c[s][k] for s in seeds])) for k in steps]
            curves[(mode, fraction, init)] = (steps, gaps)
            trend = statistics.gain_trend(gaps)
            sentences.append(f"{mode} {fraction:.0%}, {init_label(init)} vs {init_label(base)}: the gain "
                             f"**{trend}** (test abs_rel gap by step: "
                             + ", ".join(f"{k}: {g:+.3f}" for k, g in zip(steps, gaps)) + f"; {len(seeds)} seeds).")
    return sentences, curves


def pretrain_rows(study) -> list[str]:
    rows = ["| mixture | triplets (train / val) | steps | first loss | final loss | val photometric |",
            "|---|---|---|---|---|---|"]
    for mixture in study.pretrainings:
        run = study.cache / "pretrain" / mixture
        index = json.loads((study.cache / "shards" / mixture.removeprefix("imagenet-") / "index.json").read_text())
        counts = {split: info.get("samples", 0) for split, info in index.get("splits", {}).items()}
        summary = json.loads((run / "summary.json").read_text())
        losses = _csv_column(run / "metrics.csv", "loss")
        val = _csv_column(run / "metrics.csv", "val_photometric")
        cells = [f"{losses[0]:.4f}", f"{losses[-1]:.4f}"] if losses else ["–", "–"]
        cells.append(f"{val[-1]:.4f}" if val else "– (no val split)")
        rows.append(f"| {mixture} | {counts.get('train', 0)} / {counts.get('val', 0)} | {summary['steps']} | "
                    + " | ".join(cells) + " |")
    return rows


def _csv_column(path: Path, name: str) -> list[float]:
    import csv

    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [float(row[name]) for row in csv.DictReader(handle) if row.get(name) not in (None, "")]


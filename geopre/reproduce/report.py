"""``REPORT.md`` and its figures, from the files the study's stages wrote (nothing is re-measured).

Every number comes from a run folder: ``summary.json`` (validation history), the evaluation JSONs
(test metrics, per image, for the selected model and every validated one), ``baselines.json``, the
pretraining logs, and ``stages.json`` (wall times). :func:`compare` turns paired seeds and per-frame
errors into a comparison (paired t-test, bootstrap interval, Holm over the claim's comparisons:
:mod:`geopre.reproduce.statistics`); a model that does not beat the per-pixel prior "did not learn"
and supports no claim. The small files a reader needs to re-check the report are copied to
``OUT/evals/`` and ``OUT/curves/`` (:func:`export_small_files`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np

from geopre.io import atomic_write_text, ensure_writable_dir, save_png
from geopre.io import atomic_write_json
from geopre.reproduce import statistics
from geopre.reproduce.layout import CITY_EVAL, KITTI_EVAL, Study
from geopre.reproduce.stages import Stage
from geopre.train.finetune import VALIDATED_DIR
from geopre.train.metrics import METRIC_NAMES

LOWER_IS_BETTER = {"abs_rel", "sq_rel", "rmse", "rmse_log"}
DATA_SOURCE = ("the embedded synthetic world (geopre.synth: rendered videos served on 127.0.0.1 and ingested "
               "through yt-dlp, a KITTI-style and a Cityscapes-style tree with the renderer's depth)")


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
    from geopre.reproduce.study import BASELINES_FILE

    path = study.out / BASELINES_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def constant_baseline(study: Study) -> dict[str, float]:
    """Eigen-test metrics of a constant depth at each test image's true median (the baselines stage's
    median-scaled constant)."""
    return load_baselines(study)["kitti"]["M"]["constant"]


def best_prior(baselines: dict, dataset: str, mode: str) -> dict[str, float] | None:
    """Per metric, the better of the per-pixel median and mean priors: the bar a model must clear."""
    rows = baselines.get(dataset, {}).get("M" if dataset == "kitti" and mode == "M" else "S")
    if not rows:
        return None
    priors = [rows[name] for name in ("per-pixel median", "per-pixel mean")]
    return {m: (max if m in ("a1", "a2", "a3") else min)(p[m] for p in priors) for m in METRIC_NAMES}


def learned(records, baselines, mode, fraction, init, dataset) -> bool | None:
    """Did the cells' mean beat the per-pixel prior on abs_rel and rmse? None: nothing to judge."""
    prior = best_prior(baselines, dataset, mode)
    abs_rel = _values(records, mode, fraction, init, dataset, "abs_rel")
    if prior is None or not abs_rel:
        return None
    rmse = _values(records, mode, fraction, init, dataset, "rmse")
    return statistics.beats_prior({"abs_rel": float(np.mean(abs_rel)), "rmse": float(np.mean(rmse))}, prior)


def compare(records, baselines, mode, fraction, dataset, init, base_init) -> dict | None:
    """The seeds both inits ran, paired: per-seed abs_rel gap (t-test) and the seeds x frames interval."""
    def by_seed(which):
        return {r["cell"].seed: r for r in records if r[dataset] is not None and r["cell"].mode == mode
                and r["cell"].fraction == fraction and r["cell"].init == which}

    base, cand = by_seed(base_init), by_seed(init)
    seeds = sorted(set(base) & set(cand))
    if len(seeds) < 2:
        return None
    b = [base[s][dataset]["abs_rel"] for s in seeds]
    c = [cand[s][dataset]["abs_rel"] for s in seeds]
    test = statistics.paired_t_test(b, c)
    frames = f"{dataset}_frames"
    interval = None
    if all(base[s][frames] and cand[s][frames] for s in seeds):
        interval = statistics.bootstrap_gap_interval(np.array([base[s][frames]["abs_rel"] for s in seeds]),
                                                     np.array([cand[s][frames]["abs_rel"] for s in seeds]))
    learnt = [learned(records, baselines, mode, fraction, i, dataset) for i in (base_init, init)]
    return {"mode": mode, "fraction": fraction, "dataset": dataset, "init": init, "base": base_init,
            "seeds": seeds, "base_mean": float(np.mean(b)), "cand_mean": float(np.mean(c)), "test": test,
            "interval": interval, "learned": all(x is not False for x in learnt)}


def judge(comparisons: list[dict]) -> list[dict]:
    """Holm over one claim's comparisons, then each verdict: "did not learn" when either side is not
    below the per-pixel prior, else :func:`statistics.comparison_verdict`."""
    adjusted = statistics.holm([c["test"].p for c in comparisons])
    for c, p in zip(comparisons, adjusted):
        c["adjusted_p"] = p
        if not c["learned"]:
            c["verdict"] = "did not learn"
        elif c["interval"] is None:
            c["verdict"] = "not shown"
        else:
            c["verdict"] = statistics.comparison_verdict(p, c["interval"])
    return comparisons


def summarise(verdicts: list[str]) -> str:
    """One claim's verdict from its comparisons' (see :func:`judge`), with the counts."""
    n, held, reversed_ = len(verdicts), verdicts.count("held"), verdicts.count("reversed")
    untrained = verdicts.count("did not learn")
    rest = "" if held + reversed_ == n else ", the rest not shown or untrained"
    if untrained == n:
        return f"not measured: no comparison had two models that learned (all {n} did not learn)"
    if held == n:
        return f"held ({n} of {n} comparisons)"
    if held and reversed_:
        return f"mixed ({held} of {n} comparisons held, {reversed_} reversed{rest})"
    if held:
        return f"held in part ({held} of {n} comparisons{rest})"
    if reversed_:
        return f"did not hold: the comparator was better in {reversed_} of {n} comparisons{rest}"
    extra = f"; {untrained} of them did not learn" if untrained else ""
    return f"not shown (none of {n} comparisons held{extra})"


def _values(records, mode, fraction, init, dataset, metric) -> list[float]:
    return [r[dataset][metric] for r in records if r[dataset] is not None
            and r["cell"].mode == mode and r["cell"].fraction == fraction and r["cell"].init == init]


def init_label(init: str) -> str:
    """Row names that say what each encoder started from, so the comparator is plain."""
    if init.startswith("geo-imagenet-"):
        return f"ImageNet -> geometric {init[len('geo-imagenet-'):]} (the paper's)"
    if init.startswith("geo-"):
        return f"geometric {init[4:]} (no ImageNet)"
    return {"scratch": "scratch (random init)", "imagenet": "ImageNet"}.get(init, init)


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
        seeds = len(_values(records, mode, fraction, init, dataset, "abs_rel"))
        if not seeds:
            continue
        for metric in METRIC_NAMES:
            mean, std = mean_std(_values(records, mode, fraction, init, dataset, metric))
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
            values = _values(records, "S", fraction, init, dataset, metric)
            mark = "" if learned(records, baselines or {}, "S", fraction, init, dataset) is not False else " (did not learn)"
            cells.append("–" if not values else "{:.3f} ± {:.3f}".format(*mean_std(values)) + mark)
        rows.append(f"| {init_label(init)} | " + " | ".join(cells) + " |")
    prior = best_prior(baselines or {}, dataset, "S")
    if prior is not None:
        rows.append("| baseline: per-pixel prior (best of median, mean) | "
                    + " | ".join(f"{prior[metric]:.3f}" for _ in fractions) + " |")
    return "\n".join(rows)


def _groups(study) -> list[tuple[str, float]]:
    groups = [("S", f) for f in sorted(study.preset.fractions, reverse=True)]
    return groups + ([("M", 1.0)] if study.preset.mono else [])


def training_table(records, study) -> str:
    """Per (mode, fraction, init): how many seeds converged by the written rule, the val abs_rel gain
    of the last quarter, and the test abs_rel of the selected (best val) and the final model."""
    rows = ["| mode | fraction | init | steps | converged (seeds) | last-quarter val improvement | "
            "test abs_rel, selected | test abs_rel, final |", "|---|---|---|---|---|---|---|---|"]
    for mode, fraction in _groups(study):
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
    for mode, fraction in _groups(study):
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


def _plot_gain(records, study, path: Path) -> None:
    """Test abs_rel (mean over seeds) against fine-tuning steps, one panel per (mode, fraction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(study)
    fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.5), squeeze=False)
    for ax, (mode, fraction) in zip(axes[0], groups):
        for k, init in enumerate(study.inits):
            cells = [r for r in records if r["cell"].mode == mode and r["cell"].fraction == fraction
                     and r["cell"].init == init and r["along"]]
            if not cells:
                continue
            steps = sorted(set.intersection(*[{a["step"] for a in r["along"]} for r in cells]))
            values = [[next(a["metrics"]["abs_rel"] for a in r["along"] if a["step"] == s) for r in cells]
                      for s in steps]
            ax.errorbar(steps, [np.mean(v) for v in values], yerr=[np.std(v) for v in values], marker="o",
                        capsize=3, color=f"C{k}", label=init_label(init))
        ax.set_title(f"{mode} mode, {fraction:.0%} of the split")
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel("test abs_rel (KITTI-style)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _city_frames(records) -> int | str:
    for r in records:
        return json.loads((r["summary_dir"] / CITY_EVAL).read_text()).get("images", "?")
    return "?"


def _plot_fractions(records, study, dataset: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted(study.preset.fractions)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("abs_rel", "a1")):
        for init in study.inits:
            cells = [_values(records, "S", f, init, dataset, metric) for f in fractions]
            stats = [mean_std(values) if values else (np.nan, 0.0) for values in cells]
            ax.errorbar([f * 100 for f in fractions], [m for m, _ in stats], yerr=[s for _, s in stats],
                        marker="o", capsize=3, label=init_label(init))
        ax.set_xscale("log")
        ax.set_xticks([f * 100 for f in fractions], [f"{f:.0%}" for f in fractions])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("fraction of the KITTI-style training split (S mode)")
        ax.set_ylabel(metric + (" (lower is better)" if metric in LOWER_IS_BETTER else " (higher is better)"))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_learning_curves(records, study, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted(study.preset.fractions)
    fig, axes = plt.subplots(1, len(fractions), figsize=(4 * len(fractions), 3.5), squeeze=False)
    colours = {init: f"C{k}" for k, init in enumerate(study.inits)}
    for ax, fraction in zip(axes[0], fractions):
        for r in records:
            cell = r["cell"]
            if cell.mode != "S" or cell.fraction != fraction:
                continue
            history = [h for h in r["summary"]["history"] if "val/abs_rel" in h]
            ax.plot([h["step"] for h in history], [h["val/abs_rel"] for h in history], color=colours[cell.init],
                    alpha=0.7, label=init_label(cell.init) if cell.seed == study.preset.seeds[0] else None)
        ax.set_title(f"S mode, {fraction:.0%} of the split")
        ax.set_xlabel("step")
        ax.set_ylabel("val abs_rel")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def depth_grid(study: Study, records: list[dict], path: Path, frames: int = 3) -> list[str]:
    """Input | predicted depth per init (100 %, first seed) | true depth, for a few test frames."""
    import torch

    from geopre.data import kitti
    from geopre.data.depth_dataset import load_image
    from geopre.train.depth_model import load_model, predict_disparity
    from geopre.train.predict import colourise_disparity

    entries = kitti.read_split(study.kitti / "splits" / "eigen" / "test_files.txt")
    picked = [entries[int(k)] for k in np.linspace(0, len(entries) - 1, frames)]
    tree = kitti.KittiRawTree(study.kitti)
    seed = study.preset.seeds[0]
    models = []
    for init in study.inits:
        runs = [r for r in records if r["cell"].mode == "S" and r["cell"].fraction == 1.0
                and r["cell"].init == init and r["cell"].seed == seed]
        if runs:
            models.append((init, load_model(study.run_dir(runs[0]["cell"]), best=True)))
    if not models:
        return []
    rows = []
    for entry in picked:
        image_path = tree.image_path(entry.folder, entry.frame_index, entry.side)
        tiles = [np.asarray(load_image(image_path, (study.preset.train_size)).permute(1, 2, 0).numpy() * 255,
                            dtype=np.uint8)]
        for _, (model, info) in models:
            with torch.no_grad():
                disp = predict_disparity(model.depth, load_image(image_path, (info.width, info.height))[None], info)[0]
            tiles.append(colourise_disparity(disp))
        truth = _true_depth(study, entry)
        if truth is not None:
            tiles.append(colourise_disparity(_resize(1.0 / np.maximum(truth, 1e-3), tiles[0].shape[:2])))
        rows.append(np.concatenate(tiles, axis=1))
    save_png(path, np.concatenate(rows, axis=0))
    return ["input"] + [init_label(init) for init, _ in models] + ["true depth (renderer)"]


def _true_depth(study, entry) -> np.ndarray | None:
    """The renderer's exact depth of a left-camera frame (``<drive>/geopre_truth/depth_02``)."""
    path = study.kitti / entry.folder / "geopre_truth" / "depth_02" / f"{entry.frame_index:010d}.npy"
    return np.load(path) if entry.side == "l" and path.exists() else None


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(image.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _pretrain_rows(study) -> list[str]:
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


def _claims(records, study, baselines) -> list[str]:
    """One paragraph per claim: its comparisons (each pretrained init against what its encoder
    started from), Holm-adjusted within the claim, and the verdict that follows from them."""
    geo = [i for i in study.inits if i.startswith("geo-")]
    few = [f for f in sorted(study.preset.fractions) if f < 1]

    def paragraph(title, comparisons, context):
        found = judge([c for c in comparisons if c is not None])
        if not found:
            return f"**{title}: not measured.**"
        parts = []
        for c in found:
            interval = ("no per-frame errors" if c["interval"] is None
                        else "95 % CI of the gap [{:+.3f}, {:+.3f}]".format(*c["interval"]))
            parts.append(f"{c['mode']} {c['fraction']:.0%}: {init_label(c['init'])} {c['cand_mean']:.3f} vs "
                         f"{init_label(c['base'])} {c['base_mean']:.3f} (gap {c['test'].mean_gap:+.3f}, paired t "
                         f"{c['test'].t:.2f}, p {c['test'].p:.3f}, Holm-adjusted {c['adjusted_p']:.3f}, {interval}, "
                         f"{len(c['seeds'])} seeds: **{c['verdict']}**)")
        return f"**{title}: {summarise([c['verdict'] for c in found])}.** {context} " + "; ".join(parts) + "."

    def comparisons(groups, dataset):
        return [compare(records, baselines, mode, fraction, dataset, init, study.comparator(init))
                for mode, fraction in groups for init in geo]

    return [
        paragraph("Claim 1, accuracy (V-A)", comparisons([("S", 1.0)] + ([("M", 1.0)] if study.preset.mono else []),
                                                         "kitti"),
                  "KITTI-style Eigen test abs_rel (mean over seeds) at 100 % of the split:"),
        paragraph("Claim 2, few-shot (V-B)", comparisons([("S", f) for f in few], "kitti"),
                  "KITTI-style Eigen test abs_rel with " + " and ".join(f"{f:.0%}" for f in few)
                  + " of the split (S mode):"),
        paragraph("Claim 3, generalisation (V-C)",
                  comparisons([("S", f) for f in sorted(study.preset.fractions)], "city"),
                  "The S models, trained on the KITTI-style tree, scored on the Cityscapes-style test set "
                  "(a separate tree nothing was trained on; median scaling, worst 5 % dropped), abs_rel:"),
    ]


RULES = (
    "**How verdicts are reached.** A comparison pairs each seed of a pretrained init with the same seed "
    "of what its encoder started from (scratch, or ImageNet for the paper's ImageNet -> geometric "
    "encoders): same few-shot subset, decoder start and data order, only the encoder weights differ. "
    "It is *held* only when a paired t-test over seeds, Holm-corrected over the claim's comparisons, "
    "gives p < 0.05 **and** the 95 % bootstrap interval of the abs_rel gap (seeds and test frames "
    "resampled) excludes 0 on the pretrained side; *reversed* for the same evidence the other way; "
    "*not shown* otherwise. A model that is not below the per-pixel prior (the better of the median "
    "and mean of the training ground truth at each pixel) on abs_rel **and** rmse *did not learn*, and "
    "a comparison with such a model supports no claim. A cell *converged* when the last quarter of "
    "its training improved val abs_rel by less than 2 % (relative) over the last validation before "
    "it; the gain along training *persists* when its last value is at least 75 % of its peak, "
    "*shrinks* at 25-75 %, *vanishes* below.")


def _bench_checks(path: Path) -> list[str]:
    """A ``bench/gpu.py`` result (``--bench-results``): a separate run, shown apart with its device."""
    check = json.loads(Path(path).read_text())
    stages = check.get("stages", {})
    lines = [f"From `{Path(path).name}` ({check.get('device')}, torch {check.get('torch')}, "
             f"scale `{check.get('scale')}`):", ""]
    pre = stages.get("pretrain", {})
    if pre.get("ok"):
        lines.append(f"- pretrain: {pre['steps']} steps, {pre['samples_per_s']:.0f} triplets/s, final loss "
                     f"{pre['final_loss']:.4f}, val photometric {pre['val_photometric']:.4f}")
    for name, stage in stages.items():
        curve = stage.get("val_abs_rel_by_epoch") if stage.get("ok") else None
        if curve:
            points = ", ".join(f"{step}: {value:.3f}" for step, value in curve[::3])
            lines.append(f"- {name}: {stage['steps']} steps, val abs_rel by step {points}")
    metrics = stages.get("evaluate", {}).get("metrics")
    if metrics:
        lines.append("- Eigen test of finetune_S_from_export: " +
                     ", ".join(f"{k} {metrics[k]:.3f}" for k in METRIC_NAMES))
    return lines + [""]


def _versions() -> dict:
    import cv2
    import torch
    import torchvision

    import geopre

    return {"geopre": geopre.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__, "opencv": cv2.__version__}


def _device(study: Study) -> str:
    from geopre.machine import describe

    info = describe()
    gpu = study.device.startswith("cuda") or (study.device == "auto" and info["cuda"] is not None)
    trained_on = f"{'cuda' if study.device == 'auto' else study.device} ({info['cuda']})" if gpu else "cpu"
    return f"training on {trained_on}; {info['cpu']}, {info['cores']} cores"


def code_commit(source: Path = Path(__file__).resolve().parents[1]) -> str | None:
    """The git commit of the code that ran, marked when ``source`` differs from it; None when
    ``source`` is not tracked by git (an installed wheel) or git is missing."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True)

    try:
        if git("ls-files", "--error-unmatch", ".").returncode:
            return None
        head = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--", ".").stdout.strip()
    except OSError:
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + (" with uncommitted changes" if changed else "")


def command_line(study: Study) -> str:
    """The ``geopre reproduce`` command that runs ``study``, every option spelled out."""
    import shlex

    args = ["geopre", "reproduce", "--preset", study.preset.name, "--out", str(study.out),
            "--device", study.device, "--jobs", str(study.jobs)]
    for option, path in (("--imagenet-weights", study.imagenet_weights), ("--bench-results", study.bench_results)):
        if path is not None:
            args += [option, str(path)]
    return shlex.join(args)


def wall_seconds(state: dict) -> float:
    """Wall time of every run of the study so far; a run that died without a record counts until the
    last stage it finished."""
    runs = state.get("runs", [])
    finished = sorted(dt.datetime.fromisoformat(s["finished"]) for s in state["stages"].values() if "finished" in s)
    total = 0.0
    for k, run in enumerate(runs):
        start = dt.datetime.fromisoformat(run["started"])
        if run.get("finished"):
            end = dt.datetime.fromisoformat(run["finished"])
        elif k == len(runs) - 1:
            end = dt.datetime.now()  # the run writing this report
        else:
            following = dt.datetime.fromisoformat(runs[k + 1]["started"])
            end = max([t for t in finished if start <= t < following], default=start)
        total += (end - start).total_seconds()
    return total


def _attempts(record: dict) -> str:
    attempts = record.get("attempts", 1)
    marks = (["resumed"] if record.get("resumed") else []) + (
        [f"{record['untimed_attempts']} untimed"] if record.get("untimed_attempts") else [])
    return f"{attempts}" + (f" ({', '.join(marks)})" if marks else "")


def write_report(study: Study, plan: list[Stage]) -> Path:
    """``OUT/REPORT.md`` and ``OUT/figures/`` from what the stages of ``plan`` left in the study's folder."""
    out = Path(study.out)
    figures = ensure_writable_dir(out / "figures")
    records = collect(study)
    export_small_files(study, records)
    baselines = load_baselines(study)
    preset = study.preset
    state = json.loads((out / "stages.json").read_text()) if (out / "stages.json").exists() else {"stages": {}}
    stages = {s.name: state["stages"][s.name] for s in plan if s.name in state["stages"]}

    _plot_fractions(records, study, "kitti", "Few-shot: KITTI-style Eigen test (paper Fig. 4)", figures / "fewshot.png")
    _plot_fractions(records, study, "city", "Generalisation: KITTI-trained, Cityscapes-style test (paper Fig. 5)",
                    figures / "generalisation.png")
    _plot_learning_curves(records, study, figures / "learning_curves.png")
    _plot_gain(records, study, figures / "gain_vs_steps.png")
    trends, _ = gain_along_training(records, study)
    columns = depth_grid(study, records, figures / "depth_grid.png")
    for mixture in study.pretrainings:
        visuals = sorted((study.cache / "pretrain" / mixture / "visuals").glob("step_*.png"))
        if visuals:
            shutil.copyfile(visuals[-1], figures / f"pretrain_flow_{mixture}.png")

    total = wall_seconds(state)
    lines = [
        f"# geopre reproduction report: preset `{preset.name}`",
        "",
        f"Generated {dt.datetime.now().isoformat(timespec='seconds')} by `{command_line(study)}`. Every number "
        f"below was measured by this run on {DATA_SOURCE}. Wall time of the study: "
        f"{total / 60:.1f} min with {study.jobs} training job(s) at a time.",
        "",
        "## The claims",
        "",
        *[p + "\n" for p in _claims(records, study, baselines)],
        RULES,
        "",
        ("**ImageNet.** The paper's encoders start from ImageNet and its claims are against ImageNet. This run "
         "was given ImageNet weights (`--imagenet-weights`), so its ImageNet and ImageNet -> geometric rows "
         "measure that comparison." if study.imagenet_weights else
         "**ImageNet.** The paper's encoders start from ImageNet and its claims are against ImageNet. No "
         "`--imagenet-weights` file was given, so those claims are *not measured* here: every comparison above "
         "is geometric pretraining without ImageNet against a random initialisation."),
        "",
        "## Gain versus training length",
        "",
        "Test abs_rel (KITTI-style Eigen test) of every validated model along fine-tuning, mean ± std over "
        "seeds; the same seeds for every init.",
        "",
        "![gain vs steps](figures/gain_vs_steps.png)",
        "",
        *([f"- {t}" for t in trends] or ["- no validated models were scored along training"]),
        "",
        "## Training: convergence, selected and final epoch",
        "",
        "The scored model is the best validation (val drives of their own); the final epoch is shown beside it.",
        "",
        training_table(records, study),
        "",
    ]
    investigation = out / "investigation.md"
    if investigation.exists():  # written by hand after reading a run; kept with the report
        lines += ["## Investigation (written by hand after reading this run's numbers)", "",
                  investigation.read_text().strip(), ""]
    if any(note for note in preset.notes):
        lines += [f"Preset note: {note}." for note in preset.notes] + [""]
    lines += ["## Table II style: KITTI-style Eigen test, 100 % of the training split", ""]
    for mode, label in (("S", "stereo (S), metric by the rig's baseline"), ("M", "monocular (M), median scaled")):
        if any(r["cell"].mode == mode for r in records):
            lines += [f"### {label}", "", metric_table(records, study, mode, 1.0, "kitti", baselines), ""]
    if baselines:
        lines += ["Baselines ignore the image: a constant depth (the training ground truth's median; under median "
                  "scaling any constant), and the per-pixel median or mean of the training ground truth "
                  f"({baselines.get('source', '')}), scored by the same protocol as the models.", ""]
    lines += ["## Few-shot (paper Fig. 4): S mode, abs_rel, KITTI-style Eigen test", "",
              fewshot_table(records, study, "kitti", baselines=baselines), "", "![few-shot](figures/fewshot.png)", "",
              "## Generalisation (paper Fig. 5): the same S models on the Cityscapes-style test set", "",
              f"{_city_frames(records)} annotated frames of a Cityscapes-style tree rendered for testing only "
              "(another city style and camera; no model or encoder saw it).", "",
              fewshot_table(records, study, "city", baselines=baselines), "",
              "![generalisation](figures/generalisation.png)", "",
              "Full Cityscapes-style metrics at 100 %:", "", metric_table(records, study, "S", 1.0, "city", baselines), "",
              "## Learning curves (validation abs_rel while fine-tuning)", "",
              "![learning curves](figures/learning_curves.png)", ""]
    if columns:
        lines += ["## Test frames", "", "Columns: " + " | ".join(columns) + " (S mode, 100 %, first seed, best "
                  "validation epoch; disparity colour maps).", "", "![depth](figures/depth_grid.png)", ""]
    lines += ["## Pretraining (paper III)", "", *_pretrain_rows(study), ""]
    for mixture in study.pretrainings:
        if (figures / f"pretrain_flow_{mixture}.png").exists():
            lines += [f"Mixture `{mixture}`, last visual (I_t, I_t+1, warped, flow, error): "
                      f"![flow {mixture}](figures/pretrain_flow_{mixture}.png)", ""]
    if study.bench_results is not None:
        lines += ["## Benchmark run given with --bench-results (a separate run, not this study)", "",
                  *_bench_checks(study.bench_results)]
    lines += ["## How it was run", "",
              f"- Command: `{command_line(study)}`",
              f"- Code: {code_commit() or 'geopre ' + _versions()['geopre'] + ' (not a git checkout)'}",
              f"- Device: {_device(study)}",
              f"- Data: {DATA_SOURCE}, world seed {preset.world_seed}.",
              f"- Seeds: fine-tuning {list(preset.seeds)}, paired across inits (each seed draws its own few-shot "
              "subset, decoder start and data order, the same for every init); "
              f"world seed {preset.world_seed}.",
              f"- Inits: {', '.join(init_label(i) for i in study.inits)}"
              + ("" if study.imagenet_weights else " (no ImageNet cells: no --imagenet-weights file given)") + ".",
              "- Per cell and seed: test scores (per image, and along training) in `evals/<cell>.json`, the "
              "validation curve and convergence check in `curves/<cell>.json`, the baselines in `baselines.json`.",
              f"- Versions: {json.dumps(_versions())}",
              f"- Preset: `{json.dumps({k: v for k, v in asdict(preset).items() if k != 'notes'})}`",
              "", "Seconds are summed over every run that worked on a stage; *resumed* marks a stage that took "
              "more than one attempt, *untimed* one of whose attempts was killed before it could report its time.",
              "", "| stage | kind | units | seconds | attempts |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {s['kind']} | {s['units']:g} | {s['seconds']:.1f} | {_attempts(s)} |"
              for name, s in stages.items()]
    if study.jobs > 1:
        lines += ["", f"Stages marked parallel in `stages.json` ran {study.jobs} at a time, so their seconds overlap."]
    lines += [""]
    path = out / "REPORT.md"
    atomic_write_text(path, "\n".join(lines))
    return path

"""``REPORT.md`` and its figures, from the files the study's stages wrote (nothing is re-measured).

Every number comes from a run folder: ``summary.json`` (validation history), the evaluation JSONs
(test metrics), the pretraining logs, and ``stages.json`` (wall times). :func:`claim_verdict` turns
seed-level numbers into the sentence each claim gets; it says "not shown" when the difference is
within the seeds' spread rather than pretending a small gap is a result.
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
from geopre.reproduce.layout import CITY_EVAL, KITTI_EVAL, Study
from geopre.reproduce.stages import Stage
from geopre.train.metrics import METRIC_NAMES

LOWER_IS_BETTER = {"abs_rel", "sq_rel", "rmse", "rmse_log"}
DATA_SOURCE = ("the embedded synthetic world (geopre.synth: rendered videos served on 127.0.0.1 and ingested "
               "through yt-dlp, a KITTI-style and a Cityscapes-style tree with the renderer's depth)")


def mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def claim_verdict(baseline: list[float], candidate: list[float], lower_is_better: bool = True) -> str:
    """"held", "reversed" or "not shown": does ``candidate`` beat ``baseline`` beyond seed noise?

    The gap of the means must exceed the standard error of that gap (Welch's, one sigma) for a
    verdict either way: with 3 seeds per cell, smaller gaps are indistinguishable from reseeding.
    """
    (mb, sb), (mc, sc) = mean_std(baseline), mean_std(candidate)
    gain = (mb - mc) if lower_is_better else (mc - mb)
    noise = math.sqrt(sb ** 2 / len(baseline) + sc ** 2 / len(candidate))
    if gain > noise:
        return "held"
    if -gain > noise:
        return "reversed"
    return "not shown"


def collect(study: Study) -> list[dict]:
    """One record per fine-tuning cell that has its evaluations (``city`` is None without a
    generalisation test set)."""
    records = []
    for cell in study.cells():
        run = study.run_dir(cell)
        try:
            kitti = json.loads((run / KITTI_EVAL).read_text())["metrics"]
            city = json.loads((run / CITY_EVAL).read_text())["metrics"] if study.preset.city_test_sequences else None
            summary = json.loads((run / "summary.json").read_text())
        except FileNotFoundError:
            continue
        records.append({"cell": cell, "kitti": kitti, "city": city, "summary": summary, "summary_dir": run})
    return records


def constant_baseline(study: Study) -> dict[str, float]:
    """Eigen-test metrics of a constant depth at each image's true median, on the study's test frames."""
    from geopre.data import kitti
    from geopre.train.metrics import constant_depth_errors

    split_file = study.kitti / "splits" / "eigen" / "test_files.txt"
    gt_file = split_file.parent / "gt_depths.npz"
    if not gt_file.is_file():  # evaluate exports it beside the split on its first run
        kitti.export_gt_depths(study.kitti, split_file, gt_file)
    return constant_depth_errors(kitti.load_gt_depths(gt_file))


def summarise(verdicts: list[str]) -> str:
    """One claim's verdict from its comparisons' (see :func:`claim_verdict`), with the counts."""
    n, held, reversed_ = len(verdicts), verdicts.count("held"), verdicts.count("reversed")
    rest = "" if held + reversed_ == n else ", the rest within the seeds' spread"
    if held == n:
        return f"held ({n} of {n} comparisons)"
    if held and reversed_:
        return f"mixed ({held} of {n} comparisons held, {reversed_} reversed{rest})"
    if held:
        return f"held in part ({held} of {n} comparisons{rest})"
    if reversed_:
        return f"did not hold: scratch was better in {reversed_} of {n} comparisons{rest}"
    return f"not shown (all {n} comparisons within the seeds' spread)"


def _values(records, mode, fraction, init, dataset, metric) -> list[float]:
    return [r[dataset][metric] for r in records if r[dataset] is not None
            and r["cell"].mode == mode and r["cell"].fraction == fraction and r["cell"].init == init]


def init_label(init: str) -> str:
    if init.startswith("geo-"):
        return f"geometric ({init[4:]})"
    return {"scratch": "random (scratch)", "imagenet": "ImageNet"}.get(init, init)


def metric_table(records, study, mode: str, fraction: float, dataset: str) -> str:
    header = "| init | seeds | " + " | ".join(METRIC_NAMES) + " |\n|" + "---|" * (len(METRIC_NAMES) + 2)
    rows = [header]
    for init in study.inits:
        cells = []
        seeds = len(_values(records, mode, fraction, init, dataset, "abs_rel"))
        if not seeds:
            continue
        for metric in METRIC_NAMES:
            mean, std = mean_std(_values(records, mode, fraction, init, dataset, metric))
            cells.append(f"{mean:.3f} ± {std:.3f}")
        rows.append(f"| {init_label(init)} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def fewshot_table(records, study, dataset: str, metric: str = "abs_rel") -> str:
    fractions = sorted(study.preset.fractions)
    header = "| init | " + " | ".join(f"{f:.0%}" for f in fractions) + " |\n|" + "---|" * (len(fractions) + 1)
    rows = [header]
    for init in study.inits:
        cells = []
        for fraction in fractions:
            values = _values(records, "S", fraction, init, dataset, metric)
            cells.append("–" if not values else "{:.3f} ± {:.3f}".format(*mean_std(values)))
        rows.append(f"| {init_label(init)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


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
    for mixture in study.preset.mixtures:
        run = study.cache / "pretrain" / mixture
        index = json.loads((study.cache / "shards" / mixture / "index.json").read_text())
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


def _claims(records, study) -> list[str]:
    geo = [i for i in study.inits if i.startswith("geo-")]
    paragraphs = []

    def compare(mode, fraction, dataset, init):
        base = _values(records, mode, fraction, "scratch", dataset, "abs_rel")
        cand = _values(records, mode, fraction, init, dataset, "abs_rel")
        if not base or not cand:
            return None
        (mb, sb), (mc, sc) = mean_std(base), mean_std(cand)
        return (f"{init_label(init)} {mc:.3f} ± {sc:.3f} vs scratch {mb:.3f} ± {sb:.3f} "
                f"({claim_verdict(base, cand)})"), claim_verdict(base, cand)

    def paragraph(title, comparisons, context):
        found = [c for c in comparisons if c is not None]
        if not found:
            return f"**{title}: not measured.**"
        return f"**{title}: {summarise([v for _, v in found])}.** {context} " + "; ".join(t for t, _ in found) + "."

    paragraphs.append(paragraph(
        "Claim 1, accuracy (V-A)",
        [compare("S", 1.0, "kitti", i) for i in geo] + [compare("M", 1.0, "kitti", i) for i in geo],
        "KITTI-style Eigen test abs_rel (mean ± std over seeds) at 100 % of the split, S mode then M mode:"))
    paragraphs.append(paragraph(
        "Claim 2, few-shot (V-B)",
        [compare("S", f, "kitti", i) for f in sorted(study.preset.fractions) if f < 1 for i in geo],
        "KITTI-style Eigen test abs_rel with " + " and ".join(f"{f:.0%}" for f in sorted(study.preset.fractions)
                                                              if f < 1) + " of the split (S mode):"))
    paragraphs.append(paragraph(
        "Claim 3, generalisation (V-C)",
        [compare("S", f, "city", i) for f in sorted(study.preset.fractions) for i in geo],
        "The S models of claim 2, trained on the KITTI-style tree, scored on the Cityscapes-style test set "
        "(a separate tree nothing was trained on; median scaling, worst 5 % dropped), abs_rel:"))
    return paragraphs


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


def write_report(study: Study, plan: list[Stage]) -> Path:
    """``OUT/REPORT.md`` and ``OUT/figures/`` from what the stages of ``plan`` left in the study's folder."""
    out = Path(study.out)
    figures = ensure_writable_dir(out / "figures")
    records = collect(study)
    preset = study.preset
    state = json.loads((out / "stages.json").read_text()) if (out / "stages.json").exists() else {"stages": {}}
    stages = {s.name: state["stages"][s.name] for s in plan if s.name in state["stages"]}

    _plot_fractions(records, study, "kitti", "Few-shot: KITTI-style Eigen test (paper Fig. 4)", figures / "fewshot.png")
    _plot_fractions(records, study, "city", "Generalisation: KITTI-trained, Cityscapes-style test (paper Fig. 5)",
                    figures / "generalisation.png")
    _plot_learning_curves(records, study, figures / "learning_curves.png")
    columns = depth_grid(study, records, figures / "depth_grid.png")
    for mixture in preset.mixtures:
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
        *[p + "\n" for p in _claims(records, study)],
        "A verdict is *held* only when the gap between the means exceeds one standard error of the gap "
        f"over {len(preset.seeds)} seeds; *not shown* otherwise.",
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
            lines += [f"### {label}", "", metric_table(records, study, mode, 1.0, "kitti"), ""]
    if records:
        constant = constant_baseline(study)
        lines += [f"A constant depth at each test image's true median scores abs_rel {constant['abs_rel']:.3f}, "
                  f"a1 {constant['a1']:.3f} on the same frames: the floor a model that learned nothing reaches "
                  "with median scaling.", ""]
    lines += ["## Few-shot (paper Fig. 4): S mode, abs_rel, KITTI-style Eigen test", "",
              fewshot_table(records, study, "kitti"), "", "![few-shot](figures/fewshot.png)", "",
              "## Generalisation (paper Fig. 5): the same S models on the Cityscapes-style test set", "",
              f"{_city_frames(records)} annotated frames of a Cityscapes-style tree rendered for testing only "
              "(another city style and camera; no model or encoder saw it).", "",
              fewshot_table(records, study, "city"), "", "![generalisation](figures/generalisation.png)", "",
              "Full Cityscapes-style metrics at 100 %:", "", metric_table(records, study, "S", 1.0, "city"), "",
              "## Learning curves (validation abs_rel while fine-tuning)", "",
              "![learning curves](figures/learning_curves.png)", ""]
    if columns:
        lines += ["## Test frames", "", "Columns: " + " | ".join(columns) + " (S mode, 100 %, first seed, best "
                  "validation epoch; disparity colour maps).", "", "![depth](figures/depth_grid.png)", ""]
    lines += ["## Pretraining (paper III)", "", *_pretrain_rows(study), ""]
    for mixture in preset.mixtures:
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
              f"- Seeds: fine-tuning {list(preset.seeds)} (each seed also draws its own few-shot subset); "
              f"world seed {preset.world_seed}.",
              f"- Inits: {', '.join(init_label(i) for i in study.inits)}"
              + ("" if study.imagenet_weights else " (no ImageNet cells: no --imagenet-weights file given)") + ".",
              f"- Versions: {json.dumps(_versions())}",
              f"- Preset: `{json.dumps({k: v for k, v in asdict(preset).items() if k != 'notes'})}`",
              "", "| stage | kind | units | seconds |", "|---|---|---|---|"]
    lines += [f"| {name} | {s['kind']} | {s['units']:g} | {s['seconds']:.1f} |" for name, s in stages.items()]
    if study.jobs > 1:
        lines += ["", f"Stages marked parallel in `stages.json` ran {study.jobs} at a time, so their seconds overlap."]
    lines += [""]
    path = out / "REPORT.md"
    atomic_write_text(path, "\n".join(lines))
    return path

"""``REPORT.md`` and its figures, from the files the study's stages wrote (nothing is re-measured).

Every number comes from a run folder: ``summary.json`` (validation history), the evaluation JSONs
(test metrics, per image, for the selected model and every validated one), ``baselines.json``, the
pretraining logs, and ``stages.json`` (wall times). This module assembles the report and says how
the study was run (command, code, device, versions, wall time per stage); the rooms it draws on:
:mod:`~geopre.reproduce.collect` (run folders read into records, the small files copied to
``OUT/evals/`` and ``OUT/curves/``), :mod:`~geopre.reproduce.verdicts` (learned or not, paired
comparisons, Holm, the claims' paragraphs), :mod:`~geopre.reproduce.tables` (markdown tables) and
:mod:`~geopre.reproduce.figures` (plots and the depth grid).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np

from geopre.io import atomic_write_text, ensure_writable_dir
from geopre.reproduce.collect import collect, export_small_files, load_baselines
from geopre.reproduce.figures import depth_grid, plot_fractions, plot_gain, plot_learning_curves
from geopre.reproduce.layout import CITY_EVAL, Study, init_label
from geopre.reproduce.stages import Stage
from geopre.reproduce.tables import fewshot_table, gain_along_training, metric_table, pretrain_rows, training_table
from geopre.reproduce.verdicts import RULES, claims
from geopre.train.metrics import METRIC_NAMES

DATA_SOURCE = ("the embedded synthetic world (geopre.synth: rendered videos served on 127.0.0.1 and ingested "
               "through yt-dlp, a KITTI-style and a Cityscapes-style tree with the renderer's depth)")


def _city_frames(records) -> int | str:
    for r in records:
        return json.loads((r["summary_dir"] / CITY_EVAL).read_text()).get("images", "?")
    return "?"


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

    plot_fractions(records, study, "kitti", "Few-shot: KITTI-style Eigen test (paper Fig. 4)", figures / "fewshot.png")
    plot_fractions(records, study, "city", "Generalisation: KITTI-trained, Cityscapes-style test (paper Fig. 5)",
                    figures / "generalisation.png")
    plot_learning_curves(records, study, figures / "learning_curves.png")
    plot_gain(records, study, figures / "gain_vs_steps.png")
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
        *[p + "\n" for p in claims(records, study, baselines)],
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
    lines += ["## Pretraining (paper III)", "", *pretrain_rows(study), ""]
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


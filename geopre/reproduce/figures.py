"""The report's figures: few-shot and generalisation by fraction, learning curves, test abs_rel
along fine-tuning (matplotlib, drawn from the records), and a grid of test frames with each init's
predicted depth beside the renderer's (the models are loaded and run, nothing is scored).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geopre.io import save_png
from geopre.reproduce.collect import mean_std, metric_values, study_groups
from geopre.reproduce.layout import Study, init_label


LOWER_IS_BETTER = {"abs_rel", "sq_rel", "rmse", "rmse_log"}


def plot_gain(records, study, path: Path) -> None:
    """Test abs_rel (mean over seeds) against fine-tuning steps, one panel per (mode, fraction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = study_groups(study)
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


def plot_fractions(records, study, dataset: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted(study.preset.fractions)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("abs_rel", "a1")):
        for init in study.inits:
            cells = [metric_values(records, "S", f, init, dataset, metric) for f in fractions]
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


def plot_learning_curves(records, study, path: Path) -> None:
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


"""``geopre evaluate``: score a fine-tuned depth model with monodepth2's protocol (paper V-A, V-C).

KITTI (Eigen split): each test image is resized to the training size, the network's disparity is
scored against velodyne (or dense) ground truth by :func:`~geopre.train.metrics.evaluate_depth_pair`
with per-image median scaling for monocular models or the rig's fixed stereo scale for stereo ones.
The ground truth is exported once to ``gt_depths.npz`` (beside the split file, or in the output
folder when that is read-only) and reused. Cityscapes: annotated frames of a split, bonnet cropped,
median scaled, worst 5 % of pixel errors dropped (paper V-C).

Writes ``eval_<dataset>_<split>.json`` (metrics, each image's metrics, protocol, scale statistics) and ``.md`` (a
markdown table row) to the output folder, and optionally the disparities as ``.npy``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from geopre.data import cityscapes, kitti
from geopre.data.depth_dataset import load_image
from geopre.errors import UserError
from geopre.io import atomic_path, atomic_write_json, atomic_write_text, ensure_writable_dir
from geopre.progress import progress
from geopre.train import metrics
from geopre.train.depth_model import ModelInfo, load_model, predict_disparity, resolve_model_file
from geopre.train.runtime import resolve_device


CITYSCAPES_SPLITS = ("train", "val", "test")
# monodepth2 scores velodyne ground truth (its eigen split) inside the Garg crop with gt capped to
# 80 m, and the dense ground truth (eigen_benchmark) at every pixel with gt > 0.
DEFAULT_GT_MASK = {"velodyne": "eigen-crop", "dense": "positive"}


@dataclass(frozen=True)
class EvaluateConfig:
    model: Path  # a finetune run folder, a checkpoint folder, or a .safetensors model file
    data_root: Path
    dataset: str = "kitti"  # kitti | cityscapes
    split_file: Path | None = None  # KITTI; default DATA_ROOT/splits/eigen/test_files.txt
    split: str = "test"  # Cityscapes split folder, or "all" (every split: a tree kept for testing only)
    gt_file: Path | None = None  # KITTI; default gt_depths.npz beside the split file
    gt_source: str = "velodyne"  # velodyne (Eigen) | dense (improved KITTI depth)
    gt_mask: str | None = None  # a metrics.KITTI_GT_MASKS name; None: DEFAULT_GT_MASK[gt_source]
    dense_root: Path | None = None
    median_scaling: bool | None = None  # None: median for M models, stereo scale for S and MS
    stereo_scale: float | None = None  # None: calibration baseline / 0.1 per image
    best: bool = False  # use the run's best epoch instead of its last
    out_dir: Path | None = None  # default: the run folder (or the model file's folder)
    save_predictions: bool = False
    post_process: bool = False  # monodepth2's --post_process: also predict the mirrored image, blend
    batch_size: int = 8
    device: str = "auto"


def kitti_protocol(info: ModelInfo, baseline: float, median_scaling: bool | None = None,
                   stereo_scale: float | None = None, gt_mask: str = "eigen-crop") -> metrics.EvalProtocol:
    """The Eigen protocol for a model: median scaling (M) or a fixed scale (S, MS: metric by stereo),
    scoring the ground-truth pixels that ``gt_mask`` (a :data:`metrics.KITTI_GT_MASKS` name) keeps.

    The fixed scale defaults to the image's own rig, ``baseline / 0.1``: 5.327 on KITTI's 2011_09_26
    calibration, where monodepth2 uses the rounded 5.4 (``stereo_scale=5.4`` reproduces its tables).
    """
    base = metrics.KITTI_GT_MASKS[gt_mask]
    median = not info.metric if median_scaling is None else median_scaling
    if median:
        return base
    scale = stereo_scale if stereo_scale is not None else metrics.stereo_scale_factor(baseline)
    return replace(base, median_scaling=False, fixed_scale=scale)


def describe_stereo_scale(result: dict) -> str | None:
    """One line saying which fixed scale an evaluation used and where it came from (None: median scaled)."""
    if "stereo_scale" not in result:
        return None
    scales = ", ".join(f"{scale:.4f}" for scale in result["stereo_scale"])
    if result["stereo_scale_source"] != "calibration":
        return f"stereo scale {scales} from {result['stereo_scale_source']}"
    baselines = ", ".join(f"{day} {baseline:.4f} m" for day, baseline in result["stereo_baselines"].items())
    return (f"stereo scale {scales} = baseline / {metrics.STEREO_TRAINING_BASELINE} from the calibration "
            f"({baselines}); --stereo-scale 5.4 reproduces monodepth2's tables")


def score(gts: list[np.ndarray], disps: list[np.ndarray], protocols: list[metrics.EvalProtocol]) -> dict:
    """Per-image evaluation, averaged over images; adds the median-scaling ratio statistics.

    ``per_image`` keeps every image's metrics (in split order) so that paired comparisons and
    bootstrap intervals over test frames can be computed from the JSON alone."""
    results = [metrics.evaluate_depth_pair(gt, disp, **asdict(p)) for gt, disp, p in zip(gts, disps, protocols)]
    summary: dict = {"metrics": metrics.aggregate([r.errors for r in results]), "images": len(results),
                     "per_image": {name: [round(r.errors[name], 6) for r in results] for name in metrics.METRIC_NAMES}}
    ratios = [r.scale_ratio for r in results if r.scale_ratio is not None]
    if ratios:
        median, std = metrics.scale_ratio_summary(ratios)
        summary["scale_ratio"] = {"median": median, "std": std}
    return summary


def predict_files(model, info: ModelInfo, paths: list[Path], device, batch_size: int,
                  keep_rows: list[int | None] | None = None, desc: str = "predict",
                  post_process: bool = False) -> list[np.ndarray]:
    """Scaled disparity at the training size for every image file, in order (optionally post-processed)."""
    keep_rows = keep_rows or [None] * len(paths)
    disps: list[np.ndarray] = []
    with progress(total=len(paths), desc=desc, unit="img") as bar:
        for start in range(0, len(paths), batch_size):
            batch = torch.stack([load_image(p, (info.width, info.height), rows)
                                 for p, rows in zip(paths[start:start + batch_size], keep_rows[start:start + batch_size])])
            disps.extend(predict_disparity(model.depth, batch.to(device), info, post_process))
            bar.update(len(batch))
    return disps


def kitti_ground_truth(config: EvaluateConfig, split_file: Path, out_dir: Path, count: int) -> list[np.ndarray]:
    """Load the split's ground truth, exporting it first if no matching ``gt_depths.npz`` exists."""
    name = "gt_depths.npz" if config.gt_source == "velodyne" else "gt_depths_dense.npz"
    if config.gt_file is not None:
        candidates = [Path(config.gt_file)]
    else:
        candidates = [split_file.parent / name, out_dir / name]
    for candidate in candidates:
        if candidate.is_file():
            gts = kitti.load_gt_depths(candidate)
            if len(gts) == count:
                return gts
    target = candidates[0] if os.access(candidates[0].parent, os.W_OK) else candidates[-1]
    kitti.export_gt_depths(config.data_root, split_file, target, source=config.gt_source, dense_root=config.dense_root)
    return kitti.load_gt_depths(target)


def cityscapes_frames(data_root: Path, split: str) -> list[tuple[str, object]]:
    """(split, frame) of every annotated frame of ``split``; "all": of every split, for a tree kept
    only for testing."""
    splits = CITYSCAPES_SPLITS if split == "all" else (split,)
    frames = [(name, f) for name in splits
              if split != "all" or (Path(data_root) / "leftImg8bit_sequence" / name).is_dir()
              for fs in cityscapes.list_sequences(data_root, name).values() for f in fs
              if cityscapes.disparity_path(data_root, name, f).is_file()]
    if not frames:
        raise UserError(f"{data_root}: no Cityscapes frame of split {split!r} has a disparity map")
    return frames


def evaluate(config: EvaluateConfig) -> dict:
    """Run the evaluation, write JSON + markdown (+ predictions); return the JSON's content."""
    if config.dataset not in ("kitti", "cityscapes"):
        raise UserError(f"--dataset must be kitti or cityscapes (got {config.dataset!r})")
    if config.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1 (got {config.batch_size})")
    if config.gt_source not in DEFAULT_GT_MASK:
        raise UserError(f"--gt-source must be velodyne or dense (got {config.gt_source!r})")
    gt_mask = config.gt_mask or DEFAULT_GT_MASK[config.gt_source]
    if gt_mask not in metrics.KITTI_GT_MASKS:
        raise UserError(f"--gt-mask must be one of {', '.join(metrics.KITTI_GT_MASKS)} (got {gt_mask!r})")
    weights_file = resolve_model_file(config.model, config.best)
    device = resolve_device(config.device)
    model, info = load_model(weights_file, device=device)
    # Beside the model; a checkpoint's own folder is pruned by later saves, so its run folder.
    default_out = weights_file.parent
    if default_out.parent.name == "checkpoints":
        default_out = default_out.parent.parent
    out_dir = ensure_writable_dir(config.out_dir or default_out)

    if config.dataset == "kitti":
        split_file = Path(config.split_file or Path(config.data_root) / "splits" / "eigen" / "test_files.txt")
        entries = kitti.read_split(split_file)
        tree = kitti.KittiRawTree(config.data_root, config.dense_root)
        gts = kitti_ground_truth(config, split_file, out_dir, len(entries))
        if len(gts) != len(entries):
            raise UserError(f"{config.gt_file}: holds {len(gts)} depth maps but {split_file} lists {len(entries)} frames")
        paths = [tree.image_path(e.folder, e.frame_index, e.side) for e in entries]
        days = [tree.calibration_dir(e.folder).name for e in entries]
        baselines = {day: tree.calibration(e.folder).stereo_baseline for day, e in zip(days, entries)}
        protocols = [kitti_protocol(info, baselines[day], config.median_scaling, config.stereo_scale, gt_mask)
                     for day in days]
        split_name = split_file.parent.name
        disps = predict_files(model, info, paths, device, config.batch_size, desc="evaluate",
                              post_process=config.post_process)
    else:
        frames = cityscapes_frames(config.data_root, config.split)
        gts = [cityscapes.read_depth(config.data_root, split, f) for split, f in frames]
        paths = [cityscapes.image_path(config.data_root, split, f) for split, f in frames]
        # The network sees the image without the ego car, and is scored on the same rows.
        keep_rows = [cityscapes.bonnet_kept_rows(gt.shape[0]) for gt in gts]
        gts = [cityscapes.bonnet_crop(gt) for gt in gts]
        protocols = [metrics.CITYSCAPES_PAPER] * len(frames)
        split_name = config.split
        disps = predict_files(model, info, paths, device, config.batch_size, keep_rows, desc="evaluate",
                              post_process=config.post_process)

    result = score(gts, disps, protocols)
    label = f"{weights_file.parent.name}/{weights_file.stem}" + (" +pp" if config.post_process else "")
    protocol = protocols[0]
    result.update({
        "dataset": config.dataset, "split": split_name, "model": str(weights_file), "mode": info.mode,
        "post_process": config.post_process,
        "protocol": {"median_scaling": protocol.median_scaling, "crop": protocol.crop,
                     "drop_worst_fraction": protocol.drop_worst_fraction, "min_depth": protocol.min_depth,
                     "max_depth": protocol.max_depth, "gt_range_mask": protocol.gt_range_mask,
                     "gt_mask": gt_mask if config.dataset == "kitti" else None},
        "markdown": metrics.markdown_row(label, result["metrics"]),
    })
    if not protocol.median_scaling:
        result["stereo_scale"] = sorted({p.fixed_scale for p in protocols})
        if config.stereo_scale is not None:
            result["stereo_scale_source"] = "--stereo-scale"
        else:
            result["stereo_scale_source"] = "calibration"
            result["stereo_baselines"] = {day: baselines[day] for day in sorted(set(days))}
    stem = out_dir / f"eval_{config.dataset}_{split_name}"
    atomic_write_json(stem.with_suffix(".json"), result)
    atomic_write_text(stem.with_suffix(".md"), metrics.markdown_header() + "\n" + result["markdown"] + "\n")
    result["json"] = str(stem.with_suffix(".json"))
    if config.save_predictions:
        predictions = out_dir / f"disparities_{config.dataset}_{split_name}.npy"
        with atomic_path(predictions) as tmp:
            np.save(tmp, np.stack(disps).astype(np.float32))
        result["predictions"] = str(predictions)
    return result

"""Is the synthetic world hard enough? Shortcut scores on the KITTI-style tree at the small preset's size.

Renders the small preset's KITTI drives (left camera and exact depth, as ``geopre synth kitti``
writes them) and measures, test drives against training drives: the per-pixel prior's and a
constant's abs_rel, the fraction of textured test patches found verbatim in a training image, and
how much drives differ (ego yaw rate, per-frame depth statistics).

Those scores use the exact dense depth (sky counting as 80 m). The study scores models on velodyne
ground truth (sparse, mostly the road and the nearest surfaces), where a prior does better: so the
same priors are also scored on the study's own tree (world seed ``world_seed + 1``, its train and
Eigen test splits, its velodyne ground truth and protocols), the numbers its report sets models against.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from geopre.reproduce.presets import PRESETS
from geopre.synth import hardness, kitti, render


def render_drives(preset_name: str = "small", seed: int = 0):
    """(specs, images, depths, poses) of every drive of a preset's KITTI tree, left camera."""
    preset = PRESETS[preset_name]
    specs = kitti.plan_drives(preset.kitti_drives, preset.kitti_frames, *preset.kitti_size, seed=seed)
    images, depths, poses = [], [], []
    for spec in specs:
        seq = spec.sequence()
        views = [render.render_view(seq, i, offset=(kitti.CAM2_X, 0.0, 0.0)) for i in range(spec.frames)]
        images.append(np.stack([v.image for v in views]))
        depths.append(np.stack([v.depth for v in views]))
        poses.append(np.stack([seq.trajectory.pose(i) for i in range(spec.frames)]))
    return specs, images, depths, poses


def drive_spread(depths: list[np.ndarray], poses: list[np.ndarray]) -> dict[str, float]:
    """How different the drives are: yaw-rate spread, and the spread across drives of per-frame
    median depth and sky fraction."""
    rates = np.concatenate([hardness.yaw_rates(p, kitti.FPS) for p in poses])
    medians = [np.nanmedian(np.where(np.isfinite(d), d, np.nan).reshape(len(d), -1), axis=1) for d in depths]
    sky = [np.mean(~np.isfinite(d), axis=(1, 2)) for d in depths]
    return {
        "yaw_rate_deg_s_std": float(np.std(rates)),
        "yaw_rate_deg_s_abs_p95": float(np.percentile(np.abs(rates), 95)),
        "frame_median_depth_m_mean": float(np.nanmean(np.concatenate(medians))),
        "frame_median_depth_m_std_across_drives": float(np.std([np.nanmean(m) for m in medians])),
        "frame_median_depth_m_std_all_frames": float(np.nanstd(np.concatenate(medians))),
        "sky_fraction_std_across_drives": float(np.std([s.mean() for s in sky])),
    }


def study_split_scores(folder: Path, preset_name: str = "small") -> dict[str, float]:
    """The constant's and per-pixel priors' abs_rel / rmse / a1 on the study's KITTI-style test split,
    velodyne ground truth, metric (S protocol) and median-scaled (M protocol)."""
    from geopre.reproduce.baselines import baseline_errors
    from geopre.reproduce.study import kitti_gt_depths, prior_depths, render_kitti_tree
    from geopre.train import metrics

    render_kitti_tree(folder / "kitti", PRESETS[preset_name])
    train, test = kitti_gt_depths(folder / "kitti", folder)
    scores = {}
    for protocol_name, metric in (("metric", True), ("median_scaled", False)):
        for name, depth in prior_depths(train).items():
            errors = baseline_errors(test, depth, metrics.KITTI_EIGEN_MONO, metric)[0]
            for measure in ("abs_rel", "rmse", "a1"):
                scores[f"study_split_{name.replace('-', '_').replace(' ', '_')}_{measure}_{protocol_name}"] = \
                    errors[measure]
    scores["study_split_test_frames"] = len(test)
    return scores


def run(out_dir=None) -> dict:
    start = time.perf_counter()
    specs, images, depths, poses = render_drives("small")
    render_seconds = time.perf_counter() - start
    test_drives = PRESETS["small"].kitti_test_drives
    train_depths = np.concatenate(depths[:-test_drives])
    # The Eigen test split skips each drive's first and last frame.
    test_depths = np.concatenate([d[1:-1] for d in depths[-test_drives:]])
    results = hardness.prior_scores(train_depths, test_depths)
    # Two test drives make a noisy split: the same scores with every drive held out in turn.
    folds = [hardness.prior_scores(np.concatenate(depths[:k] + depths[k + 1:]), depths[k][1:-1])
             for k in range(len(depths))]
    for key in ("per_pixel_prior_abs_rel_median_scaled", "per_pixel_prior_abs_rel_metric",
                "constant_abs_rel_median_scaled"):
        results[f"{key}_leave_one_drive_out"] = float(np.mean([f[key] for f in folds]))
    train_grey = [g for drive in images[:-test_drives] for g in hardness.grey(drive)]
    test_grey = [g for drive in images[-test_drives:] for g in hardness.grey(drive[1:-1])]
    reuse = hardness.patch_reuse(train_grey, test_grey)
    results["texture_reuse_fraction"] = reuse["fraction"]
    results["texture_reuse_patches_tested"] = reuse["tested"]
    results.update(drive_spread(depths, poses))
    results["render_seconds"] = render_seconds
    with tempfile.TemporaryDirectory(dir=out_dir) as folder:
        results.update(study_split_scores(Path(folder)))
    results["target_per_pixel_prior_abs_rel_median_scaled"] = ">= 0.35"
    results["target_texture_reuse_fraction"] = "<= 0.02"
    return {k: round(float(v), 4) if isinstance(v, (float, np.floating)) else v for k, v in results.items()}


if __name__ == "__main__":
    print(run())

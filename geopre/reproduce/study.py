"""`make reproduce`: the paper's three claims (V-A accuracy, V-B few-shot, V-C generalisation), measured.

:func:`plan` lists every stage of the study for a preset, through the same library functions the
CLI commands call: render the world, serve the videos and ingest them with yt-dlp, shard each
pretraining mixture (Table I), pretrain and export one encoder per mixture, fine-tune depth from
every initialisation (few-shot in S mode, Table II's M mode at 100 %) with several seeds, evaluate
each model on the KITTI-style Eigen test split and the Cityscapes-style test split, write the
report. :func:`run_study` runs them with :class:`~geopre.reproduce.stages.StageRunner`, so an
interrupted study picks up at the stage it stopped in. ``geopre demo`` runs the same plan for its
own preset (:data:`~geopre.reproduce.presets.DEMO`), so a stage added here is in the demo too.
Where every file lies: :mod:`geopre.reproduce.layout`.
"""

from __future__ import annotations

import math
import os
import shutil
from functools import partial
from pathlib import Path

from geopre.errors import UserError
from geopre.io import ensure_writable_dir
from geopre.reproduce import report
from geopre.reproduce.layout import BASELINES_FILE, CITY_EVAL, KITTI_EVAL, Cell, Study
from geopre.reproduce.presets import MIXTURE_SOURCES, Preset
from geopre.reproduce.stages import Stage, StageRunner
from geopre.train.finetune import VALIDATED_DIR

VIDEO_PORT = 8767  # fixed, so the served URLs and ingest's video ids match from run to run

# Seconds per unit on a 2-core CPU at 192x64, measured once; they seed the first estimate and price
# the presets (estimate_seconds). A fine-tuning cell's unit is a training step; its rate includes the
# cell's evaluations (best model on both test sets, every validated model on the KITTI-style one),
# priced at 0.3 s per step above the training rates measured before they existed.
PRIOR_RATES = {"render-videos": 0.03, "ingest": 0.01, "render-kitti": 0.15, "render-cityscapes": 0.15,
               "shard": 0.01, "baselines": 0.02, "pretrain": 1.2, "finetune-S": 1.3, "finetune-M": 2.9}


def default_jobs(device: str) -> int:
    import torch

    gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return 1 if gpu else max(1, min(2, os.cpu_count() or 1))


def _train_frames(kitti_root: Path, mode: str) -> int:
    from geopre.data import kitti
    from geopre.train.finetune import DEFAULT_SPLIT

    return len(kitti.read_split(kitti_root / "splits" / DEFAULT_SPLIT[mode] / "train_files.txt"))


def schedule(frames: int, fraction: float, batch: int, steps: int, validations: int) -> dict:
    """Epochs, batch size, decay and validation interval for ``steps`` steps on a subset.

    Every cell trains about ``steps`` steps whatever its fraction (a 5 % subset simply runs more
    epochs); the learning rate drops x0.1 for the last quarter, as monodepth2's 15 of 20 epochs.
    """
    subset = max(1, math.ceil(fraction * frames))
    batch = min(batch, subset)
    per_epoch = subset // batch
    epochs = max(1, round(steps / per_epoch))
    return {"batch_size": batch, "epochs": epochs, "decay_epochs": max(1, round(0.75 * epochs)),
            "val_every_epochs": max(1, epochs // validations), "steps": epochs * per_epoch}


def estimate_seconds(study: Study, rates: dict[str, float] = PRIOR_RATES) -> float:
    """Wall seconds a fresh study would take at ``rates`` with ``study.jobs`` trainings at a time."""
    import tempfile

    with tempfile.TemporaryDirectory() as empty:
        return StageRunner(Path(empty), rates, echo=lambda _: None, jobs=study.jobs).estimate(plan(study))


def plan(study: Study) -> list[Stage]:
    p, cache = study.preset, study.cache
    stages = [
        Stage("render internet videos", "render-videos",
              p.videos * p.video_seconds * 30, cache / "videos" / "index.html", partial(_render_videos, study)),
        Stage("serve + yt-dlp ingest", "ingest", p.videos * p.video_seconds * 30, cache / "ingest",
              partial(_ingest, study)),
        Stage("render KITTI-style tree", "render-kitti", p.kitti_drives * p.kitti_frames,
              study.kitti / "synth.json", partial(_render_kitti, study)),
        Stage("render Cityscapes-style tree", "render-cityscapes", p.city_sequences * 30,
              study.cityscapes / "synth.json", partial(_render_cityscapes, study)),
    ]
    if p.city_test_sequences:
        stages.append(Stage("render Cityscapes-style test set", "render-cityscapes", p.city_test_sequences * 30,
                            study.cityscapes_test / "synth.json", partial(_render_cityscapes_test, study)))
    stages.append(Stage("baselines (constant, per-pixel prior)", "baselines", p.kitti_drives * p.kitti_frames,
                        study.out / BASELINES_FILE, partial(_baselines, study)))
    for mixture in p.mixtures:
        stages.append(Stage(f"shard mixture {mixture}", "shard", p.videos * p.video_seconds * 10,
                            cache / "shards" / mixture / "index.json", partial(_shard, study, mixture)))
    for pretraining in study.pretrainings:
        stages.append(Stage(f"pretrain + export {pretraining}", "pretrain", p.pretrain_steps,
                            study.encoder(pretraining), partial(_pretrain, study, pretraining), parallel=True))
    for k, cell in enumerate(study.cells()):
        steps = p.stereo_steps if cell.mode == "S" else p.mono_steps
        last_eval = CITY_EVAL if p.city_test_sequences else KITTI_EVAL
        stages.append(Stage(f"finetune + evaluate {cell.name}", f"finetune-{cell.mode}", steps,
                            study.run_dir(cell) / last_eval, partial(_cell, study, cell), parallel=True,
                            after_previous=k == 0))  # every encoder exported before the first cell
    return stages


def run_study(study: Study, echo=print) -> Path:
    for option, path in (("--imagenet-weights", study.imagenet_weights), ("--bench-results", study.bench_results)):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{option} {path}: no such file")
    if study.imagenet_weights is not None:
        # Checked before hours of other stages, by the loader the ImageNet cells will use.
        from geopre.model.resnet import ResnetEncoder, load_encoder_file

        load_encoder_file(ResnetEncoder(study.preset.arch), study.imagenet_weights)
    ensure_writable_dir(study.cache)
    stages = plan(study)
    StageRunner(study.out, PRIOR_RATES, echo, jobs=study.jobs).run(stages)
    # Not a cached stage: the report is cheap and must follow every stage that (re)ran.
    echo("[reproduce] writing the report ...")
    return report.write_report(study, stages)


# --- stages ------------------------------------------------------------------------------------

def _render_videos(study: Study) -> None:
    from geopre.synth import videos

    p = study.preset
    videos.write_videos(study.cache / "videos", p.videos, p.video_seconds, p.world_seed, sizes=p.video_sizes,
                        render_scale=p.video_render_scale, workers=min(2, os.cpu_count() or 1))


def _ingest(study: Study) -> None:
    from geopre.ingest.config import IngestConfig, SubsampleConfig
    from geopre.ingest.pipeline import run_ingest
    from geopre.ingest.sources import expand_sources
    from geopre.synth.serve import serving

    with serving(study.cache / "videos", port=VIDEO_PORT, any_port_if_taken=True) as base:
        stats = run_ingest(expand_sources([base + "index.html"]), IngestConfig(
            out=study.cache / "ingest", subsample=SubsampleConfig(size=study.preset.ingest_size),
            workers=min(2, os.cpu_count() or 1)))
    # A video can fail honestly (a car that waits at lights for the whole clip has no triplet);
    # the report lists the reasons. Only an ingest that yields nothing stops the study.
    if not stats["triplets"]:
        raise UserError(f"ingest produced no triplets; see {study.cache / 'ingest' / 'failures'}")


def _render_kitti(study: Study) -> None:
    render_kitti_tree(study.kitti, study.preset)


def render_kitti_tree(folder: Path, p: Preset) -> None:
    """The study's KITTI-style tree of preset ``p`` in ``folder`` (also what ``bench/world.py`` scores)."""
    from geopre.synth import kitti

    # The study trains and scores on the colour cameras only: the grey pair would double the renders.
    kitti.write_kitti(folder, p.kitti_drives, p.kitti_test_drives, p.kitti_frames, *p.kitti_size,
                      seed=p.world_seed + 1, workers=min(2, os.cpu_count() or 1), grey_cameras=False,
                      val_drives=p.kitti_val_drives)


def _render_cityscapes(study: Study) -> None:
    from geopre.synth import cityscapes

    p = study.preset
    cityscapes.write_cityscapes(study.cityscapes, p.city_sequences, *p.city_size, seed=p.world_seed + 2)


def _render_cityscapes_test(study: Study) -> None:
    from geopre.synth import cityscapes

    p = study.preset
    cityscapes.write_cityscapes(study.cityscapes_test, p.city_test_sequences, *p.city_size, seed=p.world_seed + 3)


def _shard(study: Study, mixture: str) -> None:
    from geopre.shards.sources import SourceSpec
    from geopre.shards.write import WriteConfig, write_shards

    roots = {"ingest": study.cache / "ingest", "kitti": study.kitti, "cityscapes": study.cityscapes}
    specs = [SourceSpec(MIXTURE_SOURCES[letter], roots[MIXTURE_SOURCES[letter]]) for letter in mixture]
    write_shards(specs, WriteConfig(study.cache / "shards" / mixture, maxcount=500, val_fraction=0.1,
                                    seed=study.preset.world_seed))


def _pretrain(study: Study, pretraining: str) -> None:
    from geopre.train.export import export_encoder
    from geopre.train.pretrain import PretrainConfig, pretrain

    p = study.preset
    mixture = pretraining.removeprefix("imagenet-")
    run = study.cache / "pretrain" / pretraining
    every = max(1, p.pretrain_steps // 5)
    pretrain(PretrainConfig(
        shards=str(study.cache / "shards" / mixture), out=run, arch=p.arch, size=p.pretrain_size,
        batch_size=p.pretrain_batch, max_steps=p.pretrain_steps, workers=p.workers,
        init="imagenet" if pretraining != mixture else "scratch",
        imagenet_weights=study.imagenet_weights,
        device=study.device, log_every=max(1, p.pretrain_steps // 50), val_every=every, visual_every=every,
        checkpoint_every=every, resume=(run / "checkpoints").is_dir()), echo=lambda _: None)
    export_encoder(run, study.encoder(pretraining))


def _finetune(study: Study, cell: Cell) -> None:
    from geopre.train.finetune import FinetuneConfig, finetune

    p = study.preset
    steps = p.stereo_steps if cell.mode == "S" else p.mono_steps
    plan_ = schedule(_train_frames(study.kitti, cell.mode), cell.fraction, p.finetune_batch, steps, p.validations)
    if cell.init.startswith("geo-"):
        init = str(study.encoder(cell.init[len("geo-"):]))
    else:
        init = cell.init
    run = study.run_dir(cell)
    finetune(FinetuneConfig(
        data_root=study.kitti, run_dir=run, mode=cell.mode, arch=p.arch, size=p.train_size,
        batch_size=plan_["batch_size"], epochs=plan_["epochs"], decay_epochs=plan_["decay_epochs"],
        val_every_epochs=plan_["val_every_epochs"], start_depth=p.start_depth,
        pose_start=None if cell.mode == "S" else p.pose_start, init=init,
        imagenet_weights=study.imagenet_weights, fraction=cell.fraction, seed=cell.seed, device=study.device,
        workers=p.workers, log_every=max(1, steps // 40), resume=(run / "checkpoints").is_dir(),
        keep_validated=True))


def _cell(study: Study, cell: Cell) -> None:
    run = study.run_dir(cell)
    if not (run / "summary.json").exists():
        _finetune(study, cell)
    _evaluate(study, cell)
    # Scored and done: the resumable checkpoints (weights + Adam state, twice) and the validated
    # models are ~10x the model files the report reads, and dozens of runs of them fill a disk.
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    for model in (run / VALIDATED_DIR).glob("step_*.safetensors"):
        model.unlink()


def _evaluate(study: Study, cell: Cell) -> None:
    from geopre.train.evaluate import EvaluateConfig, evaluate

    run = study.run_dir(cell)
    # The best validation epoch, as the paper reports for its few-shot models (V-B).
    evaluate(EvaluateConfig(model=run, data_root=study.kitti, best=True, device=study.device))
    # Every validated model on the test split: the gain along training, and the last one is the
    # final epoch (reported beside the selected one).
    for model in sorted((run / VALIDATED_DIR).glob("step_*.safetensors")):
        evaluate(EvaluateConfig(model=model, data_root=study.kitti, out_dir=run / VALIDATED_DIR / model.stem,
                                device=study.device))
    if study.preset.city_test_sequences:
        evaluate(EvaluateConfig(model=run, data_root=study.cityscapes_test, dataset="cityscapes", split="all",
                                best=True, device=study.device))


def _baselines(study: Study) -> None:
    """``OUT/baselines.json``: the constant and per-pixel-prior depths scored on each test set by each
    protocol. The priors come from the S training split's ground truth (every training drive)."""
    from geopre.data import cityscapes
    from geopre.io import atomic_write_json
    from geopre.reproduce.baselines import baseline_errors
    from geopre.train import metrics
    from geopre.train.evaluate import cityscapes_frames
    from geopre.train.finetune import DEFAULT_SPLIT

    train, test = kitti_gt_depths(study.kitti, study.cache / "baselines")
    depths = prior_depths(train)
    tests = {("kitti", "S"): (test, metrics.KITTI_EIGEN_MONO, True),
             ("kitti", "M"): (test, metrics.KITTI_EIGEN_MONO, False)}
    if study.preset.city_test_sequences:
        city = [cityscapes.bonnet_crop(cityscapes.read_depth(study.cityscapes_test, split, frame))
                for split, frame in cityscapes_frames(study.cityscapes_test, "all")]
        tests[("city", "S")] = (city, metrics.CITYSCAPES_PAPER, False)
    result: dict = {"source": f"{DEFAULT_SPLIT['S']} train split ground truth, {len(train)} frames"}
    for (dataset, mode), (gts, protocol, metric) in tests.items():
        result.setdefault(dataset, {})[mode] = {name: baseline_errors(gts, depth, protocol, metric)[0]
                                                for name, depth in depths.items()}
    atomic_write_json(study.out / BASELINES_FILE, result)


def kitti_gt_depths(tree: Path, folder: Path) -> tuple[list, list]:
    """(train, test) velodyne ground-truth maps of a KITTI-style tree, as the study scores them: the
    S training split (every training drive) and the Eigen test split, exported once into ``folder``."""
    from geopre.data import kitti
    from geopre.train.finetune import DEFAULT_SPLIT

    gt_files = {}
    for role, split_file in (("train", tree / "splits" / DEFAULT_SPLIT["S"] / "train_files.txt"),
                             ("test", tree / "splits" / "eigen" / "test_files.txt")):
        gt_files[role] = folder / f"gt_{role}.npz"
        if not gt_files[role].is_file():
            kitti.export_gt_depths(tree, split_file, gt_files[role])
    return tuple(kitti.load_gt_depths(gt_files[role]) for role in ("train", "test"))


def prior_depths(train: list) -> dict:
    """The trivial baselines' depth maps from training ground truth: a constant and per-pixel priors."""
    from geopre.reproduce.baselines import constant_prior, pixel_prior

    return {"constant": constant_prior(train, train[0].shape), "per-pixel median": pixel_prior(train, "median"),
            "per-pixel mean": pixel_prior(train, "mean")}

"""The study's sizes and schedules, one preset per kind of machine.

``small`` is the default: it must answer the paper's three claims on a 2-core CPU within two
hours, so images are 192x64 (a third of the paper's 640x192 per side, the same 3:1 shape) and
schedules are a few hundred steps; to afford 5 paired seeds per cell it keeps one pretraining
mixture (``d``, the paper's internet video) and one few-shot fraction. ``medium`` is the same study
with the paper's two mixtures, three fractions and longer schedules for one night on a 2-core CPU.
``paper`` and ``hd`` are the paper's settings for a GPU machine (III-D, IV); ``tiny`` only proves
the machinery works (the smoke test). :func:`geopre.reproduce.study.estimate_seconds` prices a
preset from the measured stage rates; a test keeps small within 2 h and medium within 8 h.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from geopre.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    # The world: "internet" videos (uncalibrated), a KITTI-style tree, a Cityscapes-style tree.
    videos: int
    video_seconds: float
    video_sizes: tuple[tuple[int, int], ...]
    video_render_scale: float  # render below the file's size and upscale, as web video often is
    ingest_size: tuple[int, int]
    kitti_drives: int  # all drives: train, validation and test
    kitti_test_drives: int
    kitti_frames: int
    kitti_size: tuple[int, int]
    city_sequences: int
    city_size: tuple[int, int]
    # A second Cityscapes-style tree, never trained or pretrained on: every annotated frame (one per
    # sequence) is a generalisation test frame (paper V-C). 0: no generalisation test.
    city_test_sequences: int
    # Pretraining (paper III-D): one run per mixture of Table I.
    mixtures: tuple[str, ...]
    pretrain_size: tuple[int, int]
    pretrain_batch: int
    pretrain_steps: int
    # Fine-tuning (paper IV, V): the same number of steps for every fraction, so every cell of the
    # few-shot study gets the same compute; only the data it sees differs.
    train_size: tuple[int, int]
    finetune_batch: int
    stereo_steps: int
    mono_steps: int
    fractions: tuple[float, ...] = (0.05, 0.1, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    mono: bool = True  # the Table II cell: M mode at 100 %
    scratch: bool = True  # the randomly initialised cells every claim compares against
    validations: int = 8  # validations per fine-tune run: the learning curve, the convergence check and the
    # checkpoints scored on the test split (gain vs steps); the best validation is scored (paper V-B)
    kitti_val_drives: int = 1  # validation drives of their own, apart from train and test drives
    start_depth: float | None = 10.0  # see geopre.model.depth.DepthDecoder.start_at
    # M cells: the pose network starts at this forward motion per frame, a tenth of start_depth (a car at
    # 10 Hz sees about ten frames' travel to the scene's median depth); see PoseDecoder.start_moving
    pose_start: float | None = 1.0
    arch: str = "resnet18"
    workers: int = 0
    world_seed: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny", videos=2, video_seconds=4.0, video_sizes=((320, 180), (256, 144)), video_render_scale=1.0,
        ingest_size=(256, 96), kitti_drives=3, kitti_test_drives=1, kitti_frames=14, kitti_size=(256, 96),
        city_sequences=3, city_size=(256, 128), city_test_sequences=3, mixtures=("d", "kcd"), pretrain_size=(96, 32), pretrain_batch=2,
        pretrain_steps=3, train_size=(96, 32), finetune_batch=2, stereo_steps=4, mono_steps=2,
        fractions=(0.2, 1.0), seeds=(0, 1), validations=3,
        notes=("tiny proves the machinery only: its numbers mean nothing",)),
    "small": Preset(
        name="small", videos=10, video_seconds=20.0, video_sizes=((640, 360), (854, 480), (480, 270)),
        video_render_scale=0.5, ingest_size=(416, 128), kitti_drives=14, kitti_test_drives=6, kitti_frames=40,
        kitti_size=(416, 128), city_sequences=18, city_size=(384, 192), city_test_sequences=36, mixtures=("d",),
        pretrain_size=(192, 64), pretrain_batch=8, pretrain_steps=800, train_size=(192, 64), finetune_batch=8,
        stereo_steps=200, mono_steps=150, fractions=(0.1, 1.0), seeds=(0, 1, 2, 3, 4), validations=8,
        kitti_val_drives=2,
        notes=("192x64 keeps the KITTI-like 3:1 shape at a tenth of the paper's pixels, and schedules are "
               "hundreds of steps, not the paper's tens of thousands: that is what fits 2 CPU cores in 2 hours "
               "with 5 paired seeds per cell; the convergence column says whether that was long enough",
               "cut to fit: the kcd mixture and the 5 % fraction (both in the medium preset)")),
    "medium": Preset(
        name="medium", videos=10, video_seconds=20.0, video_sizes=((640, 360), (854, 480), (480, 270)),
        video_render_scale=0.5, ingest_size=(416, 128), kitti_drives=14, kitti_test_drives=6, kitti_frames=40,
        kitti_size=(416, 128), city_sequences=18, city_size=(384, 192), city_test_sequences=36, mixtures=("d", "kcd"),
        pretrain_size=(192, 64), pretrain_batch=8, pretrain_steps=1500, train_size=(192, 64), finetune_batch=8,
        stereo_steps=400, mono_steps=300, fractions=(0.05, 0.1, 1.0), seeds=(0, 1, 2, 3, 4), validations=8,
        kitti_val_drives=2,
        notes=("one night on a 2-core CPU: small's world with both mixtures, three fractions and twice its "
               "schedules; interrupt it at will, a rerun continues",)),
    "paper": Preset(
        name="paper", videos=60, video_seconds=60.0, video_sizes=((1280, 720), (1920, 1080), (854, 480)),
        video_render_scale=0.5, ingest_size=(640, 192), kitti_drives=40, kitti_test_drives=6, kitti_frames=200,
        kitti_size=(1242, 375), city_sequences=60, city_size=(1024, 512), city_test_sequences=100,
        mixtures=("d", "k", "c", "kc", "kcd"), pretrain_size=(640, 192), pretrain_batch=20, pretrain_steps=20000,
        train_size=(640, 192), finetune_batch=12, stereo_steps=6000, mono_steps=6000, workers=4, kitti_val_drives=4),
    "hd": Preset(
        name="hd", videos=60, video_seconds=60.0, video_sizes=((1280, 720), (1920, 1080)), video_render_scale=0.5,
        ingest_size=(1024, 320), kitti_drives=40, kitti_test_drives=6, kitti_frames=200, kitti_size=(1242, 375),
        city_sequences=60, city_size=(1024, 512), city_test_sequences=100, mixtures=("d", "kcd"),
        pretrain_size=(1024, 320),
        pretrain_batch=8, pretrain_steps=20000, train_size=(1024, 320), finetune_batch=6, stereo_steps=6000,
        mono_steps=6000, arch="resnet50", workers=4, kitti_val_drives=4),
}

# `geopre demo`: the study's stages, one cell of them (geometric init from the kcd mixture, S mode,
# 100 %, one seed), sized so a new user sees depth learned in about three CPU minutes. It is not in
# PRESETS: without scratch cells it answers no claim, so `geopre reproduce` does not offer it.
DEMO = Preset(
    name="demo", videos=3, video_seconds=8.0, video_sizes=((960, 540), (854, 480)), video_render_scale=0.5,
    ingest_size=(416, 128), kitti_drives=3, kitti_test_drives=1, kitti_frames=20, kitti_size=(416, 128),
    city_sequences=3, city_size=(512, 256), city_test_sequences=0, mixtures=("kcd",), pretrain_size=(192, 64),
    pretrain_batch=4, pretrain_steps=30, train_size=(192, 64), finetune_batch=8, stereo_steps=80, mono_steps=0,
    fractions=(1.0,), seeds=(0,), mono=False, scratch=False, validations=1)

# Table I's mixtures: k = KITTI raw, c = Cityscapes sequences, d = internet driving video.
MIXTURE_SOURCES = {"k": "kitti", "c": "cityscapes", "d": "ingest"}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None

"""Triplet sources: where the frames of each training sample come from.

Each source turns a dataset on disk into :class:`Triplet` records (three files + metadata) and
never reads pixels it does not need; the writer copies the stored bytes into the shards. The
paper's pretraining mixtures (Table I: K, CS, D and their unions) are lists of these sources:

- ``ingest``: an ingest output folder (internet video, uncalibrated: intrinsics are null);
- ``kitti``: a KITTI raw tree and a monodepth2 split (Zhou's split, paper III-C-1);
- ``cityscapes``: ``leftImg8bit_sequence`` subsampled 17 -> 8.5 Hz and filtered for motion
  like Zhou's method (paper III-C-2).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from geopre.data import cityscapes, kitti
from geopre.data.camera import Intrinsics
from geopre.errors import UserError
from geopre.ingest import flow_filter

SOURCE_KINDS = ("ingest", "kitti", "cityscapes")
KITTI_FPS = 10.0
CITYSCAPES_FPS = 17.0
CITYSCAPES_STEP = 2  # 17 Hz -> 8.5 Hz (paper III-C-2)
# Zhou et al. drop triplets whose mean optical flow is under 1 px, measured at their 416 px width.
MIN_FLOW_PX = 1.0
FLOW_WIDTH = 416
# Ingest options that change what a triplet is (frame spacing, pixels, motion, gaps): one shard set
# should hold one value of each, unless the user says otherwise (--allow-mixed).
CONSISTENT_INGEST_PARAMS = ("fps", "size", "min_flow", "max_gap")

_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def key_part(text: str) -> str:
    """A piece of a sample key: webdataset ends a key at the first dot, and '/' would make a folder."""
    return _UNSAFE_KEY_CHARS.sub("-", text).strip("-") or "x"


@dataclass(frozen=True)
class Triplet:
    """Three consecutive frames (previous, reference, next) of one video, as stored on disk."""

    source: str
    video_id: str
    frame: str  # the reference frame's name in its video, unique within the video
    files: tuple[Path, Path, Path]
    indices: tuple[int, int, int]
    times: tuple[float | None, float | None, float | None]
    fps: float | None
    url: str | None = None
    mean_flow: tuple[float | None, float | None, float | None] = (None, None, None)
    intrinsics: Intrinsics | None = None

    @property
    def key(self) -> str:
        return f"{self.source}_{key_part(self.video_id)}_{key_part(self.frame)}"

    @property
    def extensions(self) -> tuple[str, str, str]:
        return tuple(image_extension(path) for path in self.files)  # type: ignore[return-value]

    def metadata(self) -> dict:
        return {
            "key": self.key,
            "source": self.source,
            "video_id": self.video_id,
            "frame": self.frame,
            "url": self.url,
            "indices": list(self.indices),
            "times": list(self.times),
            "fps": self.fps,
            "mean_flow": list(self.mean_flow),
            "intrinsics": self.intrinsics.to_json() if self.intrinsics else None,
        }


@dataclass(frozen=True)
class SourceSpec:
    """One source of a mixture, as the user named it."""

    kind: str
    root: Path
    split: str = "eigen_zhou"  # KITTI only: the monodepth2 split folder
    min_flow: float = MIN_FLOW_PX  # Cityscapes only: the static filter's threshold (px at FLOW_WIDTH)

    def describe(self) -> dict:
        info = {"kind": self.kind, "root": str(self.root)}
        if self.kind == "kitti":
            info["split"] = self.split
        return info


def image_extension(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("jpg", "jpeg"):
        return "jpg"
    if suffix == "png":
        return "png"
    raise UserError(f"{path}: frames must be .jpg or .png, got {path.suffix or 'no suffix'}")


# --- ingest output -----------------------------------------------------------------------------

def ingest_triplets(root: Path) -> Iterator[Triplet]:
    """Triplets listed by the manifests of an ingest output folder (``manifests/<video>.json``)."""
    manifests = sorted((root / "manifests").glob("*.json"))
    if not manifests:
        raise UserError(f"{root}: no manifests/*.json (is it an ingest output folder? run `geopre ingest` first)")
    for path in manifests:
        try:
            manifest = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"{path}: unreadable manifest ({err}); rerun `geopre ingest`") from err
        if manifest.get("version") != 1:
            raise UserError(f"{path}: manifest version {manifest.get('version')!r} is not 1")
        frames = {frame["index"]: frame for frame in manifest["frames"]}
        source = manifest.get("source") or {}
        # The video's own rate: below the run's --fps for a source slower than that.
        fps = manifest.get("fps") or (manifest.get("params") or {}).get("fps")
        for prev, ref, nxt in manifest["triplets"]:
            picked = [frames[i] for i in (prev, ref, nxt)]
            missing = [f["index"] for f in picked if not f.get("file")]
            if missing:
                raise UserError(f"{path}: triplet {[prev, ref, nxt]} names frames {missing} that were not kept")
            yield Triplet(
                source="ingest", video_id=manifest["video_id"], frame=f"{ref:06d}",
                files=tuple(root / f["file"] for f in picked),  # type: ignore[arg-type]
                indices=(prev, ref, nxt), times=tuple(f.get("time") for f in picked),  # type: ignore[arg-type]
                fps=fps, url=source.get("webpage_url") or source.get("url"),
                mean_flow=tuple(f.get("mean_flow") for f in picked),  # type: ignore[arg-type]
            )


def ingest_params(root: Path) -> dict:
    """What the ingest run was asked for, for ``index.json``: its stats and each distinct params set."""
    params = []
    for path in sorted((root / "manifests").glob("*.json")):
        p = json.loads(path.read_text()).get("params")
        if p not in params:
            params.append(p)
    stats_path = root / "ingest_stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else None
    return {"params": params, "stats": stats}


def mixed_ingest_params(roots: list[Path]) -> list[str]:
    """``fps 10.0 in a, 5.0 in b`` for each of :data:`CONSISTENT_INGEST_PARAMS` whose value differs
    between the manifests of the ingest folders ``roots`` (within one folder or across them)."""
    folders: dict[str, dict] = {}  # option -> value (a size as a tuple) -> folders holding it
    for root in roots:
        for params in ingest_params(root)["params"]:
            for key in CONSISTENT_INGEST_PARAMS:
                if key in (params or {}):
                    value = tuple(params[key]) if isinstance(params[key], list) else params[key]
                    holders = folders.setdefault(key, {}).setdefault(value, [])
                    if str(root) not in holders:
                        holders.append(str(root))
    mixed = []
    for key, values in folders.items():
        if len(values) > 1:
            shown = [("x".join(map(str, v)) if isinstance(v, tuple) else str(v), " and ".join(held))
                     for v, held in values.items()]
            mixed.append(f"{key} " + ", ".join(f"{value} in {held}" for value, held in shown))
    return mixed


# --- KITTI -------------------------------------------------------------------------------------

def kitti_intrinsics(calibration: kitti.CameraCalibration, camera: int) -> Intrinsics:
    """The rectified intrinsics of colour camera 2 or 3 at the calibration's image size."""
    return Intrinsics.from_matrix(calibration.intrinsics(camera), calibration.image_size)


def _kitti_times(timestamps: Path) -> list[float] | None:
    """Seconds since the drive's first frame from ``timestamps.txt`` (nanoseconds cut to micro)."""
    if not timestamps.exists():
        return None
    stamps = [dt.datetime.strptime(line.strip()[:26], "%Y-%m-%d %H:%M:%S.%f")
              for line in timestamps.read_text().splitlines() if line.strip()]
    return [(s - stamps[0]).total_seconds() for s in stamps]


def kitti_triplets(root: Path, split: str = "eigen_zhou") -> Iterator[Triplet]:
    """Triplets centred on the lines of a monodepth2 ``splits/<split>/train_files.txt``.

    Zhou's split already removed static frames (paper III-C-1), so nothing is filtered here.
    ``l`` is camera 2 (image_02), ``r`` camera 3; the video is the drive, so both cameras of a
    drive always land on the same side of the train/val split.
    """
    split_file = root / "splits" / split / "train_files.txt"
    if not split_file.exists():
        raise UserError(f"{split_file} not found: KITTI needs monodepth2 split files (--kitti-split names a folder "
                        "under ROOT/splits)")
    tree = kitti.KittiRawTree(root)
    times_cache: dict[Path, list[float] | None] = {}
    calibrations: dict[str, kitti.CameraCalibration] = {}  # one read per recording day, not per line
    for entry in kitti.read_split(split_file):
        camera = kitti.SIDE_TO_CAMERA[entry.side]
        frame = entry.frame_index
        indices = (frame - 1, frame, frame + 1)
        if not tree.has_frames(entry.folder, frame, entry.side):
            raise UserError(f"{split_file}: a neighbour of frame {frame} of {entry.folder} is missing "
                            "(a triplet needs both neighbours)")
        files = tuple(tree.image_path(entry.folder, i, entry.side) for i in indices)
        image_dir = files[1].parent
        if image_dir not in times_cache:
            times_cache[image_dir] = _kitti_times(image_dir.parent / "timestamps.txt")
        times = times_cache[image_dir]
        date = Path(entry.folder).parts[0]
        if date not in calibrations:
            calibrations[date] = tree.calibration(entry.folder)
        yield Triplet(
            source="kitti", video_id=Path(entry.folder).name, frame=f"{frame:010d}{entry.side}", files=files,  # type: ignore[arg-type]
            indices=indices, times=tuple(times[i] if times else None for i in indices),  # type: ignore[arg-type]
            fps=KITTI_FPS, intrinsics=kitti_intrinsics(calibrations[date], camera),
        )


# --- Cityscapes --------------------------------------------------------------------------------

def _flow_grey(path: Path) -> np.ndarray:
    """The grey copy of a frame that the static filter measures, resized to :data:`FLOW_WIDTH` so that
    one threshold means the same motion at any source resolution."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{path}: not a readable image")
    return flow_filter.to_grey(image, FLOW_WIDTH / image.shape[1])


def _city_intrinsics(root: Path, split: str, frames: list[cityscapes.FrameId]) -> Intrinsics | None:
    """Intrinsics from the camera JSON of any frame in the sequence (Cityscapes ships one, for the
    annotated frame); the image size comes from the frame itself."""
    from PIL import Image

    for frame in frames:
        path = cityscapes.camera_path(root, split, frame)
        if path.exists():
            with Image.open(cityscapes.image_path(root, split, frame)) as image:
                size = image.size
            return Intrinsics.from_matrix(cityscapes.read_camera(path).intrinsics, size)
    return None


def cityscapes_triplets(root: Path, min_flow: float = MIN_FLOW_PX) -> Iterator[Triplet]:
    """Triplets of every ``leftImg8bit_sequence`` sequence (all splits), subsampled to 8.5 Hz.

    All splits: the paper's 40k + 4k CityScapes triplets are more than the train split alone
    holds, and pretraining uses no labels. The 8.5 Hz stream keeps every second frame of each
    snippet (:func:`~geopre.data.cityscapes.snippets`), in the phase that contains the snippet's
    annotated frame when it has a camera JSON; no triplet spans the gap between two snippets. A
    triplet is kept when the mean flow from its previous to its reference frame and from its
    reference to its next frame are both at least ``min_flow`` px at :data:`FLOW_WIDTH`, Zhou's rule.
    """
    base = root / "leftImg8bit_sequence"
    if not base.is_dir():
        raise UserError(f"{base} not found: --from cityscapes needs a Cityscapes tree with leftImg8bit_sequence/")
    sequences = {(split, city, seq): frames for split in cityscapes.list_splits(root)
                 for (city, seq), frames in cityscapes.list_sequences(root, split).items()}
    if not sequences:
        raise UserError(f"{base}: no <split>/<city>/*_leftImg8bit.png frames")
    for (split, city, seq), frames in sequences.items():
        intrinsics = _city_intrinsics(root, split, frames)
        runs = []
        for snippet in cityscapes.snippets(frames):
            annotated = [k for k, f in enumerate(snippet) if cityscapes.camera_path(root, split, f).exists()]
            phase = annotated[0] % CITYSCAPES_STEP if annotated else 0
            runs.append(cityscapes.subsample(snippet[phase:], CITYSCAPES_STEP))
        first = runs[0][0].frame  # times count from the sequence's first kept frame
        index = 0  # position in the sequence's 8.5 Hz stream, across snippets
        for kept in runs:
            paths = [cityscapes.image_path(root, split, f) for f in kept]
            greys = [_flow_grey(p) for p in paths]
            flows = [None] + [flow_filter.mean_flow_magnitude(greys[k - 1], greys[k]) for k in range(1, len(greys))]
            for k in range(1, len(kept) - 1):
                if flows[k] < min_flow or flows[k + 1] < min_flow:
                    continue
                numbers = tuple(kept[k + d].frame for d in (-1, 0, 1))
                yield Triplet(
                    source="cityscapes", video_id=f"{city}_{seq:06d}", frame=f"{numbers[1]:06d}",
                    files=tuple(paths[k + d] for d in (-1, 0, 1)),  # type: ignore[arg-type]
                    indices=tuple(index + k + d for d in (-1, 0, 1)),  # type: ignore[arg-type]
                    times=tuple((n - first) / CITYSCAPES_FPS for n in numbers),  # type: ignore[arg-type]
                    fps=CITYSCAPES_FPS / CITYSCAPES_STEP, mean_flow=(flows[k - 1], flows[k], flows[k + 1]),
                    intrinsics=intrinsics,
                )
            index += len(kept)


def triplets(spec: SourceSpec) -> Iterator[Triplet]:
    if not spec.root.exists():
        raise UserError(f"{spec.root}: no such folder")
    if spec.kind == "ingest":
        return ingest_triplets(spec.root)
    if spec.kind == "kitti":
        return kitti_triplets(spec.root, spec.split)
    if spec.kind == "cityscapes":
        return cityscapes_triplets(spec.root, spec.min_flow)
    raise UserError(f"unknown source kind {spec.kind!r}: choose one of {', '.join(SOURCE_KINDS)}")

"""A Cityscapes-style tree rendered from the synthetic world (city street style, another camera).

Layout and encodings as the Cityscapes release has them::

    OUT/leftImg8bit_sequence/<split>/<city>/<city>_<seq:06d>_<frame:06d>_leftImg8bit.png   (17 Hz)
    OUT/camera/<split>/<city>/<city>_<seq>_<frame>_camera.json     (annotated frame only)
    OUT/disparity/<split>/<city>/<city>_<seq>_<frame>_disparity.png (annotated frame only)

Each sequence has 30 frames with the annotated one at offset 19, as in the real release, and the
disparity PNG is uint16 with ``d = (p - 1) / 256`` for ``p > 0`` and ``p = 0`` invalid (sky and
the ego car's bonnet). The camera sees its own bonnet in the bottom rows, like Cityscapes' car.
Exact depth of every frame: ``OUT/geopre_truth/depth/<split>/<city>/<name>_depth.npy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geopre.errors import UserError
from geopre.io import atomic_path, atomic_write_json, ensure_writable_dir, save_png
from geopre.progress import progress
from geopre.synth import render, world

FPS = 17.0
SEQUENCE_LENGTH = 30
ANNOTATED_OFFSET = 19
BASELINE = 0.209313  # m, the Cityscapes rig's stereo baseline
CAMERA_HEIGHT = 1.22  # m ("z" of the extrinsics)
PITCH = 0.038  # rad, nose down
SHUTTER_MS = (1.0, 5.0)  # an automotive HDR camera in daylight: short, not a dashcam's long exposure
CITIES = {"train": ("aachen", "bochum", "bremen"), "val": ("frankfurt",), "test": ("berlin",)}


def city_intrinsics(width: int, height: int) -> world.Intrinsics:
    """Cityscapes' camera (fx 2262.52, u0 1096.98, v0 513.137 at 2048x1024) scaled to the size."""
    return world.Intrinsics(2262.52, 2265.30, 1096.98, 513.137, 2048, 1024).scaled(width, height)


def bonnet_mask(width: int, height: int) -> np.ndarray:
    """The ego car's bonnet: a rounded band over the bottom ~18 % of the image."""
    u = (np.arange(width) - (width - 1) / 2) / (width / 2)
    top = height * (0.82 + 0.08 * u ** 2)
    return np.arange(height)[:, None] >= top[None, :]


def _bonnet(view: render.View, intr: world.Intrinsics) -> render.View:
    """Paint the bonnet over a view; its depth is a plane 0.75 m below the camera."""
    mask = bonnet_mask(intr.width, intr.height)
    rows = np.arange(intr.height, dtype=np.float32)[:, None]
    depth = np.where(mask, 0.75 * intr.fy / np.maximum(rows - intr.cy, 1.0), view.depth).astype(np.float32)
    shade = np.clip(0.25 + 0.25 * (rows / intr.height - 0.8), 0.0, 1.0)
    paint = (np.array([60, 64, 72], np.float32) * (1.0 + shade[..., None])).astype(np.uint8)
    image = np.where(mask[..., None], np.broadcast_to(paint, view.image.shape), view.image)
    return render.View(image=image, depth=depth)


def disparity_png(depth: np.ndarray, fx: float, valid: np.ndarray) -> np.ndarray:
    """Cityscapes encoding: p = 256 d + 1 with d = fx * baseline / z; 0 marks invalid pixels."""
    with np.errstate(divide="ignore"):
        disparity = np.where(valid & np.isfinite(depth), fx * BASELINE / depth, 0.0)
    p = np.where(disparity > 0, np.round(disparity * 256.0) + 1.0, 0.0)
    return np.clip(p, 0, 65535).astype(np.uint16)


def camera_json(intr: world.Intrinsics) -> dict:
    return {
        "extrinsic": {"baseline": BASELINE, "pitch": PITCH, "roll": 0.0, "x": 1.7, "y": 0.1, "yaw": 0.0,
                      "z": CAMERA_HEIGHT},
        "intrinsic": {"fx": intr.fx, "fy": intr.fy, "u0": intr.cx, "v0": intr.cy},
    }


@dataclass(frozen=True)
class CitySequence:
    split: str
    city: str
    number: int
    seed: int
    width: int
    height: int

    def stem(self, frame: int) -> str:
        return f"{self.city}_{self.number:06d}_{frame:06d}"

    @property
    def first_frame(self) -> int:
        # Real sequences are numbered by absolute frame; keep them apart and increasing.
        return self.number * 50

    def sequence(self) -> world.Sequence:
        drive = world.DriveConfig(max_speed=11.0, min_cruise_speed=3.0, stop_probability=0.3)
        return world.make_sequence(self.seed, SEQUENCE_LENGTH / FPS, FPS, city_intrinsics(self.width, self.height),
                                   world.CITY, drive=drive, camera_height=CAMERA_HEIGHT,
                                   pitch_bias_deg=float(np.rad2deg(PITCH)), shutter_ms=SHUTTER_MS)


def render_city_sequence(root: Path, spec: CitySequence, on_frame=None) -> None:
    seq = spec.sequence()
    intr = seq.intrinsics
    rel = Path(spec.split) / spec.city
    for k in range(SEQUENCE_LENGTH):
        stem = spec.stem(spec.first_frame + k)
        image_path = root / "leftImg8bit_sequence" / rel / f"{stem}_leftImg8bit.png"
        depth_path = root / "geopre_truth" / "depth" / rel / f"{stem}_depth.npy"
        annotated = k == ANNOTATED_OFFSET
        disp_path = root / "disparity" / rel / f"{stem}_disparity.png"
        if image_path.exists() and depth_path.exists() and (not annotated or disp_path.exists()):
            if on_frame:
                on_frame()
            continue
        view = _bonnet(render.render_view(seq, k), intr)
        save_png(image_path, view.image)
        with atomic_path(depth_path) as tmp:
            np.save(tmp, view.depth)
        if annotated:
            valid = ~bonnet_mask(intr.width, intr.height)
            save_png(disp_path, disparity_png(view.depth, intr.fx, valid))
            atomic_write_json(root / "camera" / rel / f"{stem}_camera.json", camera_json(intr))
        if on_frame:
            on_frame()


def plan_city(sequences: int, width: int, height: int, seed: int) -> list[CitySequence]:
    if sequences < 3:
        raise UserError(f"--sequences must be at least 3 (one each for train, val and test), got {sequences}")
    if width < 32 or height < 16:
        raise UserError(f"--size must be at least 32x16, got {width}x{height}")
    rng = np.random.default_rng(seed)
    # Most sequences train; at least one each for val and test.
    n_val = max(1, sequences // 6)
    n_test = max(1, sequences // 6)
    splits = ["val"] * n_val + ["test"] * n_test + ["train"] * (sequences - n_val - n_test)
    specs = []
    for k, split in enumerate(splits):
        cities = CITIES[split]
        specs.append(CitySequence(split, cities[k % len(cities)], k, int(rng.integers(1 << 31)), width, height))
    return specs


def write_cityscapes(out: Path, sequences: int = 6, width: int = 512, height: int = 256, seed: int = 0) -> dict:
    """Render a Cityscapes-style tree; returns (and writes as ``synth.json``) a summary."""
    specs = plan_city(sequences, width, height, seed)
    out = ensure_writable_dir(out)
    with progress(total=len(specs) * SEQUENCE_LENGTH, desc="cityscapes", unit="frame") as bar:
        for spec in specs:
            render_city_sequence(out, spec, on_frame=lambda: bar.update(1))
    summary = {"kind": "cityscapes", "seed": seed, "size": [width, height], "fps": FPS,
               "sequences": [{"split": s.split, "city": s.city, "sequence": s.number,
                              "annotated": s.stem(s.first_frame + ANNOTATED_OFFSET)} for s in specs]}
    atomic_write_json(out / "synth.json", summary)
    return summary


def preview_views(sequences: int, width: int, height: int, seed: int, shown: int) -> list[render.View]:
    """The annotated frame of the first ``shown`` sequences a tree with these settings holds."""
    specs = plan_city(sequences, width, height, seed)[:shown]
    views = []
    for spec in specs:
        seq = spec.sequence()
        views.append(_bonnet(render.render_view(seq, ANNOTATED_OFFSET), seq.intrinsics))
    return views

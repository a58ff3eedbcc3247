"""Synthetic-world rendering speed: frames/s of the ray caster (issue target: >= 20 at 320x96)."""

from __future__ import annotations

import time


from geopre.synth import kitti, render, world


def _fps(fn, frames: int) -> float:
    fn(0)  # warm caches and lazy imports outside the timing
    start = time.perf_counter()
    for i in range(1, frames + 1):
        fn(i)
    return frames / (time.perf_counter() - start)


def run(out_dir=None) -> dict:
    results = {}
    for name, (w, h), style in (("render_320x96_fps", (320, 96), world.SUBURBAN),
                                ("render_640x192_fps", (640, 192), world.SUBURBAN),
                                ("render_city_512x256_fps", (512, 256), world.CITY)):
        seq = world.make_sequence(1, 12.0, 10.0, world.Intrinsics.from_hfov(w, h, 80.0), style=style)
        results[name] = _fps(lambda i: render.render_view(seq, i), 40)
    rig = kitti.KittiRig.for_date(0, 416, 128)
    spec = kitti.DriveSpec(0, 1, 5, 60, 416, 128)
    seq = spec.sequence()
    results["lidar_sweeps_per_s"] = _fps(lambda i: render.lidar_scan(seq, i, rig.velo_to_rect), 20)
    results["kitti_frame_stereo_lidar_416x128_fps"] = _fps(
        lambda i: (render.render_view(seq, i), render.render_view(seq, i, offset=(0.54, 0, 0)),
                   render.lidar_scan(seq, i, rig.velo_to_rect)), 20)
    results["target_render_320x96_fps"] = 20.0
    return {k: round(float(v), 2) for k, v in results.items()}


if __name__ == "__main__":
    print(run())

"""The GPU check, as one script: training-step benchmarks (fp32 and AMP), then a short
paper-preset pretraining run on shards of the synthetic KITTI-style world, its encoder exported
into an S-mode fine-tune, and an Eigen evaluation of that fine-tune.

    python -m bench.gpu OUT_DIR            # on a CUDA machine; GEOPRE_GPU_SCALE=tiny for a CPU dry run

Every stage records its numbers (or its error) in OUT_DIR/gpu.json as it finishes, so a stage
that fails or a call that runs out of time still leaves the earlier results.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

TINY = os.environ.get("GEOPRE_GPU_SCALE") == "tiny"
SIZE = (128, 64) if TINY else (640, 192)  # paper III-D
DRIVES, FRAMES = (4, 8) if TINY else (8, 60)  # train, val and 2 test drives at least
PRETRAIN_STEPS = 4 if TINY else int(os.environ.get("GEOPRE_GPU_PRETRAIN_STEPS", 300))
FINETUNE_STEPS = 4 if TINY else int(os.environ.get("GEOPRE_GPU_FINETUNE_STEPS", 200))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                    "torch": torch.__version__, "scale": "tiny" if TINY else "paper", "stages": {}}

    def stage(name, fn):
        start = time.perf_counter()
        try:
            result = fn()
            report["stages"][name] = {"ok": True, "seconds": round(time.perf_counter() - start, 1), **(result or {})}
        except Exception as err:  # record and go on: later stages may still run
            report["stages"][name] = {"ok": False, "error": f"{type(err).__name__}: {err}",
                                      "trace": traceback.format_exc()[-2000:]}
        (out / "gpu.json").write_text(json.dumps(report, indent=2) + "\n")
        print(name, json.dumps(report["stages"][name])[:1500], flush=True)

    data, shards, run, tuned = out / "kitti", out / "shards", out / "pretrain", out / "finetune"

    def bench():
        from bench import train

        if TINY:
            return {"skipped": "tiny"}
        return train.run()

    def world():
        from geopre.synth import kitti

        return kitti.write_kitti(data, drives=DRIVES, test_drives=2, frames=FRAMES, width=SIZE[0], height=SIZE[1],
                                 seed=0, workers=min(8, os.cpu_count() or 1), save_depth=False,
                                 grey_cameras=False)["splits"]  # training reads the colour cameras only

    def shard():
        from geopre.shards.sources import SourceSpec
        from geopre.shards.write import WriteConfig, write_shards

        index = write_shards([SourceSpec("kitti", data)], WriteConfig(shards, maxcount=64, val_fraction=0.2, seed=0))
        return {"splits": {k: v.get("samples") for k, v in index.get("splits", {}).items()}}

    def pretrain():
        from geopre.train.pretrain import PretrainConfig, pretrain as run_pretrain

        summary = run_pretrain(PretrainConfig(
            shards=str(shards), out=run, size=SIZE, batch_size=2 if TINY else 20, max_steps=PRETRAIN_STEPS,
            workers=2 if TINY else 8, init="scratch", log_every=10, val_every=PRETRAIN_STEPS,
            visual_every=PRETRAIN_STEPS, checkpoint_every=PRETRAIN_STEPS,
            samples_per_epoch=None if TINY else 2000), echo=print)  # few long epochs: fewer loader restarts
        return summary

    def export():
        from geopre.train.export import export_encoder

        paths = export_encoder(run, out / "encoder.pth")
        return {"files": [str(p) for p in paths]}

    def finetune(run_dir: Path, init: str, amp: bool):
        import csv

        from geopre.train.finetune import FinetuneConfig, finetune as run_finetune

        summary = run_finetune(FinetuneConfig(
            data_root=data, run_dir=run_dir, mode="S", size=SIZE, batch_size=2 if TINY else 12,
            epochs=20, max_steps=FINETUNE_STEPS, init=init, workers=2 if TINY else 8, log_every=10, amp=amp))
        with (run_dir / "metrics.csv").open() as f:
            curve = [(int(float(r["step"])), round(float(r["val/abs_rel"]), 4)) for r in csv.DictReader(f)
                     if r.get("val/abs_rel")]
        return {"samples_per_s": summary.get("samples_per_s"), "steps": summary.get("steps"),
                "val_abs_rel_by_epoch": curve}

    def evaluate():
        from geopre.train.evaluate import EvaluateConfig, evaluate as run_evaluate

        result = run_evaluate(EvaluateConfig(model=tuned, data_root=data))
        return {k: result[k] for k in ("metrics", "images") if k in result}

    # Render before CUDA starts: the renderer's worker processes are forked.
    stages = {
        "synthetic_kitti": world, "shards": shard, "bench_train": bench, "pretrain": pretrain, "export": export,
        "finetune_S_from_export": lambda: finetune(tuned, str(out / "encoder.pth"), amp=True),
        "evaluate": evaluate,
        # S-mode depth learning with and without AMP, from scratch: isolates mixed precision.
        "finetune_S_scratch_amp": lambda: finetune(out / "ft_scratch_amp", "scratch", amp=True),
        "finetune_S_scratch_fp32": lambda: finetune(out / "ft_scratch_fp32", "scratch", amp=False),
    }
    wanted = os.environ.get("GEOPRE_GPU_STAGES")
    for name in (wanted.split(",") if wanted else stages):
        stage(name, stages[name])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "gpu-check"))

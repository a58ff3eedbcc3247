"""Evaluation throughput: frames/s of ``geopre evaluate`` (Eigen protocol) on a synthetic KITTI tree
against the bare depth-network forward on the same frames, in one run.

The ratio says how much of the evaluation is the network itself: the rest is reading and resizing
the test images, loading ground truth, median scaling, metrics and writing the results. The model
is an untrained M model at the paper's 640x192 (its weights do not change the speed); ground truth
is exported by a first, untimed evaluation, as a rerun reuses it.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

WIDTH, HEIGHT = 640, 192  # paper III-D: the fine-tuned models' size
DRIVES, TEST_DRIVES, FRAMES = 3, 1, 18  # ~16 Eigen test frames at KITTI-like 416x128 (train, val, test)
BATCH = 8  # EvaluateConfig's default


def run(out_dir) -> dict:
    from geopre.data import kitti as data
    from geopre.data.depth_dataset import load_image
    from geopre.synth import kitti
    from geopre.train.depth_model import DepthModel, ModelInfo, load_model, predict_disparity, save_model
    from geopre.train.evaluate import EvaluateConfig, evaluate

    out = Path(out_dir)
    kitti.write_kitti(out / "kitti", drives=DRIVES, test_drives=TEST_DRIVES, frames=FRAMES, seed=0,
                      grey_cameras=False)  # only the colour test frames are evaluated
    torch.manual_seed(0)
    info = ModelInfo(mode="M", width=WIDTH, height=HEIGHT)
    model_file = out / "model" / "model.safetensors"
    model_file.parent.mkdir()
    save_model(model_file, DepthModel(info.arch, info.scales, info.mode), info)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = EvaluateConfig(model_file, out / "kitti", out_dir=out / "eval", device=device, batch_size=BATCH)
    evaluate(config)  # exports the ground truth once; the timed run reuses it

    start = time.perf_counter()
    result = evaluate(config)
    evaluate_s = time.perf_counter() - start
    frames = result["images"]

    # The bare forward: the same frames, already decoded, resized and on the device.
    model, _ = load_model(model_file, device=config.device)
    tree = data.KittiRawTree(out / "kitti")
    paths = [tree.image_path(e.folder, e.frame_index, e.side)
             for e in data.read_split(out / "kitti" / "splits" / "eigen" / "test_files.txt")]
    images = torch.stack([load_image(p, (WIDTH, HEIGHT)) for p in paths]).to(config.device)
    batches = [images[k:k + BATCH] for k in range(0, len(images), BATCH)]
    predict_disparity(model.depth, batches[0], info)  # warm-up
    start = time.perf_counter()
    for batch in batches:
        predict_disparity(model.depth, batch, info)
    forward_s = time.perf_counter() - start
    evaluate_fps, forward_fps = frames / evaluate_s, len(images) / forward_s
    return {"frames": frames, "size": f"{WIDTH}x{HEIGHT}", "batch": BATCH, "device": str(config.device),
            "evaluate_fps": round(evaluate_fps, 2), "forward_fps": round(forward_fps, 2),
            "evaluate_vs_forward": round(evaluate_fps / forward_fps, 3)}


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(Path(tmp)))

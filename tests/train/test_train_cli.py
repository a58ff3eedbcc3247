"""`geopre pretrain|finetune|evaluate|predict` as a user meets them: bad input is one line and a non-zero exit."""

import json
import os
import shutil
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args,message", [
    (("finetune", "{kitti}", "--out", "RUN", "--mode", "X"), "'--mode': 'X' is not one of 'S', 'M', 'MS'"),
    (("finetune", "{kitti}", "--out", "RUN", "--size", "128x64", "--batch-size", "2", "--init", "imagenet"), "--init imagenet needs torchvision's"),
    (("finetune", "{kitti}", "--out", "RUN", "--size", "128x64", "--batch-size", "2", "--init", "notes.txt"),
     "notes.txt is a text file, not encoder weights; expected an encoder from `geopre export"),
    (("pretrain", "--shards", "SHARDS", "--out", "RUN", "--init", "notes.txt"),
     "notes.txt is a text file, not encoder weights; expected an encoder from `geopre export"),
    (("finetune", "{kitti}", "--out", "RUN", "--log-every", "0"), "'--log-every': 0 is not in the range x>=1"),
    (("finetune", "{kitti}", "--out", "RUN", "--workers", "-1"), "'--workers': -1 is not in the range x>=0"),
    (("finetune", "{kitti}", "--out", "RUN", "--max-steps", "0"), "'--max-steps': 0 is not in the range x>=1"),
    (("finetune", "{kitti}", "--out", "RUN", "--fraction", "0"), "'--fraction': 0.0 is not in the range 0<x<=1"),
    (("finetune", "{kitti}", "--out", "RUN", "--device", "cuda"), "PyTorch sees no CUDA GPU"),
    (("pretrain", "--shards", "SHARDS", "--out", "RUN", "--device", "cuda"), "PyTorch sees no CUDA GPU"),
    (("pretrain", "--shards", "SHARDS", "--out", "RUN", "--workers", "-2"), "'--workers': -2 is not in the range x>=0"),
    (("evaluate", "missing-run", "{kitti}"), "model not found"),
    (("evaluate", "{model}", "{kitti}", "--batch-size", "0"), "'--batch-size': 0 is not in the range x>=1"),
    (("evaluate", "{model}", "{kitti}", "--device", "cuda"), "PyTorch sees no CUDA GPU"),
    (("evaluate", "{model}", "{kitti}", "--device", "gpu"), "'gpu' is not a device"),
    (("evaluate", "last-only-run", "{kitti}", "--best"),
     "no best.safetensors inside (it holds only model.safetensors); drop --best"),
    (("evaluate", "{model}", "{kitti}", "--best"), "is a model file: drop --best"),
    (("predict", "{model}", "notes.txt", "--out", "OUT"), "unknown input type"),
    (("predict", "{model}", "{images}", "--out", "OUT", "--device", "cuda"), "PyTorch sees no CUDA GPU"),
    (("predict", "{model}", "{images}", "--out", "OUT", "--video-stride", "0"), "'--video-stride': 0 is not in"),
    (("predict", "last-only-run", "{images}", "--out", "OUT", "--best"), "no best.safetensors inside"),
    (("export", "pretrain-run", "--output", "notes.txt/encoder.pth"), "notes.txt is a file, not a folder"),
])
def test_bad_input_is_one_clear_line(synth_kitti_root, tiny_model_file, tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "last-only-run").mkdir()  # a run stopped by --max-steps: a last model, no best epoch yet
    shutil.copy(tiny_model_file, tmp_path / "last-only-run" / "model.safetensors")
    (tmp_path / "pretrain-run").mkdir()  # the output is checked before the checkpoint is read
    (tmp_path / "pretrain-run" / "config.json").write_text(json.dumps({"arch": "resnet18", "size": [64, 32]}))
    images = next(synth_kitti_root.glob("*/*_sync/image_02/data"))
    args = [a.format(kitti=synth_kitti_root, model=tiny_model_file, images=images) for a in args]
    # An empty torch hub folder, so --init imagenet finds no cached weights on any machine, and no
    # GPU visible, so --device cuda fails the same way on a GPU machine.
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "torch-home"), CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-m", "geopre.cli", *args], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_evaluate_prints_the_stereo_scale_and_its_source(real_calibration_root, dense_root, tiny_model_file, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "geopre.cli", "evaluate", str(tiny_model_file), str(real_calibration_root),
         "--gt-source", "dense", "--dense-root", str(dense_root), "--gt-file", str(tmp_path / "gt.npz"),
         "--no-median-scaling", "--out", str(tmp_path / "out"), "--device", "cpu"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # 2011_09_26: (44.85728 + 339.5242) / 721.5377 = 0.53273 m; / 0.1 = 5.3273
    assert "stereo scale 5.3273 = baseline / 0.1 from the calibration (2011_09_26 0.5327 m)" in result.stdout
    assert "--stereo-scale 5.4 reproduces monodepth2's tables" in result.stdout

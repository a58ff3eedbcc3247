"""`geopre pretrain|finetune|evaluate|predict` as a user meets them: bad input is one line and a non-zero exit."""

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args,message", [
    (("finetune", "{kitti}", "RUN", "--mode", "X"), "--mode must be S, M or MS"),
    (("finetune", "{kitti}", "RUN", "--size", "128x64", "--batch-size", "2", "--init", "imagenet"), "--init imagenet needs torchvision's"),
    (("finetune", "{kitti}", "RUN", "--size", "128x64", "--batch-size", "2", "--init", "notes.txt"),
     "notes.txt is a text file, not encoder weights; expected an encoder from `geopre export"),
    (("pretrain", "--shards", "SHARDS", "--out", "RUN", "--init", "notes.txt"),
     "notes.txt is a text file, not encoder weights; expected an encoder from `geopre export"),
    (("evaluate", "missing-run", "{kitti}"), "model not found"),
    (("predict", "{model}", "notes.txt", "--out", "OUT"), "unknown input type"),
])
def test_bad_input_is_one_clear_line(synth_kitti_root, tiny_model_file, tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("not an image")
    args = [a.format(kitti=synth_kitti_root, model=tiny_model_file) for a in args]
    # An empty torch hub folder, so --init imagenet finds no cached weights on any machine.
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "torch-home"))
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

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

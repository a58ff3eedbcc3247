import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from geopre.errors import UserError
from geopre.model.init import imagenet_weights_path, initialise_encoders
from geopre.model.resnet import ResnetEncoder
from geopre.shards.write import write_tar
from geopre.train.checkpoint import Checkpointer


def test_imagenet_without_a_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(UserError, match=r"resnet18-f37072fd\.pth to .*checkpoints"):
        imagenet_weights_path("resnet18")


def test_cached_torchvision_file_initialises_both_encoders(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    reference = torchvision.models.resnet18()
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    single, pair = ResnetEncoder("resnet18"), ResnetEncoder("resnet18", num_input_images=2)
    assert initialise_encoders([single, pair], "imagenet").startswith("imagenet")
    assert torch.equal(single.state_dict()["layer4.1.conv2.weight"], reference.state_dict()["layer4.1.conv2.weight"])
    torch.testing.assert_close(pair.state_dict()["conv1.weight"][:, 3:], reference.conv1.weight / 2)


def test_scratch_leaves_weights_and_bad_path_is_a_user_error(tmp_path):
    encoder = ResnetEncoder("resnet18")
    before = encoder.state_dict()["conv1.weight"].clone()
    assert initialise_encoders([encoder], "scratch") == "scratch"
    assert torch.equal(before, encoder.state_dict()["conv1.weight"])
    with pytest.raises(UserError, match="no such file"):
        initialise_encoders([encoder], str(tmp_path / "missing.pth"))


def test_auto_takes_imagenet_only_when_its_file_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    encoder = ResnetEncoder("resnet18")
    assert initialise_encoders([encoder], "auto") == "scratch"
    (tmp_path / "checkpoints").mkdir()
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    assert initialise_encoders([encoder], "auto").startswith("imagenet")


def _run_with_a_checkpoint(run: Path) -> Path:
    """A real training run folder as pretrain/finetune leave it, with one checkpoint."""
    model = torch.nn.Linear(2, 2)
    return Checkpointer(run).save(1, 0, model, torch.optim.Adam(model.parameters()))


def _not_weights_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "notes.txt").write_text("encoder weights are in the other folder\n")
    (tmp_path / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    write_tar(tmp_path / "train-000000.tar", [("k.json", b"{}"), ("k.ref.jpg", b"\xff\xd8")])
    checkpoint = _run_with_a_checkpoint(tmp_path / "run")
    shutil.copy(checkpoint / "state.pt", tmp_path / "state.pt")  # a checkpoint's state, away from its run
    return {"text": tmp_path / "notes.txt", "random": tmp_path / "random.pth", "shard": tmp_path / "train-000000.tar",
            "run": tmp_path / "run", "checkpoint": checkpoint, "state": checkpoint / "state.pt",
            "weights": checkpoint / "model.safetensors", "moved state": tmp_path / "state.pt"}


@pytest.mark.parametrize("kind, message", [
    ("text", "notes.txt is a text file, not encoder weights; expected an encoder from `geopre export"),
    ("random", "random.pth is no file torch.load reads ("),
    ("shard", "train-000000.tar is a tar archive (a shard?), not encoder weights; expected"),
    ("run", "is a training run folder, not an encoder: export a pretraining run's encoder with `geopre export"),
    ("checkpoint", "is a checkpoint folder, not an encoder: export"),
    ("state", "is a training checkpoint's state.pt, not an encoder: export"),
    ("weights", "is a training checkpoint's model.safetensors, not an encoder: export"),
    ("moved state", "state.pt is a PyTorch file of Python objects besides tensors (a training checkpoint's state.pt?)"),
])
def test_a_file_that_holds_no_encoder_weights_says_what_was_expected(tmp_path, kind, message):
    path = _not_weights_files(tmp_path)[kind]
    with pytest.raises(UserError) as raised:
        initialise_encoders([ResnetEncoder("resnet18")], str(path))
    text = str(raised.value)
    assert message in text and "\n" not in text and "weights_only" not in text, text
    assert "torchvision ResNet state dict" in text or "geopre export RUN --output encoder.pth" in text

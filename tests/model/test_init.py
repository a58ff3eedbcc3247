import pytest
import torch
import torchvision

from geopre.errors import UserError
from geopre.model.init import imagenet_weights_path, initialise_encoders
from geopre.model.resnet import ResnetEncoder


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

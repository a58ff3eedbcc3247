import pytest
import torch
import torchvision

from geopre.errors import UserError
from geopre.model.resnet import (
    ResnetEncoder,
    load_encoder_file,
    load_torchvision_state_dict,
    repeat_first_conv,
)


def torchvision_trunk(resnet, images):
    """The five feature maps computed directly with torchvision's modules."""
    x = resnet.relu(resnet.bn1(resnet.conv1(images)))
    features = [x]
    x = resnet.maxpool(x)
    for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
        x = layer(x)
        features.append(x)
    return features


def test_resnet18_features_shapes_and_channels():
    encoder = ResnetEncoder("resnet18")
    features = encoder(torch.rand(2, 3, 32, 64))
    assert encoder.num_ch_enc == (64, 64, 128, 256, 512)
    assert [tuple(f.shape[1:]) for f in features] == [
        (64, 16, 32), (64, 8, 16), (128, 4, 8), (256, 2, 4), (512, 1, 2)
    ]


def test_resnet50_channels():
    encoder = ResnetEncoder("resnet50").eval()  # eval: batch norm over a 1x1 map needs running stats
    with torch.no_grad():
        features = encoder(torch.rand(1, 3, 32, 32))
    assert encoder.num_ch_enc == (64, 256, 512, 1024, 2048)
    assert [f.shape[1] for f in features] == list(encoder.num_ch_enc)


def test_encoder_state_dict_is_torchvision_without_fc():
    torch.manual_seed(0)
    encoder = ResnetEncoder("resnet18")
    resnet = torchvision.models.resnet18(weights=None)
    state = encoder.state_dict()
    assert not any(key.startswith("fc.") for key in state)
    resnet.load_state_dict({**state, "fc.weight": resnet.fc.weight, "fc.bias": resnet.fc.bias}, strict=True)
    assert torch.equal(resnet.layer3[1].conv2.weight, encoder.layer3[1].conv2.weight)


def test_torchvision_weights_load_and_inputs_are_normalised_like_monodepth2():
    torch.manual_seed(1)
    resnet = torchvision.models.resnet18(weights=None).eval()
    encoder = ResnetEncoder("resnet18").eval()
    load_torchvision_state_dict(encoder, resnet.state_dict())  # includes fc.*, which is ignored
    images = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        ours = encoder(images)
        theirs = torchvision_trunk(resnet, (images - 0.45) / 0.225)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-5)


def test_repeat_first_conv_repeats_and_divides_by_image_count():
    weight = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).view(2, 3, 1, 1)
    adapted = repeat_first_conv({"conv1.weight": weight, "bn1.weight": torch.ones(2)}, 2)
    assert adapted["conv1.weight"].shape == (2, 6, 1, 1)
    assert torch.equal(adapted["conv1.weight"][:, :3], weight / 2)
    assert torch.equal(adapted["conv1.weight"][:, 3:], weight / 2)
    assert torch.equal(adapted["bn1.weight"], torch.ones(2))


def test_two_image_encoder_on_identical_frames_matches_single_image_conv1():
    torch.manual_seed(2)
    single = ResnetEncoder("resnet18")
    pair = ResnetEncoder("resnet18", num_input_images=2)
    assert pair.conv1.in_channels == 6
    load_torchvision_state_dict(pair, single.state_dict())
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(pair.conv1(torch.cat([image, image], 1)), single.conv1(image), atol=1e-5)


def test_monodepth2_encoder_file_loads(tmp_path):
    torch.manual_seed(3)
    resnet = torchvision.models.resnet18(weights=None)
    saved = {f"encoder.{key}": value for key, value in resnet.state_dict().items()}
    saved.update(height=192, width=640, use_stereo=False)
    path = tmp_path / "encoder.pth"
    torch.save(saved, path)
    encoder = ResnetEncoder("resnet18")
    load_encoder_file(encoder, path)
    assert torch.equal(encoder.conv1.weight, resnet.conv1.weight)
    assert torch.equal(encoder.layer4[1].bn2.running_var, resnet.layer4[1].bn2.running_var)


def test_plain_torchvision_file_loads(tmp_path):
    resnet = torchvision.models.resnet34(weights=None)
    path = tmp_path / "resnet34.pth"
    torch.save(resnet.state_dict(), path)
    encoder = ResnetEncoder("resnet34")
    load_encoder_file(encoder, path)
    assert torch.equal(encoder.layer2[0].downsample[0].weight, resnet.layer2[0].downsample[0].weight)


def test_wrong_architecture_file_is_a_one_line_user_error_naming_the_file(tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(UserError) as raised:
        load_encoder_file(ResnetEncoder("resnet18"), path)
    message = str(raised.value)
    assert str(path) in message and "unexpected" in message and "\n" not in message


def test_unreadable_file_is_a_user_error(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="garbage.pth"):
        load_encoder_file(ResnetEncoder("resnet18"), path)


def test_image_size_must_be_a_multiple_of_32():
    with pytest.raises(UserError, match="multiple of 32"):
        ResnetEncoder("resnet18")(torch.rand(1, 3, 40, 64))


def test_unknown_architecture_is_a_user_error():
    with pytest.raises(UserError, match="resnet101"):
        ResnetEncoder("resnet101")

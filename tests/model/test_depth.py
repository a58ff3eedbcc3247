import pytest
import torch

from geopre.errors import UserError
from geopre.model.depth import DepthDecoder, DepthNet, PoseDecoder, PoseNet, depth_to_disp, disp_to_depth
from geopre.model.flow import GeometricPretrainNet
from geopre.model.geometry import pose_vec_to_matrix


def test_depth_net_outputs_four_sigmoid_disparity_scales():
    disps = DepthNet()(torch.rand(2, 3, 32, 64))
    assert sorted(disps) == [0, 1, 2, 3]
    for scale, disp in disps.items():
        assert disp.shape == (2, 1, 32 >> scale, 64 >> scale)
        assert disp.min() > 0 and disp.max() < 1


def test_depth_decoder_has_monodepth2_widths_and_one_head_per_scale():
    decoder = DepthDecoder((64, 64, 128, 256, 512), scales=2)
    assert decoder.trunk.decoder_channels == (16, 32, 64, 128, 256)
    assert [head.conv.in_channels for head in decoder.heads] == [16, 32]
    assert all(head.conv.out_channels == 1 for head in decoder.heads)


def test_pretrained_structure_encoder_loads_into_the_depth_net():
    pretrained = GeometricPretrainNet().structure_encoder
    depth_net = DepthNet()
    depth_net.encoder.load_state_dict(pretrained.state_dict(), strict=True)
    assert torch.equal(depth_net.encoder.layer4[0].conv1.weight, pretrained.layer4[0].conv1.weight)


def test_pose_decoder_outputs_scaled_axis_angle_and_translation():
    torch.manual_seed(0)
    decoder = PoseDecoder(512)
    deepest = torch.rand(2, 512, 1, 2)
    axis_angle, translation = decoder(deepest)
    assert axis_angle.shape == (2, 3) and translation.shape == (2, 3)
    with torch.no_grad():
        x = torch.relu(decoder.squeeze(deepest))
        x = torch.relu(decoder.conv2(torch.relu(decoder.conv1(x))))
        raw = decoder.out(x).mean(dim=(2, 3))
    assert torch.allclose(torch.cat([axis_angle, translation], dim=1), 0.01 * raw, atol=1e-7)


def test_start_moving_makes_an_untrained_pose_decoder_predict_forward_motion():
    torch.manual_seed(0)
    decoder = PoseDecoder(512)
    decoder.start_moving(1.5)
    with torch.no_grad():
        axis_angle, translation = decoder(torch.rand(2, 512, 2, 6))
    # The random weights add ~1e-3 around the bias; the rotation keeps its small random start.
    assert torch.allclose(translation, torch.tensor([0.0, 0.0, -1.5]).expand(2, 3), atol=5e-3)
    assert axis_angle.abs().max() < 5e-3
    # As a transform from the first camera to the second: a point 10 m ahead is 8.5 m ahead after.
    point = pose_vec_to_matrix(axis_angle, translation) @ torch.tensor([0.0, 0.0, 10.0, 1.0])
    assert point[:, 2] == pytest.approx([8.5, 8.5], abs=0.02)
    with pytest.raises(UserError):
        decoder.start_moving(0.0)


def test_pose_net_takes_a_frame_pair():
    net = PoseNet()
    assert net.encoder.conv1.in_channels == 6
    axis_angle, translation = net(torch.rand(2, 3, 32, 64), torch.rand(2, 3, 32, 64))
    assert axis_angle.shape == (2, 3) and translation.shape == (2, 3)


def test_disp_to_depth_maps_the_sigmoid_onto_the_depth_range():
    disp = torch.tensor([0.0, 0.5, 1.0])
    scaled, depth = disp_to_depth(disp, min_depth=0.1, max_depth=100.0)
    assert scaled.tolist() == pytest.approx([0.01, 0.01 + 0.5 * 9.99, 10.0])
    assert depth.tolist() == pytest.approx([100.0, 1 / (0.01 + 0.5 * 9.99), 0.1])


def test_depth_to_disp_inverts_disp_to_depth_and_rejects_depths_outside_the_range():
    disp = depth_to_disp(10.0)
    assert disp == pytest.approx((0.1 - 0.01) / (10.0 - 0.01))  # (1/10 - 1/100) / (1/0.1 - 1/100)
    assert disp_to_depth(torch.tensor(disp))[1].item() == pytest.approx(10.0)
    with pytest.raises(UserError):
        depth_to_disp(200.0)


def test_start_at_makes_an_untrained_decoder_predict_the_given_depth():
    net = DepthNet("resnet18", scales=4)
    net.decoder.start_at(depth_to_disp(10.0))
    for head in net.decoder.heads:  # only the biases speak: the output is exactly sigmoid(bias)
        torch.nn.init.zeros_(head.conv.weight)
    with torch.no_grad():
        disps = net(torch.rand(1, 3, 64, 128))
    for disp in disps.values():
        assert torch.allclose(disp_to_depth(disp)[1], torch.tensor(10.0), rtol=1e-4)
    with pytest.raises(UserError):
        net.decoder.start_at(1.0)

import torch
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck

from geopre.model.flow import FlowDecoder, GeometricPretrainNet, MotionEncoder
from geopre.model.geometry import upsample_flow
from geopre.model.losses import pretrain_loss


def textured_pair(shift, height=32, width=64, seed=0):
    """Smooth random texture and a copy whose content moved ``shift`` px right.

    Blurred so that the photometric error still points towards the right flow a few pixels away.
    """
    margin = 8
    canvas = torch.rand(1, 3, height + 2 * margin, width + 2 * margin, generator=torch.Generator().manual_seed(seed))
    for _ in range(2):
        canvas = F.avg_pool2d(F.pad(canvas, (1, 1, 1, 1), mode="replicate"), kernel_size=3, stride=1)
    canvas = (canvas - canvas.min()) / (canvas.max() - canvas.min())
    rows = slice(margin, margin + height)
    frame_t = canvas[..., rows, margin:margin + width]
    frame_next = canvas[..., rows, margin - shift:margin - shift + width]  # next(x + shift) = t(x)
    return frame_t, frame_next


def test_default_network_has_resnet18_encoders_and_a_128_number_motion_vector():
    net = GeometricPretrainNet()
    for encoder in (net.structure_encoder, net.motion_encoder.encoder):  # paper III-A-1 and III-A-2
        blocks = [module for module in encoder.modules() if isinstance(module, (BasicBlock, Bottleneck))]
        assert len(blocks) == 8 and all(isinstance(block, BasicBlock) for block in blocks)  # 2 per stage
    assert net.motion_encoder.encoder.conv1.in_channels == 6  # frames t and t+1 stacked
    assert net.motion_encoder(torch.rand(1, 3, 32, 64), torch.rand(1, 3, 32, 64)).shape == (1, 128)


def test_flows_per_scale_with_the_finest_at_input_resolution():
    net = GeometricPretrainNet()
    flows = net(torch.rand(2, 3, 32, 96), torch.rand(2, 3, 32, 96))
    assert sorted(flows) == [0, 1, 2, 3]
    for scale, flow in flows.items():
        assert flow.shape == (2, 2, 32 >> scale, 96 >> scale)


def test_untrained_network_predicts_nearly_zero_flow():
    torch.manual_seed(0)
    flows = GeometricPretrainNet()(torch.rand(1, 3, 32, 64), torch.rand(1, 3, 32, 64))
    assert flows[0].abs().max() < 0.5


def test_flow_decoder_has_exactly_14_conv_layers():
    decoder = GeometricPretrainNet().flow_decoder
    assert sum(isinstance(module, torch.nn.Conv2d) for module in decoder.modules()) == 14


def test_motion_encoder_outputs_the_configured_vector_size():
    encoder = MotionEncoder("resnet18", motion_dim=32)
    assert encoder.encoder.conv1.in_channels == 6
    assert encoder(torch.rand(2, 3, 32, 64), torch.rand(2, 3, 32, 64)).shape == (2, 32)


def test_finer_scales_refine_the_doubled_coarser_flow():
    torch.manual_seed(1)
    encoder_channels = (64, 64, 128, 256, 512)
    decoder = FlowDecoder(encoder_channels, motion_dim=8)
    with torch.no_grad():
        for head in decoder.heads[:3]:  # silence every correction but the coarsest
            head.conv.weight.zero_()
            head.conv.bias.zero_()
        decoder.heads[3].conv.bias.copy_(torch.tensor([0.5, -0.25]))
    features = [torch.rand(1, c, 32 >> (i + 1), 64 >> (i + 1)) for i, c in enumerate(encoder_channels)]
    flows = decoder(features, torch.rand(1, 8))
    for scale in range(3):
        assert torch.allclose(flows[scale], upsample_flow(flows[scale + 1], flows[scale].shape[-2:]), atol=1e-5)
    assert torch.allclose(flows[0].mean(dim=(0, 2, 3)), torch.tensor([4.0, -2.0]), atol=0.2)


def test_gradients_reach_both_encoders_and_the_decoder():
    torch.manual_seed(2)
    net = GeometricPretrainNet()
    frame_t, frame_next = textured_pair(shift=2)
    loss, _ = pretrain_loss(net(frame_t, frame_next), frame_t, frame_next)
    loss.backward()
    for parameter in (
        net.structure_encoder.conv1.weight,
        net.motion_encoder.encoder.conv1.weight,
        net.motion_encoder.bottleneck.weight,
        net.flow_decoder.trunk.reduce[4].conv.conv.weight,
        net.flow_decoder.trunk.fuse[0].conv.conv.weight,
        net.flow_decoder.heads[0].conv.weight,
    ):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_short_optimisation_learns_a_known_shift():
    torch.manual_seed(0)
    frame_t, frame_next = textured_pair(shift=3)
    net = GeometricPretrainNet()
    # The paper's learning rate (III-D); 1e-3 overshoots flows out of the image in the first steps.
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-4)
    first = None
    for _ in range(50):
        flows = net(frame_t, frame_next)
        loss, parts = pretrain_loss(flows, frame_t, frame_next)
        first = parts["photometric"].item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert parts["photometric"].item() < 0.5 * first
    mean_flow = flows[0].detach().mean(dim=(0, 2, 3))
    assert torch.cosine_similarity(mean_flow, torch.tensor([3.0, 0.0]), dim=0) > 0.95
    assert 2.0 < mean_flow[0] < 4.0


def test_several_sources_share_one_structure_pass_and_match_separate_calls():
    torch.manual_seed(0)
    net = GeometricPretrainNet().eval()
    ref, nxt, prev = (torch.rand(1, 3, 64, 96) for _ in range(3))
    with torch.no_grad():
        both = net(ref, [nxt, prev])
        separate = [net(ref, nxt), net(ref, prev)]
    for scale in both:
        torch.testing.assert_close(both[scale], torch.cat([separate[0][scale], separate[1][scale]]))

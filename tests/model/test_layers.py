import torch

from geopre.model.layers import Conv3x3, ConvBlock, SkipDecoderTrunk, upsample_nearest_x2


def test_conv3x3_reflection_padding_keeps_a_constant_image_constant():
    # With zero padding the border outputs would differ from the interior.
    torch.manual_seed(0)
    conv = Conv3x3(2, 3)
    out = conv(torch.full((1, 2, 5, 7), 0.7))
    assert out.shape == (1, 3, 5, 7)
    expected = 0.7 * conv.conv.weight.sum(dim=(1, 2, 3)) + conv.conv.bias
    assert torch.allclose(out, expected.view(1, 3, 1, 1).expand_as(out), atol=1e-6)


def test_conv3x3_accepts_a_one_pixel_high_map():
    out = Conv3x3(4, 2)(torch.rand(1, 4, 1, 2))
    assert out.shape == (1, 2, 1, 2)


def test_conv_block_applies_elu():
    block = ConvBlock(1, 1)
    with torch.no_grad():
        block.conv.conv.weight.zero_()
        block.conv.conv.bias.fill_(-1.0)
    out = block(torch.rand(1, 1, 3, 3))
    assert torch.allclose(out, torch.full_like(out, torch.expm1(torch.tensor(-1.0)).item()))


def test_upsample_nearest_x2_repeats_each_pixel():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = torch.tensor([[[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]]], dtype=torch.float32)
    assert torch.equal(upsample_nearest_x2(x), expected)


def test_trunk_levels_have_decoder_channels_at_halving_resolutions():
    encoder_channels = (4, 4, 8, 8, 16)
    height, width = 32, 64
    features = [torch.rand(1, c, height >> (i + 1), width >> (i + 1)) for i, c in enumerate(encoder_channels)]
    trunk = SkipDecoderTrunk(16 + 3, encoder_channels, decoder_channels=(2, 3, 4, 5, 6))
    bottom = torch.cat([features[-1], torch.rand(1, 3, 1, 2)], dim=1)
    levels = trunk(bottom, features)
    assert [tuple(level.shape) for level in levels] == [
        (1, 2, 32, 64), (1, 3, 16, 32), (1, 4, 8, 16), (1, 5, 4, 8), (1, 6, 2, 4)
    ]
    assert sum(isinstance(m, torch.nn.Conv2d) for m in trunk.modules()) == 10

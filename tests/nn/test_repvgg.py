"""RepVGG blocks fold losslessly into one 3x3 convolution."""

import pytest
import torch

from tiepoint.nn.repvgg import RepVGGBlock, RepVGGStage, reparameterize


def _trained_statistics(module: torch.nn.Module) -> None:
    """Non-trivial BatchNorm parameters and running statistics, as after training."""
    generator = torch.Generator().manual_seed(1)
    for norm in module.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            n = norm.num_features
            norm.weight.data = torch.rand(n, generator=generator) + 0.5
            norm.bias.data = torch.randn(n, generator=generator)
            norm.running_mean = torch.randn(n, generator=generator)
            norm.running_var = torch.rand(n, generator=generator) + 0.2


@pytest.mark.parametrize("in_channels, out_channels, stride", [(8, 8, 1), (4, 8, 1), (8, 16, 2)])
def test_block_reparameterization_is_lossless(in_channels, out_channels, stride):
    torch.manual_seed(0)
    block = RepVGGBlock(in_channels, out_channels, stride)
    assert (block.identity is not None) == (stride == 1 and in_channels == out_channels)
    _trained_statistics(block)
    block.eval()
    x = torch.randn(2, in_channels, 17, 23)
    before = block(x)
    block.reparameterize()
    assert block.conv3 is None and block.fused is not None
    after = block(x)
    assert after.shape == (2, out_channels, -(-17 // stride), -(-23 // stride))
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


def test_stage_reparameterization_is_lossless_and_idempotent():
    torch.manual_seed(0)
    stage = RepVGGStage(3, 16, blocks=3, stride=2)
    _trained_statistics(stage)
    stage.eval()
    x = torch.randn(1, 3, 32, 40)
    before = stage(x)
    reparameterize(stage)
    reparameterize(stage)  # a second fold changes nothing
    torch.testing.assert_close(stage(x), before, atol=1e-5, rtol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in stage.modules())

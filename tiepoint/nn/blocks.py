"""Small convolution blocks shared by the models."""

from __future__ import annotations

from torch import nn

__all__ = ["conv_bn_relu"]


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3×3 convolution (no bias, padding 1), batch norm, ReLU: ``(B, C_in, H, W) -> (B, C_out, H/stride, W/stride)``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )

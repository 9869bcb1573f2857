"""RepVGG blocks: several parallel branches for training, one 3x3 convolution for inference.

A :class:`RepVGGBlock` sums a 3x3 conv + BatchNorm, a 1x1 conv + BatchNorm and (when the input and output
shapes agree) an identity BatchNorm, then applies ReLU. Every branch is linear at inference time (BatchNorm
uses its running statistics), so the sum equals one 3x3 convolution with a bias:
:meth:`RepVGGBlock.reparameterize` computes it and replaces the branches, and :func:`reparameterize` does so
for every block of a model. The outputs before and after agree up to float rounding (Ding et al., "RepVGG",
CVPR 2021; Efficient LoFTR uses such a backbone).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RepVGGBlock", "RepVGGStage", "reparameterize"]


def _fold(weight: Tensor, norm: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The kernel and bias of ``norm(conv(x))`` for a bias-free convolution with ``weight``."""
    std = torch.sqrt(norm.running_var + norm.eps)
    scale = norm.weight / std
    return weight * scale.reshape(-1, 1, 1, 1), norm.bias - norm.running_mean * scale


class RepVGGBlock(nn.Module):
    """3x3 conv-BN + 1x1 conv-BN (+ identity-BN), summed, then ReLU.

    Args:
        in_channels, out_channels: ``C_in``, ``C_out``.
        stride: 1 or 2; the identity branch exists only for ``stride == 1`` and ``C_in == C_out``.

    Shapes:
        ``(B, C_in, H, W)`` -> ``(B, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.conv3 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm3 = nn.BatchNorm2d(out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.identity = nn.BatchNorm2d(out_channels) if stride == 1 and in_channels == out_channels else None
        self.fused: nn.Conv2d | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.fused is not None:
            return F.relu(self.fused(x))
        y = self.norm3(self.conv3(x)) + self.norm1(self.conv1(x))
        if self.identity is not None:
            y = y + self.identity(x)
        return F.relu(y)

    @torch.no_grad()
    def equivalent_kernel(self) -> tuple[Tensor, Tensor]:
        """The ``(C_out, C_in, 3, 3)`` kernel and ``(C_out,)`` bias equal to the three branches in eval
        mode."""
        kernel, bias = _fold(self.conv3.weight, self.norm3)
        kernel1, bias1 = _fold(self.conv1.weight, self.norm1)
        kernel = kernel + F.pad(kernel1, (1, 1, 1, 1))
        bias = bias + bias1
        if self.identity is not None:
            eye = torch.zeros_like(self.conv3.weight)
            eye[torch.arange(self.out_channels), torch.arange(self.in_channels), 1, 1] = 1.0
            kernel_id, bias_id = _fold(eye, self.identity)
            kernel, bias = kernel + kernel_id, bias + bias_id
        return kernel, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the branches by one 3x3 convolution (inference only: the BatchNorm statistics are
        frozen)."""
        if self.fused is not None:
            return
        kernel, bias = self.equivalent_kernel()
        fused = nn.Conv2d(self.in_channels, self.out_channels, 3, self.stride, 1, bias=True).to(kernel.device)
        fused.weight.copy_(kernel)
        fused.bias.copy_(bias)
        self.fused = fused
        for name in ("conv3", "norm3", "conv1", "norm1", "identity"):
            setattr(self, name, None)


class RepVGGStage(nn.Sequential):
    """``blocks`` RepVGG blocks; the first one changes the width and applies the stride.

    Shapes:
        ``(B, C_in, H, W)`` -> ``(B, C_out, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, blocks: int, stride: int) -> None:
        layers = [RepVGGBlock(in_channels, out_channels, stride)]
        layers += [RepVGGBlock(out_channels, out_channels, 1) for _ in range(blocks - 1)]
        super().__init__(*layers)


def reparameterize(model: nn.Module) -> nn.Module:
    """Fold every :class:`RepVGGBlock` of ``model`` into a single 3x3 convolution (in place); returns
    ``model``.

    The model should be in eval mode: training-mode BatchNorm depends on the batch, which no single
    convolution can reproduce.
    """
    for module in model.modules():
        if isinstance(module, RepVGGBlock):
            module.reparameterize()
    return model

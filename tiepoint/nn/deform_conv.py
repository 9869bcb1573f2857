"""Deformable convolution (v1, and v2 with a modulation mask) in plain PyTorch.

``torchvision.ops.deform_conv2d`` computes this in C++/CUDA; torchvision cannot be installed beside this
project's CPU torch, so this module gives the same operation built from ``grid_sample`` (bilinear sampling
at the offset positions) and one matrix product. Same arguments and layouts as torchvision's:

* ``offset``: ``(B, 2 * G * kh * kw, H_out, W_out)``; for offset group ``g`` and kernel tap ``k`` (row-major
  over ``kh x kw``), channel ``2 * (g * kh * kw + k)`` holds the ``y`` offset and the next one the ``x``
  offset, in input pixels.
* ``mask``: ``(B, G * kh * kw, H_out, W_out)``, multiplies each sample (DCNv2's modulation).
* The input channels are split into ``G`` offset groups that share offsets; ``weight`` may be grouped as in
  ``conv2d``.

Samples that fall outside the input read zeros, with bilinear weights on the pixels that exist (as in
torchvision). Gradients flow to the input, the offsets, the mask, the weight and the bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

__all__ = ["DeformConv2d", "deform_conv2d"]


def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """Deformable 2-D convolution.

    Args:
        input: ``(B, C_in, H, W)``.
        offset: ``(B, 2 * G * kh * kw, H_out, W_out)`` sampling offsets ``(dy, dx)`` per kernel tap, pixels.
        weight: ``(C_out, C_in / groups, kh, kw)``.
        bias: ``(C_out,)`` or ``None``.
        stride, padding, dilation: as in :func:`torch.nn.functional.conv2d`.
        mask: ``(B, G * kh * kw, H_out, W_out)`` modulation of each sample, or ``None`` (all ones).

    Returns:
        ``(B, C_out, H_out, W_out)``.
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    batch, channels, height, width = input.shape
    out_channels, group_channels, kh, kw = weight.shape
    taps = kh * kw
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if channels % group_channels or out_channels % (channels // group_channels):
        raise ValueError(f"weight {tuple(weight.shape)} does not fit {channels} input channels")
    groups = channels // group_channels
    if offset.shape[0] != batch or offset.shape[2:] != (out_h, out_w) or offset.shape[1] % (2 * taps):
        raise ValueError(
            f"offset must have shape ({batch}, 2 * G * {taps}, {out_h}, {out_w}), got {tuple(offset.shape)}"
        )
    offset_groups = offset.shape[1] // (2 * taps)
    if channels % offset_groups:
        raise ValueError(f"{channels} input channels cannot be split into {offset_groups} offset groups")
    if mask is not None and mask.shape != (batch, offset_groups * taps, out_h, out_w):
        raise ValueError(
            f"mask must have shape {(batch, offset_groups * taps, out_h, out_w)}, got {tuple(mask.shape)}"
        )

    # sampling positions (B, G, taps, H_out, W_out) in input pixels
    device, dtype = input.device, offset.dtype
    tap_y, tap_x = torch.meshgrid(
        torch.arange(kh, device=device, dtype=dtype) * dh,
        torch.arange(kw, device=device, dtype=dtype) * dw,
        indexing="ij",
    )
    base_y = torch.arange(out_h, device=device, dtype=dtype) * sh - ph
    base_x = torch.arange(out_w, device=device, dtype=dtype) * sw - pw
    offset = offset.view(batch, offset_groups, taps, 2, out_h, out_w)
    y = base_y.view(1, 1, 1, out_h, 1) + tap_y.reshape(1, 1, taps, 1, 1) + offset[:, :, :, 0]
    x = base_x.view(1, 1, 1, 1, out_w) + tap_x.reshape(1, 1, taps, 1, 1) + offset[:, :, :, 1]
    # grid_sample with align_corners=False: pixel centre i sits at (2 i + 1) / size - 1
    grid = torch.stack(((2 * x + 1) / width - 1, (2 * y + 1) / height - 1), dim=-1)
    grid = grid.view(batch * offset_groups, taps * out_h, out_w, 2).to(input.dtype)
    samples = F.grid_sample(
        input.reshape(batch * offset_groups, channels // offset_groups, height, width),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    ).view(batch, offset_groups, channels // offset_groups, taps, out_h, out_w)
    if mask is not None:
        samples = samples * mask.view(batch, offset_groups, 1, taps, out_h, out_w).to(samples.dtype)
    # columns (B, groups, C_in/groups * taps, L) times weight (groups, C_out/groups, C_in/groups * taps)
    columns = samples.reshape(batch, groups, group_channels * taps, out_h * out_w)
    kernel = weight.reshape(groups, out_channels // groups, group_channels * taps)
    out = torch.matmul(kernel, columns).reshape(batch, out_channels, out_h, out_w)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class DeformConv2d(nn.Module):
    """A deformable convolution layer whose offsets (and optionally mask) the caller supplies.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as in ``nn.Conv2d``.

    Call it as ``layer(input, offset, mask=None)``; shapes as in :func:`deform_conv2d`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, input: Tensor, offset: Tensor, mask: Tensor | None = None) -> Tensor:
        return deform_conv2d(
            input, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask
        )

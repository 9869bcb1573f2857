"""Pure-PyTorch deformable convolution against conv2d (zero offsets) and a per-pixel loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tiepoint.nn.deform_conv import DeformConv2d, deform_conv2d


def _bilinear(image: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """torchvision's rule: zero beyond one pixel outside; the pixels that exist weighted bilinearly."""
    channels, height, width = image.shape
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return torch.zeros(channels, dtype=image.dtype)
    y0, x0 = math.floor(y), math.floor(x)
    value = torch.zeros(channels, dtype=image.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                value += wy * wx * image[:, yy, xx]
    return value


def _naive(input, offset, weight, bias, stride, padding, dilation, mask, groups=1):
    batch, channels, _height, _width = input.shape
    out_channels, group_channels, kh, kw = weight.shape
    out_h, out_w = offset.shape[2:]
    offset_groups = offset.shape[1] // (2 * kh * kw)
    per_offset_group = channels // offset_groups
    out = torch.zeros(batch, out_channels, out_h, out_w, dtype=input.dtype)
    for b in range(batch):
        for i in range(out_h):
            for j in range(out_w):
                column = torch.zeros(channels, kh, kw, dtype=input.dtype)
                for g in range(offset_groups):
                    for ki in range(kh):
                        for kj in range(kw):
                            k = ki * kw + kj
                            dy = offset[b, 2 * (g * kh * kw + k), i, j].item()
                            dx = offset[b, 2 * (g * kh * kw + k) + 1, i, j].item()
                            y = i * stride - padding + ki * dilation + dy
                            x = j * stride - padding + kj * dilation + dx
                            part = slice(g * per_offset_group, (g + 1) * per_offset_group)
                            value = _bilinear(input[b, part], y, x)
                            if mask is not None:
                                value = value * mask[b, g * kh * kw + k, i, j]
                            column[part, ki, kj] = value
                for o in range(out_channels):
                    group = o // (out_channels // groups)
                    part = slice(group * group_channels, (group + 1) * group_channels)
                    out[b, o, i, j] = (weight[o] * column[part]).sum() + (0 if bias is None else bias[o])
    return out


@pytest.mark.parametrize(
    "stride, padding, dilation, groups",
    [(1, 1, 1, 1), (2, 0, 1, 1), (1, 2, 2, 1), (1, 1, 1, 2)],
)
def test_zero_offsets_equal_conv2d(stride, padding, dilation, groups):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 11, 9, dtype=torch.float64)
    weight = torch.randn(6, 4 // groups, 3, 3, dtype=torch.float64)
    bias = torch.randn(6, dtype=torch.float64)
    expected = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    offset = torch.zeros(2, 18, *expected.shape[2:], dtype=torch.float64)
    got = deform_conv2d(x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "with_mask, offset_groups, groups", [(False, 1, 1), (True, 1, 1), (True, 2, 1), (False, 2, 2)]
)
def test_random_offsets_equal_a_per_pixel_loop(with_mask, offset_groups, groups):
    torch.manual_seed(1)
    x = torch.randn(1, 4, 6, 5, dtype=torch.float64)
    weight = (
        torch.randn(3 * groups, 4 // groups, 3, 3, dtype=torch.float64)
        if groups > 1
        else torch.randn(3, 4, 3, 3, dtype=torch.float64)
    )
    bias = torch.randn(weight.shape[0], dtype=torch.float64)
    offset = (
        torch.randn(1, 2 * offset_groups * 9, 6, 5, dtype=torch.float64) * 2.5
    )  # many samples fall outside
    mask = torch.rand(1, offset_groups * 9, 6, 5, dtype=torch.float64) if with_mask else None
    got = deform_conv2d(x, offset, weight, bias, stride=1, padding=1, dilation=1, mask=mask)
    expected = _naive(x, offset, weight, bias, 1, 1, 1, mask, groups=groups)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_stride_and_integer_shift():
    """An offset of exactly one pixel to the right equals a conv of the input shifted left by one (away from
    the left border, where the deformable taps read the image instead of the padding)."""
    torch.manual_seed(2)
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    offset = torch.zeros(1, 18, 4, 4, dtype=torch.float64)
    offset[:, 1::2] = 1.0
    got = deform_conv2d(x, offset, weight, stride=2, padding=1)
    shifted = torch.cat([x[..., 1:], torch.zeros_like(x[..., :1])], dim=-1)
    torch.testing.assert_close(got[..., 1:], F.conv2d(shifted, weight, stride=2, padding=1)[..., 1:])


def test_gradients_reach_input_offsets_mask_and_weights():
    torch.manual_seed(3)
    layer = DeformConv2d(2, 2, 3, padding=1).double()
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    offset = (torch.randn(1, 18, 3, 3, dtype=torch.float64) * 0.7).requires_grad_()
    mask = torch.rand(1, 9, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, o, m: layer(a, o, m), (x, offset, mask), atol=1e-6)
    layer(x, offset, mask).sum().backward()
    assert layer.weight.grad is not None and layer.bias.grad is not None


def test_bad_shapes_are_named():
    x = torch.randn(1, 4, 6, 6)
    weight = torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match="offset"):
        deform_conv2d(x, torch.zeros(1, 17, 6, 6), weight, padding=1)
    with pytest.raises(ValueError, match="mask"):
        deform_conv2d(x, torch.zeros(1, 18, 6, 6), weight, padding=1, mask=torch.ones(1, 8, 6, 6))
    with pytest.raises(ValueError, match="weight"):
        deform_conv2d(x, torch.zeros(1, 18, 6, 6), torch.randn(2, 3, 3, 3), padding=1)

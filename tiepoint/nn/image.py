"""Images as the networks take them: one grayscale channel in [0, 1].

The models (CLIDD, RaCo, the ranker, Efficient LoFTR) are grayscale. Each accepts RGB batches too and converts
them with :func:`gray`; extractors turn a validated uint8 array into a network input with :func:`gray_input`.

:func:`local_contrast` finds flat patches, where the image holds nothing to localise: a network still places
keypoints and matches there (on a blank image, everywhere), from its biases and from context, not from the
image. The detectors and Efficient LoFTR leave out patches whose contrast is below :data:`MIN_CONTRAST`, as
SIFT's contrast threshold leaves out weak extrema.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..io.image import to_gray

__all__ = ["LUMA", "MIN_CONTRAST", "box_sum", "gray", "gray_input", "local_contrast"]

LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G and B (the same as OpenCV's RGB to gray)."""

MIN_CONTRAST = 1.0 / 255
"""Default floor on :func:`local_contrast` (images in [0, 1]): a patch whose intensities vary by less than one
grey level of an 8-bit image (standard deviation) is flat."""


def gray(image: Tensor) -> Tensor:
    """``(B, 1, H, W)`` or ``(B, 3, H, W)`` RGB -> ``(B, 1, H, W)`` luma (a 1-channel input is returned as
    is)."""
    if image.shape[1] == 1:
        return image
    weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device).reshape(1, 3, 1, 1)
    return (image * weights).sum(1, keepdim=True)


def gray_input(image: np.ndarray, device: str | torch.device = "cpu") -> Tensor:
    """An ``(H, W[, 3])`` uint8 image -> a ``(1, 1, H, W)`` float32 tensor in [0, 1] on ``device``."""
    return torch.from_numpy(to_gray(image)).to(device, torch.float32)[None, None] / 255.0


def box_sum(x: Tensor, size: int) -> Tensor:
    """Sums over the ``size x size`` window centred on each pixel (``size`` odd; zeros beyond the border).

    Args:
        x: ``(B, C, H, W)``.

    Returns:
        ``(B, C, H, W)``. Computed separably with shifted additions, in place: ``avg_pool2d`` with stride 1 is
        several times slower on a CPU (the same reason as :func:`~tiepoint.nn.detection.local_maximum`).
    """
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():  # in-place slices do not export
        return F.avg_pool2d(x, size, 1, size // 2, count_include_pad=True) * (size * size)
    rows = x.clone()
    for shift in range(1, size // 2 + 1):  # add the neighbours `shift` pixels to the left and to the right
        rows[..., shift:].add_(x[..., :-shift])
        rows[..., :-shift].add_(x[..., shift:])
    total = rows.clone()
    for shift in range(1, size // 2 + 1):  # then those above and below
        total[..., shift:, :].add_(rows[..., :-shift, :])
        total[..., :-shift, :].add_(rows[..., shift:, :])
    return total


def local_contrast(image: Tensor, size: int, stride: int = 1) -> Tensor:
    """Standard deviation of the intensity over square windows.

    Args:
        image: ``(B, 1, H, W)``.
        size: the window side in pixels.
        stride: 1 for a window centred on every pixel (``size`` odd; windows are cut at the border), or
            ``size`` for non-overlapping cells (``H`` and ``W`` multiples of ``size``).

    Returns:
        ``(B, 1, H, W)`` for ``stride`` 1, ``(B, 1, H / size, W / size)`` for ``stride == size``.
    """
    if stride == 1 and size % 2 == 0:
        raise ValueError(f"a centred window needs an odd size, got {size}")
    if stride not in (1, size):
        raise ValueError(f"stride must be 1 or the window size {size}, got {stride}")
    image = image.float()
    image = image - image.mean((-2, -1), keepdim=True)  # less cancellation in E[x^2] - E[x]^2
    moments = torch.cat([image, image * image], 1)  # (B, 2, H, W)
    if stride == size:
        mean, mean_square = F.avg_pool2d(moments, size).unbind(1)
    else:
        height, width = image.shape[-2:]
        rows = box_sum(
            image.new_ones(1, 1, height, 1), size
        )  # pixels of each window inside the image, per axis
        columns = box_sum(image.new_ones(1, 1, 1, width), size)
        mean, mean_square = (box_sum(moments, size) / (rows * columns)).unbind(1)
    return (mean_square - mean * mean).clamp(min=0).sqrt()[:, None]

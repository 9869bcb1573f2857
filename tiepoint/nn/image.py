"""Images as the networks take them: one grayscale channel in [0, 1].

The models (CLIDD, RaCo, the ranker, Efficient LoFTR) are grayscale. Each accepts RGB batches too and converts
them with :func:`gray`; extractors turn a validated uint8 array into a network input with :func:`gray_input`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..io.image import to_gray

__all__ = ["LUMA", "gray", "gray_input"]

LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G and B (the same as OpenCV's RGB to gray)."""


def gray(image: Tensor) -> Tensor:
    """``(B, 1, H, W)`` or ``(B, 3, H, W)`` RGB -> ``(B, 1, H, W)`` luma (a 1-channel input is returned as is)."""
    if image.shape[1] == 1:
        return image
    weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device).reshape(1, 3, 1, 1)
    return (image * weights).sum(1, keepdim=True)


def gray_input(image: np.ndarray, device: str | torch.device = "cpu") -> Tensor:
    """An ``(H, W[, 3])`` uint8 image -> a ``(1, 1, H, W)`` float32 tensor in [0, 1] on ``device``."""
    return torch.from_numpy(to_gray(image)).to(device, torch.float32)[None, None] / 255.0

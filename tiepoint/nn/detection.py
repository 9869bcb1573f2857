"""Keypoints from a dense score map: non-maximum suppression, top-k and sub-pixel refinement.

Shared by the learned detectors. Everything is plain tensor arithmetic (no ``max_pool2d`` with stride 1,
which is slow on CPU), so it exports to ONNX as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .image import MIN_CONTRAST, gray, local_contrast

__all__ = ["CONTRAST_WINDOW", "detect_keypoints", "detect_textured", "local_maximum", "textured"]

CONTRAST_WINDOW = 9
"""Side of the window around a pixel whose contrast decides whether a keypoint may lie there (see
:func:`textured`)."""


def local_maximum(scores: Tensor, radius: int) -> Tensor:
    """The maximum over the ``(2r+1) x (2r+1)`` window around each pixel.

    Args:
        scores: ``(B, 1, H, W)``.
        radius: ``r``.

    Returns:
        ``(B, 1, H, W)``; equal to ``max_pool2d(scores, 2r+1, stride=1, padding=r)``, computed separably
        with shifted maxima.
    """
    height, width = scores.shape[-2:]
    padded = F.pad(scores, (radius, radius, 0, 0), value=float("-inf"))
    rows = padded[..., 0:width]
    for shift in range(1, 2 * radius + 1):
        rows = torch.maximum(rows, padded[..., shift : shift + width])
    padded = F.pad(rows, (0, 0, radius, radius), value=float("-inf"))
    result = padded[..., 0:height, :]
    for shift in range(1, 2 * radius + 1):
        result = torch.maximum(result, padded[..., shift : shift + height, :])
    return result


def textured(image: Tensor, min_contrast: float = MIN_CONTRAST) -> Tensor | None:
    """Where a keypoint may lie: pixels whose :data:`CONTRAST_WINDOW` window is not flat.

    Args:
        image: ``(B, 1 or 3, H, W)`` in [0, 1].
        min_contrast: the least standard deviation of the window's intensities (see
            :func:`~tiepoint.nn.image.local_contrast`); 0 allows every pixel.

    Returns:
        ``(B, 1, H, W)`` bool, or ``None`` when ``min_contrast`` is 0.
    """
    if min_contrast <= 0:
        return None
    return local_contrast(gray(image), CONTRAST_WINDOW) >= min_contrast


def detect_keypoints(
    logits: Tensor,
    max_keypoints: int,
    nms_radius: int = 2,
    border: int = 4,
    threshold: float | None = None,
    allowed: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Keypoints from detection logits.

    Args:
        logits: ``(B, 1, H, W)`` detection logits (higher is more likely a keypoint).
        max_keypoints: ``K``, keypoints per image.
        nms_radius: a keypoint is the maximum of its ``(2r+1)^2`` neighbourhood.
        border: keypoints closer than this many pixels to the image border are dropped.
        threshold: optional minimum score (sigmoid of the logit).
        allowed: optional ``(B, 1, H, W)`` bool, False where no keypoint may lie (see :func:`textured`).

    Returns:
        keypoints: ``(B, K', 2)`` sub-pixel positions ``(x, y)`` (soft-argmax of the logits in the 3x3
        window around each maximum), ``K' <= K``; the same ``K'`` for the whole batch (the image with the
        fewest candidates decides it).
        scores: ``(B, K')`` sigmoid scores in decreasing order.
    """
    batch, _, _, width = logits.shape
    candidates = torch.where(logits == local_maximum(logits, nms_radius), logits, float("-inf"))
    if border > 0:
        candidates = F.pad(
            candidates[..., border:-border, border:-border], (border,) * 4, value=float("-inf")
        )
    if threshold is not None:
        candidates = candidates.masked_fill(torch.sigmoid(logits) < threshold, float("-inf"))
    if allowed is not None:
        candidates = candidates.masked_fill(~allowed, float("-inf"))
    flat = candidates.flatten(1)
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        count = max_keypoints  # a graph has a fixed K: the caller guarantees enough candidates
    else:
        count = min(max_keypoints, int(torch.isfinite(flat).sum(1).min()))
    values, index = flat.topk(count, dim=1)
    x, y = index % width, torch.div(index, width, rounding_mode="floor")

    padded = F.pad(logits, (1, 1, 1, 1), mode="replicate").flatten(1)
    steps = torch.tensor([-1, 0, 1], device=logits.device)
    dy, dx = (grid.flatten() for grid in torch.meshgrid(steps, steps, indexing="ij"))
    neighbours = (y[..., None] + 1 + dy) * (width + 2) + (x[..., None] + 1 + dx)
    weights = torch.softmax(torch.gather(padded, 1, neighbours.flatten(1)).view(batch, -1, 9), dim=-1)
    offsets = torch.stack([(weights * dx).sum(-1), (weights * dy).sum(-1)], dim=-1)
    keypoints = torch.stack([x, y], dim=-1).to(logits.dtype) + offsets
    return keypoints, torch.sigmoid(values)


def detect_textured(
    logits: Tensor,
    image: Tensor,
    max_keypoints: int,
    nms_radius: int = 2,
    threshold: float | None = None,
    min_contrast: float = MIN_CONTRAST,
) -> tuple[Tensor, Tensor]:
    """The detection of the learned detectors' ``forward``: :func:`detect_keypoints` on the textured pixels of
    ``image``.

    Args:
        logits: ``(B, 1, H, W)`` detection logits of ``image``.
        image: ``(B, 1 or 3, H, W)`` in [0, 1].
        max_keypoints: ``K``, keypoints per image.
        nms_radius, threshold: as in :func:`detect_keypoints`.
        min_contrast: no keypoints in flat patches (see :func:`textured`); 0 allows them.

    Returns:
        keypoints ``(B, K', 2)`` and scores ``(B, K')``, as :func:`detect_keypoints` returns them.
    """
    allowed = textured(image, min_contrast)
    return detect_keypoints(logits, max_keypoints, nms_radius, threshold=threshold, allowed=allowed)

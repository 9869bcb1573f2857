"""Rotation search: match image 1 turned by several multiples of 90° and keep the turn that fits best.

Learned matchers are trained mostly on upright images and fail when one image is upside down or on its side
(LightGlue issues #18, #64, #126; XFeat #58). The fix their maintainers suggest is to try the four right-angle
turns of one image and keep the best result; :class:`RotationSearch` does that for any method.

* The turns are lossless (``np.rot90``), so keypoints map back exactly.
* Each turn's matches are scored by the inliers of a robust homography fit with a loose threshold
  (:data:`VERIFY_THRESHOLD`). The turn with the most inliers wins; ties go to the turn listed first. In a 3D
  scene the homography still gathers the matches of a dominant plane or of the distant background, while a
  wrong turn leaves only chance inliers. The raw match count would be no guide: mutual-nearest-neighbour
  matchers match about as many points at any turn. (On the Oxford and Middlebury temple pairs, with CLIDD
  S96, this rule picked the turn nearest the true rotation on every pair that any turn could solve.)
* For a sparse method the features of image 0 are extracted once. Image 1 is extracted once per turn.

The returned :class:`~tiepoint.types.Matches` are in the pixels of the original image 1, like every method's.
Their ``rotation1`` is the chosen turn (degrees counter-clockwise, as image 1 appears on screen).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np

from ..errors import EstimationError, OptionError
from ..geometry.estimate import estimate
from ..io.image import ImageLike, as_image, image_size
from ..types import Features, Matches, Size
from .base import PairMatcher, SparseMethod

RIGHT_ANGLES = (0, 90, 180, 270)
VERIFY_THRESHOLD = 8.0
"""Inlier threshold (pixels) of the homography fit that scores each turn."""
VERIFY_ITERATIONS = 10_000
"""RANSAC iterations at most for that fit (enough to rank the turns; about 10 ms each)."""


def check_rotations(rotations: Sequence[int]) -> tuple[int, ...]:
    """``rotations`` as a tuple of distinct angles from :data:`RIGHT_ANGLES` (an error names the option)."""
    try:
        angles = tuple(rotations)
    except TypeError:
        angles = ()
    if not angles or any(angle not in RIGHT_ANGLES for angle in angles):
        raise OptionError(f"rotations must list angles from {RIGHT_ANGLES} (degrees), got {rotations!r}")
    if len(set(angles)) != len(angles):
        raise OptionError(f"rotations lists an angle twice: {rotations!r}")
    return tuple(int(angle) for angle in angles)


def rotate_image(image: np.ndarray, angle: int) -> np.ndarray:
    """``image`` ``(H, W[, C])`` turned counter-clockwise (as seen on screen) by ``angle`` in :data:`RIGHT_ANGLES`."""
    return np.ascontiguousarray(np.rot90(image, angle // 90))


def _turn_back(angle: int, size: Size) -> tuple[np.ndarray, np.ndarray]:
    """The affine map ``x = A x' + b`` from pixels of the image turned by ``angle`` to pixels of the original
    of ``size`` ``(width, height)`` (pixel centres at integers)."""
    width, height = size
    return {
        0: (np.eye(2), np.zeros(2)),
        90: (np.array([[0.0, -1.0], [1.0, 0.0]]), np.array([width - 1.0, 0.0])),
        180: (-np.eye(2), np.array([width - 1.0, height - 1.0])),
        270: (np.array([[0.0, 1.0], [-1.0, 0.0]]), np.array([0.0, height - 1.0])),
    }[angle]


def unrotate_points(points: np.ndarray, angle: int, size: Size) -> np.ndarray:
    """``(N, 2)`` pixels of the image turned by ``angle`` mapped to the original image of ``size`` ``(W, H)``."""
    A, b = _turn_back(angle, size)
    return (np.asarray(points, np.float64) @ A.T + b).astype(np.float32)


def unrotate_features(features: Features, angle: int, size: Size) -> Features:
    """Features of the image turned by ``angle``, with keypoints and covariances in the original image."""
    A, _ = _turn_back(angle, size)
    covariances = None if features.covariances is None else (A @ features.covariances @ A.T).astype(np.float32)
    return replace(features, keypoints=unrotate_points(features.keypoints, angle, size), image_size=size,
                   covariances=covariances)


def count_inliers(matches: Matches) -> int:
    """Inliers of a robust homography fit (0 when the matches are too few or degenerate)."""
    try:
        return estimate(matches, model="homography", threshold=VERIFY_THRESHOLD,
                        max_iterations=VERIFY_ITERATIONS).num_inliers
    except EstimationError:
        return 0


class RotationSearch(PairMatcher):
    """Any method, with image 1 tried at several right-angle turns (see the module docstring).

    Args:
        method: the method that matches each candidate pair.
        rotations: angles (degrees counter-clockwise) to try, from :data:`RIGHT_ANGLES`.
    """

    def __init__(self, method: PairMatcher, rotations: Sequence[int] = RIGHT_ANGLES) -> None:
        self.method = method
        self.rotations = check_rotations(rotations)
        self.name = method.name

    def _candidates(self, image0: np.ndarray, image1: np.ndarray) -> Iterator[tuple[int, Matches]]:
        """Each angle with the matches of image 0 and image 1 turned by it (in turned pixels)."""
        if isinstance(self.method, SparseMethod):
            start = time.perf_counter()
            features0 = self.method.extractor.extract(image0)
            extract0 = time.perf_counter() - start
            for angle in self.rotations:
                start = time.perf_counter()
                features1 = self.method.extractor.extract(rotate_image(image1, angle))
                extract1 = time.perf_counter() - start
                matches = self.method.match_features(features0, features1)
                matches.timings.update(extract0=extract0 if angle == self.rotations[0] else 0.0, extract1=extract1)
                yield angle, matches
        else:
            for angle in self.rotations:
                yield angle, self.method.match(image0, rotate_image(image1, angle))

    def match(self, image0: ImageLike, image1: ImageLike) -> Matches:
        """Match two images (paths, arrays or tensors); keypoints in original pixels, ``rotation1`` set."""
        array0, array1 = as_image(image0, "image0"), as_image(image1, "image1")
        size0, size1 = image_size(array0), image_size(array1)
        best, best_inliers, timings = None, -1, {}
        for angle, matches in self._candidates(array0, array1):
            start = time.perf_counter()
            matches = replace(
                matches,
                keypoints1=unrotate_points(matches.keypoints1, angle, size1),
                image_size0=size0,
                image_size1=size1,
                features1=None if matches.features1 is None else unrotate_features(matches.features1, angle, size1),
                rotation1=angle,
            )
            inliers = count_inliers(matches)
            for stage, seconds in matches.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            timings["verify"] = timings.get("verify", 0.0) + time.perf_counter() - start
            if inliers > best_inliers:
                best, best_inliers = matches, inliers
        best.timings = timings
        return best

    def __repr__(self) -> str:
        return f"RotationSearch({self.method!r}, rotations={self.rotations})"

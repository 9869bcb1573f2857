"""Right-angle turns of an image and the bookkeeping that maps keypoints and features of a turned image back.

Used by the view search (:mod:`tiepoint.matchers.search`), which matches image 1 at several turns. The turns
are lossless (``np.rot90``), so keypoints map back exactly. Angles are degrees counter-clockwise, as the image
appears on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..errors import OptionError
from ..types import Features, Size

RIGHT_ANGLES = (0, 90, 180, 270)


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
    """``image`` ``(H, W[, C])`` turned counter-clockwise (as seen on screen) by ``angle`` in
    :data:`RIGHT_ANGLES`."""
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
    """``(N, 2)`` pixels of the image turned by ``angle`` mapped to the original image of ``size``
    ``(W, H)``."""
    A, b = _turn_back(angle, size)
    return (np.asarray(points, np.float64) @ A.T + b).astype(np.float32)


def unrotate_features(features: Features, angle: int, size: Size) -> Features:
    """Features of the image turned by ``angle``, with keypoints and covariances in the original image."""
    A, _ = _turn_back(angle, size)
    covariances = (
        None if features.covariances is None else (A @ features.covariances @ A.T).astype(np.float32)
    )
    return replace(
        features,
        keypoints=unrotate_points(features.keypoints, angle, size),
        image_size=size,
        covariances=covariances,
    )

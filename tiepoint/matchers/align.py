"""Alignment: warp image 1 into the frame of image 0 by a homography, and map what is found there back.

The view search (:mod:`tiepoint.matchers.search`) uses this for its ``align`` pass. A first match gives a
homography ``H`` from image 0 to image 1. Image 1 warped by it looks nearly like image 0: same scale, same
turn, same perspective. Matched again, the pair no longer asks the descriptors for any invariance, so the
matches are more numerous and more precise. A point ``x`` of the warped image is the point ``H(x)`` of
image 1, so every match maps back exactly.

On the aligned pair a match's two neighbourhoods look alike up to a small shift, the case Lucas-Kanade
tracking is made for. :func:`refine_aligned` moves each match's point in the warped image to where image 0's
neighbourhood of the match lies (OpenCV's pyramidal Lucas-Kanade, started at the match), which is sub-pixel
whatever the method's keypoints are.

Shrinking by a warp would alias, so where ``H`` makes image 1 smaller (image 1 shows the scene larger),
image 1 is first shrunk by that factor with area interpolation and then warped.

A homography describes a plane, or a scene seen from one place. In a 3D scene seen from two places, the warp
aligns one plane and shears the rest, and the aligned matches gather near that plane: more precise, yet
biased, which costs relative-pose accuracy. :func:`parallax_share` tells the two cases apart from the
aligned matches themselves: of the matches that fit an epipolar geometry within
:data:`PARALLAX_EPIPOLAR_THRESHOLD`, the share that lies farther than :data:`PARALLAX_HOMOGRAPHY_THRESHOLD`
from the homography. Points on a plane fit both; points off it fit only the epipolar geometry.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from ..errors import EstimationError
from ..geometry.accuracy import apply_homography, homography_jacobians, inside_image
from ..geometry.estimate import estimate
from ..io.image import MIN_SIDE, image_size, resize_by_factor, shrunk_size, to_gray
from ..types import Features, Matches, Size

REFINE_WINDOW = 21
"""Side (pixels) of the Lucas-Kanade window of :func:`refine_aligned`."""
REFINE_MAX_SHIFT = 3.0
"""The largest move (pixels) :func:`refine_aligned` accepts; a point that would move farther stays."""
PARALLAX_EPIPOLAR_THRESHOLD = 1.0
"""Sampson distance (pixels) within which a match fits the epipolar geometry in :func:`parallax_share`."""
PARALLAX_HOMOGRAPHY_THRESHOLD = 3.0
"""Transfer error (pixels) within which a match fits the homography in :func:`parallax_share`."""


def warp_scale(H: np.ndarray, size0: Size) -> float:
    """How much larger ``H`` shows image 0's centre in image 1 (square root of the Jacobian's determinant;
    ``nan`` when ``H`` is degenerate there)."""
    centre = np.array([[(size0[0] - 1) / 2.0, (size0[1] - 1) / 2.0]])
    with np.errstate(divide="ignore", invalid="ignore"):
        determinant = float(np.linalg.det(homography_jacobians(centre, H)[0]))
    return float(np.sqrt(determinant)) if np.isfinite(determinant) and determinant > 0 else float("nan")


def warp_onto(image1: np.ndarray, H: np.ndarray, size0: Size) -> np.ndarray | None:
    """Image 1 warped into the frame of image 0 (``size0`` = ``(width, height)``), pixel ``x`` of the result
    showing pixel ``H(x)`` of image 1; outside image 1 it is black. ``None`` when ``H`` is degenerate at
    image 0's centre or would shrink image 1 below :data:`~tiepoint.io.image.MIN_SIDE` pixels."""
    scale = warp_scale(H, size0)
    if not np.isfinite(scale):
        return None
    shrink = min(1.0, 1.0 / scale)
    if min(shrunk_size(image_size(image1), shrink)) < MIN_SIDE:
        return None
    small, resize = resize_by_factor(image1, shrink)
    to_small = np.linalg.inv(resize.matrix()) @ H
    return cv2.warpPerspective(
        small,
        to_small,
        tuple(size0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def refine_aligned(image0: np.ndarray, warped: np.ndarray, matches: Matches) -> Matches:
    """``matches`` between ``image0`` and ``warped`` (both ``(H, W, 3)`` uint8 RGB of one size) with each
    point of the warped image moved to where image 0's :data:`REFINE_WINDOW`-pixel neighbourhood of the match
    lies (pyramidal Lucas-Kanade, ``cv2.calcOpticalFlowPyrLK``, two levels, started at the match). Points that
    the tracker loses or would move more than :data:`REFINE_MAX_SHIFT` pixels stay where they were. The
    matched features of the warped image move with their points."""
    if len(matches) == 0:
        return matches
    start = matches.keypoints1.astype(np.float32).reshape(-1, 1, 2)
    tracked, found, _ = cv2.calcOpticalFlowPyrLK(
        to_gray(image0),
        to_gray(warped),
        matches.keypoints0.astype(np.float32).reshape(-1, 1, 2),
        start.copy(),
        winSize=(REFINE_WINDOW, REFINE_WINDOW),
        maxLevel=1,
        flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
        criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01),
    )
    start, tracked = start.reshape(-1, 2), tracked.reshape(-1, 2)
    moved = (found.ravel() == 1) & (np.linalg.norm(tracked - start, axis=1) <= REFINE_MAX_SHIFT)
    keypoints1 = np.where(moved[:, None], tracked, start)
    refined = replace(matches, keypoints1=keypoints1)
    if matches.features1 is not None and matches.indices is not None:
        feature_points = matches.features1.keypoints.copy()
        feature_points[matches.indices[:, 1]] = keypoints1
        refined = replace(refined, features1=replace(matches.features1, keypoints=feature_points))
    return refined


def _features_back(features: Features, H: np.ndarray, size1: Size) -> tuple[Features, np.ndarray]:
    """Features of the warped image mapped to image 1 (keypoints by ``H``, covariances by its Jacobian), with
    those that fall outside image 1 dropped; also the new index of each old feature (-1 where dropped)."""
    keypoints = apply_homography(H, features.keypoints)
    keep = np.flatnonzero(inside_image(keypoints, size1))
    covariances = None
    if features.covariances is not None:
        J = homography_jacobians(features.keypoints[keep], H)
        covariances = (J @ features.covariances[keep] @ J.transpose(0, 2, 1)).astype(np.float32)
    index = np.full(len(features), -1)
    index[keep] = np.arange(len(keep))
    mapped = replace(
        features.subset(keep),
        keypoints=keypoints[keep].astype(np.float32),
        covariances=covariances,
        image_size=size1,
    )
    return mapped, index


def matches_back(matches: Matches, H: np.ndarray, size1: Size) -> Matches:
    """Matches between image 0 and image 1 warped by :func:`warp_onto`, in the pixels of image 1 (``size1``);
    matches whose point falls outside image 1 (the black border) are dropped."""
    keypoints1 = apply_homography(H, matches.keypoints1)
    moved = replace(matches, keypoints1=keypoints1.astype(np.float32), image_size1=size1)
    if matches.features1 is not None:
        features1, new_index = _features_back(matches.features1, H, size1)
        indices = matches.indices
        if indices is not None:
            indices = np.stack([indices[:, 0], new_index[indices[:, 1]]], axis=1)
        moved = replace(moved, features1=features1, indices=indices)
    return moved.subset(inside_image(keypoints1, size1))


def parallax_share(matches: Matches | tuple[np.ndarray, np.ndarray]) -> float:
    """The share of the matches (:class:`Matches`, or ``(M, 2)`` pixel arrays of both images) fitting an
    epipolar geometry (fundamental matrix, within :data:`PARALLAX_EPIPOLAR_THRESHOLD`) that lie farther than
    :data:`PARALLAX_HOMOGRAPHY_THRESHOLD` from a homography fitted to the same matches: near 0 for a plane or
    a scene seen from one place, large for a 3D scene seen with a baseline. 0 when either model cannot be
    fitted (too few or degenerate matches: no evidence of parallax).
    """
    try:
        epipolar = estimate(matches, model="fundamental", threshold=PARALLAX_EPIPOLAR_THRESHOLD).inliers
        planar = estimate(matches, model="homography", threshold=PARALLAX_HOMOGRAPHY_THRESHOLD).inliers
    except EstimationError:
        return 0.0
    return float((epipolar & ~planar).sum() / max(1, epipolar.sum()))

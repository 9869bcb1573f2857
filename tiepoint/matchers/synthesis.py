"""View synthesis: affine views of an image (tilts, turns, zooms), extracted once, keypoints mapped back.

A planar patch seen obliquely is compressed along one direction by the *tilt* ``t = 1 / cos(latitude)``.
Descriptors tolerate tilts up to about 2; beyond, ASIFT (Morel and Yu, SIAM J. Imaging Sciences 2009) and
MODS (Mishkin, Matas and Perdoch, CVIU 2015) simulate the missing tilts: each view is the image turned by a
longitude ``phi`` and then compressed by ``t`` along x, with a Gaussian blur of ``0.8 * sqrt(t**2 - 1)``
pixels along x first, so that the compression does not alias. :func:`tilt_views` samples the views as ASIFT
does: tilts ``sqrt(2), 2, 2*sqrt(2), 4`` with longitudes ``0 <= phi < 180`` degrees spaced ``72 / t``.

Every view is an affine map ``A`` (``(2, 3)``, original pixels -> view pixels, pixel centres at integers).
:class:`ViewFeatures` extracts each view of one image once with any extractor, drops keypoints on the warped
image's border, maps them back to original pixels by ``A``'s inverse (covariances by its linear part), and
pools the views asked for, remembering which view each feature came from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..features.base import Extractor, concatenate
from ..io.image import image_size
from ..types import Features, Size

ASIFT_TILTS = (math.sqrt(2.0), 2.0, 2.0 * math.sqrt(2.0), 4.0)
"""The tilts ASIFT simulates (a geometric series of ratio sqrt(2), up to 4: latitudes up to 75.5 degrees)."""
LONGITUDE_STEP = 72.0
"""ASIFT's longitude spacing at tilt ``t`` is ``LONGITUDE_STEP / t`` degrees."""
ANTIALIAS = 0.8
"""The blur along the compressed axis is ``ANTIALIAS * sqrt(t**2 - 1)`` pixels (ASIFT's constant)."""
BORDER = 5
"""Keypoints closer than this many pixels (in the view) to the warped image's border are dropped: the black
border's edge is not scene structure."""


@dataclass(frozen=True)
class AffineView:
    """One synthesised view: the image turned by ``phi`` degrees (counter-clockwise on screen), compressed
    by ``tilt`` along the view's x axis, then scaled by ``scale`` (``< 1`` shrinks)."""

    tilt: float = 1.0
    phi: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tilt) and self.tilt >= 1.0):
            raise ValueError(f"a view's tilt must be >= 1, got {self.tilt!r}")
        if not (math.isfinite(self.scale) and 0.0 < self.scale <= 1.0):
            raise ValueError(f"a view's scale must be in (0, 1] (views only shrink), got {self.scale!r}")

    @property
    def identity(self) -> bool:
        """Whether the view is the image itself."""
        return self.tilt == 1.0 and self.phi % 360.0 == 0.0 and self.scale == 1.0

    def label(self) -> str:
        """``"t=2 phi=36"``, ``"turn 90"``, ``"zoom 0.5"`` or ``"plain"``: how results name the view."""
        if self.identity:
            return "plain"
        parts = []
        if self.tilt != 1.0:
            parts.append(f"t={self.tilt:.3g} phi={self.phi:.0f}")
        elif self.phi % 360.0:
            parts.append(f"turn {self.phi % 360.0:.0f}")
        if self.scale != 1.0:
            parts.append(f"zoom {self.scale:g}")
        return " ".join(parts)


def tilt_views(tilts: Sequence[float] = ASIFT_TILTS) -> list[AffineView]:
    """ASIFT's sampling: for each tilt ``t``, the longitudes ``0, s, 2s, ... < 180`` with ``s = 72 / t``
    degrees (the identity is not included)."""
    views = []
    for tilt in tilts:
        if not tilt > 1.0:
            raise ValueError(f"tilts must be > 1 (1 is the image itself), got {tilt!r}")
        step = LONGITUDE_STEP / tilt
        views += [AffineView(float(tilt), step * k) for k in range(math.ceil(180.0 / step - 1e-9))]
    return views


def _turn(phi: float, size: Size) -> tuple[np.ndarray, Size]:
    """The ``(2, 3)`` map turning an image of ``size`` by ``phi`` degrees counter-clockwise (on screen) onto a
    canvas that holds all of it, and the canvas size. Right angles map pixel centres onto pixel centres."""
    width, height = size
    angle = math.radians(phi)
    cos, sin = round(math.cos(angle), 12), round(math.sin(angle), 12)
    # y points down, so a counter-clockwise turn on screen is (x, y) -> (x cos + y sin, -x sin + y cos)
    R = np.array([[cos, sin], [-sin, cos]])
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64) @ R.T
    low = corners.min(axis=0)
    extent = np.round(corners.max(axis=0) - low).astype(int) + 1
    return np.hstack([R, -low[:, None]]), (int(extent[0]), int(extent[1]))


def view_map(view: AffineView, size: Size) -> tuple[np.ndarray, Size]:
    """The ``(2, 3)`` affine map from pixels of an image of ``size`` ``(W, H)`` to pixels of ``view``, and the
    view's size."""
    A, (width, height) = _turn(view.phi, size)
    sx, sy = view.scale / view.tilt, view.scale
    out = (max(1, math.floor((width - 1) * sx) + 1), max(1, math.floor((height - 1) * sy) + 1))
    return np.diag([sx, sy]) @ A, out


def warp_view(image: np.ndarray, view: AffineView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image`` ``(H, W[, C])`` seen in ``view``: turned, blurred along the compressed axis and compressed.

    Returns:
        The view image, its ``(h, w)`` bool mask of pixels at least :data:`BORDER` pixels inside the image,
        and the ``(2, 3)`` map ``A`` from original pixels to view pixels.
    """
    size = image_size(image)
    if view.identity:
        return image, np.ones(image.shape[:2], bool), np.hstack([np.eye(2), np.zeros((2, 1))])
    A_turn, turned_size = _turn(view.phi, size)
    A, out = view_map(view, size)
    turned = cv2.warpAffine(image, A_turn, turned_size, flags=cv2.INTER_LINEAR, borderValue=0)
    sx, sy = view.scale / view.tilt, view.scale
    turned = _antialias(turned, 1.0 / sx, 1.0 / sy)
    shrink = np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0]])
    warped = cv2.warpAffine(turned, shrink, out, flags=cv2.INTER_LINEAR, borderValue=0)
    inside = cv2.warpAffine(np.full(image.shape[:2], 255, np.uint8), A, out, flags=cv2.INTER_NEAREST)
    if BORDER:
        inside = cv2.erode(inside, np.ones((2 * BORDER + 1, 2 * BORDER + 1), np.uint8), borderValue=0)
    return np.ascontiguousarray(warped), inside > 0, A


def _antialias(image: np.ndarray, compress_x: float, compress_y: float) -> np.ndarray:
    """``image`` blurred by ``ANTIALIAS * sqrt(c**2 - 1)`` pixels along each axis it is about to be compressed
    by a factor ``c`` along (no blur along an axis kept at full size)."""
    sigmas = [ANTIALIAS * math.sqrt(max(c * c - 1.0, 0.0)) for c in (compress_x, compress_y)]
    if not any(sigmas):
        return image
    kx, ky = (2 * math.ceil(3.0 * s) + 1 if s > 0 else 1 for s in sigmas)
    return cv2.GaussianBlur(image, (kx, ky), sigmaX=max(sigmas[0], 1e-6), sigmaY=max(sigmas[1], 1e-6))


def map_back(points: np.ndarray, A: np.ndarray) -> np.ndarray:
    """``(N, 2)`` view pixels to original pixels through the inverse of ``A`` (``(2, 3)``)."""
    M = np.linalg.inv(np.vstack([A, [0.0, 0.0, 1.0]]))
    return (np.asarray(points, np.float64) @ M[:2, :2].T + M[:2, 2]).astype(np.float32)


def features_back(features: Features, mask: np.ndarray, A: np.ndarray, size: Size) -> Features:
    """Features of a view with those outside ``mask`` (the view's border) dropped, keypoints and covariances
    mapped to the original image of ``size``."""
    points = np.round(features.keypoints).astype(int)
    height, width = mask.shape
    valid = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    keep = np.flatnonzero(valid)
    keep = keep[mask[points[keep, 1], points[keep, 0]]]
    kept = features.subset(keep)
    L = np.linalg.inv(A[:, :2])
    covariances = None if kept.covariances is None else (L @ kept.covariances @ L.T).astype(np.float32)
    return replace(kept, keypoints=map_back(kept.keypoints, A), covariances=covariances, image_size=size)


class ViewFeatures:
    """The features of one image's synthesised views, each view extracted once and kept (see the module).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        extractor: any extractor; it runs on each view as on an image.
    """

    def __init__(self, image: np.ndarray, extractor: Extractor) -> None:
        self.image = image
        self.size = image_size(image)
        self.extractor = extractor
        self.seconds = 0.0
        """Seconds spent warping and extracting so far."""
        self._views: dict[AffineView, Features] = {}

    def of(self, view: AffineView) -> Features:
        """The features of ``view`` in original pixels (extracted on first use)."""
        if view not in self._views:
            start = time.perf_counter()
            warped, mask, A = warp_view(self.image, view)
            self._views[view] = features_back(self.extractor.extract(warped), mask, A, self.size)
            self.seconds += time.perf_counter() - start
        return self._views[view]

    def pooled(self, views: Sequence[AffineView]) -> tuple[Features, np.ndarray]:
        """The features of ``views`` in one set (original pixels) and the ``(N,)`` index into ``views`` of the
        view each came from."""
        parts = [self.of(view) for view in views]
        origin = np.concatenate([np.full(len(part), k) for k, part in enumerate(parts)]).astype(np.int64)
        return concatenate(parts), origin

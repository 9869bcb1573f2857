"""View search: match a pair at several right-angle turns and zooms of the images and keep the best view.

Learned matchers are trained on pairs that are mostly upright and of similar scale, and fail when one image is
upside down or on its side, or shows the scene several times larger than the other. :class:`ViewSearch` wraps
any method and tries several views of the pair; the registry composes it from the ``search`` options
(:class:`SearchConfig`):

* ``rotations``: turns of image 1 (degrees counter-clockwise, from
  :data:`~tiepoint.matchers.rotation.RIGHT_ANGLES`). Turns are lossless (``np.rot90``), so keypoints map back
  exactly.
* ``zooms``: how much larger the scene may appear in image 1 than in image 0. A zoom ``z < 1`` (image 1 zoomed
  out) shrinks image 0 by ``z``; ``z > 1`` shrinks image 1 by ``1 / z``. Images are only ever shrunk (area
  interpolation), so a zoom costs less than the unzoomed view.
* Every combination is a view. Each view's matches are scored by the inliers of a robust homography fit with a
  loose threshold (:data:`VERIFY_THRESHOLD`) in original pixels; the view with the most inliers wins, ties go
  to the view listed first (zooms in the order given, then turns). In a 3D scene the homography still gathers
  the matches of a dominant plane or of the distant background, while a wrong view leaves only chance inliers;
  the raw match count would be no guide, as mutual-nearest-neighbour matchers match about as many points in
  any view.
* ``accept``: the search stops at the first view whose inliers make up at least that fraction of its matches
  (and number at least :data:`MIN_ACCEPTED_INLIERS`), so list the likeliest view first. A view of a 3D scene
  seen with a baseline has no homography that fits most of its matches, so a view that fails the homography
  test is also accepted when that share of its matches fits a fundamental matrix within
  :data:`EPIPOLAR_THRESHOLD`.
* ``align``: the best view's homography then warps image 1 onto image 0 (:mod:`~tiepoint.matchers.align`) and
  the pair is matched once more. The aligned pair needs no invariance from the method, so its matches are more
  numerous and more precise; they are kept if they have more inliers than the best view's, or a larger share
  of inliers. ``align`` may also name another descriptor matcher for the same extractor (``align="ratio"``): a
  permissive matcher (mutual nearest neighbours) then finds the geometry, and a strict one (the ratio test)
  matches the aligned pair, where the true matches are unambiguous. Each aligned match is refined to sub-pixel
  by Lucas-Kanade tracking on the aligned pair (:func:`~tiepoint.matchers.align.refine_aligned`). The warp is
  a homography, which suits planar scenes and distant views; in a 3D scene seen with a baseline it would
  gather the matches near one plane and cost pose accuracy, so the aligned matches are dropped when they show
  parallax (:data:`MAX_PARALLAX_SHARE`).
* For a sparse method each distinct shrink of image 0 and each distinct (shrink, turn) of image 1 is extracted
  once.

The returned :class:`~tiepoint.types.Matches` are in the pixels of the original images, like every method's.
Their ``info`` says which view was kept (``"rotation1_deg"``, ``"zoom1"``) and whether the aligned pass was
(``"aligned"``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import EstimationError, OptionError
from ..features.base import in_original_pixels
from ..geometry.estimate import estimate
from ..io.image import MIN_SIDE, ImageLike, Resize, as_image, image_size, resize_by_factor, shrunk_size
from ..types import Features, Geometry, Matches, Size
from .align import matches_back, parallax_share, refine_aligned, warp_onto
from .base import PairMatcher, SparseMethod
from .rotation import check_rotations, rotate_image, unrotate_features, unrotate_points

VERIFY_THRESHOLD = 8.0
"""Inlier threshold (pixels) of the homography fit that scores each view."""
VERIFY_ITERATIONS = 10_000
"""RANSAC iterations at most for that fit (enough to rank the views)."""
EPIPOLAR_THRESHOLD = 4.0
"""Inlier threshold (pixels, epipolar distance) of the fundamental-matrix fit that ``accept`` falls back on;
COLMAP's verification threshold."""
MIN_ACCEPTED_INLIERS = 30
"""The fewest inliers with which ``accept`` stops the search early."""
MIN_ALIGN_INLIERS = 8
"""The fewest inliers (twice the homography's minimal sample) with which ``align`` warps image 1. A wrong
homography costs one more match, not a wrong result: the aligned matches are kept only if they have more
inliers or a larger share of inliers, and on a wrong homography both are at chance level."""
MAX_PARALLAX_SHARE = 1 / 3
"""The aligned matches are dropped when this share or more of their epipolar inliers lies off their homography
(:func:`~tiepoint.matchers.align.parallax_share`): a 3D scene, where the warp would bias the matches towards
one plane. Planar and distant scenes stay well below it, 3D scenes seen with a baseline above."""
ZOOM_RANGE = (0.1, 10.0)
"""The smallest and largest zoom accepted."""


def check_zooms(zooms: Sequence[float]) -> tuple[float, ...]:
    """``zooms`` as a tuple of distinct positive floats within :data:`ZOOM_RANGE` (an error names the
    option)."""
    try:
        values = tuple(float(zoom) for zoom in zooms)
    except (TypeError, ValueError):
        values = ()
    low, high = ZOOM_RANGE
    if not values or any(not (low <= zoom <= high) for zoom in values):
        raise OptionError(f"zooms must list numbers from {low:g} to {high:g} (1 = same scale), got {zooms!r}")
    if len(set(values)) != len(values):
        raise OptionError(f"zooms lists a value twice: {zooms!r}")
    return values


@dataclass
class SearchConfig:
    """The options of the view search (the ``search`` part of a method's options). ``None`` leaves an option
    unset: a method is wrapped in a :class:`ViewSearch` only when ``rotations`` or ``zooms`` is set or
    ``align`` is not false, and a preset's own value stays when a caller passes ``None``."""

    rotations: Sequence[int] | None = None
    """Turns of image 1 to try, e.g. ``(0, 90, 180, 270)``."""
    zooms: Sequence[float] | None = None
    """Apparent magnifications of image 1 relative to image 0 to try, e.g. ``(1, 0.5, 2)``."""
    accept: float | None = None
    """Stop at the first view with this inlier ratio, e.g. ``0.5``."""
    align: bool | str | None = None
    """Match once more with image 1 warped onto image 0 by the best view's homography: ``True`` with the
    searched method, or a descriptor matcher's name with options after a colon (``"ratio:ratio=0.9"``; sparse
    methods only) to match the aligned pair with it."""

    tilts: Sequence[float] | None = None
    """Match on demand (:mod:`~tiepoint.matchers.ondemand`): stop at the first reliable stage of plain, turns
    and zooms (when given), these simulated tilts of one image (e.g. ASIFT's ``(1.41, 2, 2.83, 4)``; ``()``
    for none), then ``both_tilts``; sparse methods only."""
    both_tilts: Sequence[float] | None = None
    """The tilts of both images of the last on-demand stage, e.g. ``(1.41, 2)``."""

    def __post_init__(self) -> None:
        if self.both_tilts is not None and self.tilts is None:
            raise ValueError("both_tilts is a stage of matching on demand; give tilts too")
        if self.tilts is not None and self.accept is not None:
            raise ValueError("accept stops a view search early; matching on demand (tilts) stops by itself")
        if self.align is not None and not isinstance(self.align, (bool, str)):
            raise ValueError(
                f"align must be True, False or the name of a descriptor matcher, got {self.align!r}"
            )
        if self.accept is not None and not self.active:
            raise ValueError("accept stops a view search early; give rotations or zooms too")

    @property
    def active(self) -> bool:
        """Whether these options ask for a view search."""
        return (
            self.rotations is not None
            or self.zooms is not None
            or self.tilts is not None
            or self.align not in (None, False)
        )


@dataclass(frozen=True)
class View:
    """One candidate view of a pair: image 1 turned by ``angle`` and the pair seen at relative ``zoom``."""

    angle: int = 0
    zoom: float = 1.0

    @property
    def shrink0(self) -> float:
        """The factor image 0 is shrunk by (``zoom`` when image 1 is zoomed out, else 1)."""
        return min(1.0, self.zoom)

    @property
    def shrink1(self) -> float:
        """The factor image 1 is shrunk by before turning (``1 / zoom`` when image 1 is zoomed in, else 1)."""
        return min(1.0, 1.0 / self.zoom)


def fit_homography(matches: Matches) -> Geometry | None:
    """The robust homography fit that scores a view (``None`` when the matches are too few or degenerate)."""
    return fit_model(matches, "homography", VERIFY_THRESHOLD)


def fit_model(
    matches: Matches, model: str, threshold: float, iterations: int = VERIFY_ITERATIONS
) -> Geometry | None:
    try:
        return estimate(matches, model=model, threshold=threshold, max_iterations=iterations)
    except EstimationError:
        return None


def epipolar_iterations(share: float) -> int:
    """RANSAC iterations that draw an all-inlier 7-point sample with 99 % probability when ``share`` of the
    matches are inliers (from 1000 to :data:`VERIFY_ITERATIONS`): enough to tell whether a view reaches
    ``accept``, while a wrong view, whose share is far lower, does not run the full budget."""
    needed = math.log(0.01) / math.log1p(-(share**7)) if share < 1 else 0.0
    return int(min(VERIFY_ITERATIONS, max(1000, math.ceil(needed))))


def _check_views(views: Sequence[View], size0: Size, size1: Size) -> None:
    """An error naming the zoom and the image if some view would shrink an image below ``MIN_SIDE`` pixels
    (checked before any matching)."""
    for view in views:
        for name, size, factor in (("image0", size0, view.shrink0), ("image1", size1, view.shrink1)):
            width, height = shrunk_size(size, factor)
            if min(width, height) < MIN_SIDE:
                raise OptionError(
                    f"zooms: zoom {view.zoom:g} shrinks {name} ({size[0]}x{size[1]}) to {width}x{height} "
                    f"pixels, below the {MIN_SIDE}x{MIN_SIDE} that tiepoint needs"
                )


def _original_features(
    features: Features | None, resize: Resize, size: Size, angle: int = 0, shrunk_size: Size | None = None
) -> Features | None:
    """Features of a shrunk (and, for ``angle``, turned) image with keypoints and covariances in the original
    image of ``size``; ``shrunk_size`` is the size of the shrunk image before its turn."""
    if features is None:
        return None
    if angle:
        features = unrotate_features(features, angle, shrunk_size)
    return replace(in_original_pixels(features, resize), image_size=size)


def _improves(inliers: int, matches: int, best_inliers: int, best_matches: int) -> bool:
    """Whether the aligned pass (``inliers`` of ``matches``) beats the best view: more inliers, or a larger
    share of inliers (a strict matcher keeps fewer, surer matches). On a wrong homography both are at chance
    level."""
    if inliers < MIN_ALIGN_INLIERS:
        return False
    return inliers > best_inliers or inliers * best_matches > best_inliers * matches


def aligned_matches(
    image0: np.ndarray,
    image1: np.ndarray,
    H: np.ndarray,
    match: Callable[[np.ndarray, np.ndarray], Matches],
    info: dict[str, Any],
) -> Matches | None:
    """The pair matched again by ``match`` with image 1 warped onto image 0 by ``H``, the matches refined on
    the warped pair and mapped back to image 1, ``info`` added (``None`` if ``H`` cannot warp it)."""
    warped = warp_onto(image1, H, image_size(image0))
    if warped is None:
        return None
    matches = refine_aligned(image0, warped, match(image0, warped))
    matches = matches_back(matches, H, image_size(image1))
    return replace(matches, info={**matches.info, **info, "aligned": True})


def keeps_aligned(
    aligned: Matches | None, geometry: Geometry | None, best: Matches, best_inliers: int
) -> bool:
    """Whether the aligned matches (their homography ``geometry``) replace ``best`` (``best_inliers``
    inliers): more inliers or a larger share (:func:`_improves`), and no parallax
    (:data:`MAX_PARALLAX_SHARE`)."""
    return (
        aligned is not None
        and geometry is not None
        and _improves(geometry.num_inliers, len(aligned), best_inliers, len(best))
        and parallax_share(aligned) < MAX_PARALLAX_SHARE
    )


class ViewSearch(PairMatcher):
    """Any method, tried at several views of the pair (see the module docstring).

    Args:
        method: the method that matches each view.
        rotations: turns of image 1 to try (degrees counter-clockwise, multiples of 90).
        zooms: apparent magnifications of image 1 relative to image 0 to try (1 = same scale).
        accept: stop at the first view whose homography inliers, or else fundamental-matrix inliers, are at
            least this fraction of its matches; ``None`` tries every view.
        align: match once more with image 1 warped onto image 0 by the best view's homography: ``True`` with
            ``method``, or with this other method (sparse, sharing ``method``'s extractor).
    """

    def __init__(
        self,
        method: PairMatcher,
        rotations: Sequence[int] = (0,),
        zooms: Sequence[float] = (1.0,),
        accept: float | None = None,
        align: bool | PairMatcher = False,
    ) -> None:
        self.method = method
        self.rotations = check_rotations(rotations)
        self.zooms = check_zooms(zooms)
        if accept is not None and not (isinstance(accept, (int, float)) and 0 < accept <= 1):
            raise OptionError(f"accept must be a fraction in (0, 1] of a view's matches, got {accept!r}")
        if not isinstance(align, (bool, PairMatcher)):
            raise OptionError(f"align must be True, False or the name of a descriptor matcher, got {align!r}")
        if isinstance(align, SparseMethod) and not (
            isinstance(method, SparseMethod) and align.extractor is method.extractor
        ):
            raise OptionError(
                "align: a sparse method for the aligned pass must share the searched method's extractor"
            )
        self.accept = accept
        self.aligner = method if align is True else (align or None)
        self.views = [View(angle, zoom) for zoom in self.zooms for angle in self.rotations]
        self.name = method.name

    def _match(
        self,
        image0: np.ndarray,
        image1: np.ndarray,
        key0: float,
        features0: dict[float, Features],
        method: PairMatcher | None = None,
    ) -> Matches:
        """``method`` (else the searched method) on one pair of (shrunk, turned or warped) images. A sparse
        method extracts image 0 once per ``key0`` (its shrink), kept in ``features0``."""
        method = method or self.method
        if not isinstance(method, SparseMethod):
            return method.match(image0, image1)
        extract0 = 0.0
        if key0 not in features0:
            features0[key0], extract0 = method.timed_extract(image0)
        features1, extract1 = method.timed_extract(image1)
        matches = method.match_features(features0[key0], features1)
        matches.timings.update(extract0=extract0, extract1=extract1)
        return matches

    def _candidates(
        self, image0: np.ndarray, image1: np.ndarray, features0: dict[float, Features]
    ) -> Iterator[Matches]:
        """Each view's matches, in the pixels of the original images."""
        size0, size1 = image_size(image0), image_size(image1)
        shrunk0: dict[float, tuple[np.ndarray, Resize]] = {}
        shrunk1: dict[float, tuple[np.ndarray, Resize]] = {}
        for view in self.views:
            if view.shrink0 not in shrunk0:
                shrunk0[view.shrink0] = resize_by_factor(image0, view.shrink0)
            if view.shrink1 not in shrunk1:
                shrunk1[view.shrink1] = resize_by_factor(image1, view.shrink1)
            (small0, resize0), (small1, resize1) = shrunk0[view.shrink0], shrunk1[view.shrink1]
            matches = self._match(small0, rotate_image(small1, view.angle), view.shrink0, features0)
            shrunk_size1 = image_size(small1)
            yield replace(
                matches,
                keypoints0=resize0.to_original(matches.keypoints0),
                keypoints1=resize1.to_original(unrotate_points(matches.keypoints1, view.angle, shrunk_size1)),
                image_size0=size0,
                image_size1=size1,
                features0=_original_features(matches.features0, resize0, size0),
                features1=_original_features(matches.features1, resize1, size1, view.angle, shrunk_size1),
                info={**matches.info, "rotation1_deg": view.angle, "zoom1": view.zoom, "aligned": False},
            )

    def _aligned(
        self,
        image0: np.ndarray,
        image1: np.ndarray,
        H: np.ndarray,
        features0: dict[float, Features],
        best: Matches,
    ) -> Matches | None:
        """The pair matched again with image 1 warped onto image 0 by ``H`` (:func:`aligned_matches`)."""
        return aligned_matches(
            image0, image1, H, lambda a, b: self._match(a, b, 1.0, features0, self.aligner), best.info
        )

    def match(self, image0: ImageLike, image1: ImageLike) -> Matches:
        """Match two images (paths, arrays or tensors); keypoints in original pixels,
        ``info["rotation1_deg"]``, ``info["zoom1"]`` and ``info["aligned"]`` set."""
        array0, array1 = as_image(image0, "image0"), as_image(image1, "image1")
        _check_views(self.views, image_size(array0), image_size(array1))
        features0: dict[float, Features] = {}
        timings: dict[str, float] = {}

        def verified(matches: Matches) -> Geometry | None:
            start = time.perf_counter()
            geometry = fit_homography(matches)
            for stage, seconds in matches.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            timings["verify"] = timings.get("verify", 0.0) + time.perf_counter() - start
            return geometry

        def fits_epipolar(matches: Matches, needed: float) -> bool:
            start = time.perf_counter()
            epipolar = fit_model(matches, "fundamental", EPIPOLAR_THRESHOLD, epipolar_iterations(self.accept))
            timings["verify"] += time.perf_counter() - start
            return epipolar is not None and epipolar.num_inliers >= needed

        best, best_geometry, best_inliers = None, None, -1
        for matches in self._candidates(array0, array1, features0):
            geometry = verified(matches)
            inliers = 0 if geometry is None else geometry.num_inliers
            if inliers > best_inliers:
                best, best_geometry, best_inliers = matches, geometry, inliers
            if self.accept is None:
                continue
            needed = max(MIN_ACCEPTED_INLIERS, self.accept * len(matches))
            if inliers >= needed:
                break
            if fits_epipolar(matches, needed):  # a 3D scene: this view, whatever an earlier one's homography
                best, best_geometry, best_inliers = matches, geometry, inliers
                break
        if self.aligner is not None and best_inliers >= MIN_ALIGN_INLIERS:
            aligned = self._aligned(array0, array1, best_geometry.matrix, features0, best)
            geometry = None if aligned is None else verified(aligned)
            start = time.perf_counter()
            if keeps_aligned(aligned, geometry, best, best_inliers):
                best = aligned
            timings["verify"] += time.perf_counter() - start
        best.timings = timings
        return best

    def __repr__(self) -> str:
        return (
            f"ViewSearch({self.method!r}, rotations={self.rotations}, zooms={self.zooms}, "
            f"accept={self.accept}, align={self.aligner is not None})"
        )

"""Matching on demand with view synthesis (MODS: Mishkin, Matas and Perdoch, CVIU 2015), around any sparse
method.

Most pairs need no help; a few need the views that :mod:`~tiepoint.matchers.synthesis` simulates, at many
times the cost. :class:`OnDemand` tries *stages* from cheap to expensive and stops at the first whose matches
pass a reliability test (:func:`verify`):

1. ``plain``: the method as it is;
2. ``turns``: image 1 at the right-angle turns and image 0 or 1 at the zooms of the view search's options
   (``rotations``, ``zooms``; only when they are given: SIFT needs neither);
3. ``tilts0``: the simulated tilts of image 0 (:func:`~tiepoint.matchers.synthesis.tilt_views` of
   ``tilts``, the plain view included) against plain image 1;
4. ``tilts1``: the same tilts of image 1 against plain image 0 (a plane seen obliquely in one image and
   frontally in the other is solved by tilting the frontal one; which one that is, is not known, and the two
   halves cost the same);
5. ``tilts01``: the tilts ``both_tilts`` of both images, every view against every view (only when given).

A stage pools the features of its views of each image (keypoints in original pixels) and matches the pools
with the method's descriptor matcher; matches that repeat a kept match (both points within
:data:`DUPLICATE_RADIUS`) or tie one point to several others are dropped, keeping the most similar
(:func:`unique_matches`). Each view is extracted once and reused by every later stage. With duplicates of a
point in the pools, Lowe's ratio test rejects true matches (the second neighbour is the same point seen in
another view); the ``fginn`` matcher (:class:`~tiepoint.matchers.nearest.InconsistentRatio`) takes the second
neighbour among points farther than a few pixels, as MODS does.

The result's ``info`` says how the pair was solved: ``"stage"`` (the stage whose matches are returned),
``"solved"`` (whether it passed the test; when no stage does, the stage with the most homography inliers is
returned with ``solved=False``), ``"verdict"`` (the test's reason), ``"stages_tried"`` and ``"views0"`` /
``"views1"``: the views of each image that gave the verified model's inliers, with their inlier counts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import OptionError
from ..io.image import ImageLike, as_image, image_size
from ..types import Geometry, Matches
from .base import PairMatcher, SparseMethod, matches_of
from .rotation import check_rotations
from .search import (
    EPIPOLAR_THRESHOLD,
    VERIFY_THRESHOLD,
    aligned_matches,
    check_zooms,
    fit_homography,
    fit_model,
    keeps_aligned,
)
from .synthesis import ASIFT_TILTS, AffineView, ViewFeatures, tilt_views

PLAIN = AffineView()
DUPLICATE_RADIUS = 2.0
"""Pixels within which two matches' points count as the same point (duplicates from overlapping views)."""
MIN_INLIERS = 15
"""The fewest inliers of a model that solves a pair (set before measuring, not tuned)."""
MIN_SPREAD = 0.01
"""The smallest share of each image that the convex hull of the inliers must cover (set before measuring):
inliers bunched in one spot can fit a wrong model."""
ALIGN_BELOW = 100
"""The aligned pass also refines a plain stage's homography of fewer inliers than this (set before
measuring): an easy pair has hundreds."""
MAX_PLANAR_SHARE = 0.9
"""A fundamental matrix whose inliers fit a homography at this share or more is degenerate (DEGENSAC's
concern): it is accepted only through the homography's own test."""


@dataclass(frozen=True)
class Stage:
    """One attempt: ``name`` and the pooled matchings it runs, each a pair of view lists (image 0, 1)."""

    name: str
    matchings: tuple[tuple[tuple[AffineView, ...], tuple[AffineView, ...]], ...]

    def views(self, image: int) -> tuple[AffineView, ...]:
        """The distinct views of image ``image`` (0 or 1) that the stage uses, in order."""
        return tuple(dict.fromkeys(view for matching in self.matchings for view in matching[image]))


@dataclass(frozen=True)
class Verdict:
    """The reliability test of one stage's matches: ``passed``, the ``model`` that passed (or was best),
    its ``geometry`` and a one-line ``reason``."""

    passed: bool
    model: str
    geometry: Geometry | None
    reason: str


def unique_matches(
    keypoints0: np.ndarray, keypoints1: np.ndarray, scores: np.ndarray, radius: float
) -> np.ndarray:
    """Indices of the matches kept when, from the most similar down, a match is dropped if either of its
    points lies within ``radius`` pixels of a kept match's point in the same image: duplicates from
    overlapping views and one-to-many matches go, the best of each stays. ``(M, 2)`` points, ``(M,)``
    scores."""
    order = np.argsort(-scores, kind="stable")
    cells: list[dict[tuple[int, int], list[int]]] = [{}, {}]
    points = (np.asarray(keypoints0, np.float64), np.asarray(keypoints1, np.float64))
    kept: list[int] = []

    def near(image: int, index: int) -> bool:
        x, y = points[image][index]
        cx, cy = int(x // radius), int(y // radius)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for other in cells[image].get((cx + dx, cy + dy), ()):
                    if np.hypot(*(points[image][other] - points[image][index])) <= radius:
                        return True
        return False

    for index in order:
        if near(0, index) or near(1, index):
            continue
        kept.append(int(index))
        for image in (0, 1):
            x, y = points[image][index]
            cells[image].setdefault((int(x // radius), int(y // radius)), []).append(int(index))
    return np.array(sorted(kept), dtype=np.int64)


def spread(points: np.ndarray, size: tuple[int, int]) -> float:
    """The share of an image of ``size`` ``(W, H)`` covered by the convex hull of ``(N, 2)`` points."""
    if len(points) < 3:
        return 0.0
    hull = cv2.convexHull(np.asarray(points, np.float32))
    return float(cv2.contourArea(hull)) / float(size[0] * size[1])


def _solid(geometry: Geometry | None, matches: Matches) -> str | None:
    """Why ``geometry`` does not solve the pair (``None`` when it does): reliability, inliers, spread."""
    if geometry is None:
        return "no model"
    if not geometry.reliable:
        return geometry.reason
    if geometry.num_inliers < MIN_INLIERS:
        return f"{geometry.num_inliers} inliers, fewer than {MIN_INLIERS}"
    inliers = geometry.inliers
    covered = min(
        spread(matches.keypoints0[inliers], matches.image_size0),
        spread(matches.keypoints1[inliers], matches.image_size1),
    )
    if covered < MIN_SPREAD:
        return f"inliers cover {covered:.1%} of an image, less than {MIN_SPREAD:.0%}"
    return None


def verify(matches: Matches) -> Verdict:
    """Whether ``matches`` solve the pair: a robust homography (LO-RANSAC, :data:`VERIFY_THRESHOLD` px) that
    passes :func:`_solid` (the a-contrario test, :data:`MIN_INLIERS`, :data:`MIN_SPREAD`), or else a
    fundamental matrix (:data:`EPIPOLAR_THRESHOLD` px) that passes it and is not degenerate (fewer than
    :data:`MAX_PLANAR_SHARE` of its inliers fit the homography)."""
    homography = fit_model(matches, "homography", VERIFY_THRESHOLD)
    failure = _solid(homography, matches)
    if failure is None:
        return Verdict(True, "homography", homography, homography.reason)
    fundamental = fit_model(matches, "fundamental", EPIPOLAR_THRESHOLD)
    epipolar_failure = _solid(fundamental, matches)
    if epipolar_failure is None and homography is not None:
        planar = (fundamental.inliers & homography.inliers).sum() / max(1, fundamental.num_inliers)
        if planar >= MAX_PLANAR_SHARE:
            epipolar_failure = f"degenerate: {planar:.0%} of its inliers fit a homography"
    if epipolar_failure is None:
        return Verdict(True, "fundamental", fundamental, fundamental.reason)
    return Verdict(False, "homography", homography, f"homography: {failure}; fundamental: {epipolar_failure}")


def build_stages(
    tilts: Sequence[float] = ASIFT_TILTS,
    both_tilts: Sequence[float] | None = None,
    rotations: Sequence[int] | None = None,
    zooms: Sequence[float] | None = None,
) -> list[Stage]:
    """The stages of the module, from the options (see :class:`OnDemand`)."""
    stages = [Stage("plain", (((PLAIN,), (PLAIN,)),))]
    if rotations is not None or zooms is not None:
        angles = check_rotations(rotations or (0,))
        factors = check_zooms(zooms or (1.0,))
        views0 = tuple(dict.fromkeys(AffineView(scale=min(1.0, z)) for z in factors))
        views1 = tuple(
            dict.fromkeys(AffineView(phi=float(a), scale=min(1.0, 1.0 / z)) for z in factors for a in angles)
        )
        stages.append(Stage("turns", ((views0, views1),)))
    if tilts:
        tilted = (PLAIN, *tilt_views(tilts))
        stages.append(Stage("tilts0", ((tilted, (PLAIN,)),)))
        stages.append(Stage("tilts1", (((PLAIN,), tilted),)))
    if both_tilts:
        tilted = (PLAIN, *tilt_views(both_tilts))
        stages.append(Stage("tilts01", ((tilted, tilted),)))
    return stages


class OnDemand(PairMatcher):
    """A sparse method tried in stages of synthesised views until one passes the reliability test (see the
    module docstring).

    Args:
        method: the sparse method (extractor and descriptor matcher) run on every view.
        tilts: the tilts of the ``tilts0`` and ``tilts1`` stages (ASIFT's by default; empty: no such stages).
        both_tilts: the tilts of the ``tilts01`` stage (``None``: no such stage).
        rotations, zooms: the turns and zooms of the ``turns`` stage (``None`` for both: no such stage).
        align: when a homography solved the pair at a later stage than ``plain``, or at ``plain`` with
            fewer than :data:`ALIGN_BELOW` inliers, match once more with image 1 warped onto image 0 by it
            (the view search's aligned pass, :func:`~tiepoint.matchers.search.aligned_matches`): ``True``
            with ``method``, or with this other sparse method sharing its extractor. Keypoints of a
            synthesised view lose precision on their way back (a pixel of a view tilted by 4 is 4 pixels of
            the image), and a homography of few inliers is imprecise; a pair the plain stage solves well
            stays as cheap as the method.
    """

    def __init__(
        self,
        method: PairMatcher,
        tilts: Sequence[float] = ASIFT_TILTS,
        both_tilts: Sequence[float] | None = None,
        rotations: Sequence[int] | None = None,
        zooms: Sequence[float] | None = None,
        align: bool | PairMatcher = False,
    ) -> None:
        if not isinstance(method, SparseMethod):
            raise OptionError(
                f"tilts: view synthesis runs an extractor on every view; {method.name!r} matches images "
                "directly. Use a sparse method (e.g. sift, clidd-s96+mnn)"
            )
        try:
            self.stages = build_stages(tilts, both_tilts, rotations, zooms)
        except ValueError as error:
            raise OptionError(f"tilts: {error}") from None
        if not (align is True or align is False or isinstance(align, SparseMethod)):
            raise OptionError(f"align must be True, False or a sparse method, got {align!r}")
        self.method = method
        self.aligner = method if align is True else (align or None)
        self.name = method.name

    def _run(self, stage: Stage, pools: tuple[ViewFeatures, ViewFeatures]) -> Matches:
        """The stage's matches: each matching's pools matched, the union made unique (original pixels)."""
        views = (stage.views(0), stage.views(1))
        pooled = [pools[image].pooled(views[image]) for image in (0, 1)]
        found = []
        for matching in stage.matchings:
            selected = [
                np.flatnonzero(np.isin(pooled[image][1], [views[image].index(v) for v in matching[image]]))
                for image in (0, 1)
            ]
            matches = self.method.match_features(
                *(pooled[image][0].subset(selected[image]) for image in (0, 1))
            )
            found.append(
                np.stack([selected[0][matches.indices[:, 0]], selected[1][matches.indices[:, 1]]], 1)
            )
            found.append(matches.scores)
        indices = np.concatenate(found[0::2]).reshape(-1, 2)
        scores = np.concatenate(found[1::2]).astype(np.float32)
        features0, features1 = pooled[0][0], pooled[1][0]
        keep = unique_matches(
            features0.keypoints[indices[:, 0]], features1.keypoints[indices[:, 1]], scores, DUPLICATE_RADIUS
        )
        matches = matches_of(self.name, features0, features1, indices[keep], scores[keep])
        matches.info = {"stage": stage.name, "_origins": (pooled[0][1], pooled[1][1]), "_views": views}
        return matches

    def match(self, image0: ImageLike, image1: ImageLike) -> Matches:
        """Match two images (paths, arrays or tensors); keypoints in original pixels, ``info`` as in the
        module docstring."""
        arrays = as_image(image0, "image0"), as_image(image1, "image1")
        pools = (
            ViewFeatures(arrays[0], self.method.extractor),
            ViewFeatures(arrays[1], self.method.extractor),
        )
        timings = {"match": 0.0, "verify": 0.0}
        best: tuple[Matches, Verdict] | None = None
        tried = []
        for stage in self.stages:
            start = time.perf_counter()
            extracted = pools[0].seconds + pools[1].seconds
            matches = self._run(stage, pools)
            timings["match"] += (
                time.perf_counter() - start - (pools[0].seconds + pools[1].seconds - extracted)
            )
            start = time.perf_counter()
            verdict = verify(matches)
            timings["verify"] += time.perf_counter() - start
            tried.append(stage.name)
            inliers = -1 if verdict.geometry is None else verdict.geometry.num_inliers
            if (
                best is None
                or verdict.passed
                or inliers > (best[1].geometry.num_inliers if best[1].geometry else -1)
            ):
                best = (matches, verdict)
            if verdict.passed:
                break
        matches, verdict = best
        origins, views = matches.info.pop("_origins"), matches.info.pop("_views")
        solved_by = {}
        for image in (0, 1):
            counts: dict[str, int] = {}
            if verdict.geometry is not None:
                used = origins[image][matches.indices[verdict.geometry.inliers, image]]
                for view_index, count in zip(*np.unique(used, return_counts=True), strict=True):
                    counts[views[image][view_index].label()] = int(count)
            solved_by[f"views{image}"] = counts
        matches.info.update(
            solved=verdict.passed,
            model=verdict.model,
            verdict=verdict.reason,
            stages_tried=tried,
            **solved_by,
        )
        matches.info["aligned"] = False
        if (
            self.aligner is not None
            and verdict.passed
            and verdict.model == "homography"
            and (tried[-1] != "plain" or verdict.geometry.num_inliers < ALIGN_BELOW)
        ):
            start = time.perf_counter()
            matches = self._aligned(arrays, pools[0], matches, verdict.geometry)
            timings["align"] = time.perf_counter() - start
        matches.timings = {"extract0": pools[0].seconds, "extract1": pools[1].seconds, **timings}
        matches.image_size0, matches.image_size1 = image_size(arrays[0]), image_size(arrays[1])
        return matches

    def _aligned(
        self, arrays: tuple[np.ndarray, np.ndarray], pool0: ViewFeatures, best: Matches, geometry: Geometry
    ) -> Matches:
        """``best``, or the matches of the aligned pass when they are better
        (:func:`~tiepoint.matchers.search.keeps_aligned`); image 0's plain features are reused."""

        def match(_: np.ndarray, warped: np.ndarray) -> Matches:
            return self.aligner.match_features(pool0.of(PLAIN), self.aligner.extractor.extract(warped))

        aligned = aligned_matches(*arrays, geometry.matrix, match, best.info)
        refit = None if aligned is None else fit_homography(aligned)
        return aligned if keeps_aligned(aligned, refit, best, geometry.num_inliers) else best

    def __repr__(self) -> str:
        return f"OnDemand({self.method!r}, stages={[stage.name for stage in self.stages]})"

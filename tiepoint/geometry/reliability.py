"""Is an estimated model real, or could chance alone explain its inliers? The test behind
:attr:`Geometry.reliable <tiepoint.types.Geometry.reliable>`.

A robust estimator always returns *some* model: fed random points it still finds the model that the most of
them happen to agree with. :func:`assess` decides whether the inliers of a model are more than chance would
give, with two rules, both of which a reliable model must pass:

1. **Enough inliers**: at least ``min_inliers`` (by default twice the minimal sample of the model, see
   :data:`MIN_INLIERS`). A model whose inliers barely exceed the sample it was fitted to says nothing.
2. **A contrario** (Moisan & Stival, IJCV 2004, "ORSA"; Moisan, Moulon & Monasse, IPOL 2012,
   "AC-RANSAC"): the *number of false alarms*

   ``NFA = (n - s) * m * C(n, k) * C(k, s) * alpha ** (k - s)``

   bounds the expected number of models, among all that minimal samples of ``n`` random matches can give,
   with ``k`` or more inliers, where ``s`` is the minimal sample size, ``m`` the number of models a minimal
   sample can give (3 for the seven-point fundamental solver, 10 for the five-point essential solver, else
   1) and ``alpha`` the probability that one random match falls within the inlier threshold of a fixed
   model: ``pi * threshold**2 / area1`` for a point error (homography, rotation) and
   ``2 * sqrt(2) * threshold * diagonal1 / area1`` for an epipolar band (fundamental, essential, relative
   pose; the band of a Sampson error is up to ``sqrt(2)`` times wider than that of the distance to the
   line in image 1), with ``area1`` and ``diagonal1`` those of image 1. The model is reliable when
   ``NFA <= max_nfa`` (1 by default: fewer than one such model expected by chance).

An optional third rule, ``min_inlier_ratio`` (off by default), asks for a fraction of inliers among the
matches; the a-contrario rule already weighs the ratio against the number of matches, and real pairs with
thousands of matches and a few percent of inliers are common.

The defaults were checked on synthetic data only (``tests/geometry/test_reliability.py``; the numbers are
in ``docs/geometry.md``): random matches are unreliable for every model and estimator (the smallest
``log10_nfa`` of 13 to 3000 random matches is 1.4), true models with 0.5 px noise are reliable up to 50 %
outliers from 50 matches and up to 80 % from 300.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from ..types import Size

__all__ = ["MIN_INLIERS", "Reliability", "ReliabilityConfig", "alpha", "assess", "log10_nfa"]

MINIMAL_SAMPLE: dict[str, int] = {
    "homography": 4,
    "fundamental": 7,
    "essential": 5,
    "relative_pose": 5,
    "rotation": 4,
}
"""Matches in a minimal sample, by model. A rotation needs two, but the ``poselib`` and ``opencv`` rotation
solvers fit a homography (four) and take its nearest rotation, so the test counts four: on random points
their inliers are those of a homography."""

MODELS_PER_SAMPLE: dict[str, int] = {
    "homography": 1,
    "fundamental": 3,
    "essential": 10,
    "relative_pose": 10,
    "rotation": 1,
}
"""Most models that one minimal sample can give (seven-point F: 3 roots; five-point E: 10), by model."""

MIN_INLIERS: dict[str, int] = {model: 2 * size for model, size in MINIMAL_SAMPLE.items()}
"""Default of ``min_inliers`` by model: twice the minimal sample (homography 8, fundamental 14, essential and
relative pose 10, rotation 8)."""

EPIPOLAR = ("fundamental", "essential", "relative_pose")
"""Models whose inlier threshold is a distance to an epipolar line."""


@dataclass(frozen=True)
class ReliabilityConfig:
    """Options of the significance test, given to :func:`tiepoint.estimate` as ``**options``.

    Attributes:
        min_inliers: the fewest inliers of a reliable model; ``None``: :data:`MIN_INLIERS` of the model.
        max_nfa: the largest number of false alarms of a reliable model (``inf`` turns the a-contrario
            rule off).
        min_inlier_ratio: the smallest fraction of the matches that must be inliers (0: off).
    """

    min_inliers: int | None = None
    max_nfa: float = 1.0
    min_inlier_ratio: float = 0.0

    def __post_init__(self) -> None:
        minimum = self.min_inliers
        if minimum is not None and (not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 0):
            raise ValueError(f"min_inliers must be an integer >= 0 or None, got {minimum!r}")
        if not isinstance(self.max_nfa, (int, float)) or not self.max_nfa > 0:
            raise ValueError(f"max_nfa must be a positive number, got {self.max_nfa!r}")
        if not isinstance(self.min_inlier_ratio, (int, float)) or not 0 <= self.min_inlier_ratio <= 1:
            raise ValueError(f"min_inlier_ratio must be in [0, 1], got {self.min_inlier_ratio!r}")


OPTIONS = ("min_inliers", "max_nfa", "min_inlier_ratio")
"""The fields of :class:`ReliabilityConfig`: :func:`tiepoint.estimate` takes them from its ``**options``."""


class Reliability(NamedTuple):
    """The verdict of :func:`assess`.

    Attributes:
        reliable: whether the model passed every rule.
        reason: one line, e.g. ``"4 inliers of 13: fewer than 8 needed for a homography"`` or
            ``"120 inliers of 500, NFA 1e-85"``.
        log10_nfa: ``log10`` of the number of false alarms (``inf`` when the inliers are no more than a
            minimal sample).
    """

    reliable: bool
    reason: str
    log10_nfa: float


def alpha(model: str, threshold: float, size1: Size) -> float:
    """The probability that a match with a uniformly random point in image 1 (``(width, height)``) falls
    within ``threshold`` pixels of a fixed model's prediction (point or epipolar line); at most 1."""
    width, height = max(float(size1[0]), 1.0), max(float(size1[1]), 1.0)
    area = width * height
    if model in EPIPOLAR:
        band = 2.0 * math.sqrt(2.0) * threshold * math.hypot(width, height)
    else:
        band = math.pi * threshold**2
    return min(band / area, 1.0)


def _log10_binomial(n: int, k: int) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(10)


def log10_nfa(model: str, num_matches: int, num_inliers: int, probability: float) -> float:
    """``log10`` of the number of false alarms of a model with ``num_inliers`` of ``num_matches`` within the
    threshold, each random match being within it with ``probability`` (:func:`alpha`); see the module."""
    sample = MINIMAL_SAMPLE[model]
    n, k = int(num_matches), int(num_inliers)
    if k <= sample or n <= sample:  # any minimal sample fits itself: no evidence at all
        return math.inf
    if probability <= 0:
        return -math.inf
    return (
        math.log10(n - sample)
        + math.log10(MODELS_PER_SAMPLE[model])
        + _log10_binomial(n, k)
        + _log10_binomial(k, sample)
        + (k - sample) * math.log10(probability)
    )


NAMES: dict[str, str] = {
    "homography": "a homography",
    "fundamental": "a fundamental matrix",
    "essential": "an essential matrix",
    "relative_pose": "a relative pose",
    "rotation": "a rotation",
}
"""How a reason names each model."""


def assess(
    model: str,
    num_matches: int,
    num_inliers: int,
    threshold: float,
    size1: Size,
    config: ReliabilityConfig | None = None,
) -> Reliability:
    """Test a model with ``num_inliers`` of ``num_matches`` at ``threshold`` px in an image 1 of ``size1``.

    Returns:
        :class:`Reliability`: reliable only when every rule of the module passes; the reason names the first
        rule that failed, else the inliers and the NFA.
    """
    config = ReliabilityConfig() if config is None else config
    minimum = MIN_INLIERS[model] if config.min_inliers is None else config.min_inliers
    nfa = log10_nfa(model, num_matches, num_inliers, alpha(model, threshold, size1))
    count = f"{num_inliers} inliers of {num_matches}"
    if num_inliers < minimum:
        return Reliability(False, f"{count}: fewer than {minimum} needed for {NAMES[model]}", nfa)
    ratio = num_inliers / num_matches if num_matches else 0.0
    if ratio < config.min_inlier_ratio:
        reason = f"{count}: inlier ratio {ratio:.2f} below the {config.min_inlier_ratio:g} needed"
        return Reliability(False, reason, nfa)
    if nfa > math.log10(config.max_nfa):
        reason = f"{count}: as many could agree by chance (NFA {_power(nfa)} > {config.max_nfa:g})"
        return Reliability(False, reason, nfa)
    return Reliability(True, f"{count}, NFA {_power(nfa)}", nfa)


def _power(log10: float) -> str:
    """``10 ** log10`` for a reason: ``"3.2"``, ``"1e-85"``, ``"< 1e-300"``."""
    if log10 == -math.inf:
        return "< 1e-300"
    if log10 == math.inf:
        return "inf"
    if -3 <= log10 < 4:
        return f"{10**log10:.2g}"
    return f"1e{math.floor(log10):+d}".replace("+", "")

"""The significance test of every estimate, and its calibration on synthetic data only.

Random matches must come out unreliable for every model and estimator, whatever their number; true models
with noise and outliers must come out reliable. The numbers behind the defaults are in docs/geometry.md.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tiepoint.errors import EstimationError, OptionError
from tiepoint.geometry import estimate
from tiepoint.geometry.reliability import (
    MIN_INLIERS,
    ReliabilityConfig,
    alpha,
    assess,
    log10_nfa,
)
from tiepoint.types import Camera, Matches

SIZE = (640, 480)
CAMERA = Camera(500.0, 500.0, 319.5, 239.5, *SIZE)
MODELS = ["homography", "fundamental", "essential", "relative_pose", "rotation"]
THRESHOLDS = {"homography": 3.0, "rotation": 3.0}  # the defaults of estimate; 1 px for the others


def rotation(rng: np.random.Generator, degrees: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.radians(degrees)
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def project(X: np.ndarray) -> np.ndarray:
    x = X @ CAMERA.K.T
    return x[:, :2] / x[:, 2:]


def true_matches(model: str, count: int, outliers: float, seed: int, noise: float = 0.5) -> Matches:
    """``count`` matches of a random true model of kind ``model`` in two 640x480 views, Gaussian noise of
    ``noise`` px in both images, and the last ``outliers`` fraction replaced by uniform points in image 1."""
    rng = np.random.default_rng(seed)
    if model == "homography":
        H = np.eye(3) + rng.normal(0, [[0.1, 0.1, 30], [0.1, 0.1, 30], [1e-4, 1e-4, 0]])
        points0 = rng.uniform((0, 0), SIZE, (count, 2))
        mapped = np.c_[points0, np.ones(count)] @ H.T
        points1 = mapped[:, :2] / mapped[:, 2:]
    elif model == "rotation":
        X = np.c_[rng.uniform(-1, 1, (count, 2)) * [0.64, 0.48], np.ones(count)]
        points0, points1 = project(X), project(X @ rotation(rng, rng.uniform(5, 20)).T)
    else:
        X = np.c_[rng.uniform(-3, 3, count), rng.uniform(-2, 2, count), rng.uniform(5, 12, count)]
        t = np.array([-1.0, 0.1, 0.15]) + rng.normal(0, 0.1, 3)
        points0, points1 = (
            project(X),
            project(X @ rotation(rng, rng.uniform(3, 12)).T + t / np.linalg.norm(t)),
        )
    points0 = points0 + rng.normal(0, noise, points0.shape)
    points1 = points1 + rng.normal(0, noise, points1.shape)
    wrong = np.arange(count) >= round(count * (1 - outliers))
    points1[wrong] = rng.uniform((0, 0), SIZE, (np.count_nonzero(wrong), 2))
    return Matches(points0, points1, np.ones(count), SIZE, SIZE)


def random_matches(count: int, seed: int) -> Matches:
    rng = np.random.default_rng(seed)
    points0, points1 = rng.uniform((0, 0), SIZE, (count, 2)), rng.uniform((0, 0), SIZE, (count, 2))
    return Matches(points0, points1, np.ones(count), SIZE, SIZE)


def fit(matches, model: str, estimator: str = "poselib", **options):
    threshold = THRESHOLDS.get(model, 1.0)
    return estimate(
        matches, model, camera0=CAMERA, camera1=CAMERA, estimator=estimator, threshold=threshold, **options
    )


# ------------------------------------------------------------------------------------------ calibration


@pytest.mark.parametrize("estimator", ["poselib", "opencv"])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("count", [13, 50, 300])
def test_random_matches_are_unreliable(model, estimator, count):
    # the estimators find 4-9 homography and 8-19 fundamental inliers among up to 300 random matches, and
    # return them; none may pass for a model
    for seed in range(3):
        try:
            geometry = fit(random_matches(count, seed), model, estimator)
        except EstimationError:  # no model at all (a singular homography): nothing to test
            continue
        assert not geometry.reliable, geometry.reason
        assert geometry.reason.startswith(f"{geometry.num_inliers} inliers of {count}")
        assert geometry.log10_nfa > 0.5  # by a margin: the smallest seen on random matches is 1.4


@pytest.mark.parametrize("estimator", ["poselib", "opencv"])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("count, outliers", [(50, 0.0), (100, 0.5), (300, 0.8)])
def test_true_models_with_noise_and_outliers_are_reliable(model, estimator, count, outliers):
    geometry = fit(true_matches(model, count, outliers, seed=count), model, estimator)
    assert geometry.reliable, geometry.reason
    assert "NFA 1e-" in geometry.reason and geometry.log10_nfa < -3


def test_the_rule_needs_more_inliers_with_more_matches():
    # a-contrario: 10 homography inliers are evidence among 50 matches, not among 100,000
    probability = alpha("homography", 3.0, SIZE)
    assert (
        log10_nfa("homography", 50, 10, probability) < 0 < log10_nfa("homography", 100_000, 10, probability)
    )
    # beyond the minimal sample plus the ~4 inliers 500 random matches give by chance, more inliers are more
    # significant
    counts = [log10_nfa("fundamental", 500, k, alpha("fundamental", 1.0, SIZE)) for k in range(12, 60)]
    assert all(b < a for a, b in itertools.pairwise(counts)) and counts[0] > 0 > counts[-1]


def test_the_number_of_false_alarms_by_hand():
    # NFA = (n - s) * m * C(n, k) * C(k, s) * alpha^(k - s)
    probability = alpha("homography", 2.0, (100, 100))
    assert probability == pytest.approx(math.pi * 4 / 10_000)
    expected = 16 * 1 * math.comb(20, 9) * math.comb(9, 4) * probability**5
    assert 10 ** log10_nfa("homography", 20, 9, probability) == pytest.approx(expected)
    probability = alpha("fundamental", 1.0, (300, 400))
    assert probability == pytest.approx(2 * math.sqrt(2) * 500 / 120_000)
    expected = 13 * 3 * math.comb(20, 12) * math.comb(12, 7) * probability**5
    assert 10 ** log10_nfa("fundamental", 20, 12, probability) == pytest.approx(expected)
    assert log10_nfa("relative_pose", 30, 5, 0.01) == math.inf  # a minimal sample fits itself
    assert alpha("homography", 50.0, (10, 10)) == 1.0


# --------------------------------------------------------------------------------------------- the API


def test_an_unrelated_pair_is_returned_as_unreliable_with_the_reason():
    rng = np.random.default_rng(3)
    points0, points1 = rng.uniform(0, 300, (13, 2)), rng.uniform(0, 300, (13, 2))
    geometry = estimate((points0, points1), "homography")  # never raises for unreliability
    assert geometry.matrix.shape == (3, 3) and not geometry.reliable
    assert geometry.reason == f"{geometry.num_inliers} inliers of 13: fewer than 8 needed for a homography"


def test_options_change_the_test():
    matches = random_matches(50, seed=0)
    strict = fit(matches, "homography")
    assert not strict.reliable
    loose = fit(matches, "homography", min_inliers=4, max_nfa=math.inf)
    assert loose.reliable and (loose.inliers == strict.inliers).all()  # the model itself is the same
    ratio = fit(true_matches("homography", 100, 0.5, seed=1), "homography", min_inlier_ratio=0.6)
    assert not ratio.reliable and "inlier ratio 0.5" in ratio.reason
    assert "NFA" in fit(matches, "homography", min_inliers=0).reason
    with pytest.raises(OptionError, match="max_nfa"):
        fit(matches, "homography", max_nfa=0)
    with pytest.raises(OptionError, match="min_inliers"):
        fit(matches, "homography", min_inliers=2.5)


def test_every_estimator_is_tested():
    matches = true_matches("homography", 100, 0.3, seed=2)
    for estimator in ("poselib", "opencv", "gnc", "weighted"):
        geometry = estimate(matches, "homography", estimator=estimator)
        assert geometry.reliable and geometry.log10_nfa < -50, estimator
    noise = random_matches(50, seed=4)
    assert not estimate(noise, "homography", estimator="gnc").reliable


def test_points_without_an_image_size_use_their_extent():
    # points in a small box: the chance of a random match landing within 3 px is higher there
    rng = np.random.default_rng(5)
    small = estimate((rng.uniform(0, 40, (60, 2)), rng.uniform(0, 40, (60, 2))), "homography")
    assert not small.reliable


def test_assess_defaults():
    assert MIN_INLIERS == {
        "homography": 8,
        "fundamental": 14,
        "essential": 10,
        "relative_pose": 10,
        "rotation": 8,
    }
    verdict = assess("fundamental", 13, 9, 1.0, SIZE)
    assert (
        not verdict.reliable
        and verdict.reason == "9 inliers of 13: fewer than 14 needed for a fundamental matrix"
    )
    assert assess("homography", 100, 40, 3.0, SIZE, ReliabilityConfig(max_nfa=1e-300)).reliable is False
    with pytest.raises(ValueError, match="min_inlier_ratio"):
        ReliabilityConfig(min_inlier_ratio=2)

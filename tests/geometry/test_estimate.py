"""Robust estimation on synthetic scenes with known answers, and its handling of bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tiepoint.errors import EstimationError, NotEnoughMatchesError, OptionError, UnknownMethodError
from tiepoint.geometry import (
    ESTIMATORS,
    essential_from_pose,
    estimate,
    homography_corner_error,
    pose_error,
    symmetric_epipolar_distance,
)
from tiepoint.geometry.estimate import Estimator, Solution
from tiepoint.types import Camera, Matches

ESTIMATOR_NAMES = ["poselib", "opencv"]
SIZE = (640, 480)


def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """Rodrigues' rotation about ``axis`` by ``degrees``."""
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.radians(degrees)
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    x = X @ K.T
    return x[:, :2] / x[:, 2:]


def corrupt(rng: np.random.Generator, points1: np.ndarray, outlier_ratio: float) -> np.ndarray:
    """Replace a random ``outlier_ratio`` of ``points1`` by uniform points; returns the inlier mask."""
    outliers = rng.random(len(points1)) < outlier_ratio
    points1[outliers] = rng.uniform((0, 0), SIZE, (np.count_nonzero(outliers), 2))
    return ~outliers


@pytest.fixture
def two_views():
    """200 matches of random 3D points in two calibrated views, 0.3 px noise and 25% outliers."""
    rng = np.random.default_rng(7)
    K0 = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    K1 = np.array([[620.0, 0, 310.0], [0, 610.0, 245.0], [0, 0, 1]])
    R = rotation([0.2, 1.0, 0.1], 12.0)
    t = np.array([-1.0, 0.1, 0.15])
    t /= np.linalg.norm(t)
    X = np.column_stack([rng.uniform(-3, 3, 200), rng.uniform(-2, 2, 200), rng.uniform(5, 12, 200)])
    points0 = project(K0, X) + rng.normal(0, 0.3, (200, 2))
    points1 = project(K1, X @ R.T + t) + rng.normal(0, 0.3, (200, 2))
    inliers = corrupt(rng, points1, 0.25)
    return {"points0": points0, "points1": points1, "K0": K0, "K1": K1, "R": R, "t": t, "inliers": inliers}


@pytest.fixture
def homography_pair():
    """200 matches under a known homography, 0.3 px noise and 30% outliers."""
    rng = np.random.default_rng(3)
    H = np.array([[0.9, 0.08, 25.0], [-0.05, 1.05, -12.0], [2e-4, -1e-4, 1.0]])
    points0 = rng.uniform((0, 0), SIZE, (200, 2))
    mapped = np.column_stack([points0, np.ones(200)]) @ H.T
    points1 = mapped[:, :2] / mapped[:, 2:] + rng.normal(0, 0.3, (200, 2))
    inliers = corrupt(rng, points1, 0.3)
    return {"points0": points0, "points1": points1, "H": H, "inliers": inliers}


def agreement(estimated: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(estimated == truth))


# ------------------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("estimator", ESTIMATOR_NAMES)
@pytest.mark.parametrize("model", ["essential", "relative_pose"])
def test_relative_pose_is_recovered(two_views, estimator, model):
    scene = two_views
    camera0 = Camera.from_K(scene["K0"], *SIZE)
    matches = (scene["points0"], scene["points1"])
    geometry = estimate(matches, model, camera0, scene["K1"], estimator=estimator)
    assert geometry.model == model and geometry.estimator == estimator and geometry.threshold == 1.0
    assert pose_error(geometry.R, geometry.t, scene["R"], scene["t"]) < 1.0
    assert np.linalg.norm(geometry.t) == pytest.approx(1.0)
    np.testing.assert_allclose(geometry.matrix, essential_from_pose(geometry.R, geometry.t))
    assert geometry.inliers.dtype == bool and geometry.inliers.shape == (200,)
    assert agreement(geometry.inliers, scene["inliers"]) > 0.9


@pytest.mark.parametrize("estimator", ESTIMATOR_NAMES)
def test_relative_pose_from_matches_and_K(two_views, estimator):
    """A bare K takes its image size from the Matches; float32 keypoints are accepted."""
    scene = two_views
    matches = Matches(
        scene["points0"].astype(np.float32),
        scene["points1"].astype(np.float32),
        np.ones(200, dtype=np.float32),
        SIZE,
        SIZE,
    )
    geometry = estimate(matches, "relative_pose", scene["K0"], scene["K1"], estimator=estimator)
    assert pose_error(geometry.R, geometry.t, scene["R"], scene["t"]) < 1.0


@pytest.mark.parametrize("estimator", ESTIMATOR_NAMES)
def test_homography_is_recovered(homography_pair, estimator):
    pair = homography_pair
    geometry = estimate((pair["points0"], pair["points1"]), estimator=estimator)
    assert geometry.model == "homography" and geometry.threshold == 3.0
    assert homography_corner_error(geometry.matrix, pair["H"], SIZE) < 1.0
    assert geometry.matrix[2, 2] == pytest.approx(1.0)
    assert agreement(geometry.inliers, pair["inliers"]) > 0.95


@pytest.mark.parametrize("estimator", ESTIMATOR_NAMES)
def test_fundamental_fits_the_inliers(two_views, estimator):
    scene = two_views
    points0, points1, truth = scene["points0"], scene["points1"], scene["inliers"]
    geometry = estimate((points0, points1), "fundamental", estimator=estimator)
    assert geometry.R is None and geometry.t is None
    assert np.linalg.norm(geometry.matrix) == pytest.approx(1.0)
    distances = symmetric_epipolar_distance(geometry.matrix, points0[truth], points1[truth])
    assert np.median(distances) < 0.5
    assert agreement(geometry.inliers, truth) > 0.9


def test_poselib_reports_iterations_score_and_options(homography_pair):
    pair = homography_pair
    geometry = estimate((pair["points0"], pair["points1"]), threshold=2.0)
    assert geometry.threshold == 2.0 and geometry.iterations >= 1000 and geometry.score > 0
    capped = estimate((pair["points0"], pair["points1"]), max_iterations=5, min_iterations=5)
    assert capped.iterations == 5


@pytest.mark.parametrize("estimator", ESTIMATOR_NAMES)
@pytest.mark.parametrize("model", ["homography", "relative_pose"])
def test_estimation_is_deterministic(two_views, estimator, model):
    scene = two_views
    args = ((scene["points0"], scene["points1"]), model, scene["K0"], scene["K1"])
    first = estimate(*args, estimator=estimator)
    cv2.setRNGSeed(12345)  # OpenCV's global RNG must not change the result
    second = estimate(*args, estimator=estimator)
    np.testing.assert_array_equal(first.matrix, second.matrix)
    np.testing.assert_array_equal(first.inliers, second.inliers)


@pytest.mark.parametrize("method", ["default", "accurate", "ransac"])
def test_opencv_methods(homography_pair, method):
    pair = homography_pair
    geometry = estimate((pair["points0"], pair["points1"]), estimator="opencv", method=method)
    assert geometry.info["method"] == method
    assert homography_corner_error(geometry.matrix, pair["H"], SIZE) < 2.0


# ----------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("estimator", ESTIMATOR_NAMES)
def test_too_few_matches(estimator):
    points = np.random.default_rng(0).uniform(0, 100, (3, 2))
    with pytest.raises(NotEnoughMatchesError, match="at least 4 matches, got 3"):
        estimate((points, points + 1), estimator=estimator)


@pytest.mark.parametrize("estimator", ESTIMATOR_NAMES)
@pytest.mark.parametrize("model", ["homography", "fundamental", "relative_pose"])
def test_degenerate_points_raise_estimation_error(estimator, model):
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    identical = np.full((30, 2), 50.0)
    line = np.column_stack([np.arange(30.0), 2 * np.arange(30.0) + 5])
    for points0, points1 in ((identical, identical + 3), (line, line * 1.1)):
        with pytest.raises(EstimationError, match="identical|collinear"):
            estimate((points0, points1), model, K, K, estimator=estimator)


@pytest.mark.parametrize(
    "points1, message",
    [
        (np.full((10, 2), np.nan), "non-finite"),
        (np.zeros((9, 2)), "length"),
        (np.zeros((10, 3)), "shape"),
    ],
)
def test_malformed_points_raise_option_error(points1, message):
    points0 = np.random.default_rng(0).uniform(0, 100, (10, 2))
    with pytest.raises(OptionError, match=message):  # a TiepointError, and still a ValueError
        estimate((points0, points1))


def test_missing_or_bad_cameras_raise_option_error(two_views):
    matches = (two_views["points0"], two_views["points1"])
    with pytest.raises(OptionError, match="camera1"):
        estimate(matches, "essential", two_views["K0"])
    with pytest.raises(ValueError, match="camera0"):
        estimate(matches, "essential", np.eye(2), two_views["K1"])


@pytest.mark.parametrize("threshold", [0.0, -1.0, float("inf")])
def test_bad_threshold(homography_pair, threshold):
    with pytest.raises(ValueError, match="threshold"):
        estimate((homography_pair["points0"], homography_pair["points1"]), threshold=threshold)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"estimator": "ransac3000"}, UnknownMethodError, "opencv.*poselib"),
        ({"model": "affine"}, UnknownMethodError, "homography"),
        ({"max_iteration": 10}, OptionError, "max_iteration"),
        ({"estimator": "opencv", "min_iterations": 10}, OptionError, "min_iterations"),
        ({"estimator": "opencv", "method": "lmeds"}, OptionError, "magsac"),
        ({"confidence": 1.5}, OptionError, "confidence"),
        ({"min_iterations": 10, "max_iterations": 5}, OptionError, "min_iterations"),
    ],
)
def test_unknown_names_and_options(homography_pair, kwargs, error, message):
    with pytest.raises(error, match=message):
        estimate((homography_pair["points0"], homography_pair["points1"]), **kwargs)


# -------------------------------------------------------------------------------- estimator plug-ins


def _fake(solution: Solution | Exception):
    def solve(problem, config):
        if isinstance(solution, Exception):
            raise solution
        return solution

    return solve


def test_a_registered_estimator_is_dispatched_to(monkeypatch, homography_pair):
    pair = homography_pair
    inliers = np.ones(200, dtype=bool)
    solution = Solution(inliers=inliers, matrix=2 * np.eye(3), iterations=7, score=0.5)
    fake = Estimator(ESTIMATORS["opencv"].config, {"homography": _fake(solution)})
    monkeypatch.setitem(ESTIMATORS, "fake", fake)
    geometry = estimate((pair["points0"], pair["points1"]), estimator="fake")
    assert geometry.estimator == "fake" and geometry.iterations == 7 and geometry.score == 0.5
    np.testing.assert_allclose(geometry.matrix, np.eye(3))
    with pytest.raises(UnknownMethodError, match="cannot fit model 'fundamental'"):
        estimate((pair["points0"], pair["points1"]), "fundamental", estimator="fake")


@pytest.mark.parametrize(
    "outcome",
    [
        Solution(inliers=np.ones(200, dtype=bool), matrix=np.full((3, 3), np.nan)),
        Solution(inliers=np.ones(200, dtype=bool), matrix=np.zeros((3, 3))),
        Solution(inliers=np.ones(200, dtype=bool), matrix=np.ones((3, 3))),
        Solution(inliers=np.ones(200, dtype=bool), matrix=None),
        Solution(inliers=np.zeros(200, dtype=bool), matrix=np.eye(3)),
        Solution(inliers=np.ones(150, dtype=bool), matrix=np.eye(3)),
        RuntimeError("backend exploded"),
    ],
)
def test_backend_failures_raise_estimation_error(monkeypatch, homography_pair, outcome):
    fake = Estimator(ESTIMATORS["opencv"].config, {"homography": _fake(outcome)})
    monkeypatch.setitem(ESTIMATORS, "fake", fake)
    with pytest.raises(EstimationError, match="'fake'"):
        estimate((homography_pair["points0"], homography_pair["points1"]), estimator="fake")


@pytest.mark.parametrize(
    "R, t",
    [
        (np.eye(3), np.zeros(3)),
        (np.eye(3), np.full(3, np.nan)),
        (2 * np.eye(3), np.ones(3)),
        (np.eye(2), np.ones(3)),
    ],
)
def test_bad_poses_raise_estimation_error(monkeypatch, two_views, R, t):
    solution = Solution(inliers=np.ones(200, dtype=bool), R=R, t=t)
    fake = Estimator(ESTIMATORS["opencv"].config, {"relative_pose": _fake(solution)})
    monkeypatch.setitem(ESTIMATORS, "fake", fake)
    matches = (two_views["points0"], two_views["points1"])
    with pytest.raises(EstimationError, match="'fake'"):
        estimate(matches, "essential", two_views["K0"], two_views["K1"], estimator="fake")

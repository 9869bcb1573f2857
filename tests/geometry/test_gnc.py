"""GNC-TLS: known answers on synthetic problems, outlier robustness at a fixed seed, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import tiepoint
from tiepoint.errors import EstimationError, OptionError
from tiepoint.geometry.accuracy import (
    homography_corner_error,
    pose_error,
    rotation_error,
    symmetric_epipolar_distance,
)
from tiepoint.geometry.gnc import l1_fits, tls_weights
from tiepoint.types import Camera
from tiepoint_lab.bench.solvers import make_problem


def threshold_px(model: str) -> float:
    return 3.0 if model in ("homography", "rotation") else 1.0


def _estimate(problem, model=None, **options):
    model = model or problem.model
    threshold = threshold_px(model)
    return tiepoint.estimate(
        (problem.points0, problem.points1), model, problem.camera0, problem.camera1,
        threshold=threshold, estimator="gnc", **options,
    )  # fmt: skip


def test_tls_weights_follow_the_surrogate():
    r = np.array([0.0, 0.5, 0.9, 2.0, 100.0])
    w = tls_weights(r, threshold=1.0, mu=1.0)
    assert w[0] == 1.0 and w[-1] == 0.0
    assert np.all(np.diff(w) <= 0) and np.all((w >= 0) & (w <= 1))
    # Large mu: the truncated quadratic (inside 1, outside 0).
    assert np.array_equal(tls_weights(r, 1.0, 1e6), [1, 1, 1, 0, 0])


def test_noise_free_answers_are_exact():
    problem = make_problem("homography", 100, outlier_rate=0.0, noise=0.0, seed=1)
    H = _estimate(problem).matrix
    assert homography_corner_error(H, problem.H, (640, 480)) < 1e-6
    problem = make_problem("relative_pose", 100, outlier_rate=0.0, noise=0.0, seed=1)
    g = _estimate(problem)
    assert pose_error(g.R, g.t, problem.R, problem.t) < 1e-4
    assert g.inliers.all() and g.cost < 1e-12


@pytest.mark.parametrize(
    ("model", "outlier_rate", "tolerance"),
    [
        ("homography", 0.4, 2.0),
        ("fundamental", 0.0, 1.0),
        ("relative_pose", 0.0, 2.0),
        ("rotation", 0.8, 0.3),
    ],
)
def test_noisy_problems_with_outliers(model, outlier_rate, tolerance):
    problem = make_problem(model, 300, outlier_rate=outlier_rate, noise=1.0, seed=0)
    g = _estimate(problem)
    if model == "homography":
        error = homography_corner_error(g.matrix, problem.H, (640, 480))
    elif model == "fundamental":
        error = float(np.mean(symmetric_epipolar_distance(g.matrix, problem.clean0, problem.clean1)))
    elif model == "relative_pose":
        error = pose_error(g.R, g.t, problem.R, problem.t)
    else:
        error = rotation_error(g.R, problem.R)
    assert error < tolerance
    # Most true inliers recovered, few outliers accepted.
    # Most true inliers recovered (noise of 1 px in both images puts some beyond a 1 px threshold), few
    # outliers accepted.
    assert np.mean(g.inliers[problem.inliers]) > (0.8 if threshold_px(model) == 3.0 else 0.5)
    if (~problem.inliers).any():
        assert np.mean(g.inliers[~problem.inliers]) < 0.05
    assert g.estimator == "gnc" and g.iterations >= 0 and g.cost is not None


def test_l1_fits_find_the_null_vector_despite_gross_outliers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=9)
    x /= np.linalg.norm(x)
    rows = rng.normal(size=(60, 9))
    rows -= np.outer(rows @ x, x)  # every row orthogonal to x ...
    rows[:10] += rng.normal(size=(10, 9)) * 5  # ... but 10 gross outliers
    best = l1_fits(rows)[0]
    assert min(np.linalg.norm(best - x), np.linalg.norm(best + x)) < 1e-6


def _narrow_view_pose_problem(outlier_rate: float, seed: int = 0):
    """A temple-like pair: f = 1500 px (a 24-degree view), 23-degree turn, 0.5 px noise."""
    rng = np.random.default_rng(seed)
    camera = Camera(1500.0, 1500.0, 320.0, 240.0, 640, 480)
    angle = np.radians(23.0)
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    centre = np.array([0.0, 0.0, 5.0])  # both cameras look at the scene centre, 5 units away
    t = centre - R @ centre
    count = 200
    inliers = round(count * (1 - outlier_rate))
    X = centre + rng.uniform(-0.5, 0.5, size=(inliers, 3))
    x0 = X @ camera.K.T
    x1 = (X @ R.T + t) @ camera.K.T
    points0 = x0[:, :2] / x0[:, 2:] + rng.normal(scale=0.5, size=(inliers, 2))
    points1 = x1[:, :2] / x1[:, 2:] + rng.normal(scale=0.5, size=(inliers, 2))
    outliers = rng.uniform([0, 0], [640, 480], size=(2, count - inliers, 2))
    return np.vstack([points0, outliers[0]]), np.vstack([points1, outliers[1]]), camera, R, t, inliers


@pytest.mark.parametrize("outlier_rate", [0.0, 0.1])
def test_relative_pose_with_a_narrow_field_of_view(outlier_rate):
    # Regression: the linear eight-point fit projected onto the essential matrices has Sampson errors above
    # a 1 px threshold at f = 1500 px, so GNC lost every inlier (Middlebury temple AUC@10 5.3 vs 60.2).
    points0, points1, camera, R, t, inliers = _narrow_view_pose_problem(outlier_rate)
    g = tiepoint.estimate((points0, points1), "relative_pose", camera, camera, threshold=1.0, estimator="gnc")
    assert pose_error(g.R, g.t, R, t) < 1.0
    assert np.mean(g.inliers[:inliers]) > 0.9 and not g.inliers[inliers:].any()


@pytest.mark.parametrize(
    ("model", "outlier_rate", "tolerance"), [("relative_pose", 0.2, 2.0), ("homography", 0.6, 2.0)]
)
def test_unseeded_gnc_with_outliers(model, outlier_rate, tolerance):
    # Regression: unseeded GNC broke down at 20% outliers for relative pose and 60% for homographies when it
    # started from the least-squares fit of all matches; the L1 starts carry it further.
    problem = make_problem(model, 300, outlier_rate=outlier_rate, noise=1.0, seed=2)
    g = _estimate(problem)
    if model == "homography":
        error = homography_corner_error(g.matrix, problem.H, (640, 480))
    else:
        error = pose_error(g.R, g.t, problem.R, problem.t)
    assert error < tolerance
    old = _estimate(problem, start="least_squares")
    assert old.num_inliers <= g.num_inliers


def test_seeded_gnc_survives_many_outliers():
    problem = make_problem("relative_pose", 300, outlier_rate=0.8, noise=1.0, seed=0)
    g = _estimate(problem, seed="poselib")
    start = tiepoint.estimate(
        (problem.points0, problem.points1), "relative_pose", problem.camera0, problem.camera1
    )
    error = pose_error(g.R, g.t, problem.R, problem.t)
    assert error < 5.0 and error < pose_error(start.R, start.t, problem.R, problem.t) + 0.5


def test_options_are_validated():
    problem = make_problem("homography", 50, outlier_rate=0.0, noise=0.0, seed=0)
    for options in (
        {"annealing": 1.0},
        {"seed": "magic"},
        {"max_iterations": 0},
        {"refine": "yes"},
        {"start": "ransac"},
        {"truncation": 0},
    ):
        with pytest.raises(OptionError):
            _estimate(problem, **options)


def test_degenerate_input_raises_a_clear_error():
    # Every match the same point pair in image 1: no homography has support.
    rng = np.random.default_rng(0)
    points0 = rng.uniform(0, 600, size=(20, 2))
    points1 = np.repeat(rng.uniform(0, 600, size=(1, 2)), 20, axis=0) + rng.normal(size=(20, 2)) * 1e-3
    points1[:2] += 50  # not all identical, so estimate() accepts the input
    with pytest.raises(EstimationError):
        tiepoint.estimate((points0, points1), "homography", estimator="gnc")

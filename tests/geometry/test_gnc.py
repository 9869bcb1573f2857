"""GNC-TLS: known answers on synthetic problems, outlier robustness at a fixed seed, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import tiepoint
from tiepoint.bench.solvers import make_problem
from tiepoint.errors import EstimationError, OptionError
from tiepoint.geometry.accuracy import (
    homography_corner_error,
    pose_error,
    rotation_error,
    symmetric_epipolar_distance,
)
from tiepoint.geometry.gnc import tls_weights


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
    [("homography", 0.4, 2.0), ("fundamental", 0.0, 1.0), ("relative_pose", 0.0, 2.0), ("rotation", 0.8, 0.3)],
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
    for options in ({"annealing": 1.0}, {"seed": "magic"}, {"max_iterations": 0}, {"refine": "yes"}):
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

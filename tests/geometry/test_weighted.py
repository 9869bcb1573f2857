"""The covariance-weighted estimator: weighted residuals, better models under heteroscedastic noise, input
checks."""

from __future__ import annotations

import numpy as np
import pytest

from tiepoint.errors import OptionError
from tiepoint.geometry import estimate, homography_corner_error, pose_error
from tiepoint.geometry.weighted import WeightedConfig, sampson_residuals, transfer_residuals
from tiepoint.types import Camera, Features, Matches

SIZE = (640, 480)
H_TRUE = np.array([[1.05, 0.04, 12.0], [-0.03, 0.97, 6.0], [8e-5, -4e-5, 1.0]])


def _heteroscedastic(rng, points0, points1, outliers=0.2):
    """Noise of a different standard deviation (0.2 to 3 px) per point, and uniform outliers."""
    n = len(points0)
    s0, s1 = rng.uniform(0.2, 3.0, n), rng.uniform(0.2, 3.0, n)
    noisy0 = points0 + rng.standard_normal((n, 2)) * s0[:, None]
    noisy1 = points1 + rng.standard_normal((n, 2)) * s1[:, None]
    bad = rng.random(n) < outliers
    noisy1[bad] = rng.uniform((0, 0), SIZE, (bad.sum(), 2))
    return noisy0, noisy1, s0[:, None, None] ** 2 * np.eye(2), s1[:, None, None] ** 2 * np.eye(2)


def _homography_scene(rng, n=300):
    points0 = rng.uniform((0, 0), SIZE, (n, 2))
    mapped = np.c_[points0, np.ones(n)] @ H_TRUE.T
    return points0, mapped[:, :2] / mapped[:, 2:]


def test_residuals_match_their_definitions():
    rng = np.random.default_rng(0)
    p0, p1 = _homography_scene(rng, 5)
    assert np.allclose(
        transfer_residuals(H_TRUE, p0, p1, np.broadcast_to(np.eye(2), (5, 2, 2))), 0, atol=1e-9
    )
    # Sampson error with identity covariances: |x1^T F x0| / sqrt(|F x0|_12^2 + |F^T x1|_12^2)
    F = rng.standard_normal((3, 3))
    h0, h1 = np.c_[p0, np.ones(5)], np.c_[p1, np.ones(5)]
    expected = (h1 * (h0 @ F.T)).sum(1) / np.sqrt(
        ((h0 @ F.T)[:, :2] ** 2).sum(1) + ((h1 @ F)[:, :2] ** 2).sum(1)
    )
    identity = np.broadcast_to(np.eye(2), (5, 2, 2))
    assert np.allclose(sampson_residuals(F, p0, p1, identity, identity), expected)
    # scaling every covariance by 4 halves the weighted residual
    assert np.allclose(sampson_residuals(F, p0, p1, 4 * identity, 4 * identity), expected / 2)


def test_weighted_homography_beats_unweighted_with_true_covariances():
    rng = np.random.default_rng(1)
    errors = {"poselib": [], "weighted": []}
    for _ in range(8):
        p0, p1, c0, c1 = _heteroscedastic(rng, *_homography_scene(rng))
        errors["poselib"].append(
            homography_corner_error(estimate((p0, p1), threshold=6).matrix, H_TRUE, SIZE)
        )
        geometry = estimate((p0, p1), threshold=6, estimator="weighted", covariances0=c0, covariances1=c1)
        assert geometry.info["weighted"] is True
        errors["weighted"].append(homography_corner_error(geometry.matrix, H_TRUE, SIZE))
    assert np.median(errors["weighted"]) < 0.85 * np.median(errors["poselib"])


def test_weighted_relative_pose_and_fundamental():
    rng = np.random.default_rng(2)
    K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    camera = Camera.from_K(K, *SIZE)
    angle = 0.1
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    t = np.array([1.0, 0.1, 0.05]) / np.linalg.norm([1.0, 0.1, 0.05])
    errors = {"poselib": [], "weighted": []}
    for _ in range(6):
        X = np.c_[rng.uniform(-2, 2, (300, 2)), rng.uniform(4, 8, 300)]
        x0, x1 = X @ K.T, (X @ R.T + t) @ K.T
        p0, p1, c0, c1 = _heteroscedastic(rng, x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:], outliers=0.1)
        for name, extra in (("poselib", {}), ("weighted", {"covariances0": c0, "covariances1": c1})):
            geometry = estimate(
                (p0, p1), "relative_pose", camera, camera, threshold=4, estimator=name, **extra
            )
            errors[name].append(pose_error(geometry.R, geometry.t, R, t))
    assert np.median(errors["weighted"]) < np.median(errors["poselib"])
    fundamental = estimate(
        (p0, p1), "fundamental", threshold=4, estimator="weighted", covariances0=c0, covariances1=c1
    )
    assert np.linalg.matrix_rank(fundamental.matrix, tol=1e-8) == 2
    assert fundamental.num_inliers > 200


def test_covariances_come_from_the_matched_features_and_are_checked():
    rng = np.random.default_rng(3)
    p0, p1 = _homography_scene(rng, 50)
    covariances = np.broadcast_to(np.eye(2, dtype=np.float32), (50, 2, 2)).copy()
    features0 = Features(
        p0.astype(np.float32), np.ones(50, np.float32), np.zeros((50, 0), np.float32), SIZE, covariances
    )
    features1 = Features(
        p1.astype(np.float32), np.ones(50, np.float32), np.zeros((50, 0), np.float32), SIZE, covariances
    )
    index = np.stack([np.arange(50), np.arange(50)], 1)
    matches = Matches(
        p0.astype(np.float32),
        p1.astype(np.float32),
        np.ones(50, np.float32),
        SIZE,
        SIZE,
        indices=index,
        features0=features0,
        features1=features1,
    )
    assert estimate(matches, estimator="weighted").info["weighted"] is True
    assert (
        estimate((p0, p1), estimator="weighted").info["weighted"] is False
    )  # identity: unweighted refinement
    with pytest.raises(ValueError, match="covariances0 must have shape"):
        estimate((p0, p1), estimator="weighted", covariances0=np.eye(2))
    with pytest.raises(ValueError, match="covariances1 must be positive definite"):
        estimate((p0, p1), estimator="weighted", covariances1=-covariances)
    with pytest.raises(OptionError):
        estimate((p0, p1), estimator="weighted", huber=0)
    assert WeightedConfig().huber > 0

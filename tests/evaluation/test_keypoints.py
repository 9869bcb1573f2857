"""Keypoint metrics: repeatability and covariance calibration on constructed cases with known answers."""

from __future__ import annotations

import numpy as np

from tiepoint.evaluation.keypoints import (
    calibration,
    homography_jacobians,
    keypoint_pairs,
    propagated_errors,
    repeatability,
)

SIZE = (200, 100)


def test_repeatability_counts_mutual_pairs_within_the_threshold():
    rng = np.random.default_rng(0)
    points = rng.uniform((10, 10), (190, 90), (50, 2))
    H = np.array([[1.0, 0, 5.0], [0, 1.0, -3.0], [0, 0, 1.0]])
    moved = points + (5.0, -3.0)
    assert repeatability(points, moved, H, SIZE, SIZE) == 1.0
    shifted = moved.copy()
    shifted[:10] += 4.0  # 10 points now 5.7 px away: not repeated at 3 px
    assert abs(repeatability(points, shifted, H, SIZE, SIZE, 3.0) - 0.8) < 0.05
    # points mapped outside the other image are not counted
    far = np.array([[1.0, 0, 500.0], [0, 1.0, 0], [0, 0, 1.0]])
    assert repeatability(points, moved, far, SIZE, SIZE) == 0.0
    index0, index1, visible0, visible1 = keypoint_pairs(points, moved, H, SIZE, SIZE, 3.0)
    assert np.array_equal(index0, index1) and visible0 <= 50 and visible1 <= 50


def test_jacobians_match_finite_differences():
    H = np.array([[1.1, 0.2, 3.0], [-0.1, 0.9, 2.0], [1e-3, 2e-3, 1.0]])
    point = np.array([[30.0, 40.0]])
    J = homography_jacobians(point, H)[0]
    step = 1e-5

    def f(p):
        h = H @ np.append(p, 1.0)
        return h[:2] / h[2]

    numeric = np.stack([(f(point[0] + step * e) - f(point[0] - step * e)) / (2 * step) for e in np.eye(2)], 1)
    assert np.allclose(J, numeric, atol=1e-6)


def test_calibration_slope_is_one_for_calibrated_and_two_for_overconfident_predictions():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.3, 2.0, 20000)
    errors = rng.standard_normal((20000, 2)) * sigma[:, None]
    covariances = sigma[:, None, None] ** 2 * np.eye(2)
    calibrated = calibration(errors, covariances)
    assert abs(calibrated["slope"] - 1) < 0.03 and abs(calibrated["whitened"] - 1) < 0.05
    assert abs(calibration(errors, covariances / 4)["slope"] - 2) < 0.06
    assert calibration(errors[:5], covariances[:5])["slope"] is None


def test_propagated_errors_add_the_transferred_covariance():
    H = np.diag([2.0, 2.0, 1.0])
    errors, predicted = propagated_errors(
        np.array([[1.0, 1.0]]), np.array([[2.5, 2.0]]), np.eye(2)[None], np.eye(2)[None], H
    )
    assert np.allclose(errors, [[-0.5, 0.0]]) and np.allclose(predicted, 5 * np.eye(2))

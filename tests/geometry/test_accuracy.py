"""Errors against ground truth: known answers."""

from __future__ import annotations

import numpy as np
import pytest

from tiepoint.geometry import accuracy


def rotation_z(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def test_homography_corner_error():
    H = np.array([[1.1, 0.02, 5.0], [0.01, 0.9, -3.0], [1e-4, 0.0, 1.0]])
    assert accuracy.homography_corner_error(H, 3 * H, (640, 480)) == pytest.approx(0.0, abs=1e-9)
    assert accuracy.homography_corner_error(shift(1, 0), np.eye(3), (640, 480)) == pytest.approx(1.0)
    assert accuracy.homography_corner_error(shift(3, 4), np.eye(3), (10, 10)) == pytest.approx(5.0)
    # A scale about the origin moves the corners (0,0), (9,0), (9,9), (0,9) by 0, 9, 9*sqrt(2), 9.
    scale = np.diag([2.0, 2.0, 1.0])
    assert accuracy.homography_corner_error(scale, np.eye(3), (10, 10)) == pytest.approx(
        (18 + 9 * np.sqrt(2)) / 4
    )
    to_infinity = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0]])  # maps x = 0 to infinity
    assert accuracy.homography_corner_error(to_infinity, np.eye(3), (10, 10)) == np.inf


def test_apply_homography_and_transfer_error():
    points0 = np.array([[0.0, 0.0], [10.0, 20.0]])
    np.testing.assert_allclose(accuracy.apply_homography(2 * shift(1, 2), points0), [[1, 2], [11, 22]])
    errors = accuracy.homography_transfer_error(shift(1, 2), points0, np.array([[1.0, 2.0], [14.0, 26.0]]))
    np.testing.assert_allclose(errors, [0.0, 5.0])
    with pytest.raises(ValueError, match="length"):
        accuracy.homography_transfer_error(np.eye(3), points0, points0[:1])


def test_rotation_error():
    assert accuracy.rotation_error(np.eye(3), np.eye(3)) == pytest.approx(0.0)
    assert accuracy.rotation_error(rotation_z(10), np.eye(3)) == pytest.approx(10.0)
    assert accuracy.rotation_error(rotation_z(30), rotation_z(-15)) == pytest.approx(45.0)
    assert accuracy.rotation_error(rotation_z(180), np.eye(3)) == pytest.approx(180.0)
    with pytest.raises(ValueError, match="R_gt"):
        accuracy.rotation_error(np.eye(3), np.eye(2))


def test_translation_error():
    t = np.array([1.0, 2.0, 3.0])
    assert accuracy.translation_error(t, t) == pytest.approx(0.0, abs=1e-6)
    assert accuracy.translation_error(-t, 5 * t) == pytest.approx(0.0, abs=1e-6)
    assert accuracy.translation_error([1, 0, 0], [0, 1, 0]) == pytest.approx(90.0)
    assert accuracy.translation_error([1, 1, 0], [-1, 0, 0]) == pytest.approx(45.0)
    assert accuracy.translation_error([0, 0, 0], t) == np.inf
    assert accuracy.translation_error(t, [0, 0, 0]) == 0.0


def test_pose_error_is_the_larger_error():
    assert accuracy.pose_error(rotation_z(10), [1, 0, 0], np.eye(3), [1, 0, 0]) == pytest.approx(10.0)
    assert accuracy.pose_error(rotation_z(10), [1, 1, 0], np.eye(3), [1, 0, 0]) == pytest.approx(45.0)


def test_relative_pose_maps_camera0_into_camera1():
    rng = np.random.default_rng(0)
    R0, R1 = rotation_z(20), rotation_z(-35) @ rotation_z(5)
    t0, t1 = rng.normal(size=3), rng.normal(size=3)
    R, t = accuracy.relative_pose(R0, t0, R1, t1)
    X_world = rng.normal(size=(5, 3))
    X0, X1 = X_world @ R0.T + t0, X_world @ R1.T + t1
    np.testing.assert_allclose(X0 @ R.T + t, X1)


def test_essential_and_fundamental_from_pose():
    np.testing.assert_allclose(accuracy.skew([1, 2, 3]) @ [4, 5, 6], np.cross([1, 2, 3], [4, 5, 6]))
    rng = np.random.default_rng(1)
    R, t = rotation_z(8), np.array([0.5, -0.2, 0.1])
    K0 = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    K1 = np.array([[700.0, 0, 300], [0, 650.0, 250], [0, 0, 1]])
    X0 = np.column_stack([rng.uniform(-1, 1, (20, 2)), rng.uniform(3, 6, 20)])
    X1 = X0 @ R.T + t
    y0, y1 = X0 / X0[:, 2:], X1 / X1[:, 2:]
    np.testing.assert_allclose(
        np.sum(y1 * (y0 @ accuracy.essential_from_pose(R, t).T), axis=1), 0, atol=1e-12
    )
    x0, x1 = (y0 @ K0.T)[:, :2], (y1 @ K1.T)[:, :2]
    F = accuracy.fundamental_from_pose(R, t, K0, K1)
    np.testing.assert_allclose(accuracy.symmetric_epipolar_distance(F, x0, x1), 0, atol=1e-8)


def test_symmetric_epipolar_distance_known_answer():
    # Pure x translation with identical cameras: epipolar lines are the rows y = const in both images,
    # so a vertical offset of d pixels is a distance of d to each line.
    F = accuracy.skew([1.0, 0.0, 0.0])
    points0 = np.array([[10.0, 20.0], [5.0, 7.0]])
    points1 = np.array([[40.0, 23.0], [-3.0, 7.0]])
    np.testing.assert_allclose(accuracy.symmetric_epipolar_distance(F, points0, points1), [3.0, 0.0])
    # A point at the epipole has no epipolar line.
    F = accuracy.skew([0.0, 0.0, 1.0])  # epipole at the origin
    assert accuracy.symmetric_epipolar_distance(F, np.zeros((1, 2)), np.ones((1, 2)))[0] == np.inf


def test_auc():
    assert accuracy.auc([0.0, 0.0, 0.0], [1, 5, 10]) == pytest.approx([1.0, 1.0, 1.0])
    assert accuracy.auc([np.inf, np.inf, np.nan], [1, 5]) == [0.0, 0.0]
    assert accuracy.auc([], [5, 10]) == [0.0, 0.0]
    # Curve (0, 0) -> (1, 0.5) -> (2, 1): up to 2 the error at 2 itself is not yet counted, so the area is
    # 0.25 (first trapezoid) + 0.5 (flat at 0.5 to 2) = 0.75 over 2; up to 4 it is 0.25 + 0.75 + 2 = 3.
    assert accuracy.auc([2.0, 1.0], [2.0, 4.0]) == pytest.approx([0.375, 0.75])
    # A failure halves the recall: (0, 0) -> (1, 0.5), then flat at 0.5.
    assert accuracy.auc([1.0, np.inf], [1.0, 2.0]) == pytest.approx([0.0, 0.5 * 0.5 / 2 + 0.5 / 2])
    with pytest.raises(ValueError, match="thresholds"):
        accuracy.auc([1.0], [0.0])

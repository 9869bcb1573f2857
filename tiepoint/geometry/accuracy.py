"""Errors of estimated two-view geometry against ground truth, as the benchmarks report them.

Everything is float64 NumPy; distances are in pixels, angles in degrees. Poses follow
:mod:`tiepoint.types`: a relative pose ``(R, t)`` maps camera 0's frame into camera 1's, ``X1 = R @ X0 + t``.
A failed estimate is scored with an error of ``inf``, which :func:`auc` counts as a miss.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..types import Size

_ZERO_NORM = 1e-12
"""Translation vectors shorter than this are treated as zero (no direction)."""


def _as_array(value: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``value`` as a float64 array of ``shape`` (``-1`` allowed for one free axis), else ``ValueError``."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != len(shape) or any(s != -1 and a != s for a, s in zip(array.shape, shape, strict=True)):
        spec = "(" + ", ".join("M" if s == -1 else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {spec}, got {array.shape}")
    return array


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    return _as_array(points, (-1, 2), name)


def _as_matches(points0: np.ndarray, points1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two ``(M, 2)`` float64 arrays of matching points, else ``ValueError``."""
    points0, points1 = _as_points(points0, "points0"), _as_points(points1, "points1")
    if len(points0) != len(points1):
        raise ValueError(f"points0 and points1 differ in length: {len(points0)} and {len(points1)}")
    return points0, points1


def _homogeneous(points: np.ndarray) -> np.ndarray:
    """``(M, 2)`` pixel coordinates as ``(M, 3)`` homogeneous coordinates ``(x, y, 1)``."""
    return np.concatenate([points, np.ones((len(points), 1))], axis=1)


def apply_homography(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points by a homography.

    Args:
        H: ``(3, 3)`` homography.
        points: ``(M, 2)`` pixel coordinates.

    Returns:
        ``(M, 2)`` mapped pixel coordinates; ``inf`` for points mapped to infinity (or to NaN).
    """
    H = _as_array(H, (3, 3), "H")
    mapped = _homogeneous(_as_points(points, "points")) @ H.T
    with np.errstate(divide="ignore", invalid="ignore"):
        result = mapped[:, :2] / mapped[:, 2:]
    result[~np.isfinite(result).all(axis=1)] = np.inf
    return result


def inside_image(points: np.ndarray, size: Size) -> np.ndarray:
    """``(N,)`` bool: which ``(N, 2)`` pixel coordinates lie on an image of ``size`` ``(width, height)``,
    whose pixels cover ``[-0.5, width - 0.5] x [-0.5, height - 0.5]`` (pixel centres at integers); ``nan`` is
    outside."""
    width, height = size
    x, y = points[:, 0], points[:, 1]
    with np.errstate(invalid="ignore"):
        return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


def homography_jacobians(points: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``(N, 2, 2)`` Jacobians of the map ``x -> H(x)`` at ``(N, 2)`` points."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    homogeneous = points @ H[:, :2].T + H[:, 2]
    w = homogeneous[:, 2][:, None, None]
    outer = homogeneous[:, :2, None] * H[2, :2][None, None, :]
    return (H[None, :2, :2] * w - outer) / (w * w)


def homography_corner_error(H_est: np.ndarray, H_gt: np.ndarray, image_size0: Size) -> float:
    """Mean distance between the corners of image 0 mapped by the estimate and by the ground truth.

    The corners are the centres of the corner pixels, ``(0, 0)``, ``(w-1, 0)``, ``(w-1, h-1)``, ``(0, h-1)``.

    Args:
        H_est: ``(3, 3)`` estimated homography from image 0 to image 1.
        H_gt: ``(3, 3)`` ground-truth homography.
        image_size0: ``(width, height)`` of image 0.

    Returns:
        The mean corner distance in pixels of image 1; ``inf`` if a corner maps to infinity.
    """
    w, h = image_size0
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    distances = np.linalg.norm(apply_homography(H_est, corners) - apply_homography(H_gt, corners), axis=1)
    return float(np.mean(distances)) if np.isfinite(distances).all() else np.inf


def homography_transfer_error(H_gt: np.ndarray, points0: np.ndarray, points1: np.ndarray) -> np.ndarray:
    """Distance of each match from the ground-truth homography, ``|H_gt x0 - x1|``.

    Args:
        H_gt: ``(3, 3)`` ground-truth homography from image 0 to image 1.
        points0: ``(M, 2)`` pixel coordinates in image 0.
        points1: ``(M, 2)`` matching pixel coordinates in image 1.

    Returns:
        ``(M,)`` distances in pixels of image 1 (``inf`` where ``x0`` maps to infinity).
    """
    points0, points1 = _as_matches(points0, points1)
    return np.linalg.norm(apply_homography(H_gt, points0) - points1, axis=1)


def rotation_error(R_est: np.ndarray, R_gt: np.ndarray) -> float:
    """The angle of the rotation ``R_est^T R_gt`` between two rotations, in degrees in ``[0, 180]``."""
    R_est, R_gt = _as_array(R_est, (3, 3), "R_est"), _as_array(R_gt, (3, 3), "R_gt")
    cosine = (np.trace(R_est.T @ R_gt) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def translation_error(t_est: np.ndarray, t_gt: np.ndarray) -> float:
    """The angle between two translation directions, ignoring sign and scale, in degrees in ``[0, 90]``.

    Two views fix a translation only up to scale (and an essential matrix only up to sign), so the error is
    ``min(a, 180 - a)`` where ``a`` is the angle between ``t_est`` and ``t_gt``.

    Returns:
        The angle in degrees; ``0`` when ``t_gt`` is zero (a pure rotation, where every direction is
        right), otherwise ``inf`` when ``t_est`` is zero.
    """
    t_est, t_gt = _as_array(t_est, (3,), "t_est"), _as_array(t_gt, (3,), "t_gt")
    norm_est, norm_gt = np.linalg.norm(t_est), np.linalg.norm(t_gt)
    if norm_gt < _ZERO_NORM:
        return 0.0
    if norm_est < _ZERO_NORM or not np.isfinite(norm_est):
        return np.inf
    angle = float(np.degrees(np.arccos(np.clip(t_est @ t_gt / (norm_est * norm_gt), -1.0, 1.0))))
    return min(angle, 180.0 - angle)


def pose_error(R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray) -> float:
    """The larger of :func:`rotation_error` and :func:`translation_error`, in degrees (the usual pose error).

    Args:
        R_est, t_est: estimated ``(3, 3)`` rotation and ``(3,)`` translation (any scale).
        R_gt, t_gt: ground-truth relative pose, ``X1 = R X0 + t``.
    """
    return max(rotation_error(R_est, R_gt), translation_error(t_est, t_gt))


def relative_pose(
    R0: np.ndarray, t0: np.ndarray, R1: np.ndarray, t1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The relative pose of two cameras from their world-to-camera poses ``X_cam = R X_world + t``.

    Args:
        R0, t0: ``(3, 3)`` rotation and ``(3,)`` translation of camera 0.
        R1, t1: the same for camera 1.

    Returns:
        ``(R, t)`` with ``X1 = R X0 + t``: ``R = R1 R0^T``, ``t = t1 - R t0`` (in the world's units).
    """
    R0, R1 = _as_array(R0, (3, 3), "R0"), _as_array(R1, (3, 3), "R1")
    t0, t1 = _as_array(t0, (3,), "t0"), _as_array(t1, (3,), "t1")
    R = R1 @ R0.T
    return R, t1 - R @ t0


def skew(v: np.ndarray) -> np.ndarray:
    """The ``(3, 3)`` cross-product matrix ``[v]x`` of a ``(3,)`` vector: ``[v]x @ w == cross(v, w)``."""
    x, y, z = _as_array(v, (3,), "v")
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def essential_from_pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The essential matrix ``E = [t]x R`` of a relative pose (``t`` is used as given, not normalised)."""
    return skew(t) @ _as_array(R, (3, 3), "R")


def fundamental_from_pose(R: np.ndarray, t: np.ndarray, K0: np.ndarray, K1: np.ndarray) -> np.ndarray:
    """The fundamental matrix ``F = K1^-T [t]x R K0^-1`` of a relative pose (``x1^T F x0 = 0`` in pixels).

    Args:
        R, t: ``(3, 3)`` rotation and ``(3,)`` translation, ``X1 = R X0 + t``.
        K0, K1: ``(3, 3)`` calibration matrices of images 0 and 1.
    """
    K0, K1 = _as_array(K0, (3, 3), "K0"), _as_array(K1, (3, 3), "K1")
    return np.linalg.inv(K1).T @ essential_from_pose(R, t) @ np.linalg.inv(K0)


def nearest_rotation(M: np.ndarray) -> np.ndarray:
    """The rotation closest to a ``(3, 3)`` matrix in the Frobenius norm (``U diag(1, 1, det) V^T``)."""
    U, _, Vt = np.linalg.svd(_as_array(M, (3, 3), "M"))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    return U @ D @ Vt


def homography_from_rotation(R: np.ndarray, K0: np.ndarray, K1: np.ndarray) -> np.ndarray:
    """The homography ``K1 R K0^-1`` of a purely rotating camera (``H[2, 2]`` scaled to 1 where possible).

    Args:
        R: ``(3, 3)`` rotation, ``X1 = R X0``.
        K0, K1: ``(3, 3)`` calibration matrices of images 0 and 1.
    """
    K0, K1 = _as_array(K0, (3, 3), "K0"), _as_array(K1, (3, 3), "K1")
    H = K1 @ _as_array(R, (3, 3), "R") @ np.linalg.inv(K0)
    return H / H[2, 2] if abs(H[2, 2]) > 1e-12 else H


def rotation_from_homography(H: np.ndarray, K0: np.ndarray, K1: np.ndarray) -> np.ndarray:
    """The rotation nearest to ``K1^-1 H K0`` (the inverse of :func:`homography_from_rotation`), scaled to
    determinant 1 first; for a homography of a camera that did not purely rotate it is an approximation."""
    K0, K1 = _as_array(K0, (3, 3), "K0"), _as_array(K1, (3, 3), "K1")
    M = np.linalg.inv(K1) @ _as_array(H, (3, 3), "H") @ K0
    det = np.linalg.det(M)
    return nearest_rotation(M / np.cbrt(det) if det != 0 else M)


def symmetric_epipolar_distance(F: np.ndarray, points0: np.ndarray, points1: np.ndarray) -> np.ndarray:
    """The symmetric point-to-epipolar-line distance of each match.

    For homogeneous ``x0 = (x, y, 1)`` and ``x1`` it is the mean of two point-to-line distances in pixels::

        d = ( |x1^T F x0| / ||(F x0)[:2]||  +  |x1^T F x0| / ||(F^T x1)[:2]|| ) / 2

    the first being the distance of ``x1`` to its epipolar line ``F x0`` in image 1, the second that of
    ``x0`` to ``F^T x1`` in image 0.

    Args:
        F: ``(3, 3)`` fundamental matrix, ``x1^T F x0 = 0``.
        points0: ``(M, 2)`` pixel coordinates in image 0.
        points1: ``(M, 2)`` matching pixel coordinates in image 1.

    Returns:
        ``(M,)`` distances in pixels; ``inf`` where an epipolar line is undefined (a point at an epipole).
    """
    F = _as_array(F, (3, 3), "F")
    x0, x1 = (_homogeneous(points) for points in _as_matches(points0, points1))
    lines1 = x0 @ F.T  # F x0, epipolar lines in image 1
    lines0 = x1 @ F  # F^T x1, epipolar lines in image 0
    residual = np.abs(np.sum(x1 * lines1, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        to_line1 = residual / np.linalg.norm(lines1[:, :2], axis=1)
        to_line0 = residual / np.linalg.norm(lines0[:, :2], axis=1)
        distance = (to_line1 + to_line0) / 2
    return np.where(np.isnan(distance), np.inf, distance)


def auc(errors: Sequence[float] | np.ndarray, thresholds: Sequence[float]) -> list[float]:
    """Area under the recall-versus-error curve up to each threshold, normalised to ``[0, 1]``.

    The curve starts at ``(0, 0)`` and joins the points ``(e_k, k / n)`` of the sorted errors
    ``e_1 <= ... <= e_n`` by straight lines (trapezoids); up to a threshold ``T`` it covers the errors below
    ``T`` and then stays flat to ``T``. The area is divided by ``T``, so 1 means every error is 0. This is
    the pose AUC of SuperGlue and later benchmarks.

    Args:
        errors: ``(n,)`` errors (e.g. degrees or pixels); ``inf`` or NaN mark failures, which count as misses.
        thresholds: positive thresholds in the unit of ``errors``.

    Returns:
        One AUC per threshold; all zeros when ``errors`` is empty.
    """
    errors = np.asarray(errors, dtype=np.float64).ravel()
    errors = np.sort(np.where(np.isnan(errors), np.inf, errors))
    if any(not (t > 0 and np.isfinite(t)) for t in thresholds):
        raise ValueError(f"thresholds must be positive and finite, got {list(thresholds)}")
    if len(errors) == 0:
        return [0.0 for _ in thresholds]
    knots = np.concatenate([[0.0], errors])
    recall = np.arange(len(errors) + 1) / len(errors)
    areas = []
    for threshold in thresholds:
        below = int(np.searchsorted(errors, threshold, side="left"))  # errors strictly below the threshold
        x = np.append(knots[: below + 1], threshold)
        y = np.append(recall[: below + 1], recall[below])
        areas.append(float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) / threshold))
    return areas

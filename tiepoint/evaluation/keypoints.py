"""Keypoint metrics under a known homography: repeatability and covariance calibration (pure NumPy).

* **repeatability@t**: of the keypoints of each image that the homography maps inside the other image, the
  share that have a keypoint of the other image within ``t`` px, counted once per keypoint pair (mutual
  nearest neighbours in reprojected coordinates) and divided by the smaller of the two visible counts
  (Mikolajczyk et al. 2005's definition with point distances instead of region overlaps).
* **calibration slope** ``beta``: keypoint pairs matched within a radius are grouped into equal-count bins
  of predicted standard deviation ``sqrt(trace(C) / 2)``, ``C = Sigma_1 + J Sigma_0 J^T`` the covariance of
  the reprojection error; ``beta`` is the least-squares slope through the origin of each bin's observed RMS
  error per axis against its mean predicted standard deviation (1 is perfectly calibrated).
"""

from __future__ import annotations

import numpy as np

from ..geometry.accuracy import homography_jacobians, inside_image

__all__ = [
    "calibration",
    "homography_jacobians",
    "keypoint_pairs",
    "propagated_errors",
    "repeatability",
    "warp",
]


def warp(points: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 2)`` points mapped by ``H`` and ``(N,)`` bool "in front" (``w > 0``)."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    homogeneous = points @ H[:, :2].T + H[:, 2]
    w = homogeneous[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        mapped = homogeneous[:, :2] / w[:, None]
    return mapped, w > 0


def keypoint_pairs(
    keypoints0: np.ndarray,
    keypoints1: np.ndarray,
    H: np.ndarray,
    size0: tuple[int, int],
    size1: tuple[int, int],
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Mutual nearest keypoints within ``threshold`` px after mapping image 0's keypoints by ``H``.

    Args:
        keypoints0, keypoints1: ``(N0, 2)`` and ``(N1, 2)`` pixel positions.
        H: ``(3, 3)`` homography from image 0 to image 1.
        size0, size1: ``(width, height)`` of the images.
        threshold: pixel distance in image 1.

    Returns:
        index0, index1: ``(P,)`` indices of the paired keypoints; visible0, visible1: the numbers of keypoints
        of each image that map inside the other.
    """
    H = np.asarray(H, np.float64) / H[2, 2]
    mapped0, front0 = warp(keypoints0, H)
    mapped1, front1 = warp(keypoints1, np.linalg.inv(H))
    visible0 = np.flatnonzero(front0 & inside_image(mapped0, size1))
    visible1 = np.flatnonzero(front1 & inside_image(mapped1, size0))
    if len(visible0) == 0 or len(visible1) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, len(visible0), len(visible1)
    distance = np.linalg.norm(
        mapped0[visible0, None] - np.asarray(keypoints1, np.float64)[None, visible1], axis=-1
    )
    nearest1, nearest0 = distance.argmin(1), distance.argmin(0)
    mutual = nearest0[nearest1] == np.arange(len(visible0))
    close = distance[np.arange(len(visible0)), nearest1] <= threshold
    keep = mutual & close
    return visible0[keep], visible1[nearest1[keep]], len(visible0), len(visible1)


def repeatability(
    keypoints0: np.ndarray,
    keypoints1: np.ndarray,
    H: np.ndarray,
    size0: tuple[int, int],
    size1: tuple[int, int],
    threshold: float = 3.0,
) -> float:
    """Repeatability of two keypoint sets under ``H`` (image 0 -> 1) at ``threshold`` px (see the module)."""
    index0, _, visible0, visible1 = keypoint_pairs(keypoints0, keypoints1, H, size0, size1, threshold)
    smaller = min(visible0, visible1)
    return len(index0) / smaller if smaller else 0.0


def propagated_errors(
    keypoints0: np.ndarray,
    keypoints1: np.ndarray,
    covariances0: np.ndarray,
    covariances1: np.ndarray,
    H: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Reprojection errors ``H(x0) - x1`` ``(P, 2)`` and their predicted covariances ``(P, 2, 2)``
    ``Sigma_1 + J Sigma_0 J^T`` of already paired keypoints."""
    H = np.asarray(H, np.float64) / H[2, 2]
    mapped, _ = warp(keypoints0, H)
    J = homography_jacobians(keypoints0, H)
    predicted = np.asarray(covariances1, np.float64) + J @ np.asarray(covariances0, np.float64) @ J.transpose(
        0, 2, 1
    )
    return mapped - np.asarray(keypoints1, np.float64), predicted


def calibration(errors: np.ndarray, covariances: np.ndarray, bins: int = 10) -> dict[str, object]:
    """The calibration slope of predicted covariances against observed errors (see the module).

    Args:
        errors: ``(P, 2)`` observed reprojection errors, pixels.
        covariances: ``(P, 2, 2)`` their predicted covariances, pixels².
        bins: number of equal-count bins of predicted standard deviation.

    Returns:
        ``slope`` (beta), ``affine_slope`` (the slope of a line fitted with an intercept: near 0 when the
        predictions do not tell precise keypoints from imprecise ones, whatever ``slope`` is), ``predicted``
        and ``observed`` per-bin standard deviations (px), ``count`` of pairs, and ``whitened`` (mean of
        ``e^T C^-1 e / 2``, 1 when calibrated).
    """
    errors, covariances = np.asarray(errors, np.float64), np.asarray(covariances, np.float64)
    if len(errors) < bins:
        return {
            "slope": None,
            "affine_slope": None,
            "predicted": [],
            "observed": [],
            "count": len(errors),
            "whitened": None,
        }
    predicted = np.sqrt(np.trace(covariances, axis1=1, axis2=2) / 2)
    squared = (errors**2).sum(1) / 2
    order = np.argsort(predicted)
    groups = np.array_split(order, bins)
    pred = np.array([predicted[g].mean() for g in groups])
    observed = np.array([np.sqrt(squared[g].mean()) for g in groups])
    slope = float((pred * observed).sum() / (pred * pred).sum())
    affine_slope = float(np.polyfit(pred, observed, 1)[0]) if np.ptp(pred) > 0 else None
    whitened = float(np.einsum("ni,nij,nj->n", errors, np.linalg.inv(covariances), errors).mean() / 2)
    return {
        "slope": slope,
        "affine_slope": affine_slope,
        "predicted": pred.tolist(),
        "observed": observed.tolist(),
        "count": len(errors),
        "whitened": whitened,
    }

"""Benchmark metrics: per-pair records and their summaries (pure NumPy, no model code).

Definitions (all fractions in ``[0, 1]``; tables print them as percentages):

* **corner error** (homography pairs): mean distance of image 0's four corners mapped by the estimated and
  the ground-truth H (:func:`~tiepoint.geometry.accuracy.homography_corner_error`); ``inf`` when no model
  was found.
* **pose error** (relative-pose pairs): ``max(rotation error, translation-direction error)`` in degrees;
  ``inf`` when no model was found.
* **MHA@t**: the fraction of pairs whose corner error is ``<= t`` px (t = 1, 3, 5).
* **AUC@t**: area under the recall-versus-error curve up to ``t`` (:func:`~tiepoint.geometry.accuracy.auc`),
  of the corner error at 3/5/10 px or of the pose error at 5/10/20 degrees. Failures count as misses.
* **MMA@t** (homography) / **precision@t** (relative pose): for each pair, the fraction of its matches whose
  ground-truth error is ``<= t`` px, averaged over pairs; a pair with zero matches contributes 0. The error
  of a match is its transfer error under the ground-truth H, or its symmetric epipolar distance under the
  ground-truth fundamental matrix.
* **mean #matches / #inliers / inlier ratio** over all pairs; a failed pair has 0 inliers, and a pair
  without matches an inlier ratio of 0.
* **unreliable**: the pairs whose model was estimated but failed the significance test of
  :mod:`tiepoint.geometry.reliability` (its inliers could be chance). They are scored as estimated, like
  every other model (the protocol's ``unreliable`` policy), so that this count changes no other number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..geometry.accuracy import (
    auc,
    fundamental_from_pose,
    homography_transfer_error,
    symmetric_epipolar_distance,
)
from ..types import Camera

MMA_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in range(1, 11))
"""Pixel thresholds of the match-precision curve (MMA)."""

MHA_THRESHOLDS: tuple[float, ...] = (1.0, 3.0, 5.0)
"""Corner-error thresholds (px) of the mean homography accuracy."""

CORNER_AUC_THRESHOLDS: tuple[float, ...] = (3.0, 5.0, 10.0)
"""Corner-error thresholds (px) of the homography AUC."""

POSE_AUC_THRESHOLDS: tuple[float, ...] = (5.0, 10.0, 20.0)
"""Pose-error thresholds (degrees) of the relative-pose AUC."""


def key(metric: str, threshold: float, unit: str) -> str:
    """The summary key of a thresholded metric, e.g. ``key("mha", 1.0, "px") == "mha@1px"``."""
    return f"{metric}@{threshold:g}{unit}"


def precision_name(task: str) -> str:
    """What the per-match precision of a task is called in summaries: ``"mma"`` or ``"precision"``."""
    return "mma" if task == "homography" else "precision"


@dataclass
class PairRecord:
    """What the benchmark measured on one pair.

    Attributes:
        name: the pair's name in its dataset.
        group: its sequence or scene.
        num_matches: number of matches the method returned.
        num_inliers: inliers of the estimated model (0 when estimation failed).
        error: corner error in px (homography) or pose error in degrees (relative pose); ``inf`` on failure.
        failed: True when no model could be estimated.
        precision: for each threshold of the protocol, the fraction of matches with ground-truth error
            ``<= t`` px (all 0 for a pair without matches).
        extract_ms: mean extraction time per image (``None`` for methods that match a pair directly).
        match_ms: matching time of the pair (``None`` when the method does not report it).
        estimate_ms: robust-estimation time.
        message: why estimation failed, else empty.
        reliable: whether the estimated model passed the significance test (False for a failed pair;
            ``None`` in records written before the test existed).
        reason: the test's verdict in one line (:attr:`tiepoint.types.Geometry.reason`), or why estimation
            failed.
    """

    name: str
    group: str
    num_matches: int
    num_inliers: int
    error: float
    failed: bool
    precision: list[float]
    extract_ms: float | None = None
    match_ms: float | None = None
    estimate_ms: float | None = None
    message: str = ""
    reliable: bool | None = None
    reason: str = ""

    @property
    def inlier_ratio(self) -> float:
        """Inliers over matches; 0 for a pair without matches."""
        return self.num_inliers / self.num_matches if self.num_matches else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite numbers (the error of a failed pair) become ``None``."""
        data = asdict(self)
        data["error"] = finite_or_none(self.error)
        data["precision"] = [finite_or_none(p) for p in self.precision]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairRecord:
        data = dict(data)
        data["error"] = math.inf if data.get("error") is None else float(data["error"])
        return cls(**data)


def finite_or_none(value: Any) -> Any:
    """``value`` as a plain Python number, or ``None`` when it is NaN or infinite (JSON has no inf)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def match_precision(errors: np.ndarray, thresholds: Sequence[float]) -> list[float]:
    """For each threshold, the fraction of ``errors`` that are ``<= t``; all 0 when there are no errors."""
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0:
        return [0.0 for _ in thresholds]
    return [float(np.mean(errors <= t)) for t in thresholds]


def homography_match_errors(H_gt: np.ndarray, points0: np.ndarray, points1: np.ndarray) -> np.ndarray:
    """Transfer error ``|H_gt x0 - x1|`` of each match in px (see :mod:`tiepoint.geometry.accuracy`)."""
    if len(points0) == 0:
        return np.zeros(0)
    return homography_transfer_error(H_gt, points0, points1)


def epipolar_match_errors(
    R: np.ndarray, t: np.ndarray, camera0: Camera, camera1: Camera, points0: np.ndarray, points1: np.ndarray
) -> np.ndarray:
    """Symmetric epipolar distance of each match in px under the ground-truth fundamental matrix."""
    if len(points0) == 0:
        return np.zeros(0)
    F = fundamental_from_pose(R, t, camera0.K, camera1.K)
    return symmetric_epipolar_distance(F, points0, points1)


def fraction_below(errors: Sequence[float], thresholds: Sequence[float]) -> list[float]:
    """For each threshold, the fraction of pairs whose error is ``<= t`` (``inf`` never is); MHA."""
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0:
        return [0.0 for _ in thresholds]
    return [float(np.mean(errors <= t)) for t in thresholds]


def summarize(
    records: Sequence[PairRecord], task: str, mma_thresholds: Sequence[float] = MMA_THRESHOLDS
) -> dict[str, float]:
    """The summary metrics of a benchmark run.

    Keys (values are fractions, counts or means; see the module docstring):

    * both tasks: ``num_pairs``, ``failures``, ``unreliable`` (estimated but not reliable; scored all the
      same), ``mean_matches``, ``mean_inliers``, ``mean_inlier_ratio``,
      ``median_error`` (px or degrees; ``inf`` when half the pairs or more failed);
    * homography: ``mha@1px``, ``mha@3px``, ``mha@5px``, ``auc@3px``, ``auc@5px``, ``auc@10px``,
      ``mma@<t>px`` for each MMA threshold;
    * relative pose: ``auc@5deg``, ``auc@10deg``, ``auc@20deg``, ``precision@<t>px`` for each threshold.

    Raises:
        ValueError: an unknown task, or a record whose precision list does not match the thresholds.
    """
    if task not in ("homography", "relative_pose"):
        raise ValueError(f"task must be 'homography' or 'relative_pose', got {task!r}")
    for record in records:
        if len(record.precision) != len(mma_thresholds):
            raise ValueError(
                f"pair {record.name!r} has {len(record.precision)} precision values "
                f"for {len(mma_thresholds)} thresholds"
            )
    n = len(records)
    errors = np.array([r.error for r in records], dtype=np.float64)
    summary: dict[str, float] = {
        "num_pairs": n,
        "failures": int(sum(r.failed for r in records)),
        "unreliable": int(sum(not r.failed and r.reliable is False for r in records)),
        "mean_matches": float(np.mean([r.num_matches for r in records])) if n else 0.0,
        "mean_inliers": float(np.mean([r.num_inliers for r in records])) if n else 0.0,
        "mean_inlier_ratio": float(np.mean([r.inlier_ratio for r in records])) if n else 0.0,
        "median_error": float(np.median(errors)) if n else math.inf,
    }
    if task == "homography":
        for t, value in zip(MHA_THRESHOLDS, fraction_below(errors, MHA_THRESHOLDS), strict=True):
            summary[key("mha", t, "px")] = value
        for t, value in zip(CORNER_AUC_THRESHOLDS, auc(errors, CORNER_AUC_THRESHOLDS), strict=True):
            summary[key("auc", t, "px")] = value
    else:
        for t, value in zip(POSE_AUC_THRESHOLDS, auc(errors, POSE_AUC_THRESHOLDS), strict=True):
            summary[key("auc", t, "deg")] = value
    name = precision_name(task)
    precision = np.array([r.precision for r in records], dtype=np.float64).reshape(n, len(mma_thresholds))
    means = precision.mean(axis=0) if n else np.zeros(len(mma_thresholds))
    for t, value in zip(mma_thresholds, means, strict=True):
        summary[key(name, t, "px")] = float(value)
    return summary


def precision_curve(
    summary: dict[str, float], task: str, thresholds: Sequence[float]
) -> tuple[list[float], list[float]]:
    """``(thresholds, values)`` of the MMA / precision curve stored in a summary."""
    name = precision_name(task)
    return [float(t) for t in thresholds], [float(summary[key(name, t, "px")]) for t in thresholds]


__all__ = [
    "CORNER_AUC_THRESHOLDS",
    "MHA_THRESHOLDS",
    "MMA_THRESHOLDS",
    "POSE_AUC_THRESHOLDS",
    "PairRecord",
    "epipolar_match_errors",
    "finite_or_none",
    "fraction_below",
    "homography_match_errors",
    "key",
    "match_precision",
    "precision_curve",
    "precision_name",
    "summarize",
]

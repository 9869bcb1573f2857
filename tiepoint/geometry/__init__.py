"""Two-view geometry: robust estimation and errors against ground truth. Knows nothing about models."""

from . import (  # noqa: F401  (register the estimators "gnc", "bnb" and "sdp")
    bnb,
    gnc,
    relaxation,
    weighted,
)
from .accuracy import (
    apply_homography,
    auc,
    essential_from_pose,
    fundamental_from_pose,
    homography_corner_error,
    homography_transfer_error,
    pose_error,
    relative_pose,
    rotation_error,
    skew,
    symmetric_epipolar_distance,
    translation_error,
)
from .estimate import ESTIMATORS, MODELS, estimate, register_estimator

__all__ = [
    "ESTIMATORS",
    "MODELS",
    "apply_homography",
    "auc",
    "essential_from_pose",
    "estimate",
    "fundamental_from_pose",
    "homography_corner_error",
    "homography_transfer_error",
    "pose_error",
    "register_estimator",
    "relative_pose",
    "rotation_error",
    "skew",
    "symmetric_epipolar_distance",
    "translation_error",
]

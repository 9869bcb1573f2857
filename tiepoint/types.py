"""The data that flows through tiepoint: features, matches, cameras and two-view geometry.

Conventions, stated once for the whole library:

* **Pixel coordinates** are ``(x, y)`` with x to the right and y down, in pixels of the *original* image
  (before any resizing a method does internally). The centre of the top-left pixel is ``(0, 0)``, so the
  image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` (OpenCV's convention; add 0.5 for COLMAP's).
* **Image sizes** are ``(width, height)``.
* **Descriptors** are either float32 and L2-normalised (``(N, D)``), or binary, packed into uint8 bytes
  (``(N, D / 8)``, as OpenCV's ORB and AKAZE give them).
* **Covariances** of keypoint positions are ``(N, 2, 2)`` in squared pixels of the original image.
* **Relative pose** ``(R, t)`` maps a point from camera 0's frame into camera 1's: ``X1 = R @ X0 + t``.
  ``t`` from two views has no scale and is returned with unit length.
* **Homography** ``H`` maps image 0 to image 1: ``x1 ~ H @ [x0, y0, 1]``.
  **Fundamental / essential** matrices satisfy ``x1^T F x0 = 0`` (pixels) and ``y1^T E y0 = 0``
  (normalised coordinates ``y = K^-1 x``).

Arrays in these dataclasses are NumPy arrays so that any outside script can use them; the learned models
work in torch and convert at their boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

Size = tuple[int, int]
"""An image size as ``(width, height)``."""


@dataclass
class Features:
    """Keypoints and descriptors of one image.

    Attributes:
        keypoints: ``(N, 2)`` float32, pixel coordinates in the original image.
        scores: ``(N,)`` float32, detection scores (higher is better); sorted descending by extractors.
        descriptors: ``(N, D)`` float32 L2-normalised, or ``(N, D/8)`` uint8 packed binary descriptors.
        image_size: ``(width, height)`` of the original image.
        covariances: optional ``(N, 2, 2)`` float32 keypoint position covariances in pixels².
    """

    keypoints: np.ndarray
    scores: np.ndarray
    descriptors: np.ndarray
    image_size: Size
    covariances: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.keypoints)
        if self.keypoints.shape != (n, 2):
            raise ValueError(f"keypoints must have shape (N, 2), got {self.keypoints.shape}")
        if self.scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {self.scores.shape}")
        if self.descriptors.ndim != 2 or len(self.descriptors) != n:
            raise ValueError(f"descriptors must have shape ({n}, D), got {self.descriptors.shape}")
        if self.covariances is not None and self.covariances.shape != (n, 2, 2):
            raise ValueError(f"covariances must have shape ({n}, 2, 2), got {self.covariances.shape}")

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def binary(self) -> bool:
        """True when the descriptors are packed bits (uint8), compared by Hamming distance."""
        return self.descriptors.dtype == np.uint8

    def subset(self, index: np.ndarray) -> Features:
        """The features selected by a boolean mask or an index array, in that order."""
        return replace(
            self,
            keypoints=self.keypoints[index],
            scores=self.scores[index],
            descriptors=self.descriptors[index],
            covariances=None if self.covariances is None else self.covariances[index],
        )


@dataclass
class Matches:
    """Correspondences between two images: the stable result of :func:`tiepoint.match`.

    Attributes:
        keypoints0: ``(M, 2)`` float32, pixel coordinates in image 0 (original size).
        keypoints1: ``(M, 2)`` float32, the corresponding pixel coordinates in image 1.
        scores: ``(M,)`` float32 match confidence, higher is better (for descriptor matchers the similarity).
        image_size0: ``(width, height)`` of image 0.
        image_size1: ``(width, height)`` of image 1.
        method: the registered method name that produced the matches.
        indices: for sparse methods ``(M, 2)`` int64 indices into ``features0`` and ``features1``;
            ``None`` for methods that match a pair directly.
        features0, features1: the features each image was matched with (sparse methods), else ``None``.
        timings: seconds spent, by stage (``"extract0"``, ``"extract1"``, ``"match"``).
        info: further details of how the matches were found, by the wrapper that found them. A view search
            (:mod:`tiepoint.matchers.search`) sets ``"rotation1_deg"`` (the right-angle turn of image 1,
            degrees counter-clockwise), ``"zoom1"`` (the apparent magnification of image 1 relative to
            image 0) and ``"aligned"`` (whether image 1 was warped onto image 0 by a first homography).
            Keypoints are always in the original images.
    """

    keypoints0: np.ndarray
    keypoints1: np.ndarray
    scores: np.ndarray
    image_size0: Size
    image_size1: Size
    method: str = ""
    indices: np.ndarray | None = None
    features0: Features | None = None
    features1: Features | None = None
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = len(self.keypoints0)
        for name in ("keypoints0", "keypoints1"):
            if getattr(self, name).shape != (m, 2):
                raise ValueError(f"{name} must have shape ({m}, 2), got {getattr(self, name).shape}")
        if self.scores.shape != (m,):
            raise ValueError(f"scores must have shape ({m},), got {self.scores.shape}")
        if self.indices is not None and self.indices.shape != (m, 2):
            raise ValueError(f"indices must have shape ({m}, 2), got {self.indices.shape}")

    def __len__(self) -> int:
        return len(self.keypoints0)

    def subset(self, index: np.ndarray) -> Matches:
        """The matches selected by a boolean mask or an index array (features, timings and info are kept)."""
        return replace(
            self,
            keypoints0=self.keypoints0[index],
            keypoints1=self.keypoints1[index],
            scores=self.scores[index],
            indices=None if self.indices is None else self.indices[index],
        )


@dataclass(frozen=True)
class Camera:
    """A pinhole camera without distortion (COLMAP's ``PINHOLE`` model).

    Attributes:
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels (pixel-centre convention of this module).
        width, height: image size in pixels.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        from .errors import OptionError

        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(isinstance(v, (int, float, np.number)) and np.isfinite(v) for v in values):
            raise OptionError(f"camera: fx, fy, cx, cy must be finite numbers, got {values}")
        if not (self.fx > 0 and self.fy > 0):
            raise OptionError(f"camera: focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise OptionError(f"camera: {name} must be a positive number of pixels, got {value!r}")

    @classmethod
    def from_K(cls, K: np.ndarray, width: int, height: int) -> Camera:
        """Build a camera from a ``(3, 3)`` calibration matrix (skew must be zero).

        Raises:
            ValueError: ``K`` is not such a matrix; :class:`~tiepoint.errors.OptionError` (a ``ValueError``)
                for a focal length that is not positive or an image size under one pixel.
        """
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"K must have shape (3, 3), got {K.shape}")
        if abs(K[0, 1]) > 1e-9 * abs(K[0, 0]) or not np.allclose(K[2], [0, 0, 1]):
            raise ValueError(f"K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {K.tolist()}")
        return cls(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), int(width), int(height))

    @property
    def K(self) -> np.ndarray:
        """The ``(3, 3)`` calibration matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, sx: float, sy: float | None = None) -> Camera:
        """The same camera for the image resized by factors ``sx`` (and ``sy``, default ``sx``)."""
        sy = sx if sy is None else sy
        return Camera(
            self.fx * sx,
            self.fy * sy,
            (self.cx + 0.5) * sx - 0.5,
            (self.cy + 0.5) * sy - 0.5,
            max(1, round(self.width * sx)),
            max(1, round(self.height * sy)),
        )

    def normalize(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` pixel coordinates to ``(N, 2)`` normalised image coordinates ``K^-1 x``."""
        points = np.asarray(points, dtype=np.float64)
        return np.stack([(points[:, 0] - self.cx) / self.fx, (points[:, 1] - self.cy) / self.fy], axis=1)

    def to_poselib(self) -> dict[str, Any]:
        """The camera as PoseLib's camera dictionary (COLMAP model names)."""
        return {
            "model": "PINHOLE",
            "width": self.width,
            "height": self.height,
            "params": [self.fx, self.fy, self.cx, self.cy],
        }


@dataclass(frozen=True)
class Certificate:
    """Evidence of global optimality that a global solver returns with its model.

    The solver's objective has an optimal value somewhere in ``[lower_bound, upper_bound]``, and the model
    it returned attains one of the two ends: for a cost that is minimised (the convex relaxation) the
    model's cost is ``upper_bound`` and the relaxation gives ``lower_bound``; for a count that is maximised
    (branch-and-bound consensus) the model's inlier count is ``lower_bound`` and the search proves that no
    model has more than ``upper_bound``.

    Attributes:
        method: how the bounds were obtained: ``"relaxation"`` or ``"branch_and_bound"``.
        objective: what is bounded, e.g. ``"algebraic epipolar cost"`` or ``"inlier count"``.
        lower_bound, upper_bound: the bounds on the optimal value.
        certified: True when the gap is within the solver's tolerance, i.e. the model is globally optimal.
        details: further numbers (rank of the relaxation, nodes expanded, tolerances, ...).
    """

    method: str
    objective: str
    lower_bound: float
    upper_bound: float
    certified: bool
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """``upper_bound - lower_bound`` (0 for a closed gap)."""
        return self.upper_bound - self.lower_bound


@dataclass
class Geometry:
    """The result of :func:`tiepoint.estimate`: a two-view model and its inliers.

    Attributes:
        model: ``"homography"``, ``"fundamental"``, ``"essential"``, ``"relative_pose"`` or ``"rotation"``.
        matrix: ``(3, 3)`` H, F or E (see the module conventions); for ``relative_pose`` the essential
            matrix of the pose; for ``rotation`` (a purely rotating camera) the homography
            ``K1 R K0^-1`` that stitches image 0 onto image 1.
        inliers: ``(M,)`` bool, one per input match.
        estimator: the robust estimator that produced it (e.g. ``"poselib"``, ``"opencv"``).
        threshold: the inlier threshold used, in pixels.
        R: ``(3, 3)`` rotation for ``essential``, ``relative_pose`` and ``rotation``, else ``None``.
        t: ``(3,)`` unit translation direction for ``essential`` and ``relative_pose``, else ``None``.
        iterations: number of robust-estimation iterations, where the estimator reports it.
        score: the estimator's own cost or score of the model, where it reports one.
        info: further estimator-specific details.
        cost: the value of the objective the estimator minimised, where it states one (e.g. the truncated
            least-squares cost of GNC in px², the algebraic cost of the convex relaxation).
        certificate: for the global solvers, the bounds that prove (or fail to prove) global optimality.
        reliable: whether the inliers are more than chance would give (the significance test of
            :mod:`tiepoint.geometry.reliability`: enough inliers and a number of false alarms of at most 1).
            :func:`tiepoint.estimate` returns an unreliable model rather than raising; a Geometry built by
            hand is taken as reliable.
        reason: one line on the verdict, e.g. ``"4 inliers of 13: fewer than 8 needed for a homography"``.
        log10_nfa: ``log10`` of the model's number of false alarms (lower is more significant), where tested.
    """

    model: str
    matrix: np.ndarray
    inliers: np.ndarray
    estimator: str
    threshold: float
    R: np.ndarray | None = None
    t: np.ndarray | None = None
    iterations: int | None = None
    score: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    cost: float | None = None
    certificate: Certificate | None = None
    reliable: bool = True
    reason: str = ""
    log10_nfa: float | None = None

    @property
    def num_inliers(self) -> int:
        return int(np.count_nonzero(self.inliers))

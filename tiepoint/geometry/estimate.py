"""Robust two-view estimation: a homography, fundamental matrix or relative pose from matches.

:func:`estimate` validates the input once, then hands a :class:`Problem` to the solver that the chosen
*estimator* registers for the model. Estimators are entries of :data:`ESTIMATORS`, each with a typed
``Config`` of its options and one solver per kind of model, so a new robust solver (GNC, a convex
relaxation, branch-and-bound, ...) is added with :func:`register_estimator` without touching the dispatch.

Shipped estimators:

* ``"poselib"`` (default): PoseLib's LO-RANSAC with non-linear refinement; seeded, so deterministic.
* ``"weighted"`` (:mod:`~tiepoint.geometry.weighted`): PoseLib's LO-RANSAC, then a non-linear refinement
  on the inliers weighted by the keypoints' position covariances (Mahalanobis / weighted Sampson residuals).
* ``"opencv"``: OpenCV's USAC framework (MAGSAC++ by default). OpenCV seeds its robust estimators with a
  fixed internal state, so results are deterministic and independent of ``cv2.setRNGSeed``.

The global solvers register themselves from their own modules: ``"gnc"`` (graduated non-convexity,
:mod:`~tiepoint.geometry.gnc`), ``"sdp"`` (certifiable convex relaxation,
:mod:`~tiepoint.geometry.relaxation`) and ``"bnb"`` (branch-and-bound over rotations,
:mod:`~tiepoint.geometry.bnb`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import poselib

from ..config import check_positive, make_config
from ..errors import EstimationError, NotEnoughMatchesError, OptionError, TiepointError, UnknownMethodError
from ..types import Camera, Certificate, Geometry, Matches, Size
from .accuracy import essential_from_pose, homography_from_rotation, rotation_from_homography
from .reliability import OPTIONS as RELIABILITY_OPTIONS
from .reliability import ReliabilityConfig, assess

__all__ = [
    "ESTIMATORS",
    "MODELS",
    "Estimator",
    "ModelSpec",
    "OpenCVConfig",
    "PoselibConfig",
    "Problem",
    "Solution",
    "estimate",
    "register_estimator",
    "rotation_threshold",
]


# --------------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    """What a two-view model needs.

    Attributes:
        kind: the solver an estimator provides for it: ``"homography"``, ``"fundamental"``,
            ``"relative_pose"`` (``"essential"`` and ``"relative_pose"`` share one solver) or ``"rotation"``
            (a purely rotating camera with known intrinsics).
        min_matches: the fewest matches :func:`estimate` accepts.
        default_threshold: the inlier threshold in pixels when none is given.
        needs_cameras: whether ``camera0`` and ``camera1`` are required.
    """

    kind: str
    min_matches: int
    default_threshold: float
    needs_cameras: bool = False


MODELS: dict[str, ModelSpec] = {
    "homography": ModelSpec("homography", min_matches=4, default_threshold=3.0),
    "fundamental": ModelSpec("fundamental", min_matches=8, default_threshold=1.0),
    "essential": ModelSpec("relative_pose", min_matches=5, default_threshold=1.0, needs_cameras=True),
    "relative_pose": ModelSpec("relative_pose", min_matches=5, default_threshold=1.0, needs_cameras=True),
    "rotation": ModelSpec("rotation", min_matches=2, default_threshold=3.0, needs_cameras=True),
}
"""The models :func:`estimate` knows, by name."""


# ------------------------------------------------------------------------------------ solver interface


@dataclass(frozen=True)
class Problem:
    """Validated input of a solver.

    Attributes:
        points0: ``(M, 2)`` float64 pixel coordinates in image 0, finite, C-contiguous.
        points1: ``(M, 2)`` float64 matching pixel coordinates in image 1.
        threshold: inlier threshold in pixels (reprojection error for homographies, epipolar error
            otherwise, as each backend defines it; for rotations the angle it subtends at camera 1's
            focal length, see :func:`rotation_threshold`).
        camera0, camera1: the cameras for ``relative_pose`` solvers, else ``None``.
        covariances0, covariances1: optional ``(M, 2, 2)`` float64 symmetric positive-definite position
            covariances of the points in pixels² (used by covariance-weighted solvers, ignored by others).
    """

    points0: np.ndarray
    points1: np.ndarray
    threshold: float
    camera0: Camera | None = None
    camera1: Camera | None = None
    covariances0: np.ndarray | None = None
    covariances1: np.ndarray | None = None


@dataclass
class Solution:
    """What a solver returns; :func:`estimate` checks it and turns it into a :class:`Geometry`.

    Attributes:
        inliers: ``(M,)`` bool, aligned with the problem's points.
        matrix: ``(3, 3)`` H or F from homography and fundamental solvers; ``None`` when no model was found
            and for relative-pose and rotation solvers (whose matrix is built from ``R`` and ``t``).
        R: ``(3, 3)`` rotation from relative-pose and rotation solvers (``X1 = R X0 + t``).
        t: ``(3,)`` translation direction from relative-pose solvers (any non-zero length).
        iterations: robust-estimation iterations, where reported.
        score: the estimator's own model score or cost, where reported.
        info: further estimator-specific details.
        cost: the value of the objective the solver minimised, where it states one.
        certificate: bounds on the optimum from global solvers.
    """

    inliers: np.ndarray
    matrix: np.ndarray | None = None
    R: np.ndarray | None = None
    t: np.ndarray | None = None
    iterations: int | None = None
    score: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    cost: float | None = None
    certificate: Certificate | None = None


Solver = Callable[[Problem, Any], Solution]
"""``solver(problem, config) -> Solution``; ``config`` is an instance of the estimator's ``Config``."""


@dataclass(frozen=True)
class Estimator:
    """A robust estimator: the dataclass of its options and its solvers by model kind.

    Attributes:
        config: a dataclass whose fields are the estimator's ``**options`` (built with ``make_config``).
        solvers: ``{kind: solver}`` for the kinds of :class:`ModelSpec` it supports.
    """

    config: type
    solvers: Mapping[str, Solver]


ESTIMATORS: dict[str, Estimator] = {}
"""The registered estimators, by name."""


def register_estimator(name: str, config: type, solvers: Mapping[str, Solver]) -> None:
    """Make an estimator available to :func:`estimate` as ``estimator=name``.

    Args:
        name: the estimator's name.
        config: dataclass of its options; ``__post_init__`` should raise ``ValueError`` for a bad value.
        solvers: a solver for each model kind it supports (``"homography"``, ``"fundamental"``,
            ``"relative_pose"``, ``"rotation"``).
    """
    unknown = set(solvers) - {spec.kind for spec in MODELS.values()}
    if unknown:
        raise ValueError(f"estimator {name!r}: unknown model kind(s) {sorted(unknown)}")
    ESTIMATORS[name] = Estimator(config, dict(solvers))


# ------------------------------------------------------------------------------------------- dispatch


def estimate(
    matches: Matches | tuple[np.ndarray, np.ndarray],
    model: str = "homography",
    camera0: Camera | np.ndarray | None = None,
    camera1: Camera | np.ndarray | None = None,
    threshold: float | None = None,
    estimator: str = "poselib",
    covariances0: np.ndarray | None = None,
    covariances1: np.ndarray | None = None,
    **options: Any,
) -> Geometry:
    """Robustly fit a two-view model to matches and classify them into inliers and outliers.

    Args:
        matches: :class:`Matches`, or a tuple ``(points0, points1)`` of ``(M, 2)`` pixel coordinates.
        model: ``"homography"`` (``x1 ~ H x0``), ``"fundamental"`` (``x1^T F x0 = 0``), ``"essential"`` or
            ``"relative_pose"`` (both give ``R``, unit ``t`` with ``X1 = R X0 + t`` and ``E = [t]x R``;
            they differ only in :attr:`Geometry.model`), or ``"rotation"`` (a purely rotating camera:
            ``R`` with ``X1 = R X0`` and the stitching homography ``K1 R K0^-1``).
        camera0, camera1: the cameras of the two images, needed for ``"essential"``, ``"relative_pose"``
            and ``"rotation"`` (ignored otherwise): a :class:`Camera`, or a ``(3, 3)`` calibration matrix
            whose image size is taken from ``matches.image_size0/1`` (or, for a tuple, from the extent of
            the points).
        threshold: inlier threshold in pixels; by default 3.0 for homographies and 1.0 otherwise.
        estimator: a name in :data:`ESTIMATORS`: ``"poselib"`` (default), ``"opencv"``, ``"gnc"``,
            ``"sdp"`` (relative pose) or ``"bnb"`` (rotation).
        covariances0, covariances1: optional ``(M, 2, 2)`` keypoint position covariances (pixels²) of the
            matched points, used by the ``"weighted"`` estimator; by default taken from the matches'
            features (``Features.covariances`` at ``Matches.indices``) when they have them.
        **options: options of the estimator's ``Config`` (:class:`PoselibConfig`, :class:`OpenCVConfig`,
            ``GNCConfig``, ``RelaxationConfig``, ``BnBConfig``), e.g. ``max_iterations=10000``; and, for every
            estimator, the options of the significance test
            (:class:`~tiepoint.geometry.reliability.ReliabilityConfig`): ``min_inliers`` (default twice the
            minimal sample: 8 for a homography, 14 for a fundamental matrix, 10 for a relative pose, 8 for a
            rotation), ``max_nfa`` (default 1) and ``min_inlier_ratio`` (default 0, off).

    Returns:
        :class:`Geometry` with the ``(3, 3)`` matrix (H scaled so that ``H[2, 2] = 1`` where possible, F of
        unit Frobenius norm, E from the unit ``t``), ``(M,)`` bool inliers aligned with the input matches,
        the estimator and threshold used, ``iterations``, ``score`` and ``cost`` where the estimator reports
        them, the ``certificate`` of a global solver, and ``reliable`` with its ``reason`` and ``log10_nfa``:
        whether the inliers are more than random matches would give (:mod:`~tiepoint.geometry.reliability`).
        An unreliable model is returned, never raised: check ``reliable`` before trusting it.

    Raises:
        UnknownMethodError: unknown ``model`` or ``estimator``, or an estimator without that model.
        OptionError: unknown or invalid ``**options``; malformed or non-finite points, a bad threshold, or
            missing / bad cameras (an ``OptionError`` is also a ``ValueError``).
        NotEnoughMatchesError: fewer matches than the model needs.
        EstimationError: no model found (degenerate points, all outliers, backend failure).
        MissingDependencyError: the estimator needs an optional package that is not installed.
    """
    spec = _lookup(MODELS, model, "model")
    backend = _lookup(ESTIMATORS, estimator, "estimator")
    solver = backend.solvers.get(spec.kind)
    if solver is None:
        supported = sorted(name for name, s in MODELS.items() if s.kind in backend.solvers)
        raise UnknownMethodError(f"estimator {estimator!r} cannot fit model {model!r}; it fits {supported}")
    reliability = make_config(
        ReliabilityConfig, {k: options.pop(k) for k in RELIABILITY_OPTIONS if k in options}, "reliability"
    )
    config = make_config(backend.config, options, f"estimator {estimator!r}")
    if spec.needs_cameras and (camera0 is None or camera1 is None):
        raise OptionError(f"model {model!r} needs both camera0 and camera1 (a Camera or a (3, 3) K)")

    points0, points1, size0, size1 = _points(matches)
    if len(points0) < spec.min_matches:
        raise NotEnoughMatchesError(
            f"matches: model {model!r} needs at least {spec.min_matches} matches, got {len(points0)}"
        )
    threshold = _threshold(spec.default_threshold if threshold is None else threshold)
    camera0 = _camera(camera0, "camera0", size0, points0) if spec.needs_cameras else None
    camera1 = _camera(camera1, "camera1", size1, points1) if spec.needs_cameras else None
    for points, name in ((points0, "image 0"), (points1, "image 1")):
        _check_spread(points, name, model)

    covariances0, covariances1 = _match_covariances(matches, covariances0, covariances1, len(points0))
    problem = Problem(points0, points1, threshold, camera0, camera1, covariances0, covariances1)
    try:
        solution = solver(problem, config)
    except TiepointError:  # already a clear error (no model, a missing optional package)
        raise
    except Exception as error:  # a backend failure is an estimation failure, whatever the backend raises
        raise EstimationError(f"estimator {estimator!r} failed on model {model!r}: {error}") from error
    geometry = _geometry(solution, model, spec, estimator, threshold, len(points0), camera0, camera1)
    if size1 is None:
        size1 = _extent(points1) if camera1 is None else (camera1.width, camera1.height)
    verdict = assess(model, len(points0), geometry.num_inliers, threshold, size1, reliability)
    geometry.reliable, geometry.reason, geometry.log10_nfa = verdict
    return geometry


def _lookup(table: Mapping[str, Any], name: str, what: str) -> Any:
    if name not in table:
        raise UnknownMethodError(f"unknown {what} {name!r}; valid {what}s are {sorted(table)}")
    return table[name]


# ------------------------------------------------------------------------------------ input validation


def _points(
    matches: Matches | tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, Size | None, Size | None]:
    """The two ``(M, 2)`` float64 point arrays and image sizes (``None`` for a tuple) of ``matches``."""
    if isinstance(matches, Matches):
        arrays, sizes = (matches.keypoints0, matches.keypoints1), (matches.image_size0, matches.image_size1)
    elif isinstance(matches, (tuple, list)) and len(matches) == 2:
        arrays, sizes = matches, (None, None)
    else:
        kind = type(matches).__name__
        raise OptionError(f"matches must be a Matches or a tuple (points0, points1), got {kind}")
    points = []
    for index, array in enumerate(arrays):
        array = np.asarray(array, dtype=np.float64)
        if array.size == 0:
            array = array.reshape(0, 2)
        if array.ndim != 2 or array.shape[1] != 2:
            raise OptionError(f"matches: points{index} must have shape (M, 2), got {array.shape}")
        bad = np.count_nonzero(~np.isfinite(array).all(axis=1))
        if bad:
            raise OptionError(f"matches: points{index} has {bad} non-finite coordinate pair(s)")
        points.append(np.ascontiguousarray(array))
    points0, points1 = points
    if len(points0) != len(points1):
        raise OptionError(f"matches: points0 and points1 differ in length, {len(points0)} and {len(points1)}")
    return points0, points1, sizes[0], sizes[1]


def _match_covariances(
    matches: Matches | tuple[np.ndarray, np.ndarray], covariances0: Any, covariances1: Any, count: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The ``(M, 2, 2)`` covariances of the matched points: given, or from the matches' features, or None."""
    result = []
    for index, given in enumerate((covariances0, covariances1)):
        name = f"covariances{index}"
        if given is None and isinstance(matches, Matches) and matches.indices is not None:
            features = (matches.features0, matches.features1)[index]
            if features is not None and features.covariances is not None:
                given = features.covariances[matches.indices[:, index]]
        if given is None:
            result.append(None)
            continue
        array = np.asarray(given, dtype=np.float64)
        if array.shape != (count, 2, 2):
            raise OptionError(f"{name} must have shape ({count}, 2, 2), got {array.shape}")
        if not np.isfinite(array).all() or not np.allclose(
            array, array.transpose(0, 2, 1), rtol=1e-5, atol=1e-9
        ):
            raise OptionError(f"{name} must be finite and symmetric")
        if count and np.linalg.eigvalsh(array).min() <= 0:
            raise OptionError(f"{name} must be positive definite")
        result.append(np.ascontiguousarray(array))
    return result[0], result[1]


def _threshold(value: float) -> float:
    check_positive(value, "threshold")
    if not math.isfinite(value):
        raise OptionError(f"threshold must be finite, got {value!r}")
    return float(value)


def _camera(camera: Camera | np.ndarray, name: str, size: Size | None, points: np.ndarray) -> Camera:
    """``camera`` as a :class:`Camera`; a bare K takes ``size``, else the extent of ``points``."""
    if isinstance(camera, Camera):
        return camera
    if size is None:
        size = (int(np.ceil(points[:, 0].max())) + 1, int(np.ceil(points[:, 1].max())) + 1)
    try:
        return Camera.from_K(np.asarray(camera), max(size[0], 1), max(size[1], 1))
    except (TypeError, ValueError) as error:
        raise OptionError(f"{name}: {error}") from None


def _extent(points: np.ndarray) -> Size:
    """The ``(width, height)`` of the bounding box of ``points``, at least one pixel each way."""
    span = points.max(axis=0) - points.min(axis=0) + 1.0
    return float(span[0]), float(span[1])


def _check_spread(points: np.ndarray, image: str, model: str) -> None:
    """Raise ``EstimationError`` when the points of one image are all identical or all on one line."""
    singular = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    if singular[1] <= 1e-9 * max(singular[0], 1.0):
        shape = "identical" if singular[0] <= 1e-9 else "collinear"
        raise EstimationError(f"model {model!r}: the points in {image} are all {shape}, no model fits")


# ----------------------------------------------------------------------------------- result checking


def _geometry(
    solution: Solution,
    model: str,
    spec: ModelSpec,
    estimator: str,
    threshold: float,
    num_matches: int,
    camera0: Camera | None = None,
    camera1: Camera | None = None,
) -> Geometry:
    """Check a solver's solution and turn it into a :class:`Geometry`."""
    failure = f"estimator {estimator!r} found no {model!r} model"
    inliers = np.asarray(solution.inliers, dtype=bool).reshape(-1)
    if len(inliers) != num_matches:
        raise EstimationError(f"{failure}: it returned {len(inliers)} inlier flags for {num_matches} matches")
    if np.count_nonzero(inliers) < spec.min_matches:
        raise EstimationError(
            f"{failure}: only {np.count_nonzero(inliers)} inliers (at least {spec.min_matches} needed)"
        )
    R = t = None
    if spec.kind == "relative_pose":
        R, t = _pose(solution, failure)
        matrix = essential_from_pose(R, t)
    elif spec.kind == "rotation":
        R = _rotation(solution.R, failure)
        matrix = homography_from_rotation(R, camera0.K, camera1.K)
    else:
        matrix = _matrix(solution.matrix, spec.kind, failure)
    return Geometry(
        model=model,
        matrix=matrix,
        inliers=inliers,
        estimator=estimator,
        threshold=threshold,
        R=R,
        t=t,
        iterations=None if solution.iterations is None else int(solution.iterations),
        score=None if solution.score is None else float(solution.score),
        info=solution.info,
        cost=None if solution.cost is None else float(solution.cost),
        certificate=solution.certificate,
    )


def _matrix(matrix: np.ndarray | None, kind: str, failure: str) -> np.ndarray:
    """A finite, non-degenerate H (scaled to ``H[2, 2] = 1`` where possible) or F (unit norm)."""
    if matrix is None:
        raise EstimationError(failure)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.isfinite(matrix).all():
        raise EstimationError(f"{failure}: it returned a non-finite or malformed matrix")
    norm = np.linalg.norm(matrix)
    if norm == 0:
        raise EstimationError(f"{failure}: it returned a zero matrix")
    matrix = matrix / norm
    if kind == "homography":
        if abs(np.linalg.det(matrix)) < 1e-12:
            raise EstimationError(f"{failure}: it returned a singular homography")
        if abs(matrix[2, 2]) > 1e-9:
            matrix = matrix / matrix[2, 2]
    return matrix


def _pose(solution: Solution, failure: str) -> tuple[np.ndarray, np.ndarray]:
    """A finite rotation and unit translation from a relative-pose solution."""
    if solution.R is None or solution.t is None:
        raise EstimationError(failure)
    R, t = _rotation(solution.R, failure), np.asarray(solution.t, dtype=np.float64).reshape(-1)
    if t.shape != (3,):
        raise EstimationError(f"{failure}: it returned t of shape {t.shape}")
    norm = np.linalg.norm(t)
    if not np.isfinite(t).all() or norm < 1e-12:
        raise EstimationError(f"{failure}: it returned a non-finite or zero translation")
    return R, t / norm


def _rotation(R: np.ndarray | None, failure: str) -> np.ndarray:
    """A finite ``(3, 3)`` rotation matrix from a solution, else ``EstimationError``."""
    if R is None:
        raise EstimationError(failure)
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3) or not np.isfinite(R).all():
        raise EstimationError(f"{failure}: it returned a non-finite R or one of shape {R.shape}")
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
        raise EstimationError(f"{failure}: it returned a matrix that is not a rotation")
    return R


def rotation_threshold(threshold: float, camera1: Camera) -> float:
    """The angle in radians that an inlier threshold of ``threshold`` pixels subtends at the centre of
    image 1, ``atan(threshold / f1)`` with ``f1`` the mean focal length of ``camera1``: the angular
    threshold of rotation solvers."""
    return math.atan(threshold / ((camera1.fx + camera1.fy) / 2))


# -------------------------------------------------------------------------------------------- options


@dataclass
class RansacConfig:
    """Options shared by the RANSAC-style estimators."""

    max_iterations: int = 10_000
    """Stop after this many iterations at the latest."""
    confidence: float = 0.9999
    """Stop early once an all-inlier sample has been drawn with this probability, in ``(0, 1)``."""

    def __post_init__(self) -> None:
        _check_int(self.max_iterations, "max_iterations", minimum=1)
        if not isinstance(self.confidence, (int, float)) or not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence!r}")


@dataclass
class PoselibConfig(RansacConfig):
    """Options of the ``"poselib"`` estimator (PoseLib's LO-RANSAC)."""

    max_iterations: int = 100_000
    """Stop after this many iterations at the latest (PoseLib's default)."""
    min_iterations: int = 1_000
    """Run at least this many iterations."""
    seed: int = 0
    """Seed of the random sampler; a fixed seed makes the result deterministic."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self.min_iterations, "min_iterations", minimum=0)
        _check_int(self.seed, "seed", minimum=0)
        if self.min_iterations > self.max_iterations:
            raise ValueError(
                f"min_iterations ({self.min_iterations}) exceeds max_iterations ({self.max_iterations})"
            )


OPENCV_METHODS: dict[str, int] = {
    "magsac": cv2.USAC_MAGSAC,
    "default": cv2.USAC_DEFAULT,
    "accurate": cv2.USAC_ACCURATE,
    "prosac": cv2.USAC_PROSAC,
    "ransac": cv2.RANSAC,
}
"""OpenCV robust methods by option value: USAC presets (MAGSAC++, default, graph-cut LO, PROSAC) and the
classic RANSAC. ``"prosac"`` assumes the matches are ordered by decreasing confidence."""


@dataclass
class OpenCVConfig(RansacConfig):
    """Options of the ``"opencv"`` estimator (OpenCV's USAC)."""

    method: str = "magsac"
    """One of :data:`OPENCV_METHODS`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in OPENCV_METHODS:
            raise ValueError(f"method must be one of {sorted(OPENCV_METHODS)}, got {self.method!r}")


def _check_int(value: Any, name: str, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


# -------------------------------------------------------------------------------------------- poselib


def _poselib_options(config: PoselibConfig, **threshold: float) -> dict[str, Any]:
    return {
        "max_iterations": int(config.max_iterations),
        "min_iterations": int(config.min_iterations),
        "success_prob": float(config.confidence),
        "seed": int(config.seed),
        **threshold,
    }


def _poselib_solution(info: dict[str, Any], **model: Any) -> Solution:
    details = {key: info[key] for key in ("num_inliers", "inlier_ratio", "refinements") if key in info}
    return Solution(
        inliers=np.asarray(info["inliers"], dtype=bool),
        iterations=info.get("iterations"),
        score=info.get("model_score"),
        info=details,
        **model,
    )


def _poselib_homography(problem: Problem, config: PoselibConfig) -> Solution:
    options = _poselib_options(config, max_reproj_error=problem.threshold)
    H, info = poselib.estimate_homography(problem.points0, problem.points1, options)
    return _poselib_solution(info, matrix=H)


def _poselib_fundamental(problem: Problem, config: PoselibConfig) -> Solution:
    options = _poselib_options(config, max_epipolar_error=problem.threshold)
    F, info = poselib.estimate_fundamental(problem.points0, problem.points1, options)
    return _poselib_solution(info, matrix=F)


def _poselib_relative_pose(problem: Problem, config: PoselibConfig) -> Solution:
    # PoseLib divides the pixel threshold by the cameras' mean focal length itself.
    options = _poselib_options(config, max_epipolar_error=problem.threshold)
    pose, info = poselib.estimate_relative_pose(
        problem.points0, problem.points1, problem.camera0.to_poselib(), problem.camera1.to_poselib(), options
    )
    return _poselib_solution(info, R=pose.R, t=pose.t)


def _via_homography(homography: Solver) -> Solver:
    """A rotation solver from a homography solver: fit ``H`` in pixels with the same threshold, then take
    the rotation nearest to ``K1^-1 H K0`` (what a stitching pipeline without a rotation model does)."""

    def solve(problem: Problem, config: Any) -> Solution:
        solution = homography(problem, config)
        if solution.matrix is not None:
            solution.R = rotation_from_homography(solution.matrix, problem.camera0.K, problem.camera1.K)
            solution.matrix = None
        return solution

    return solve


# --------------------------------------------------------------------------------------------- opencv


def _opencv_solution(
    matrix: np.ndarray | None, mask: np.ndarray | None, problem: Problem, config: OpenCVConfig
) -> Solution:
    inliers = np.zeros(len(problem.points0), dtype=bool) if mask is None else mask.reshape(-1).astype(bool)
    return Solution(inliers=inliers, matrix=matrix, info={"method": config.method})


def _opencv_matrix_solver(find: Callable[..., tuple[np.ndarray | None, np.ndarray | None]]) -> Solver:
    """The solver of an H or F by an OpenCV ``find`` function (``cv2.findHomography``,
    ``cv2.findFundamentalMat``), which takes the same robust-estimation options."""

    def solve(problem: Problem, config: OpenCVConfig) -> Solution:
        matrix, mask = find(
            problem.points0,
            problem.points1,
            method=OPENCV_METHODS[config.method],
            ransacReprojThreshold=problem.threshold,
            maxIters=config.max_iterations,
            confidence=config.confidence,
        )
        return _opencv_solution(matrix, mask, problem, config)

    return solve


_opencv_homography = _opencv_matrix_solver(cv2.findHomography)
_opencv_fundamental = _opencv_matrix_solver(cv2.findFundamentalMat)


def _opencv_relative_pose(problem: Problem, config: OpenCVConfig) -> Solution:
    """Essential matrix, then the pose that puts the most inliers in front of both cameras.

    The points are normalised by each camera's K and scaled back by the mean focal length ``f``: a shared
    calibration ``diag(f, f, 1)`` keeps the coordinates and the pixel threshold in pixel-like units (the
    threshold is ``threshold / f`` in normalised coordinates), where MAGSAC++ is much more accurate than on
    raw normalised coordinates.
    """
    camera0, camera1 = problem.camera0, problem.camera1
    focal = (camera0.fx + camera0.fy + camera1.fx + camera1.fy) / 4
    K = np.diag([focal, focal, 1.0])
    z0, z1 = camera0.normalize(problem.points0) * focal, camera1.normalize(problem.points1) * focal
    E, mask = cv2.findEssentialMat(
        z0,
        z1,
        K,
        method=OPENCV_METHODS[config.method],
        prob=config.confidence,
        threshold=problem.threshold,
        maxIters=config.max_iterations,
    )
    solution = _opencv_solution(None, mask, problem, config)
    if E is None or not solution.inliers.any():
        return solution
    # With few points the five-point solver can return several stacked candidates.
    poses = [cv2.recoverPose(candidate, z0, z1, K, mask=mask.copy()) for candidate in E.reshape(-1, 3, 3)]
    _, solution.R, solution.t, _ = max(poses, key=lambda pose: pose[0])
    return solution


register_estimator(
    "poselib",
    PoselibConfig,
    {
        "homography": _poselib_homography,
        "fundamental": _poselib_fundamental,
        "relative_pose": _poselib_relative_pose,
        "rotation": _via_homography(_poselib_homography),
    },
)
register_estimator(
    "opencv",
    OpenCVConfig,
    {
        "homography": _opencv_homography,
        "fundamental": _opencv_fundamental,
        "relative_pose": _opencv_relative_pose,
        "rotation": _via_homography(_opencv_homography),
    },
)

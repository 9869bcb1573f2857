"""Graduated non-convexity with a truncated-least-squares cost (GNC-TLS), registered as ``estimator="gnc"``.

The robust problem is ``min_x sum_i min(r_i(x)^2, c^2)`` with ``c`` the inlier threshold in pixels. GNC
(Yang, Antonante, Tzoumas, Carlone, *Graduated Non-Convexity for Robust Spatial Perception*, RA-L 2020)
replaces the truncated quadratic by a surrogate with a control parameter ``mu`` that is convex for small
``mu`` and tends to the truncated quadratic as ``mu`` grows. Each outer step

1. sets every match's weight from its residual under the current model (the surrogate's closed form),
2. solves the *weighted non-minimal* problem ``min_x sum_i w_i r_i(x)^2`` (closed form, or locally),
3. multiplies ``mu`` by ``annealing``,

until the weights are (almost) binary. No sample is drawn: every match takes part in every step.

The start matters: GNC's first step weighs every match almost alike, and the least-squares fit of all matches
is already far off at a few percent of gross outliers (real SIFT matches have a heavy tail). The default start
is therefore the *least-absolute-deviation* (L1) fit of the same linear system (DLT or eight-point rows), a
convex problem solved exactly as a linear programme (its dual, by HiGHS through SciPy), once per choice of
the normalised entry of the model (up to 9 distinct solutions); GNC anneals from each, starting at the ``mu``
its residuals call for (``c^2 / (2 r_max^2 - c^2)``), and keeps the result of lowest truncated cost (the
lowest L1 cost is not always the right basin; this deterministic multi-start costs up to 9 annealings).
``start="least_squares"`` gives the textbook single all-matches start. The non-minimal solvers are

* homography: weighted, Hartley-normalised DLT (9 x 9 eigenproblem), with rows rescaled by the current
  projective depth so that the algebraic error approximates the transfer error;
* fundamental matrix: weighted, Hartley-normalised eight-point algorithm with Sampson rescaling and the
  rank-2 projection;
* essential matrix / relative pose: weighted Levenberg-Marquardt on the pose itself (rotation and unit
  translation, 5 degrees of freedom) minimising the weighted squared Sampson error in pixels, from the
  previous iterate (a *local* non-minimal solver, as in GTSAM's GNC). The linear eight-point fit projected
  onto the essential manifold is not used: with a narrow field of view its Sampson errors on true inliers
  exceed a 1 px threshold, and the annealing would drop them. The pose is the decomposition that puts the
  most inliers in front of both cameras;
* rotation (purely rotating camera): weighted orthogonal Procrustes on the bearing vectors.

Residuals are the ones PoseLib scores with, so inlier sets are comparable: the transfer error ``|x1 - H x0|``
(homography), the Sampson error in pixels (fundamental), the Sampson error in normalised coordinates times
the mean focal length (relative pose) and the bearing angle times camera 1's focal length (rotation).
The result is refined by PoseLib's non-linear least squares on the inliers with a truncated loss, and the
inliers are those within the threshold. Optionally a RANSAC hypothesis (``seed="poselib"`` or
``"opencv"``) replaces the L1 starts and is kept (the annealing begins where matches beyond
:data:`SEEDED_REACH` thresholds weigh 0). Rotations always start from the all-matches Procrustes fit (a
global solver), whatever ``start`` says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import cv2
import numpy as np
import poselib

from ..errors import EstimationError
from .accuracy import essential_from_pose, nearest_rotation
from .estimate import ESTIMATORS, Problem, Solution, _check_int, register_estimator, rotation_threshold

__all__ = ["GNCConfig", "bearings", "gnc_tls", "tls_weights"]

SEEDS = ("none", "poselib", "opencv")
"""Values of :attr:`GNCConfig.seed`."""

STARTS = ("l1", "least_squares")
"""Values of :attr:`GNCConfig.start`."""

SEEDED_REACH = 10.0
"""From a seed, GNC starts at the ``mu`` where matches farther than this many thresholds weigh 0: a seed
is a good model, and the fully convex start (from the largest residual) would forget it."""


@dataclass
class GNCConfig:
    """Options of the ``"gnc"`` estimator."""

    max_iterations: int = 200
    """Outer GNC steps at most (each solves one weighted non-minimal problem)."""
    annealing: float = 1.4
    """Factor by which the control parameter ``mu`` grows per step (> 1; Yang et al. use 1.4)."""
    seed: str = "none"
    """Start: ``"none"`` (least squares on all matches), or the model of ``"poselib"``/``"opencv"`` RANSAC."""
    refine: bool = True
    """Polish the result with PoseLib's non-linear refinement on the inliers (truncated loss)."""
    convergence: float = 1e-6
    """Stop once the weights are binary to this tolerance, ``sum w (1 - w) <= convergence * M``."""
    start: str = "l1"
    """Unseeded start: ``"l1"`` (convex least-absolute-deviation fit of the linear system) or
    ``"least_squares"`` (all matches, weight 1). Ignored when ``seed`` is given."""
    truncation: float = 1.0
    """The TLS bound ``c`` as a multiple of the inlier threshold (inliers are still those within the
    threshold)."""

    def __post_init__(self) -> None:
        _check_int(self.max_iterations, "max_iterations", minimum=1)
        if not isinstance(self.annealing, (int, float)) or not self.annealing > 1:
            raise ValueError(f"annealing must be a number > 1, got {self.annealing!r}")
        if self.seed not in SEEDS:
            raise ValueError(f"seed must be one of {list(SEEDS)}, got {self.seed!r}")
        if not isinstance(self.refine, bool):
            # the estimator registry expects ValueError for any bad option value (see register_estimator)
            raise ValueError(f"refine must be True or False, got {self.refine!r}")  # noqa: TRY004
        if not isinstance(self.convergence, (int, float)) or not self.convergence > 0:
            raise ValueError(f"convergence must be a positive number, got {self.convergence!r}")
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {list(STARTS)}, got {self.start!r}")
        if not isinstance(self.truncation, (int, float)) or not 0 < self.truncation < math.inf:
            raise ValueError(f"truncation must be a positive number, got {self.truncation!r}")


# --------------------------------------------------------------------------------------------- GNC core


def tls_weights(residuals: np.ndarray, threshold: float, mu: float) -> np.ndarray:
    """Weights of the GNC surrogate of the truncated quadratic ``min(r^2, c^2)`` (Yang et al. 2020, eq. 14).

    Args:
        residuals: ``(M,)`` non-negative residuals.
        threshold: the truncation ``c`` (same unit as the residuals).
        mu: the control parameter, ``> 0``; small is convex, large is the truncated quadratic.

    Returns:
        ``(M,)`` weights in ``[0, 1]``: 1 for ``r^2 <= mu / (mu + 1) c^2``, 0 for
        ``r^2 >= (mu + 1) / mu c^2`` and ``c / r sqrt(mu (mu + 1)) - mu`` in between.
    """
    r = np.asarray(residuals, dtype=np.float64)
    c2, r2 = threshold**2, r**2
    with np.errstate(divide="ignore"):
        middle = threshold / r * math.sqrt(mu * (mu + 1)) - mu
    weights = np.where(r2 <= mu / (mu + 1) * c2, 1.0, np.where(r2 >= (mu + 1) / mu * c2, 0.0, middle))
    return np.clip(weights, 0.0, 1.0)


def gnc_tls(
    fit: Any,
    residuals: Any,
    num: int,
    threshold: float,
    start: Any | None = None,
    max_iterations: int = 200,
    annealing: float = 1.4,
    convergence: float = 1e-6,
    seeded: bool = True,
) -> tuple[Any, np.ndarray, int]:
    """Minimise ``sum_i min(r_i(x)^2, c^2)`` by graduated non-convexity.

    Args:
        fit: ``fit(weights) -> model``, the weighted non-minimal solver (``(num,)`` weights in ``[0, 1]``);
            raises :class:`EstimationError` when the weighted problem is degenerate.
        residuals: ``residuals(model) -> (num,)`` non-negative residuals.
        num: number of measurements.
        threshold: the truncation ``c``.
        start: initial model; default ``fit(ones)``. The annealing begins at ``mu = c^2 / (2 r_max^2 - c^2)``
            of the start's residuals (Yang et al.), so that every match has a non-zero weight.
        max_iterations, annealing, convergence: see :class:`GNCConfig`.
        seeded: a given ``start`` is a RANSAC model to keep: the annealing then begins where residuals beyond
            ``SEEDED_REACH * threshold`` already have weight 0.

    Returns:
        ``(model, weights, steps)``: the iterate of lowest truncated cost (usually the last), its ``(num,)``
        weights and the number of GNC steps.
    """
    model = fit(np.ones(num)) if start is None else start
    r = residuals(model)
    r_max2 = float(np.max(r) ** 2) if num else 0.0
    c2 = threshold**2
    if r_max2 <= c2:  # every match is an inlier already: least squares is the TLS optimum
        return model, np.ones(num), 0
    mu = c2 / max(2 * r_max2 - c2, 1e-300)
    if start is not None and seeded:  # keep a seed: residuals beyond SEEDED_REACH * c weigh 0 from step 1
        mu = max(mu, 1.0 / (SEEDED_REACH**2 - 1.0))
    # The weighted non-minimal solvers minimise an algebraic proxy of the residual, so an iterate can be
    # worse than an earlier one: keep the iterate of lowest truncated cost (the start included).
    best = (float(np.sum(np.minimum(r * r, c2))), model, (r <= threshold).astype(np.float64))
    weights = np.ones(num)
    steps = 0
    for steps in range(1, max_iterations + 1):
        new_weights = tls_weights(r, threshold, mu)
        try:
            model = fit(new_weights)
        except EstimationError:  # too few matches keep weight: stop at the last well-posed model
            break
        weights = new_weights
        r = residuals(model)
        cost = float(np.sum(np.minimum(r * r, c2)))
        if cost < best[0]:
            best = (cost, model, weights)
        if np.sum(weights * (1 - weights)) <= convergence * num and mu > 1:
            break
        mu *= annealing
    return best[1], best[2], steps


def l1_fits(rows: np.ndarray) -> list[np.ndarray]:
    """Least-absolute-deviation solutions of a homogeneous linear system ``A x = 0``, one per normalisation.

    The unit-norm constraint makes ``min sum_i |a_i x| / |x|`` non-convex; fixing one entry ``x_j = 1``
    makes it a convex L1 regression, solved exactly through its dual linear programme ``max -a_j^T u``
    s.t. ``A_{-j}^T u = 0``, ``|u| <= 1`` (HiGHS). The ``D`` normalisations give up to ``D`` different
    solutions: GNC starts from each and keeps the best (the lowest L1 cost is not always the right basin).

    Args:
        rows: ``(K, D)`` rows ``a_i`` (Hartley-normalised DLT or eight-point rows), ``K >= D``.

    Returns:
        Distinct ``(D,)`` unit vectors, lowest normalised L1 cost first.

    Raises:
        EstimationError: when no linear programme could be solved.
    """
    from scipy.optimize import linprog

    found: list[tuple[float, np.ndarray]] = []
    for j in range(rows.shape[1]):
        others = np.delete(rows, j, axis=1)
        result = linprog(
            rows[:, j], A_eq=others.T, b_eq=np.zeros(others.shape[1]), bounds=(-1, 1), method="highs"
        )
        if result.status != 0:
            continue
        x = np.insert(-np.asarray(result.eqlin.marginals, dtype=np.float64), j, 1.0)
        x /= np.linalg.norm(x)
        if all(min(np.linalg.norm(x - y), np.linalg.norm(x + y)) > 1e-6 for _, y in found):
            found.append((float(np.abs(rows @ x).sum()), x))
    if not found:
        raise EstimationError("gnc: the L1 start's linear programmes could not be solved")
    return [x for _, x in sorted(found, key=lambda item: item[0])]


def _check_support(weights: np.ndarray, minimum: int, what: str) -> None:
    support = int(np.count_nonzero(weights > 1e-9))
    if support < minimum:
        raise EstimationError(
            f"gnc: the weighted {what} problem is degenerate: {support} match(es) with non-zero weight, "
            f"at least {minimum} needed"
        )


def _smallest_eigenvector(A: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The unit ``x`` minimising ``sum_i w_i (a_i x)^2`` for rows ``a_i`` of ``A`` ``(M, 9)``."""
    _, vectors = np.linalg.eigh((A * weights[:, None]).T @ A)
    return vectors[:, 0]


def _hartley(points: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(T, T x)``: the similarity moving the (weighted) centroid to 0 and the mean distance to sqrt 2."""
    w = np.ones(len(points)) if weights is None else weights
    centre = (w[:, None] * points).sum(0) / w.sum()
    spread = (w * np.linalg.norm(points - centre, axis=1)).sum() / w.sum()
    s = math.sqrt(2) / max(spread, 1e-12)
    T = np.array([[s, 0, -s * centre[0]], [0, s, -s * centre[1]], [0, 0, 1.0]])
    return T, np.column_stack([(points - centre) * s, np.ones(len(points))])


# ------------------------------------------------------------------------------------- per-model parts


def _homography_parts(p0: np.ndarray, p1: np.ndarray) -> tuple[Any, Any, Any]:
    T0, x0 = _hartley(p0)
    T1, x1 = _hartley(p1)
    zeros = np.zeros_like(x0)
    rows = np.concatenate(
        [
            np.hstack([zeros, -x0, x1[:, 1:2] * x0]),
            np.hstack([x0, zeros, -x1[:, 0:1] * x0]),
        ]
    )
    T1_inv = np.linalg.inv(T1)
    state: dict[str, np.ndarray] = {"depth": np.ones(len(p0))}

    def model(Hn: np.ndarray) -> np.ndarray:
        state["depth"] = np.maximum(np.abs(x0 @ Hn[2]), 1e-6)  # projective depth of the next step's rows
        return T1_inv @ Hn @ T0

    def fit(weights: np.ndarray) -> np.ndarray:
        _check_support(weights, 4, "homography")
        w = weights / state["depth"] ** 2
        return model(_smallest_eigenvector(rows, np.concatenate([w, w])).reshape(3, 3))

    def residuals(H: np.ndarray) -> np.ndarray:
        mapped = np.column_stack([p0, np.ones(len(p0))]) @ H.T
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.linalg.norm(mapped[:, :2] / mapped[:, 2:] - p1, axis=1)
        return np.where(np.isfinite(error), error, 1e12)

    return fit, residuals, lambda: [partial(model, x.reshape(3, 3)) for x in l1_fits(rows)]


def _sampson(F: np.ndarray, x0: np.ndarray, x1: np.ndarray, signed: bool = False) -> np.ndarray:
    """Sampson error of homogeneous ``(M, 3)`` points under ``x1^T F x0 = 0`` (with the sign of
    ``x1^T F x0`` when ``signed``, smooth for Gauss-Newton)."""
    Fx0, Ftx1 = x0 @ F.T, x1 @ F
    numerator = np.sum(x1 * Fx0, axis=1)
    numerator = numerator if signed else np.abs(numerator)
    denominator = np.sqrt(Fx0[:, 0] ** 2 + Fx0[:, 1] ** 2 + Ftx1[:, 0] ** 2 + Ftx1[:, 1] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        error = numerator / denominator
    return np.where(np.isfinite(error), error, 1e12)


def _epipolar_parts(x0: np.ndarray, x1: np.ndarray, project: Any, what: str) -> tuple[Any, Any, Any]:
    """Weighted eight-point fit, Sampson residuals and L1 start for homogeneous ``(M, 3)`` points ``x0``,
    ``x1``.

    ``project(M)`` maps the least-squares ``(3, 3)`` matrix onto the model's manifold (rank 2 or essential).
    """
    rows = (x1[:, :, None] * x0[:, None, :]).reshape(-1, 9)
    state: dict[str, np.ndarray] = {"scale": np.ones(len(x0))}

    def model(M: np.ndarray) -> np.ndarray:
        M = project(M)
        algebraic = np.abs(np.sum(x1 * (x0 @ M.T), axis=1))
        sampson = _sampson(M, x0, x1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(algebraic > 0, (sampson / algebraic) ** 2, 1.0)
        state["scale"] = np.clip(ratio / np.median(ratio), 1e-3, 1e3)  # Sampson reweighting, bounded
        return M

    def fit(weights: np.ndarray) -> np.ndarray:
        _check_support(weights, 8, what)
        return model(_smallest_eigenvector(rows, weights * state["scale"]).reshape(3, 3))

    return (
        fit,
        lambda M: _sampson(M, x0, x1),
        lambda: [partial(model, x.reshape(3, 3)) for x in l1_fits(rows)],
    )


def _rank2(F: np.ndarray) -> np.ndarray:
    U, s, Vt = np.linalg.svd(F)
    return U @ np.diag([s[0], s[1], 0.0]) @ Vt


def _essential(E: np.ndarray) -> np.ndarray:
    U, _, Vt = np.linalg.svd(E)
    return U @ np.diag([1.0, 1.0, 0.0]) @ Vt


def _fundamental_parts(p0: np.ndarray, p1: np.ndarray, essential: bool = False) -> tuple[Any, Any, Any]:
    """Weighted, Hartley-normalised eight-point fit, Sampson residuals and L1 start for ``(M, 2)`` points.

    With ``essential=True`` the points are normalised image coordinates and the fit is projected onto the
    essential matrices (singular values 1, 1, 0) after denormalising."""
    T0, x0 = _hartley(p0)
    T1, x1 = _hartley(p1)
    # An essential matrix is projected once, after denormalising (a rank-2 step first moves it further).
    project = (lambda M: M) if essential else _rank2
    fit_n, _, start_n = _epipolar_parts(x0, x1, project, "essential" if essential else "fundamental")
    h0, h1 = np.column_stack([p0, np.ones(len(p0))]), np.column_stack([p1, np.ones(len(p1))])

    def denormalise(Fn: np.ndarray) -> np.ndarray:
        F = T1.T @ Fn @ T0
        return _essential(F) if essential else F / np.linalg.norm(F)

    return (
        lambda weights: denormalise(fit_n(weights)),
        lambda F: _sampson(F, h0, h1),
        lambda: [lambda start=start: denormalise(start()) for start in start_n()],
    )


def bearings(points: np.ndarray, camera: Any) -> np.ndarray:
    """Unit bearing vectors ``(M, 3)`` of ``(M, 2)`` pixel coordinates seen by a :class:`Camera`."""
    y = camera.normalize(points)
    rays = np.column_stack([y, np.ones(len(y))])
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _focal(problem: Problem) -> float:
    c0, c1 = problem.camera0, problem.camera1
    return (c0.fx + c0.fy + c1.fx + c1.fy) / 4


def _pose_from_essential(
    E: np.ndarray, y0: np.ndarray, y1: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The decomposition of ``E`` that puts the most masked matches in front of both cameras.

    ``y0``, ``y1``: ``(M, 3)`` rays (normalised coordinates or bearing vectors, in front of the cameras)."""
    z0, z1 = y0[:, :2] / y0[:, 2:], y1[:, :2] / y1[:, 2:]
    _, R, t, _ = cv2.recoverPose(E, z0, z1, np.eye(3), mask=mask.astype(np.uint8)[:, None].copy())
    return R, t.reshape(3)


def _camera_pose(R: np.ndarray, t: np.ndarray) -> poselib.CameraPose:
    pose = poselib.CameraPose()
    pose.R, pose.t = np.asarray(R, dtype=np.float64), np.asarray(t, dtype=np.float64).reshape(3)
    return pose


# ------------------------------------------------------------------------------------------- solvers


def _seed(problem: Problem, config: GNCConfig, kind: str) -> Solution | None:
    if config.seed == "none":
        return None
    backend = ESTIMATORS[config.seed]
    seed_config = backend.config()
    solution = backend.solvers[kind](problem, seed_config)
    if solution.matrix is None and solution.R is None:
        return None
    return solution


def _anneal(
    problem: Problem,
    config: GNCConfig,
    fit: Any,
    residuals: Any,
    l1_start: Any,
    seed: Any | None,
    bound: float,
) -> tuple[Any, np.ndarray, int]:
    """GNC-TLS from the seed (kept), the L1 starts or the least-squares start, as ``config`` says; from
    several L1 starts the result of lowest truncated cost ``sum min(r^2, c^2)`` is kept."""
    starts, seeded = (
        ([seed], True) if seed is not None or config.start == "least_squares" else (l1_start(), False)
    )
    c = bound * config.truncation
    best: tuple[float, Any, np.ndarray, int] | None = None
    for start in starts:
        # An L1 start is a function: building its model also resets the fit's state (the Sampson or
        # projective-depth rescaling, the local solver's current pose) to it.
        model, weights, steps = gnc_tls(
            fit, residuals, len(problem.points0), c, start=start if seeded else start(),
            max_iterations=config.max_iterations, annealing=config.annealing, convergence=config.convergence,
            seeded=seeded,
        )  # fmt: skip
        cost = float(np.sum(np.minimum(residuals(model) ** 2, c * c)))
        if best is None or cost < best[0]:
            best = (cost, model, weights, steps)
    assert best is not None
    return best[1], best[2], best[3]


def _truncated(threshold: float) -> dict[str, Any]:
    return {"loss_type": "TRUNCATED", "loss_scale": float(threshold), "max_iterations": 100}


def _finish(
    model_residuals: np.ndarray, threshold: float, steps: int, weights: np.ndarray, **model: Any
) -> Solution:
    inliers = model_residuals <= threshold
    cost = float(np.sum(np.minimum(model_residuals, threshold) ** 2))
    return Solution(
        inliers=inliers,
        iterations=steps,
        cost=cost,
        info={"gnc_steps": steps, "gnc_inliers": int(np.count_nonzero(weights > 0.5))},
        **model,
    )


def _matrix_solver(kind: str, parts: Any, refine: Any, minimum: int) -> Any:
    """The GNC solver of a model given by a ``(3, 3)`` matrix (homography, fundamental matrix).

    ``parts(points0, points1) -> (fit, residuals)``; ``refine(points0, points1, matrix, options)`` is
    PoseLib's refinement; ``minimum`` the fewest inliers it is run on."""

    def solve(problem: Problem, config: GNCConfig) -> Solution:
        fit, residuals, l1_start = parts(problem.points0, problem.points1)
        seed = _seed(problem, config, kind)
        start = None if seed is None else seed.matrix
        matrix, weights, steps = _anneal(problem, config, fit, residuals, l1_start, start, problem.threshold)
        inliers = residuals(matrix) <= problem.threshold
        if config.refine and np.count_nonzero(inliers) >= minimum:
            matrix, _ = refine(
                problem.points0[inliers], problem.points1[inliers], matrix, _truncated(problem.threshold)
            )
        return _finish(residuals(matrix), problem.threshold, steps, weights, matrix=matrix)

    return solve


_gnc_homography = _matrix_solver("homography", _homography_parts, poselib.refine_homography, 4)
_gnc_fundamental = _matrix_solver("fundamental", _fundamental_parts, poselib.refine_fundamental, 8)


def _tangent_basis(t: np.ndarray) -> np.ndarray:
    """``(3, 2)`` orthonormal basis of the plane orthogonal to the unit vector ``t``."""
    axis = np.eye(3)[np.argmin(np.abs(t))]
    b1 = np.cross(t, axis)
    b1 /= np.linalg.norm(b1)
    return np.column_stack([b1, np.cross(t, b1)])


def _relative_pose_parts(
    problem: Problem, start: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[Any, Any, Any]:
    """GNC parts of a calibrated relative pose, a model ``(R, t)`` with unit ``t``.

    ``fit(weights)`` is weighted Levenberg-Marquardt (SciPy's MINPACK) on the 5 degrees of freedom
    ``R = exp([w]x) R_k``, ``t = normalise(t_k + B_k v)`` from the previous iterate ``(R_k, t_k)``,
    minimising ``sum_i w_i r_i^2`` with ``r_i`` the Sampson error in normalised coordinates times the mean
    focal length; the L1 start is the convex L1 eight-point fit, projected onto the essential matrices and
    decomposed with the cheirality of all matches. ``start`` (a seed) is the first iterate.
    """
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    focal = _focal(problem)
    z0, z1 = problem.camera0.normalize(problem.points0), problem.camera1.normalize(problem.points1)
    y0, y1 = np.column_stack([z0, np.ones(len(z0))]), np.column_stack([z1, np.ones(len(z1))])
    fit_linear, _, start_linear = _fundamental_parts(z0, z1, essential=True)
    state: dict[str, Any] = {} if start is None else {"pose": start}

    def signed(pose: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return _sampson(essential_from_pose(*pose), y0, y1, signed=True) * focal

    def residuals(pose: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return np.abs(signed(pose))

    def decompose(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        R, t = _pose_from_essential(E, y0, y1, np.ones(len(y0), bool))
        state["pose"] = (R, t / np.linalg.norm(t))
        return state["pose"]

    def fit(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _check_support(weights, 5, "relative-pose")
        if "pose" not in state:  # the least-squares start: the linear eight-point fit
            return decompose(fit_linear(weights))
        R0, t0 = state["pose"]
        basis, root = _tangent_basis(t0), np.sqrt(weights)

        def pose(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            t = t0 + basis @ x[3:]
            return Rotation.from_rotvec(x[:3]).as_matrix() @ R0, t / np.linalg.norm(t)

        solution = least_squares(lambda x: root * signed(pose(x)), np.zeros(5), method="lm", max_nfev=40)
        state["pose"] = pose(solution.x)
        return state["pose"]

    return fit, residuals, lambda: [lambda start=start: decompose(start()) for start in start_linear()]


def _gnc_relative_pose(problem: Problem, config: GNCConfig) -> Solution:
    seed = _seed(problem, config, "relative_pose")
    start = None
    if seed is not None:
        t = np.asarray(seed.t, dtype=np.float64).reshape(3)
        start = (np.asarray(seed.R, dtype=np.float64), t / np.linalg.norm(t))
    fit, residuals, l1_start = _relative_pose_parts(problem, start)
    (R, t), weights, steps = _anneal(problem, config, fit, residuals, l1_start, start, problem.threshold)
    inliers = residuals((R, t)) <= problem.threshold
    if np.count_nonzero(inliers) < 5:
        raise EstimationError(f"gnc: only {np.count_nonzero(inliers)} inliers after annealing, 5 needed")
    z0, z1 = problem.camera0.normalize(problem.points0), problem.camera1.normalize(problem.points1)
    y0, y1 = np.column_stack([z0, np.ones(len(z0))]), np.column_stack([z1, np.ones(len(z1))])
    R, t = _pose_from_essential(essential_from_pose(R, t), y0, y1, inliers)  # cheirality of the inliers
    if config.refine:
        pose, _ = poselib.refine_relative_pose(
            problem.points0[inliers],
            problem.points1[inliers],
            _camera_pose(R, t),
            problem.camera0.to_poselib(),
            problem.camera1.to_poselib(),
            _truncated(problem.threshold),
        )
        R, t = pose.R, pose.t
    t = np.asarray(t, dtype=np.float64) / np.linalg.norm(t)
    return _finish(residuals((R, t)), problem.threshold, steps, weights, R=R, t=t)


def _gnc_rotation(problem: Problem, config: GNCConfig) -> Solution:
    f0, f1 = bearings(problem.points0, problem.camera0), bearings(problem.points1, problem.camera1)
    focal = (problem.camera1.fx + problem.camera1.fy) / 2
    angle = rotation_threshold(problem.threshold, problem.camera1)

    def fit(weights: np.ndarray) -> np.ndarray:
        _check_support(weights, 2, "rotation")
        return nearest_rotation((f1 * weights[:, None]).T @ f0)  # argmax sum w f1^T R f0

    def residuals(R: np.ndarray) -> np.ndarray:
        return np.arccos(np.clip(np.sum(f1 * (f0 @ R.T), axis=1), -1.0, 1.0))

    seed = _seed(problem, config, "rotation")
    R, weights, steps = gnc_tls(
        fit, residuals, len(f0), angle * config.truncation, start=None if seed is None else seed.R,
        max_iterations=config.max_iterations, annealing=config.annealing, convergence=config.convergence,
    )  # fmt: skip
    if config.refine:  # least squares on the inliers: Procrustes is already the exact minimiser
        inliers = residuals(R) <= angle
        if np.count_nonzero(inliers) >= 2:
            R = fit(inliers.astype(np.float64))
    solution = _finish(residuals(R), angle, steps, weights, R=R)
    solution.cost = None if solution.cost is None else solution.cost * focal**2  # in px^2 like the others
    return solution


register_estimator(
    "gnc",
    GNCConfig,
    {
        "homography": _gnc_homography,
        "fundamental": _gnc_fundamental,
        "relative_pose": _gnc_relative_pose,
        "rotation": _gnc_rotation,
    },
)

"""Covariance-weighted two-view estimation: the ``"weighted"`` estimator of :func:`tiepoint.estimate`.

Keypoint position covariances (``(M, 2, 2)`` pixels² per image, e.g. RaCo's) say how precisely each point is
located. This estimator finds the model and its inliers robustly with PoseLib's LO-RANSAC (as the
``"poselib"`` estimator), then refines the model on the inliers by non-linear least squares
(``scipy.optimize.least_squares``, Levenberg-Marquardt-like trust region, a Huber loss) of residuals
whitened by the propagated covariances:

* **homography**: the transfer error ``e = H(x0) - x1`` whitened by ``C = Sigma_1 + J Sigma_0 J^T``
  (``J`` the Jacobian of ``H`` at ``x0``, evaluated at the RANSAC model): the Mahalanobis residual ``L^-1 e``
  with ``C = L L^T``;
* **fundamental** and **relative pose**: the covariance-weighted Sampson error
  ``x1^T F x0 / sqrt(g0^T Sigma_0 g0 + g1^T Sigma_1 g1)``, ``g0``, ``g1`` the gradients of the epipolar
  constraint with respect to ``x0`` and ``x1`` in pixels (with identity covariances this is the Sampson
  error). F is refined on a rank-2 parametrisation (``U diag(1, s, 0) V^T`` of the Hartley-normalised F);
  the pose as a rotation and a unit translation direction.

Without covariances (none passed, none on the matches' features) identity covariances are used, so the
refinement is the unweighted one and ``info["weighted"]`` is False. The inliers are recomputed with the
refined model and the threshold in plain pixels (transfer error for H, Sampson error otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from .accuracy import homography_jacobians, skew
from .estimate import (
    PoselibConfig,
    Problem,
    Solution,
    Solver,
    _poselib_fundamental,
    _poselib_homography,
    _poselib_relative_pose,
    _via_homography,
    register_estimator,
)

__all__ = ["WeightedConfig", "sampson_residuals", "transfer_residuals"]


@dataclass
class WeightedConfig(PoselibConfig):
    """Options of the ``"weighted"`` estimator: PoseLib's, plus the refinement's."""

    huber: float = 2.0
    """Scale of the Huber loss of the refinement, in whitened units (standard deviations)."""
    refine_iterations: int = 50
    """Largest number of least-squares iterations (function evaluations per parameter)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.huber, (int, float)) or not self.huber > 0:
            raise ValueError(f"huber must be a positive number, got {self.huber!r}")
        if not isinstance(self.refine_iterations, int) or self.refine_iterations < 1:
            raise ValueError(f"refine_iterations must be a positive integer, got {self.refine_iterations!r}")


# ----------------------------------------------------------------------------------------- residuals


@dataclass
class _Inliers:
    """The RANSAC inliers of a problem: their points, covariances (identity where none were given)."""

    points0: np.ndarray
    points1: np.ndarray
    sigma0: np.ndarray
    sigma1: np.ndarray
    weighted: bool


def _inliers(problem: Problem, solution: Solution, minimum: int) -> _Inliers | None:
    """The inliers of a RANSAC solution to refine on, or None when there is no model or too few."""
    if (solution.matrix is None and solution.R is None) or np.count_nonzero(solution.inliers) < minimum:
        return None
    index = np.flatnonzero(solution.inliers)
    identity = np.broadcast_to(np.eye(2), (len(index), 2, 2))
    return _Inliers(
        problem.points0[index],
        problem.points1[index],
        identity if problem.covariances0 is None else problem.covariances0[index],
        identity if problem.covariances1 is None else problem.covariances1[index],
        problem.covariances0 is not None or problem.covariances1 is not None,
    )


def transfer_residuals(
    H: np.ndarray, points0: np.ndarray, points1: np.ndarray, whitening: np.ndarray
) -> np.ndarray:
    """``(2M,)`` whitened transfer errors ``W_i (H(x0_i) - x1_i)`` for ``(M, 2, 2)`` whitening matrices."""
    homogeneous = points0 @ H[:, :2].T + H[:, 2]
    error = homogeneous[:, :2] / homogeneous[:, 2:3] - points1
    return np.einsum("nij,nj->ni", whitening, error).ravel()


def sampson_residuals(
    F: np.ndarray, points0: np.ndarray, points1: np.ndarray, sigma0: np.ndarray, sigma1: np.ndarray
) -> np.ndarray:
    """``(M,)`` covariance-weighted Sampson errors of ``x1^T F x0 = 0`` (pixels when the covariances are
    the identity, standard deviations otherwise)."""
    h0 = np.column_stack([points0, np.ones(len(points0))])
    h1 = np.column_stack([points1, np.ones(len(points1))])
    Fx0 = h0 @ F.T  # (M, 3): F x0
    Ftx1 = h1 @ F  # (M, 3): F^T x1
    algebraic = (h1 * Fx0).sum(1)
    g0, g1 = Ftx1[:, :2], Fx0[:, :2]
    variance = np.einsum("ni,nij,nj->n", g0, sigma0, g0) + np.einsum("ni,nij,nj->n", g1, sigma1, g1)
    return algebraic / np.sqrt(np.maximum(variance, 1e-300))


def _whitening(covariance: np.ndarray) -> np.ndarray:
    """``(M, 2, 2)`` matrices ``W`` with ``W^T W = C^-1``: ``L^-1`` of the Cholesky factor ``C = L L^T``."""
    return np.linalg.inv(np.linalg.cholesky(covariance))


# ------------------------------------------------------------------------------------------ solvers


def _refiner(ransac: Solver, minimum: int, refine: Callable[..., Solution]) -> Solver:
    """A solver: ``ransac`` for the model and inliers, then ``refine(problem, config, solution, inliers)``
    when it found a model with at least ``minimum`` inliers."""

    def solve(problem: Problem, config: WeightedConfig) -> Solution:
        solution = ransac(problem, config)
        data = _inliers(problem, solution, minimum)
        return solution if data is None else refine(problem, config, solution, data)

    return solve


def _refine_homography(
    problem: Problem, config: WeightedConfig, solution: Solution, data: _Inliers
) -> Solution:
    p0, p1, sigma0, sigma1 = data.points0, data.points1, data.sigma0, data.sigma1
    H0 = np.asarray(solution.matrix, np.float64) / solution.matrix[2, 2]
    J = homography_jacobians(p0, H0)
    whitening = _whitening(sigma1 + J @ sigma0 @ J.transpose(0, 2, 1))

    def residuals(h: np.ndarray) -> np.ndarray:
        return transfer_residuals(np.append(h, 1.0).reshape(3, 3), p0, p1, whitening)

    result = least_squares(
        residuals,
        H0.ravel()[:8],
        loss="huber",
        f_scale=config.huber,
        x_scale="jac",
        max_nfev=config.refine_iterations * 8,
    )
    H = np.append(result.x, 1.0).reshape(3, 3)
    homogeneous = problem.points0 @ H[:, :2].T + H[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        errors = np.linalg.norm(homogeneous[:, :2] / homogeneous[:, 2:3] - problem.points1, axis=1)
    return _refined(solution, errors < problem.threshold, data.weighted, result, matrix=H)


def _normaliser(points: np.ndarray) -> np.ndarray:
    """Hartley's similarity taking ``points`` to zero mean and mean distance sqrt(2)."""
    centre = points.mean(0)
    scale = np.sqrt(2) / max(np.linalg.norm(points - centre, axis=1).mean(), 1e-12)
    return np.array([[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1.0]])


def _refine_fundamental(
    problem: Problem, config: WeightedConfig, solution: Solution, data: _Inliers
) -> Solution:
    p0, p1, sigma0, sigma1 = data.points0, data.points1, data.sigma0, data.sigma1
    T0, T1 = _normaliser(p0), _normaliser(p1)
    # F = T1^T Fn T0, so Fn = T1^-T F T0^-1
    Fn = np.linalg.inv(T1).T @ np.asarray(solution.matrix, np.float64) @ np.linalg.inv(T0)
    U, S, Vt = np.linalg.svd(Fn)
    U, Vt = U * np.sign(np.linalg.det(U)), Vt * np.sign(np.linalg.det(Vt))

    def matrix(x: np.ndarray) -> np.ndarray:
        Ux = U @ Rotation.from_rotvec(x[:3]).as_matrix()
        Vx = Vt.T @ Rotation.from_rotvec(x[3:6]).as_matrix()
        return T1.T @ (Ux @ np.diag([1.0, x[6], 0.0]) @ Vx.T) @ T0

    def residuals(x: np.ndarray) -> np.ndarray:
        return sampson_residuals(matrix(x), p0, p1, sigma0, sigma1)

    start = np.concatenate([np.zeros(6), [S[1] / S[0]]])
    result = least_squares(
        residuals, start, loss="huber", f_scale=config.huber, max_nfev=config.refine_iterations * 7
    )
    F = matrix(result.x)
    F = F / np.linalg.norm(F)
    return _refined(solution, _sampson_inliers(F, problem), data.weighted, result, matrix=F)


def _refine_relative_pose(
    problem: Problem, config: WeightedConfig, solution: Solution, data: _Inliers
) -> Solution:
    p0, p1, sigma0, sigma1 = data.points0, data.points1, data.sigma0, data.sigma1
    K0inv, K1invT = np.linalg.inv(problem.camera0.K), np.linalg.inv(problem.camera1.K).T
    R0 = np.asarray(solution.R, np.float64)
    t0 = np.asarray(solution.t, np.float64).reshape(3)
    t0 = t0 / np.linalg.norm(t0)
    basis = np.linalg.svd(t0[None])[2][1:]  # (2, 3): an orthonormal basis of the plane orthogonal to t0

    def pose(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        R = Rotation.from_rotvec(x[:3]).as_matrix() @ R0
        t = Rotation.from_rotvec(x[3:] @ basis).as_matrix() @ t0
        return R, t

    def fundamental(x: np.ndarray) -> np.ndarray:
        R, t = pose(x)
        return K1invT @ skew(t) @ R @ K0inv

    def residuals(x: np.ndarray) -> np.ndarray:
        return sampson_residuals(fundamental(x), p0, p1, sigma0, sigma1)

    result = least_squares(
        residuals, np.zeros(5), loss="huber", f_scale=config.huber, max_nfev=config.refine_iterations * 5
    )
    R, t = pose(result.x)
    return _refined(
        solution, _sampson_inliers(fundamental(result.x), problem), data.weighted, result, R=R, t=t
    )


def _sampson_inliers(F: np.ndarray, problem: Problem) -> np.ndarray:
    """``(M,)`` bool: matches whose plain Sampson error under ``F`` is below the threshold."""
    identity = np.broadcast_to(np.eye(2), (len(problem.points0), 2, 2))
    return (
        np.abs(sampson_residuals(F, problem.points0, problem.points1, identity, identity)) < problem.threshold
    )


def _refined(
    solution: Solution, inliers: np.ndarray, weighted: bool, result, **model: np.ndarray
) -> Solution:
    """The RANSAC solution with the refined model, its inliers and the refinement's details."""
    info = dict(
        solution.info,
        weighted=weighted,
        refine_cost=float(result.cost),
        refine_evaluations=int(result.nfev),
        ransac_inliers=int(np.count_nonzero(solution.inliers)),
    )
    return Solution(
        inliers=inliers,
        iterations=solution.iterations,
        score=solution.score,
        info=info,
        cost=float(result.cost),
        **model,
    )


register_estimator(
    "weighted",
    WeightedConfig,
    {
        "homography": _refiner(_poselib_homography, 4, _refine_homography),
        "fundamental": _refiner(_poselib_fundamental, 8, _refine_fundamental),
        "relative_pose": _refiner(_poselib_relative_pose, 5, _refine_relative_pose),
        "rotation": _via_homography(_refiner(_poselib_homography, 4, _refine_homography)),
    },
)

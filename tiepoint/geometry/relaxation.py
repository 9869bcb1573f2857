"""Certifiable non-minimal relative pose by a semidefinite relaxation, registered as ``estimator="sdp"``.

On a set of inlier matches with unit bearing vectors ``f0_i``, ``f1_i`` the solver minimises the algebraic
epipolar cost

    f(E) = sum_i (f1_i^T E f0_i)^2 / n      over essential matrices E = [t]x R, |t| = 1,

a non-convex quadratically constrained quadratic programme (QCQP) in ``x = (vec E, t)``:
``E E^T + t t^T = I``, ``t^T t = 1`` and ``t^T E = 0``, and the same with ``q = R^T t`` on the other side
(``E^T E + q q^T = I``, ``q^T q = 1``, ``E q = 0``), with the cofactor constraints ``cof(E) = t q^T`` (the
formulation of Zhao, *An efficient solution to non-minimal case essential matrix estimation*, TPAMI 2022, with
redundant constraints added). Its Shor relaxation replaces
``x x^T`` by a 15 x 15 positive semidefinite matrix ``X`` and is solved with cvxpy and the Clarabel
interior-point solver. From the dual multipliers ``y`` of the solution the solver builds a *certified*
lower bound of the non-convex optimum, valid whatever the solver's accuracy: every feasible ``X`` has
trace 4, so

    f* >= sum_k y_k b_k + 4 lambda_min(C - sum_k y_k A_k).

The pose is rounded from ``X``'s leading eigenvector (the decomposition of ``E`` with the most matches in
front of both cameras), its cost is an upper bound, and the relative gap between the two bounds is the
certificate: a gap within ``gap_tolerance`` proves the pose globally optimal for the cost on these inliers.

The inliers are those of a RANSAC start (``start="poselib"``, LO-RANSAC, by default); the result is compared
with that start in :attr:`Geometry.info`. cvxpy and Clarabel are an optional extra:
``pip install "tiepoint[global]"``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import EstimationError, MissingDependencyError
from ..types import Certificate
from .accuracy import essential_from_pose, skew
from .estimate import ESTIMATORS, Problem, Solution, _check_int, register_estimator
from .gnc import _camera_pose, _pose_from_essential, _sampson, _truncated, bearings

__all__ = ["RelaxationConfig", "RelaxationResult", "solve_essential_relaxation"]

_SIZE = 15
"""Length of the lifted vector ``x = (vec E, t, q)``."""
_ZERO_COST = 1e-15
"""A mean squared algebraic error below this (about 1e-8 rad of epipolar error) counts as 0."""
_TRACE = 4.0
"""``trace(x x^T) = |E|^2 + |t|^2 + |q|^2 = 2 + 1 + 1`` for every feasible ``x``."""

STARTS = ("poselib", "opencv", "gnc")
"""Estimators whose inliers :class:`RelaxationConfig` can start from."""


@dataclass
class RelaxationConfig:
    """Options of the ``"sdp"`` estimator."""

    start: str = "poselib"
    """The robust estimator whose inliers the relaxation is solved on: ``"poselib"``, ``"opencv"`` or
    ``"gnc"``."""
    gap_tolerance: float = 1e-5
    """Certified when ``(upper - lower) / upper`` is at most this."""
    rounds: int = 1
    """Solve this many times, each on the inliers of the previous pose (the first on the start's)."""
    refine: bool = False
    """Polish the certified pose by PoseLib's Sampson-error refinement (the certificate then describes the
    pose before polishing; ``info["refined"]`` says so)."""

    def __post_init__(self) -> None:
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {list(STARTS)}, got {self.start!r}")
        if not isinstance(self.gap_tolerance, (int, float)) or not 0 < self.gap_tolerance < 1:
            raise ValueError(f"gap_tolerance must be in (0, 1), got {self.gap_tolerance!r}")
        _check_int(self.rounds, "rounds", minimum=1)
        if not isinstance(self.refine, bool):
            # the estimator registry expects ValueError for any bad option value (see register_estimator)
            raise ValueError(f"refine must be True or False, got {self.refine!r}")  # noqa: TRY004


@dataclass
class RelaxationResult:
    """The outcome of :func:`solve_essential_relaxation`.

    Attributes:
        E: ``(3, 3)`` the rounded essential matrix (unit ``t``, ``|E|_F^2 = 2``).
        t: ``(3,)`` its unit translation direction (sign undetermined by the cost).
        cost: ``f(E)``, an upper bound of the optimum.
        lower_bound: the certified lower bound of the optimum.
        relaxation_value: the solver's objective value of the relaxation.
        eigenvalues: ``(9,)`` eigenvalues of the ``E E^T`` block of ``X`` in decreasing order (one
            non-zero, ``2``, when the relaxation is tight).
        status: the conic solver's status.
    """

    E: np.ndarray
    t: np.ndarray
    cost: float
    lower_bound: float
    relaxation_value: float
    eigenvalues: np.ndarray
    status: str

    @property
    def relative_gap(self) -> float:
        """``(cost - lower_bound) / cost``; 0 when the cost is 0 to machine precision (noise-free data)."""
        if self.cost <= _ZERO_COST:
            return 0.0 if self.lower_bound >= self.cost - _ZERO_COST else math.inf
        return max(0.0, (self.cost - self.lower_bound) / self.cost)

    @property
    def rank_ratio(self) -> float:
        """``lambda_2 / lambda_1`` of the ``E E^T`` block of ``X``: near 0 for a rank-one (tight)
        relaxation."""
        return float(self.eigenvalues[1] / self.eigenvalues[0]) if self.eigenvalues[0] > 0 else math.inf


def _constraints() -> tuple[list[np.ndarray], list[float]]:
    """``(A_k, b_k)`` with ``<A_k, x x^T> = b_k`` for ``x = (vec E row-major, t, q)``, ``q = R^T t``."""
    A, b = [], []
    e = lambda i, j: 3 * i + j
    t, q = (lambda i: 9 + i), (lambda i: 12 + i)

    def sym(pairs: list[tuple[int, int]], signs: tuple[float, ...] | None = None) -> np.ndarray:
        M = np.zeros((_SIZE, _SIZE))
        for (i, j), sign in zip(pairs, signs or (1.0,) * len(pairs), strict=True):
            M[i, j] += 0.5 * sign
            M[j, i] += 0.5 * sign
        return M

    for i in range(3):
        for j in range(i, 3):
            # E E^T + t t^T = I and E^T E + q q^T = I (upper triangles)
            A.append(sym([(e(i, k), e(j, k)) for k in range(3)] + [(t(i), t(j))]))
            A.append(sym([(e(k, i), e(k, j)) for k in range(3)] + [(q(i), q(j))]))
            b += [float(i == j)] * 2
    A.append(sym([(t(i), t(i)) for i in range(3)]))  # t^T t = 1
    A.append(sym([(q(i), q(i)) for i in range(3)]))  # q^T q = 1
    b += [1.0, 1.0]
    for j in range(3):  # t^T E = 0 and E q = 0
        A.append(sym([(t(i), e(i, j)) for i in range(3)]))
        A.append(sym([(e(j, i), q(i)) for i in range(3)]))
        b += [0.0, 0.0]
    for i in range(3):  # cof(E) = t q^T: (row i+1 of E) x (row i+2 of E) = t_i q
        r1, r2 = (i + 1) % 3, (i + 2) % 3
        for j in range(3):
            j1, j2 = (j + 1) % 3, (j + 2) % 3
            A.append(sym([(e(r1, j1), e(r2, j2)), (e(r1, j2), e(r2, j1)), (t(i), q(j))], (1.0, -1.0, -1.0)))
            b.append(0.0)
    return A, b


@lru_cache(maxsize=1)
def _problem() -> tuple[Any, Any, Any, list[np.ndarray], np.ndarray]:
    """The relaxation as a cvxpy problem with the cost matrix as a parameter (compiled once)."""
    try:
        import cvxpy as cp
    except ImportError:
        raise MissingDependencyError(
            'estimator "sdp" needs cvxpy and Clarabel: pip install "tiepoint[global]"'
        ) from None
    A, b = _constraints()
    X = cp.Variable((_SIZE, _SIZE), PSD=True)
    C = cp.Parameter((_SIZE, _SIZE), symmetric=True)
    constraints = [cp.trace(Ak @ X) == bk for Ak, bk in zip(A, b, strict=True)]
    problem = cp.Problem(cp.Minimize(cp.trace(C @ X)), constraints)
    return problem, X, C, A, np.array(b)


def _cost_matrix(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """``(9, 9)`` ``C`` with ``vec(E)^T C vec(E) = mean_i (f1_i^T E f0_i)^2`` (row-major ``vec``)."""
    rows = (f1[:, :, None] * f0[:, None, :]).reshape(-1, 9)
    return rows.T @ rows / len(rows)


def solve_essential_relaxation(
    f0: np.ndarray, f1: np.ndarray, scale: float | None = None
) -> RelaxationResult:
    """Solve the semidefinite relaxation of the non-minimal essential-matrix problem and certify it.

    Args:
        f0, f1: ``(n, 3)`` unit bearing vectors of ``n >= 6`` matches (``f1^T E f0 = 0`` for exact data).
        scale: the cost is divided by it before solving (for the conic solver's tolerances); default the
            cost of the best eight-point estimate, so that the optimum is of order 1.

    Returns:
        :class:`RelaxationResult` with the rounded ``E`` and ``t``, its cost and the certified lower bound
        (both in the unscaled cost).

    Raises:
        MissingDependencyError: cvxpy (or Clarabel) is not installed.
        EstimationError: fewer than 6 matches, or the conic solver failed.
    """
    f0, f1 = np.asarray(f0, dtype=np.float64), np.asarray(f1, dtype=np.float64)
    if len(f0) < 6:
        raise EstimationError(f"sdp: the relaxation needs at least 6 inlier matches, got {len(f0)}")
    problem, X, C_param, A, b = _problem()
    C9 = _cost_matrix(f0, f1)
    if scale is None:
        _, vectors = np.linalg.eigh(C9)
        U, _, Vt = np.linalg.svd(vectors[:, 0].reshape(3, 3))
        E8 = U @ np.diag([1.0, 1.0, 0.0]) @ Vt
        scale = float(E8.ravel() @ C9 @ E8.ravel())
    # The conic solver is accurate when the optimum is of order 1; noise-free data (an optimum of 0) is
    # scaled by the cost matrix instead, which the solver also handles.
    scale = max(scale, 1e-6 * float(np.trace(C9)), 1e-300)
    C = np.zeros((_SIZE, _SIZE))
    C[:9, :9] = C9 / scale
    C_param.value = C
    try:
        with warnings.catch_warnings():  # "inaccurate" is judged by the certificate, not by a warning
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver="CLARABEL")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:
        raise EstimationError(f"sdp: the conic solver failed: {error}") from error
    if X.value is None or problem.status not in ("optimal", "optimal_inaccurate"):
        raise EstimationError(f"sdp: the conic solver returned status {problem.status!r}")

    # Certified lower bound from the dual multipliers (valid for any y: trace X = 4 on the feasible set).
    y = np.array([float(np.asarray(c.dual_value).ravel()[0]) for c in problem.constraints])
    lower = max(
        _dual_bound(C, A, b, y),
        _dual_bound(C, A, b, -y),  # cvxpy's sign convention for equality multipliers
    )
    # The cost is invariant to the signs of E and t, so X's E block (not X) is rank one when tight.
    values, vectors = np.linalg.eigh((X.value[:9, :9] + X.value[:9, :9].T) / 2)
    values, vectors = values[::-1], vectors[:, ::-1]
    _, t_vectors = np.linalg.eigh(X.value[9:12, 9:12])
    E, t = _round(vectors[:, 0].reshape(3, 3), t_vectors[:, -1])
    E, t = _polish(E, t, f0, f1)
    cost = float(E.ravel() @ C9 @ E.ravel())
    return RelaxationResult(
        E=E,
        t=t,
        cost=cost,
        lower_bound=max(lower, 0.0) * scale,
        relaxation_value=float(problem.value) * scale,
        eigenvalues=values,
        status=str(problem.status),
    )


def _dual_bound(C: np.ndarray, A: list[np.ndarray], b: np.ndarray, y: np.ndarray) -> float:
    Z = C - sum(yk * Ak for yk, Ak in zip(y, A, strict=True))
    return float(y @ b + _TRACE * np.linalg.eigvalsh(Z)[0])


def _round(E: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The essential matrix nearest to ``E`` (singular values 1, 1, 0) and its unit translation direction."""
    U, _, Vt = np.linalg.svd(E)
    E = U @ np.diag([1.0, 1.0, 0.0]) @ Vt
    left_null = U[:, 2]  # t spans the left null space of E (t^T E = 0)
    if left_null @ t < 0:
        left_null = -left_null
    return E, left_null


def _polish(
    E: np.ndarray, t: np.ndarray, f0: np.ndarray, f1: np.ndarray, iterations: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt on ``(R, t)`` for the algebraic cost ``mean (f1^T [t]x R f0)^2`` from ``E``.

    An interior-point solution is rank one only to the solver's tolerance, and the cost is sensitive to
    the resulting ``1e-4``-size perturbation of ``E``; a few local steps remove it (the lower bound does not
    depend on this, so the certificate stays valid whatever they do)."""
    R = _rotation_of(E, t)
    cost = np.mean((np.einsum("ij,ij->i", f1, (f0 @ R.T) @ skew(t).T)) ** 2)
    damping = 1e-6
    for _ in range(iterations):
        g = f0 @ R.T  # R f0
        residual = np.einsum("ij,ij->i", f1, np.cross(t, g))  # f1 . (t x R f0)
        # R -> R exp([w]x): dr = (f1 x t) . R (w x f0) = w . (f0 x R^T (f1 x t));
        # t -> t + dt: dr = dt . (g x f1)
        J_rot = np.cross(f0, np.cross(f1, t) @ R)
        basis = np.linalg.svd(t[None])[2][1:].T  # (3, 2) tangent of the sphere at t
        J_t = np.cross(g, f1) @ basis
        J = np.hstack([J_rot, J_t])
        H, gradient = J.T @ J, J.T @ residual
        improved = False
        for _ in range(10):
            step = -np.linalg.solve(H + damping * np.diag(np.diag(H) + 1e-30), gradient)
            R_new = R @ Rotation.from_rotvec(step[:3]).as_matrix()
            t_new = t + basis @ step[3:]
            t_new /= np.linalg.norm(t_new)
            new_cost = np.mean((np.einsum("ij,ij->i", f1, np.cross(t_new, f0 @ R_new.T))) ** 2)
            if new_cost < cost:
                R, t, cost, damping, improved = R_new, t_new, new_cost, damping / 10, True
                break
            damping *= 10
        if not improved:
            break
    return essential_from_pose(R, t), t


def _rotation_of(E: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A rotation with ``E = [t]x R`` for an essential ``E`` and its unit ``t`` (either of the two)."""
    U, _, Vt = np.linalg.svd(E)
    W = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    candidates = []
    for M in (U @ W @ Vt, U @ W.T @ Vt):
        R = M * np.sign(np.linalg.det(M))
        candidates.append((np.linalg.norm(skew(t) @ R - E), R))
    return min(candidates, key=lambda c: c[0])[1]


# -------------------------------------------------------------------------------------------- estimator


def _residuals(problem: Problem, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Sampson error in pixels (normalised coordinates times the mean focal length), as PoseLib scores."""
    c0, c1 = problem.camera0, problem.camera1
    y0 = np.column_stack([c0.normalize(problem.points0), np.ones(len(problem.points0))])
    y1 = np.column_stack([c1.normalize(problem.points1), np.ones(len(problem.points1))])
    focal = (c0.fx + c0.fy + c1.fx + c1.fy) / 4
    return _sampson(essential_from_pose(R, t), y0, y1) * focal


def _sdp_relative_pose(problem: Problem, config: RelaxationConfig) -> Solution:
    backend = ESTIMATORS[config.start]
    start = backend.solvers["relative_pose"](problem, backend.config())
    if start.R is None or start.t is None:
        raise EstimationError(f"sdp: the start estimator {config.start!r} found no pose")
    inliers = np.asarray(start.inliers, dtype=bool)
    f0, f1 = bearings(problem.points0, problem.camera0), bearings(problem.points1, problem.camera1)
    start_t = np.asarray(start.t, dtype=np.float64).reshape(3)
    start_E = essential_from_pose(np.asarray(start.R), start_t / np.linalg.norm(start_t))
    info: dict[str, Any] = {"start": config.start, "start_inliers": int(np.count_nonzero(inliers))}
    result = None
    for _ in range(config.rounds):
        if np.count_nonzero(inliers) < 6:
            raise EstimationError(f"sdp: only {np.count_nonzero(inliers)} inliers to solve on, 6 needed")
        C9 = _cost_matrix(f0[inliers], f1[inliers])
        start_cost = float(start_E.ravel() @ C9 @ start_E.ravel())
        result = solve_essential_relaxation(f0[inliers], f1[inliers], scale=start_cost)
        R, t = _pose_from_essential(result.E, f0, f1, inliers)
        info["start_cost"] = start_cost
        inliers = _residuals(problem, R, t) <= problem.threshold
    assert result is not None
    certificate = Certificate(
        method="relaxation",
        objective="mean squared algebraic epipolar error of unit bearings on the inliers",
        lower_bound=result.lower_bound,
        upper_bound=result.cost,
        certified=result.relative_gap <= config.gap_tolerance,
        details={
            "relative_gap": result.relative_gap,
            "rank_ratio": result.rank_ratio,
            "eigenvalues": result.eigenvalues[:3].tolist(),
            "relaxation_value": result.relaxation_value,
            "status": result.status,
            "gap_tolerance": config.gap_tolerance,
        },
    )
    info["refined"] = False
    if config.refine and np.count_nonzero(inliers) >= 5:
        import poselib

        pose, _ = poselib.refine_relative_pose(
            problem.points0[inliers], problem.points1[inliers], _camera_pose(R, t),
            problem.camera0.to_poselib(), problem.camera1.to_poselib(), _truncated(problem.threshold),
        )  # fmt: skip
        R, t = pose.R, pose.t
        inliers = _residuals(problem, R, t) <= problem.threshold
        info["refined"] = True
    return Solution(
        inliers=inliers,
        R=R,
        t=t,
        iterations=config.rounds,
        cost=result.cost,
        certificate=certificate,
        info=info,
    )


register_estimator("sdp", RelaxationConfig, {"relative_pose": _sdp_relative_pose})

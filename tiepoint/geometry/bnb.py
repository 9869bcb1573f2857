"""Branch-and-bound consensus maximisation over rotations, registered as ``estimator="bnb"``.

For a camera that only rotates (panoramas; known intrinsics) a match is an inlier of a rotation ``R`` when the
angle between its bearing vectors, ``angle(R f0, f1)``, is at most ``eps`` (the pixel threshold turned into an
angle by :func:`~tiepoint.geometry.estimate.rotation_threshold`). :func:`max_consensus_rotation` finds the
rotation with the most inliers *globally*, with a proof: rotations are parametrised by their angle-axis vector
``r`` in the cube ``[-pi, pi]^3``, which is split into sub-cubes best-first. For a cube with centre ``r_c``
and half-width ``d`` every rotation in it moves a direction by at most ``sqrt(3) d`` away from where
``R(r_c)`` puts it (``angle(R(r) v, R(r_c) v) <= |r - r_c|``; Hartley and Kahl, *Global optimization through
rotation space search*, IJCV 2009), so

* a lower bound of the cube's best count is the count of ``R(r_c)`` (a rotation that exists), and
* an upper bound is the number of matches with ``angle(R(r_c) f0, f1) <= eps + sqrt(3) d``.

Cubes whose upper bound cannot beat the best count found are discarded; the search stops when the largest
remaining upper bound equals the best count (the gap is closed: the count is optimal) or a node budget runs
out (the gap is reported). A match can only be an upper-bound inlier of a sub-cube if it is one of its parent,
so each cube carries the indices of its candidate matches and the work shrinks as the cubes do.

The result's ``R`` gives the stitching homography ``H = K1 R K0^-1`` (:attr:`Geometry.matrix`).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..types import Certificate
from .accuracy import nearest_rotation
from .estimate import Problem, Solution, _check_int, register_estimator, rotation_threshold
from .gnc import bearings

__all__ = ["BnBConfig", "BnBResult", "max_consensus_rotation"]

_SQRT3 = math.sqrt(3.0)
_OCTANTS = np.array(list(itertools.product((-0.5, 0.5), repeat=3)))


@dataclass
class BnBConfig:
    """Options of the ``"bnb"`` estimator."""

    max_nodes: int = 2_000_000
    """Stop after evaluating this many cubes; the bound gap is reported if it is still open."""
    batch: int = 64
    """Cubes split per step (vectorised together); it changes the run time, not the result."""
    tolerance: int = 0
    """Stop when the upper bound is at most this many inliers above the best count (0: prove optimality)."""
    time_limit: float | None = None
    """Stop after this many seconds (``None``: no limit); the gap is reported if it is still open."""

    def __post_init__(self) -> None:
        _check_int(self.max_nodes, "max_nodes", minimum=1)
        _check_int(self.batch, "batch", minimum=1)
        _check_int(self.tolerance, "tolerance", minimum=0)
        if self.time_limit is not None and not (
            isinstance(self.time_limit, (int, float)) and self.time_limit > 0
        ):
            raise ValueError(
                f"time_limit must be a positive number of seconds or None, got {self.time_limit!r}"
            )


@dataclass
class BnBResult:
    """The outcome of :func:`max_consensus_rotation`.

    Attributes:
        R: ``(3, 3)`` the best rotation found.
        inliers: ``(M,)`` bool, the matches within ``eps`` of ``R``.
        lower_bound: the number of inliers of ``R``.
        upper_bound: no rotation has more inliers than this (equal to ``lower_bound`` once proven).
        nodes: cubes evaluated.
        seconds: run time.
    """

    R: np.ndarray
    inliers: np.ndarray
    lower_bound: int
    upper_bound: int
    nodes: int
    seconds: float

    @property
    def optimal(self) -> bool:
        return self.upper_bound <= self.lower_bound


def _angles_cosine(rotvecs: np.ndarray, f0: np.ndarray, f1: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """``cos angle(R(r_owner[k]) f0[k], f1[k])`` for each row ``k`` (rows pre-gathered)."""
    rotations = Rotation.from_rotvec(rotvecs).as_matrix()
    return np.einsum("kij,kj,ki->k", rotations[owner], f0, f1)


def _polish(R: np.ndarray, f0: np.ndarray, f1: np.ndarray, cos_eps: float) -> tuple[np.ndarray, int]:
    """``R`` improved by a few rounds of least squares (Procrustes) on its inliers, with its inlier count.

    Only a better lower bound: the bounds stay valid whatever rotation this returns."""
    inliers = np.sum(f1 * (f0 @ R.T), axis=1) >= cos_eps
    count = int(np.count_nonzero(inliers))
    for _ in range(3):
        if count < 2:
            break
        candidate = nearest_rotation(f1[inliers].T @ f0[inliers])
        candidate_inliers = np.sum(f1 * (f0 @ candidate.T), axis=1) >= cos_eps
        if np.count_nonzero(candidate_inliers) <= count:
            break
        R, inliers, count = candidate, candidate_inliers, int(np.count_nonzero(candidate_inliers))
    return R, count


def max_consensus_rotation(
    f0: np.ndarray,
    f1: np.ndarray,
    eps: float,
    max_nodes: int = 2_000_000,
    batch: int = 64,
    tolerance: int = 0,
    time_limit: float | None = None,
) -> BnBResult:
    """The rotation that maximises the number of matches with ``angle(R f0, f1) <= eps``, by branch-and-bound.

    Args:
        f0: ``(M, 3)`` unit bearing vectors in camera 0.
        f1: ``(M, 3)`` unit bearing vectors of the same points in camera 1 (``f1 ~ R f0`` for inliers).
        eps: angular threshold in radians, in ``(0, pi)``.
        max_nodes, batch, tolerance, time_limit: see :class:`BnBConfig`.

    Returns:
        :class:`BnBResult`; its ``upper_bound`` equals ``lower_bound`` when optimality is proven.
    """
    f0, f1 = np.asarray(f0, dtype=np.float64), np.asarray(f1, dtype=np.float64)
    if f0.ndim != 2 or f0.shape[1] != 3 or f0.shape != f1.shape:
        raise ValueError(f"f0 and f1 must both have shape (M, 3), got {f0.shape} and {f1.shape}")
    if not 0 < eps < math.pi:
        raise ValueError(f"eps must be an angle in (0, pi) radians, got {eps!r}")
    start = time.perf_counter()
    cos_eps = math.cos(eps)
    num = len(f0)

    best_R, best = _polish(np.eye(3), f0, f1, cos_eps)  # the identity, polished: a first lower bound
    counter = itertools.count()
    # heap of (-upper bound, tie-breaker, centre, half-width, candidate match indices)
    heap: list[tuple[int, int, np.ndarray, float, np.ndarray]] = [
        (-num, next(counter), np.zeros(3), math.pi, np.arange(num))
    ]
    nodes = 1
    while heap and -heap[0][0] > best + tolerance and nodes < max_nodes:
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
        parents = []
        while heap and len(parents) < batch and -heap[0][0] > best + tolerance:
            parents.append(heapq.heappop(heap))
        half = np.array([p[3] for p in parents]) / 2  # children's half-widths
        centres = np.array([p[2] for p in parents])[:, None, :] + _OCTANTS[None] * (2 * half)[:, None, None]
        centres = centres.reshape(-1, 3)
        child_half = np.repeat(half, 8)
        # Drop cubes entirely outside the ball |r| <= pi that holds every rotation.
        keep = np.linalg.norm(centres, axis=1) - _SQRT3 * child_half <= math.pi
        sizes = np.array([len(p[4]) for p in parents])
        candidates = [p[4] for p in parents]
        children = np.flatnonzero(keep)
        nodes += len(children)
        if len(children) == 0:
            continue
        parent_of = children // 8
        counts = sizes[parent_of]
        index = np.concatenate([candidates[p] for p in parent_of])
        owner = np.repeat(np.arange(len(children)), counts)
        cosine = _angles_cosine(centres[children], f0[index], f1[index], owner)
        lower = np.bincount(owner, weights=cosine >= cos_eps, minlength=len(children)).astype(int)
        cos_upper = np.cos(np.minimum(eps + _SQRT3 * child_half[children], math.pi))
        in_upper = cosine >= cos_upper[owner]
        upper = np.bincount(owner, weights=in_upper, minlength=len(children)).astype(int)

        top = int(np.argmax(lower))
        if lower[top] > best:
            best_R, best = _polish(Rotation.from_rotvec(centres[children[top]]).as_matrix(), f0, f1, cos_eps)
        kept_index = np.split(index[in_upper], np.cumsum(upper)[:-1])
        for k in np.flatnonzero(upper > best + tolerance):
            child = children[k]
            heapq.heappush(
                heap, (-int(upper[k]), next(counter), centres[child], float(child_half[child]), kept_index[k])
            )
    upper_bound = max(best, -heap[0][0]) if heap else best
    R = best_R
    inliers = np.sum(f1 * (f0 @ R.T), axis=1) >= cos_eps
    return BnBResult(
        R=R,
        inliers=inliers,
        lower_bound=int(np.count_nonzero(inliers)),
        upper_bound=int(upper_bound),
        nodes=nodes,
        seconds=time.perf_counter() - start,
    )


def _bnb_rotation(problem: Problem, config: BnBConfig) -> Solution:
    f0, f1 = bearings(problem.points0, problem.camera0), bearings(problem.points1, problem.camera1)
    eps = rotation_threshold(problem.threshold, problem.camera1)
    result = max_consensus_rotation(
        f0, f1, eps, max_nodes=config.max_nodes, batch=config.batch, tolerance=config.tolerance,
        time_limit=config.time_limit,
    )  # fmt: skip
    certificate = Certificate(
        method="branch_and_bound",
        objective="inlier count",
        lower_bound=float(result.lower_bound),
        upper_bound=float(result.upper_bound),
        certified=result.upper_bound - result.lower_bound <= config.tolerance,
        details={"nodes": result.nodes, "seconds": result.seconds, "eps_radians": eps},
    )
    return Solution(
        inliers=result.inliers,
        R=result.R,
        iterations=result.nodes,
        score=float(result.lower_bound),
        cost=float(len(f0) - result.lower_bound),
        certificate=certificate,
        info={"nodes": result.nodes, "bound_gap": result.upper_bound - result.lower_bound},
    )


register_estimator("bnb", BnBConfig, {"rotation": _bnb_rotation})

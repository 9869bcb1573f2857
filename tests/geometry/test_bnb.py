"""Branch-and-bound over rotations: optimal consensus against exhaustive search, certificates, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import tiepoint
from tiepoint.errors import OptionError
from tiepoint.geometry.accuracy import homography_from_rotation, rotation_error
from tiepoint.geometry.bnb import max_consensus_rotation
from tiepoint_lab.bench.solvers import make_problem


def _exhaustive(f0: np.ndarray, f1: np.ndarray, eps: float, cells: int) -> tuple[int, int]:
    """Bounds of the optimal consensus from a uniform grid over the whole angle-axis cube.

    Every rotation lies in one of ``cells^3`` cubes of half-width ``h = pi / cells``; its count is at least
    the best count at a cube centre and at most the largest count within ``eps + sqrt(3) h`` of a centre.
    """
    h = math.pi / cells
    axis = -math.pi + h * (2 * np.arange(cells) + 1)
    centres = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    centres = centres[np.linalg.norm(centres, axis=1) - math.sqrt(3) * h <= math.pi]
    lower = upper = 0
    for chunk in np.array_split(centres, max(1, len(centres) // 20000)):
        cosine = np.einsum("cij,nj,ni->cn", Rotation.from_rotvec(chunk).as_matrix(), f0, f1)
        lower = max(lower, int((cosine >= math.cos(eps)).sum(axis=1).max()))
        upper = max(upper, int((cosine >= math.cos(eps + math.sqrt(3) * h)).sum(axis=1).max()))
    return lower, upper


def _random_instance(seed: int, inliers: int, outliers: int, eps: float):
    rng = np.random.default_rng(seed)
    R = Rotation.random(random_state=seed).as_matrix()
    f0 = rng.normal(size=(inliers + outliers, 3))
    f0 /= np.linalg.norm(f0, axis=1, keepdims=True)
    f1 = f0 @ R.T
    f1[:inliers] += rng.normal(scale=eps / 4, size=(inliers, 3))
    f1[inliers:] = rng.normal(size=(outliers, 3))
    f1 /= np.linalg.norm(f1, axis=1, keepdims=True)
    return f0, f1


@pytest.mark.parametrize("seed", range(4))
def test_optimal_count_matches_exhaustive_search(seed):
    eps = math.radians(5)
    f0, f1 = _random_instance(seed, inliers=5, outliers=7, eps=eps)
    lower, upper = _exhaustive(f0, f1, eps, cells=48)
    if lower != upper:  # the grid did not pin the optimum down; refine it
        lower, upper = _exhaustive(f0, f1, eps, cells=96)
    assert lower == upper, "the exhaustive search must prove its own answer"
    result = max_consensus_rotation(f0, f1, eps)
    assert result.optimal
    assert result.lower_bound == lower
    assert np.count_nonzero(result.inliers) == lower


def test_estimator_on_a_panorama_pair():
    problem = make_problem("rotation", 400, outlier_rate=0.7, noise=1.0, seed=3)
    g = tiepoint.estimate(
        (problem.points0, problem.points1), "rotation", problem.camera0, problem.camera1, estimator="bnb"
    )
    assert g.model == "rotation" and g.estimator == "bnb"
    assert rotation_error(g.R, problem.R) < 0.3
    assert g.certificate.certified and g.certificate.gap == 0
    assert g.certificate.lower_bound == g.num_inliers
    assert g.num_inliers >= np.count_nonzero(problem.inliers) * 0.9
    np.testing.assert_allclose(g.matrix, homography_from_rotation(g.R, problem.K, problem.K), atol=1e-9)
    # No other estimator finds more angular inliers than the proven optimum.
    ransac = tiepoint.estimate(
        (problem.points0, problem.points1), "rotation", problem.camera0, problem.camera1, estimator="gnc"
    )
    assert ransac.num_inliers <= g.num_inliers


def test_node_budget_reports_an_open_gap():
    eps = np.radians(1.0)
    f0, f1 = _random_instance(0, inliers=40, outliers=60, eps=eps)
    result = max_consensus_rotation(f0, f1, eps, max_nodes=50)
    assert not result.optimal and result.upper_bound > result.lower_bound
    assert max_consensus_rotation(f0, f1, eps).lower_bound >= result.lower_bound


def test_bad_input():
    with pytest.raises(ValueError, match="eps"):
        max_consensus_rotation(np.eye(3), np.eye(3), eps=0.0)
    with pytest.raises(ValueError, match="shape"):
        max_consensus_rotation(np.eye(3), np.eye(2), eps=0.1)
    problem = make_problem("rotation", 50, outlier_rate=0.0, noise=0.0, seed=0)
    with pytest.raises(OptionError, match="batch"):
        tiepoint.estimate(
            (problem.points0, problem.points1), "rotation", problem.camera0, problem.camera1,
            estimator="bnb", batch=0,
        )  # fmt: skip
    with pytest.raises(tiepoint.UnknownMethodError, match="bnb"):
        tiepoint.estimate((problem.points0, problem.points1), "homography", estimator="bnb")

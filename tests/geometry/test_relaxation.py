"""The certifiable relaxation: tight on easy instances, never worse than its start, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import tiepoint
from tiepoint.errors import EstimationError, OptionError
from tiepoint.geometry.accuracy import essential_from_pose, pose_error
from tiepoint.geometry.gnc import bearings
from tiepoint.geometry.relaxation import _constraints, solve_essential_relaxation
from tiepoint_lab.bench.solvers import make_problem

pytest.importorskip("cvxpy", reason="the 'global' extra (cvxpy, clarabel) is part of the test extra")


def test_constraints_hold_for_every_essential_matrix():
    rng = np.random.default_rng(0)
    from scipy.spatial.transform import Rotation

    A, b = _constraints()
    for seed in range(3):
        R = Rotation.random(random_state=seed).as_matrix()
        t = rng.normal(size=3)
        t /= np.linalg.norm(t)
        x = np.concatenate([essential_from_pose(R, t).ravel(), t, R.T @ t])
        assert max(abs(x @ Ak @ x - bk) for Ak, bk in zip(A, b, strict=True)) < 1e-12


def test_noise_free_instance_is_certified_with_the_true_pose():
    problem = make_problem("relative_pose", 60, outlier_rate=0.0, noise=0.0, seed=2)
    f0, f1 = bearings(problem.points0, problem.camera0), bearings(problem.points1, problem.camera1)
    result = solve_essential_relaxation(f0, f1)
    assert result.cost < 1e-12 and result.relative_gap < 1e-4
    E_true = essential_from_pose(problem.R, problem.t / np.linalg.norm(problem.t))
    assert min(np.linalg.norm(result.E - E_true), np.linalg.norm(result.E + E_true)) < 1e-4


def test_estimator_certifies_a_noisy_pair_and_matches_its_start():
    problem = make_problem("relative_pose", 200, outlier_rate=0.3, noise=1.0, seed=0)
    args = ((problem.points0, problem.points1), "relative_pose", problem.camera0, problem.camera1)
    g = tiepoint.estimate(*args, estimator="sdp")
    start = tiepoint.estimate(*args, estimator="poselib")
    certificate = g.certificate
    assert certificate.certified and certificate.method == "relaxation"
    assert certificate.lower_bound <= certificate.upper_bound * (1 + 1e-9)
    assert certificate.details["rank_ratio"] < 1e-4
    assert g.cost == pytest.approx(certificate.upper_bound)
    # The certified optimum costs no more than the start on the same inliers.
    assert g.info["start_cost"] >= certificate.upper_bound * (1 - 1e-6)
    error, start_error = (
        pose_error(g.R, g.t, problem.R, problem.t),
        pose_error(start.R, start.t, problem.R, problem.t),
    )
    assert error < 2.0 and error < start_error + 0.5


def test_errors():
    problem = make_problem("relative_pose", 50, outlier_rate=0.0, noise=0.5, seed=0)
    args = ((problem.points0, problem.points1), "relative_pose", problem.camera0, problem.camera1)
    with pytest.raises(OptionError, match="start"):
        tiepoint.estimate(*args, estimator="sdp", start="magic")
    with pytest.raises(OptionError, match="gap_tolerance"):
        tiepoint.estimate(*args, estimator="sdp", gap_tolerance=2.0)
    f0 = bearings(problem.points0[:5], problem.camera0)
    with pytest.raises(EstimationError, match="at least 6"):
        solve_essential_relaxation(f0, f0)
    with pytest.raises(tiepoint.UnknownMethodError):
        tiepoint.estimate((problem.points0, problem.points1), "homography", estimator="sdp")

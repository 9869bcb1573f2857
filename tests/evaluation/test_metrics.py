"""Benchmark metrics against hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tiepoint.evaluation.metrics import (
    PairRecord,
    epipolar_match_errors,
    fraction_below,
    homography_match_errors,
    match_precision,
    precision_curve,
    summarize,
)
from tiepoint.types import Camera


def record(name, error, matches=10, inliers=5, precision=(1.0, 1.0), failed=None):
    return PairRecord(
        name=name,
        group="g",
        num_matches=matches,
        num_inliers=inliers,
        error=error,
        failed=math.isinf(error) if failed is None else failed,
        precision=list(precision),
    )


def test_match_precision_counts_errors_at_or_below_each_threshold():
    errors = np.array([0.5, 1.0, 2.5, 7.0, np.inf])
    assert match_precision(errors, [1, 3, 5]) == [0.4, 0.6, 0.6]


def test_match_precision_of_a_pair_without_matches_is_zero():
    assert match_precision(np.zeros(0), [1, 2, 3]) == [0.0, 0.0, 0.0]


def test_mha_is_the_fraction_of_pairs_within_each_threshold():
    # errors 0.5, 2, 4, inf: 1/4 within 1 px, 2/4 within 3 px, 3/4 within 5 px (inf never counts)
    assert fraction_below([0.5, 2.0, 4.0, np.inf], [1, 3, 5]) == [0.25, 0.5, 0.75]
    assert fraction_below([1.0], [1]) == [1.0]  # "<=" threshold
    assert fraction_below([], [1]) == [0.0]


def test_homography_summary_by_hand():
    records = [
        record("a", 0.5, matches=10, inliers=8, precision=(1.0, 1.0)),
        record("b", 2.0, matches=4, inliers=2, precision=(0.5, 1.0)),
        record("c", 4.0, matches=0, inliers=0, precision=(0.0, 0.0)),  # zero matches: contributes 0 to MMA
        record("d", math.inf, matches=6, inliers=0, precision=(0.5, 0.5)),  # estimation failed
    ]
    s = summarize(records, "homography", mma_thresholds=(1.0, 3.0))
    assert s["num_pairs"] == 4 and s["failures"] == 1
    assert s["mean_matches"] == 5.0 and s["mean_inliers"] == 2.5
    assert s["mean_inlier_ratio"] == pytest.approx((0.8 + 0.5 + 0.0 + 0.0) / 4)
    assert s["median_error"] == 3.0
    assert (s["mha@1px"], s["mha@3px"], s["mha@5px"]) == (0.25, 0.5, 0.75)
    # recall curve through (0, 0), (0.5, .25), (2, .5), (4, .75), flat after the last error below T:
    # area to 3 = 0.0625 + 0.5625 + 0.5 = 1.125; to 5 = 1.875 + 0.75 = 2.625; to 10 = 1.875 + 6 * 0.75 = 6.375
    assert s["auc@3px"] == pytest.approx(1.125 / 3)
    assert s["auc@5px"] == pytest.approx(2.625 / 5)
    assert s["auc@10px"] == pytest.approx(6.375 / 10)
    assert s["mma@1px"] == pytest.approx((1.0 + 0.5 + 0.0 + 0.5) / 4)
    assert s["mma@3px"] == pytest.approx((1.0 + 1.0 + 0.0 + 0.5) / 4)
    assert "auc@5deg" not in s
    assert precision_curve(s, "homography", (1.0, 3.0)) == ([1.0, 3.0], [0.5, 0.625])


def test_pose_summary_by_hand():
    records = [record(n, e) for n, e in (("a", 1.0), ("b", 4.0), ("c", 12.0), ("d", math.inf))]
    s = summarize(records, "relative_pose", mma_thresholds=(1.0, 3.0))
    # knots (0, 0), (1, .25), (4, .5), (12, .75): to 4 the area is 0.125 + 1.125 = 1.25
    assert s["auc@5deg"] == pytest.approx((1.25 + 0.5) / 5)
    assert s["auc@10deg"] == pytest.approx((1.25 + 6 * 0.5) / 10)
    assert s["auc@20deg"] == pytest.approx((1.25 + 8 * (0.5 + 0.75) / 2 + 8 * 0.75) / 20)
    assert s["precision@1px"] == 1.0 and "mma@1px" not in s and "mha@1px" not in s
    assert s["failures"] == 1


def test_summary_of_all_failures_and_of_no_pairs():
    s = summarize(
        [record("a", math.inf, matches=0, inliers=0, precision=(0.0, 0.0))], "homography", (1.0, 3.0)
    )
    assert s["mha@5px"] == 0.0 and s["auc@10px"] == 0.0 and math.isinf(s["median_error"])
    assert s["mean_inlier_ratio"] == 0.0
    empty = summarize([], "relative_pose", (1.0,))
    assert empty["num_pairs"] == 0 and empty["auc@20deg"] == 0.0 and empty["precision@1px"] == 0.0


def test_summary_rejects_bad_input():
    with pytest.raises(ValueError, match="task"):
        summarize([], "fundamental")
    with pytest.raises(ValueError, match="precision values"):
        summarize([record("a", 1.0, precision=(1.0,))], "homography", (1.0, 3.0))


def test_homography_match_errors_are_transfer_distances():
    H = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # shift by 2 px in x
    errors = homography_match_errors(
        H, np.array([[0.0, 0.0], [10.0, 10.0]]), np.array([[2.0, 0.0], [12.0, 13.0]])
    )
    np.testing.assert_allclose(errors, [0.0, 3.0])
    assert homography_match_errors(H, np.zeros((0, 2)), np.zeros((0, 2))).shape == (0,)


def test_epipolar_match_errors_for_a_sideways_translation():
    # camera 1 is camera 0 moved along x: epipolar lines are image rows, the distance is |dy| in px
    camera = Camera(100.0, 100.0, 50.0, 50.0, 100, 100)
    points0 = np.array([[10.0, 20.0], [30.0, 40.0]])
    points1 = np.array([[15.0, 20.0], [35.0, 43.0]])
    errors = epipolar_match_errors(np.eye(3), np.array([1.0, 0.0, 0.0]), camera, camera, points0, points1)
    np.testing.assert_allclose(errors, [0.0, 3.0], atol=1e-9)


def test_pair_record_json_round_trip_turns_inf_into_null():
    failed = record("a", math.inf, precision=(0.5, 0.25))
    data = failed.to_dict()
    assert data["error"] is None and data["failed"] is True
    assert PairRecord.from_dict(data) == failed
    assert record("b", 1.5).to_dict()["error"] == 1.5

"""The benchmark runner and report, with fake matchers (fast) and with SIFT on real Oxford pairs (slow)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tiepoint import registry
from tiepoint.errors import OptionError
from tiepoint.evaluation import (
    BenchmarkResult,
    Protocol,
    format_table,
    load_dataset,
    read_results,
    run_benchmark,
    run_benchmarks,
    write_report,
)
from tiepoint.evaluation.datasets import Dataset, Pair
from tiepoint.types import Camera, Matches

SIZE = (320, 240)
H_TRUE = np.array([[0.9, 0.1, 12.0], [-0.05, 1.1, -7.0], [1e-4, -5e-5, 1.0]])


def blank_pair() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((SIZE[1], SIZE[0], 3), np.uint8), np.zeros((SIZE[1], SIZE[0], 3), np.uint8)


def with_outliers(points0: np.ndarray, points1: np.ndarray, fraction: float):
    """Replace a fraction of the matches by ones at least 20 px off, drawn from NumPy's global generator
    (so unseeded runs would differ)."""
    count = round(fraction * len(points0))
    offsets = np.random.uniform(20, 50, (count, 2)) * np.random.choice([-1, 1], (count, 2))
    points1 = points1.copy()
    points1[:count] += offsets
    return points0, points1


class FakeMatcher:
    """Returns matches made from a known geometry, with 20 % outliers and ``timings`` like a sparse method."""

    def __init__(self, make_points, outliers=0.2):
        self.make_points, self.outliers = make_points, outliers

    def match(self, image0, image1):
        points0, points1 = with_outliers(*self.make_points(), self.outliers)
        return Matches(
            points0.astype(np.float32),
            points1.astype(np.float32),
            np.ones(len(points0), np.float32),
            SIZE,
            SIZE,
            timings={"extract0": 0.010, "extract1": 0.030, "match": 0.005},
        )


def homography_points():
    xs, ys = np.meshgrid(np.linspace(10, 300, 10), np.linspace(10, 220, 10))
    points0 = np.stack([xs.ravel(), ys.ravel()], axis=1)
    mapped = np.c_[points0, np.ones(len(points0))] @ H_TRUE.T
    return points0, mapped[:, :2] / mapped[:, 2:]


CAMERA = Camera(300.0, 300.0, 159.5, 119.5, *SIZE)
R_TRUE = np.array(
    [[0.98006658, 0.0, 0.19866933], [0.0, 1.0, 0.0], [-0.19866933, 0.0, 0.98006658]]
)  # 0.2 rad about y
T_TRUE = np.array([-1.0, 0.1, 0.2])


def pose_points():
    rng = np.random.default_rng(0)
    X0 = np.c_[rng.uniform(-1, 1, 200), rng.uniform(-0.8, 0.8, 200), rng.uniform(3, 6, 200)]
    X1 = X0 @ R_TRUE.T + T_TRUE
    x0, x1 = X0 @ CAMERA.K.T, X1 @ CAMERA.K.T
    return x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:]


def homography_dataset(count=3) -> Dataset:
    return Dataset("fake-h", "homography", [Pair(f"h{i}", loader=blank_pair, H=H_TRUE) for i in range(count)])


def pose_dataset(count=3) -> Dataset:
    pairs = [
        Pair(f"p{i}", loader=blank_pair, camera0=CAMERA, camera1=CAMERA, R=R_TRUE, t=3 * T_TRUE)
        for i in range(count)
    ]
    return Dataset("fake-pose", "relative_pose", pairs)


@pytest.fixture
def fake_method(monkeypatch):
    """Make ``registry.get_method`` return the matcher a test sets, recording the options it was asked for."""
    state = {"matcher": None, "options": None}

    def get_method(name, **options):
        state["options"] = options
        return state["matcher"]

    monkeypatch.setattr(registry, "get_method", get_method)
    return state


def test_protocol_defaults_and_overrides():
    for name in ("oxford", "hpatches", "synthetic:photos"):
        protocol = Protocol.default(name)
        assert (protocol.task, protocol.estimator, protocol.threshold) == ("homography", "poselib", 3.0)
        assert protocol.max_keypoints == 2048 and protocol.resize is None
        assert protocol.mma_thresholds == tuple(float(t) for t in range(1, 11))
    for name in ("middlebury", "pairs:test.txt"):
        protocol = Protocol.default(name)
        assert (protocol.task, protocol.estimator, protocol.threshold) == ("relative_pose", "poselib", 1.0)
    custom = Protocol.default("oxford", estimator="opencv", threshold=2, max_keypoints=None, resize=640)
    assert (custom.estimator, custom.threshold, custom.max_keypoints, custom.resize) == (
        "opencv",
        2.0,
        None,
        640,
    )
    assert custom.method_options() == {"resize": 640}
    assert Protocol.default("oxford").method_options() == {"max_keypoints": 2048}
    assert "threshold 3 px" in Protocol.default("oxford").describe()
    assert Protocol.from_dict(json.loads(json.dumps(custom.to_dict()))) == custom
    with pytest.raises(ValueError, match="threshold"):
        Protocol("homography", threshold=0)
    with pytest.raises(ValueError, match="task"):
        Protocol("fundamental")


def test_homography_run_with_known_matches(fake_method):
    fake_method["matcher"] = FakeMatcher(homography_points)
    result = run_benchmark(homography_dataset(), "fake", progress=False)
    assert fake_method["options"] == {"max_keypoints": 2048}
    assert result.dataset == "fake-h" and result.task == "homography" and len(result.records) == 3
    for record in result.records:
        assert record.num_matches == 100 and record.num_inliers == 80 and not record.failed
        assert record.error < 1e-3  # float32 keypoints
        assert record.precision == [0.8] * 10  # outliers are >= 20 px off, inliers exact
        assert record.extract_ms == pytest.approx(20.0) and record.match_ms == pytest.approx(5.0)
    s = result.summary
    assert s["mha@1px"] == 1.0 and s["auc@3px"] > 0.999 and s["mma@1px"] == pytest.approx(0.8)
    assert s["mean_inlier_ratio"] == pytest.approx(0.8) and s["failures"] == 0
    assert result.timing["extract_ms_mean"] == pytest.approx(20.0)
    assert result.timing["pair_ms_mean"] == pytest.approx(45.0)
    assert result.mma_curve() == (list(result.protocol.mma_thresholds), [pytest.approx(0.8)] * 10)
    assert {"cpu", "cpu_count", "torch_threads", "tiepoint", "torch", "opencv", "poselib", "platform"} <= set(
        result.environment
    )


def test_pose_run_with_known_matches(fake_method):
    fake_method["matcher"] = FakeMatcher(pose_points)
    result = run_benchmark(pose_dataset(), "fake", progress=False, ratio=0.9)
    assert fake_method["options"] == {"max_keypoints": 2048, "ratio": 0.9}
    assert result.protocol.threshold == 1.0 and result.method_options == {"ratio": 0.9}
    for record in result.records:
        assert record.error < 0.1 and record.num_inliers == 160
        assert record.precision[0] == pytest.approx(0.8)
    assert result.summary["auc@5deg"] > 0.98 and result.summary["precision@1px"] == pytest.approx(0.8)


def test_a_method_option_may_share_its_name_with_a_protocol_setting(fake_method):
    # ELoFTR's match confidence "threshold" and the estimator's inlier threshold: both reach their place
    fake_method["matcher"] = FakeMatcher(pose_points)
    (result,) = run_benchmarks(
        [pose_dataset()], ["fake"], threshold=2.0, progress=False, method_options={"threshold": 0.3}
    )
    assert fake_method["options"] == {"max_keypoints": 2048, "threshold": 0.3}
    assert result.protocol.threshold == 2.0 and result.method_options == {"threshold": 0.3}


def test_failures_are_recorded_with_infinite_error(fake_method):
    fake_method["matcher"] = FakeMatcher(lambda: (np.zeros((0, 2)), np.zeros((0, 2))))
    result = run_benchmark(homography_dataset(2), "fake", progress=False)
    assert all(r.failed and math.isinf(r.error) and r.num_matches == 0 for r in result.records)
    assert "at least" in result.records[0].message  # NotEnoughMatchesError's text
    assert (
        result.summary["failures"] == 2
        and result.summary["mha@5px"] == 0.0
        and result.summary["mma@10px"] == 0.0
    )
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # strict JSON: inf became null
    assert data["records"][0]["error"] is None and data["summary"]["median_error"] is None
    again = BenchmarkResult.from_dict(data)
    assert math.isinf(again.records[0].error) and again.summary["failures"] == 2


def random_points():
    rng = np.random.default_rng(1)
    return rng.uniform((0, 0), SIZE, (60, 2)), rng.uniform((0, 0), SIZE, (60, 2))


def test_unreliable_models_are_scored_as_estimated_and_recorded(fake_method):
    # the protocol scores whatever model the estimator returns; the record only says whether it is reliable
    fake_method["matcher"] = FakeMatcher(random_points, outliers=0.0)
    result = run_benchmark(homography_dataset(2), "fake", progress=False)
    assert result.protocol.unreliable == "scored as estimated"
    for record in result.records:
        assert not record.failed and math.isfinite(record.error) and record.num_inliers >= 4
        assert record.reliable is False and record.reason.startswith(f"{record.num_inliers} inliers of 60")
    assert result.summary["unreliable"] == 2 and result.summary["failures"] == 0
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["protocol"]["unreliable"] == "scored as estimated" and data["summary"]["unreliable"] == 2
    assert (
        data["records"][0]["reliable"] is False and data["records"][0]["reason"] == result.records[0].reason
    )
    again = BenchmarkResult.from_dict(data)
    assert again.records == result.records and again.protocol == result.protocol

    fake_method["matcher"] = FakeMatcher(homography_points)
    reliable = run_benchmark(homography_dataset(2), "fake", progress=False)
    assert all(r.reliable and "NFA" in r.reason for r in reliable.records)
    assert reliable.summary["unreliable"] == 0
    fake_method["matcher"] = FakeMatcher(lambda: (np.zeros((0, 2)), np.zeros((0, 2))))
    failed = run_benchmark(homography_dataset(1), "fake", progress=False)
    assert failed.records[0].reliable is False and failed.records[0].reason == failed.records[0].message
    assert failed.summary["unreliable"] == 0  # failures are counted apart


def test_records_and_protocols_written_before_the_test_still_load(fake_method):
    fake_method["matcher"] = FakeMatcher(homography_points)
    data = run_benchmark(homography_dataset(1), "fake", progress=False).to_dict()
    for record in data["records"]:
        del record["reliable"], record["reason"]
    del data["protocol"]["unreliable"], data["summary"]["unreliable"]
    old = BenchmarkResult.from_dict(data)
    assert old.records[0].reliable is None and old.protocol.unreliable == "scored as estimated"
    with pytest.raises(ValueError, match="unreliable"):
        Protocol("homography", unreliable="dropped")


def test_runs_are_reproducible(fake_method):
    fake_method["matcher"] = FakeMatcher(homography_points, outliers=0.5)
    first = run_benchmark(homography_dataset(), "fake", progress=False)
    np.random.seed(123)  # whatever state the caller leaves behind
    second = run_benchmark(homography_dataset(), "fake", progress=False)
    assert first.accuracy() == second.accuracy()
    # each pair is seeded: the same pair gives the same record however many pairs ran before it
    alone = run_benchmark(homography_dataset(3).subset([2]), "fake", progress=False)
    assert alone.records[0].to_dict()["error"] == first.records[2].to_dict()["error"]


def test_options_fixed_by_the_protocol_are_refused(fake_method):
    fake_method["matcher"] = FakeMatcher(homography_points)
    with pytest.raises(OptionError, match="max_keypoints"):
        run_benchmark(homography_dataset(), "fake", progress=False, max_keypoints=100)
    with pytest.raises(ValueError, match="relative_pose"):
        run_benchmark(homography_dataset(), "fake", protocol=Protocol.default("middlebury"), progress=False)


def test_table_and_report(fake_method, tmp_path):
    fake_method["matcher"] = FakeMatcher(homography_points)
    homography = run_benchmark(homography_dataset(), "fake", progress=False)
    fake_method["matcher"] = FakeMatcher(pose_points)
    pose = run_benchmark(pose_dataset(), "fake", progress=False)
    table = format_table([homography, pose])
    assert "fake-h (homography, 3 pairs): estimator poselib, threshold 3 px, max 2048 keypoints" in table
    assert "fake-pose (relative pose, 3 pairs): estimator poselib, threshold 1 px" in table
    row = next(line for line in table.splitlines() if line.startswith("fake ") and "100.0" in line)
    # #matches 100, #inliers 80, MHA 100 x3, AUC 100 x3, MMA@1/3/5 80.0, 0 failures, 20.0 ms, 5.0 ms
    assert row.split() == ["fake", "100", "80"] + ["100.0"] * 6 + ["80.0"] * 3 + ["0", "20.0", "5.0"]
    assert "AUC@5°" in table and "P@1px" in table

    written = write_report([homography, pose], tmp_path / "out")
    assert [p.name for p in written] == ["results.json", "table.txt", "mma.png"]
    assert all(p.is_file() for p in written)
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["dataset"] for r in data["results"]] == ["fake-h", "fake-pose"]
    assert data["results"][0]["protocol"]["threshold"] == 3.0 and "environment" in data["results"][1]
    assert (tmp_path / "out" / "mma.png").read_bytes()[:4] == b"\x89PNG"
    assert [r.summary for r in read_results(tmp_path / "out" / "results.json")] == [
        homography.summary,
        pose.summary,
    ]
    assert not list((tmp_path / "out").glob(".*partial"))
    only_pose = write_report([pose], tmp_path / "pose")
    assert [p.name for p in only_pose] == ["results.json", "table.txt"]


def test_report_append_keeps_other_results_and_replaces_same_method(fake_method, tmp_path):
    fake_method["matcher"] = FakeMatcher(homography_points)
    homography = run_benchmark(homography_dataset(), "fake", progress=False)
    fake_method["matcher"] = FakeMatcher(pose_points)
    pose = run_benchmark(pose_dataset(), "fake", progress=False)
    write_report([homography], tmp_path)
    write_report([pose], tmp_path, append=True)
    assert [r.dataset for r in read_results(tmp_path / "results.json")] == ["fake-h", "fake-pose"]
    write_report([homography], tmp_path, append=True)  # same dataset and method: replaced, not repeated
    assert [r.dataset for r in read_results(tmp_path / "results.json")] == ["fake-pose", "fake-h"]
    assert (
        "fake-pose" in (tmp_path / "table.txt").read_text()
        and "fake-h" in (tmp_path / "table.txt").read_text()
    )
    write_report([pose], tmp_path)  # without append: only the new results
    assert [r.dataset for r in read_results(tmp_path / "results.json")] == ["fake-pose"]
    fake_method["matcher"] = FakeMatcher(pose_points)
    other_options = run_benchmark(pose_dataset(), "fake", progress=False, ratio=0.7)
    write_report([other_options], tmp_path, append=True)  # the same method with other options: kept beside it
    assert [r.method_options for r in read_results(tmp_path / "results.json")] == [{}, {"ratio": 0.7}]


@pytest.fixture(scope="module")
def oxford_sift(oxford_root):
    dataset = load_dataset("oxford", root=oxford_root).subset(["graf/1-2", "boat/1-2", "leuven/1-2"])
    return dataset, run_benchmark(dataset, "sift+ratio", progress=False)


@pytest.mark.slow
def test_sift_on_oxford_is_sane_and_reproducible(oxford_sift):
    dataset, result = oxford_sift
    assert [r.name for r in result.records] == ["graf/1-2", "boat/1-2", "leuven/1-2"]
    for record in result.records:
        assert 300 < record.num_matches <= 2048 and record.num_inliers > 0.8 * record.num_matches
        assert record.precision[2] > 0.8  # MMA@3px
        assert record.extract_ms > 0 and record.match_ms > 0 and record.estimate_ms > 0
    assert result.summary["mha@3px"] == 1.0 and result.summary["auc@10px"] > 0.9
    again = run_benchmark(dataset, "sift+ratio", progress=False)
    assert again.accuracy() == result.accuracy()


@pytest.mark.slow
def test_sift_corner_error_regression(oxford_sift):
    # measured with OpenCV 4.14 SIFT (RootSIFT), ratio 0.8, 2048 keypoints, PoseLib at 3 px:
    # graf/1-2 0.755 px, boat/1-2 0.265 px, leuven/1-2 0.090 px
    _, result = oxford_sift
    errors = {record.name: record.error for record in result.records}
    assert errors["graf/1-2"] < 3.0 and errors["boat/1-2"] < 3.0 and errors["leuven/1-2"] < 3.0

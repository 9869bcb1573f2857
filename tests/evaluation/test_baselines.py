"""Regression guard for the baselines and the shipped learned features on the full real benchmarks.

The thresholds sit just below the numbers measured with ``tiepoint bench --dataset oxford middlebury
--methods sift orb akaze`` on 2026-11-21 (README, "Benchmarks"): a change that makes a baseline worse
fails here. Accuracy is deterministic (seeded estimators), so the margins only absorb library-version noise.
"""

from __future__ import annotations

import pytest

from tiepoint.evaluation import run_benchmark

pytestmark = pytest.mark.slow

# measured: sift (ratio) oxford MHA@3 0.725, AUC@3 0.492, 0 failures; middlebury AUC@10 0.602, 0 failures;
# orb (mnn) oxford MHA@3 0.650, AUC@3 0.459, 2 failures (pairs without a homography)
RECORDED = [
    ("oxford", "sift", 0, {"mha@3px": 0.70, "auc@3px": 0.47}),
    ("oxford", "orb", 2, {"mha@3px": 0.62, "auc@3px": 0.43}),
    ("middlebury", "sift", 0, {"auc@10deg": 0.57}),
    # shipped CLIDD weights (README, "CLIDD features"): a48 oxford MHA@3 0.500, AUC@3 0.323, 1 failure;
    # middlebury AUC@10 0.561; t64 (mnn) oxford MHA@3 0.575, AUC@3 0.399, 0 failures; middlebury AUC@10 0.521
    ("oxford", "clidd-a48+mnn", 1, {"mha@3px": 0.47, "auc@3px": 0.30}),
    ("middlebury", "clidd-a48+mnn", 0, {"auc@10deg": 0.54}),
    ("oxford", "clidd-t64+mnn", 0, {"mha@3px": 0.55, "auc@3px": 0.37}),
    ("middlebury", "clidd-t64+mnn", 0, {"auc@10deg": 0.48}),
    # s96 (mnn) oxford MHA@3 0.575, AUC@3 0.384, 0 failures
    ("oxford", "clidd-s96+mnn", 0, {"mha@3px": 0.55, "auc@3px": 0.36}),
]


@pytest.mark.parametrize("dataset, method, max_failures, minimum", RECORDED)
def test_baseline_does_not_regress(data_root, dataset, method, max_failures, minimum):
    result = run_benchmark(dataset, method, root=data_root, progress=False)
    assert result.summary["failures"] <= max_failures
    for metric, floor in minimum.items():
        assert result.summary[metric] >= floor, (
            f"{method} on {dataset}: {metric} = {result.summary[metric]:.3f} < {floor}"
        )

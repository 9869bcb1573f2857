"""The extreme-viewpoint benchmark: methods on the synthetic extreme pairs (:mod:`tiepoint_lab.data.extreme`)
and on Oxford, with the wall time of every pair.

Each pair is matched by the method (timed: everything the method does, view synthesis and verification
included; image loading excluded), then its homography is estimated under the homography protocol of
``tiepoint bench`` (PoseLib, 3 px) and scored by its corner error. A pair is *solved* when that error is at
most :data:`SOLVED_PX`. Results keep every pair's error, time and, for on-demand matching, the stage that
solved it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tiepoint.config import parse_spec
from tiepoint.evaluation.datasets import Dataset
from tiepoint.evaluation.metrics import summarize
from tiepoint.evaluation.runner import Protocol, estimate_and_score, match_and_check
from tiepoint.registry import build_method

SOLVED_PX = 10.0
"""Corner error (pixels) at most which a pair counts as solved."""
HARDEST_OXFORD = ("graf/1-5", "graf/1-6", "wall/1-5", "wall/1-6")
"""The hardest real viewpoint changes at hand, reported pair by pair."""


class _Timed:
    """A method whose last :meth:`match` call's wall time is kept in :attr:`seconds`."""

    def __init__(self, method: Any) -> None:
        self.method = method
        self.seconds = 0.0

    def match(self, image0: np.ndarray, image1: np.ndarray) -> Any:
        start = time.perf_counter()
        matches = self.method.match(image0, image1)
        self.seconds = time.perf_counter() - start
        return matches


def _summary(records: Sequence[Any], seconds: Sequence[float]) -> dict[str, Any]:
    errors = np.array([record.error for record in records])
    summary = summarize(records, "homography")
    return {
        "pairs": len(records),
        "solved": float(np.mean(errors <= SOLVED_PX)),
        "auc@3px": summary["auc@3px"],
        "auc@5px": summary["auc@5px"],
        "auc@10px": summary["auc@10px"],
        "mha@3px": summary["mha@3px"],
        "seconds_median": float(np.median(seconds)),
        "seconds_mean": float(np.mean(seconds)),
    }


def run_method(
    dataset: Dataset, spec: str, max_keypoints: int = 2048, progress: bool = True
) -> dict[str, Any]:
    """One method (``"name"`` or ``"name:option=value;..."``) on every pair of ``dataset``: a summary (success
    rate, corner AUC@3/5/10, MHA@3, time per pair), one per group, and every pair's record."""
    name, options = parse_spec(spec)
    timed = _Timed(build_method(name, max_keypoints=max_keypoints, **options))
    protocol = Protocol.default(dataset)
    timed.match(*dataset.pairs[0].load())  # warm-up: one-off start-up costs are not timed
    records, seconds, rows = [], [], []
    pairs = dataset.pairs
    if progress:
        from tqdm.auto import tqdm

        pairs = tqdm(pairs, desc=f"{dataset.name} | {spec}", unit="pair", leave=False)
    for pair in pairs:
        matches, extract_ms, match_ms, precision = match_and_check(pair, timed, protocol)
        record = estimate_and_score(pair, matches, protocol, precision, extract_ms, match_ms)
        records.append(record)
        seconds.append(timed.seconds)
        info = {
            key: matches.info[key] for key in ("stage", "solved", "views0", "views1") if key in matches.info
        }
        rows.append(
            {
                "name": pair.name,
                "group": pair.group,
                "error": None if not np.isfinite(record.error) else round(record.error, 3),
                "seconds": round(timed.seconds, 3),
                "matches": record.num_matches,
                "inliers": record.num_inliers,
                **info,
            }
        )
    groups = {}
    for group in dict.fromkeys(pair.group for pair in dataset.pairs):
        chosen = [k for k, pair in enumerate(dataset.pairs) if pair.group == group]
        groups[group] = _summary([records[k] for k in chosen], [seconds[k] for k in chosen])
    return {
        "dataset": dataset.name,
        "method": spec,
        "max_keypoints": max_keypoints,
        "summary": _summary(records, seconds),
        "groups": groups,
        "pairs": rows,
    }

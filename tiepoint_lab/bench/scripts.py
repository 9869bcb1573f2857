"""What the scripts under ``benchmarks/`` share: their parser, and timing several callables interleaved."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["interleaved_medians", "script_parser", "weights_parser"]


def script_parser(doc: str | None) -> argparse.ArgumentParser:
    """The parser of a script: its docstring ``doc`` as the description, shown as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def weights_parser(doc: str | None) -> argparse.ArgumentParser:
    """The parser of a script comparing weights files on held-out photos: ``WEIGHTS ...`` and ``--photos``."""
    parser = script_parser(doc)
    parser.add_argument("weights", nargs="+")
    parser.add_argument(
        "--photos", default="data/photos", help="corpus from 'tiepoint-lab data photos' (its val split)"
    )
    return parser


def interleaved_medians(
    calls: Mapping[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, Any], dict[str, float]]:
    """Time ``calls`` under the same load: one warm-up call each, then ``repeats`` rounds that run every call
    once. Returns each call's warm-up result and its median time in seconds."""
    results = {name: call() for name, call in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return results, {name: statistics.median(values) for name, values in times.items()}

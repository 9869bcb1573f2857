"""Benchmark results as text tables, a JSON file and an MMA figure."""

from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..io.files import atomic_path, write_json
from .metrics import key, precision_name
from .runner import BenchmarkResult, jsonable

_Column = tuple[str, str, str, str]
"""A table column: ``(header, source, key, kind)``."""

_COUNT_COLUMNS: list[_Column] = [
    ("#matches", "summary", "mean_matches", "count"),
    ("#inliers", "summary", "mean_inliers", "count"),
]
_COST_COLUMNS: list[_Column] = [
    ("fail", "summary", "failures", "count"),
    ("extract ms/img", "timing", "extract_ms_mean", "ms"),
    ("match ms/pair", "timing", "match_ms_mean", "ms"),
]


def _percent_columns(
    header: str, metric: str, thresholds: Sequence[int], unit: str, mark: str = ""
) -> list[_Column]:
    """``header@T`` columns of the summary's ``metric`` at each threshold ``T`` (in ``unit``), as percentages;
    ``mark`` follows the threshold in the header."""
    return [(f"{header}@{t}{mark}", "summary", key(metric, t, unit), "percent") for t in thresholds]


_HOMOGRAPHY_COLUMNS = [
    *_COUNT_COLUMNS,
    *_percent_columns("MHA", "mha", (1, 3, 5), "px"),
    *_percent_columns("AUC", "auc", (3, 5, 10), "px"),
    *_percent_columns("MMA", "mma", (1, 3, 5), "px"),
    *_COST_COLUMNS,
]

_POSE_COLUMNS = [
    *_COUNT_COLUMNS,
    *_percent_columns("AUC", "auc", (5, 10, 20), "deg", mark="°"),
    *_percent_columns("P", precision_name("relative_pose"), (1, 3), "px", mark="px"),
    *_COST_COLUMNS,
]


def _format(value: float | None, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "percent":
        return f"{100.0 * value:.1f}"
    if kind == "count":
        return f"{value:.0f}"
    return f"{value:.1f}"


def _groups(results: Sequence[BenchmarkResult]) -> list[list[BenchmarkResult]]:
    """Results grouped by dataset and protocol, in the order they first appear."""
    groups: dict[tuple[str, str], list[BenchmarkResult]] = {}
    for result in results:
        group_key = (result.dataset, json.dumps(result.protocol.to_dict(), sort_keys=True))
        groups.setdefault(group_key, []).append(result)
    return list(groups.values())


def _label(result: BenchmarkResult) -> str:
    if not result.method_options:
        return result.method
    options = ",".join(f"{k}={v}" for k, v in sorted(result.method_options.items()))
    return f"{result.method} ({options})"


def _line(cells: list[str], widths: list[int]) -> str:
    """The method name left-aligned, the numbers right-aligned."""
    numbers = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
    return "  ".join([cells[0].ljust(widths[0]), *numbers])


def format_table(results: Sequence[BenchmarkResult]) -> str:
    """Fixed-width text tables: one per dataset (and protocol), one row per method.

    Homography datasets show mean #matches and #inliers, MHA@1/3/5 px, corner-error AUC@3/5/10 px and
    MMA@1/3/5 px (all in %), failures, extraction ms per image and matching ms per pair. Relative-pose
    datasets show #matches, #inliers, pose AUC@5/10/20 degrees, epipolar precision at 1 and 3 px, failures
    and times. Each table's title states the task, the number of pairs and the protocol.
    """
    tables = []
    for group in _groups(results):
        first = group[0]
        columns = _HOMOGRAPHY_COLUMNS if first.task == "homography" else _POSE_COLUMNS
        title = (
            f"{first.dataset} ({first.task.replace('_', ' ')}, {len(first.records)} pairs): "
            f"{first.protocol.describe()}"
        )
        header = ["method"] + [column[0] for column in columns]
        rows = []
        for result in group:
            row = [_label(result)]
            for _, source, name, kind in columns:
                table = result.summary if source == "summary" else result.timing
                row.append(_format(table.get(name), kind))
            rows.append(row)
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

        lines = [_line(cells, widths) for cells in [header, *rows]]
        rule = "-" * len(lines[0])
        tables.append("\n".join([title, rule, lines[0], rule, *lines[1:], rule]))
    return "\n\n".join(tables)


def _identity(result: BenchmarkResult) -> tuple[str, str, str]:
    """What makes two results the same run: dataset, method and options (compared as JSON, so a tuple read
    back from ``results.json`` as a list still matches)."""
    return result.dataset, result.method, json.dumps(jsonable(result.method_options), sort_keys=True)


def write_report(
    results: Sequence[BenchmarkResult], output_dir: str | os.PathLike, append: bool = False
) -> list[Path]:
    """Write the results into ``output_dir`` (created if needed); every file is written atomically.

    With ``append``, the results already in ``output_dir/results.json`` are kept (before the new ones), except
    those of the same dataset, method and method options, which the new ones replace; the table and figure
    show them all.

    Files:
        * ``results.json``: every result with its protocol, summary, timing, environment and per-pair
          records (:meth:`BenchmarkResult.to_dict`; non-finite numbers are ``null``);
        * ``table.txt``: :func:`format_table`;
        * ``mma.png``: MMA curves of the homography results (only when there is at least one).

    Returns:
        The paths written.
    """
    from .. import __version__

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if append and (output_dir / "results.json").is_file():
        replaced = {_identity(r) for r in results}
        kept = [r for r in read_results(output_dir / "results.json") if _identity(r) not in replaced]
        results = kept + list(results)
    written = [
        write_json(
            output_dir / "results.json",
            {
                "tiepoint": __version__,
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "results": [result.to_dict() for result in results],
            },
        )
    ]
    with atomic_path(output_dir / "table.txt") as tmp:
        tmp.write_text(format_table(results) + "\n")
    written.append(output_dir / "table.txt")

    homography = [r for r in results if r.task == "homography"]
    if homography:
        from ..viz import plot_mma_curves

        datasets = list(dict.fromkeys(r.dataset for r in homography))
        curves = {}
        for result in homography:
            label = _label(result) if len(datasets) == 1 else f"{_label(result)} | {result.dataset}"
            while label in curves:
                label += "'"
            curves[label] = result.mma_curve()
        title = f"Mean matching accuracy, {', '.join(datasets)}"
        plot_mma_curves(curves, output_dir / "mma.png", title=title)  # writes atomically
        written.append(output_dir / "mma.png")
    return written


def read_results(path: str | os.PathLike) -> list[BenchmarkResult]:
    """Read the results of a ``results.json`` written by :func:`write_report`."""
    data = json.loads(Path(path).read_text())
    return [BenchmarkResult.from_dict(item) for item in data["results"]]


__all__ = ["format_table", "read_results", "write_report"]

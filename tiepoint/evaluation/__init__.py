"""Benchmarks: datasets with ground truth, a fixed evaluation protocol, metrics and reports.

Example:
    >>> from tiepoint.evaluation import run_benchmark, format_table, write_report
    >>> results = [run_benchmark("oxford", m) for m in ("sift+ratio", "orb+ratio")]  # doctest: +SKIP
    >>> print(format_table(results))  # doctest: +SKIP
    >>> write_report(results, "bench_out")  # results.json, table.txt, mma.png  # doctest: +SKIP
"""

from .datasets import Dataset, Pair, load_dataset
from .report import format_table, read_results, write_report
from .runner import BenchmarkResult, Protocol, run_benchmark, run_benchmarks

__all__ = [
    "BenchmarkResult",
    "Dataset",
    "Pair",
    "Protocol",
    "format_table",
    "load_dataset",
    "read_results",
    "run_benchmark",
    "run_benchmarks",
    "write_report",
]

"""Whether two benchmark results files give the same accuracy, pair by pair (timings are ignored).

    python benchmarks/same_accuracy.py benchmarks/views/default/results.json /tmp/rerun/results.json

For every (method with its options, dataset) in the second file, the first file's result is compared: each
pair's match and inlier counts, error, failure flag and precision curve, and every non-timing number of the
summary. Prints one line per result and exits 1 when any differ, naming the first differences.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tiepoint_lab.bench.scripts import script_parser

ACCURACY_FIELDS = ("num_matches", "num_inliers", "error", "failed", "precision")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def differences(reference: dict[str, Any], rerun: dict[str, Any]) -> list[str]:
    """The accuracy fields in which two results of one (method, dataset) differ."""
    found = []
    for key, value in rerun["summary"].items():
        if "_ms" not in key and not _same(reference["summary"].get(key), value):
            found.append(f"summary {key}: {reference['summary'].get(key)} vs {value}")
    records = {r["name"]: r for r in reference["records"]}
    for record in rerun["records"]:
        old = records.get(record["name"])
        if old is None:
            found.append(f"pair {record['name']} missing from the reference")
            continue
        found += [
            f"pair {record['name']} {field}: {old.get(field)} vs {record.get(field)}"
            for field in ACCURACY_FIELDS
            if not _same(old.get(field), record.get(field))
        ]
    return found


def _by_run(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The results of a file by ``(method with its options, dataset)``."""
    runs = {}
    for result in json.loads(path.read_text())["results"]:
        options = result.get("method_options") or {}
        label = result["method"] + "".join(f" {k}={v}" for k, v in sorted(options.items()))
        runs[label, result["dataset"]] = result
    return runs


def main() -> int:
    parser = script_parser(__doc__)
    parser.add_argument("reference", type=Path)
    parser.add_argument("rerun", type=Path)
    args = parser.parse_args()
    reference, rerun = _by_run(args.reference), _by_run(args.rerun)
    status = 0
    for (label, dataset), result in rerun.items():
        if (label, dataset) not in reference:
            print(f"{label} on {dataset}: not in {args.reference}")
            status = 1
            continue
        found = differences(reference[label, dataset], result)
        print(
            f"{label} on {dataset}: " + ("identical accuracy" if not found else f"{len(found)} differences")
        )
        for line in found[:10]:
            print("   ", line)
        status |= bool(found)
    return status


if __name__ == "__main__":
    sys.exit(main())

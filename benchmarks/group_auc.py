"""Corner-error AUC and MHA per sequence (group) from a `tiepoint bench --output` results file.

    python benchmarks/group_auc.py benchmarks/eloftr/results.json [--dataset oxford] [--groups graf wall]

Prints, for each method, AUC@3/5/10 px and MHA@3 px over the pairs of each group and over the chosen groups
together (failures count as misses, as in the benchmark's own summary).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from tiepoint.evaluation.metrics import CORNER_AUC_THRESHOLDS, auc


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path)
    parser.add_argument("--dataset", default="oxford")
    parser.add_argument("--groups", nargs="+", default=["graf", "wall"])
    args = parser.parse_args()
    results = [r for r in json.loads(args.results.read_text())["results"] if r["dataset"] == args.dataset]
    labels = [
        result["method"] + "".join(f" {k}={v}" for k, v in result.get("method_options", {}).items())
        for result in results
    ]
    width = max([12, *map(len, labels)])
    print(
        f"{'method':<{width}} {'group':<12} "
        + " ".join(f"AUC@{t:g}" for t in CORNER_AUC_THRESHOLDS)
        + "  MHA@3"
    )
    for result, label in zip(results, labels):
        for group in [*args.groups, "+".join(args.groups)]:
            names = group.split("+")
            errors = np.array(
                [
                    r["error"] if r["error"] is not None else np.inf
                    for r in result["records"]
                    if r["group"] in names
                ],
                float,
            )
            aucs = auc(errors, CORNER_AUC_THRESHOLDS)
            print(
                f"{label:<{width}} {group:<12} "
                + " ".join(f"{100 * a:6.1f}" for a in aucs)
                + f"  {100 * np.mean(errors <= 3):5.1f}"
            )


if __name__ == "__main__":
    main()

"""The extreme-viewpoint benchmark: on-demand view synthesis against its inner method and ASIFT.

    python benchmarks/extreme.py METHOD ... [--photos data/photos] [--pairs-per-band 25]
        [--oxford ../shared/data/oxford_affine] [--threads 1] --output JSON [--append]

A METHOD is a registered name with options after a colon (``"sift+fginn:tilts=(1.41,2,2.83,4)"``). Every
method runs on the synthetic extreme pairs made from the held-out photos (``tiepoint_lab.data.extreme``) and,
unless ``--oxford ''``, on the 40 Oxford pairs; see ``tiepoint_lab.bench.extreme`` for what is measured.
"""

import json
from pathlib import Path

import cv2
import torch

from tiepoint.evaluation.datasets import load_dataset
from tiepoint.evaluation.runner import environment
from tiepoint.io.files import write_json
from tiepoint_lab.bench.extreme import run_method
from tiepoint_lab.bench.scripts import script_parser
from tiepoint_lab.data.extreme import extreme_pairs


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("methods", nargs="+")
    parser.add_argument("--photos", default="data/photos", help="corpus of 'tiepoint-lab data photos'")
    parser.add_argument("--pairs-per-band", type=int, default=25)
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--oxford", default="../shared/data/oxford_affine", help="'' to skip Oxford")
    parser.add_argument("--no-synthetic", action="store_true", help="run Oxford only")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the other methods' results in OUTPUT (a method rerun on a dataset replaced)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    datasets = [] if args.no_synthetic else [extreme_pairs(args.photos, args.pairs_per_band, args.seed)]
    if args.oxford:
        datasets.append(load_dataset("oxford", args.oxford))
    kept = []
    if args.append and args.output.is_file():
        rerun = {(method, dataset.name) for method in args.methods for dataset in datasets}
        kept = [
            r
            for r in json.loads(args.output.read_text())["results"]
            if (r["method"], r["dataset"]) not in rerun
        ]
    results = []
    for method in args.methods:
        for dataset in datasets:
            result = run_method(dataset, method)
            results.append(result)
            s = result["summary"]
            print(
                f"{dataset.name:8} {method:50} solved {s['solved']:.1%} AUC@3/5/10 {s['auc@3px']:.3f} "
                f"{s['auc@5px']:.3f} {s['auc@10px']:.3f} MHA@3 {s['mha@3px']:.3f} "
                f"{s['seconds_median']:.2f} s median, {s['seconds_mean']:.2f} s mean",
                flush=True,
            )
            settings = {"pairs_per_band": args.pairs_per_band, "seed": args.seed, "threads": args.threads}
            record = {"settings": settings, "environment": environment(), "results": [*kept, *results]}
            write_json(args.output, record)


if __name__ == "__main__":
    main()

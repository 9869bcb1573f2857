"""Matching time per image pair of several methods, measured interleaved so that they share the same load.

    python benchmarks/match_speed.py [--pair IMAGE0 IMAGE1] [--repeats N] [--threads T] [--output JSON]
                                     METHOD ...

A METHOD is a registered name, optionally with options after a colon: ``"eloftr:rotations=(0,90,180,270)"``.

Default pair: Middlebury templeSR0001.png / templeSR0002.png (640x480) from ../shared/data. Each method
matches the whole pair (both extractions and the matching for sparse methods; the full model for dense ones),
with the method's own defaults and the options given. One warm-up call each, then each round runs every method
once; the median over the rounds is reported with the ratio to the first method and the hardware.
"""

from functools import partial
from pathlib import Path

import torch

from tiepoint.config import parse_spec
from tiepoint.evaluation.runner import environment
from tiepoint.io.image import load_image
from tiepoint.registry import build_method
from tiepoint_lab.bench.scripts import interleaved_medians, script_parser

TEMPLE = Path("../shared/data/middlebury/templeSparseRing")


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("methods", nargs="+")
    parser.add_argument(
        "--pair", nargs=2, type=Path, default=[TEMPLE / "templeSR0001.png", TEMPLE / "templeSR0002.png"]
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--output", type=Path, help="write the medians as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    image0, image1 = (load_image(path) for path in args.pair)
    methods = {}
    for spec in args.methods:
        name, options = parse_spec(spec)
        methods[spec] = build_method(name, **options)
    calls = {name: partial(method.match, image0, image1) for name, method in methods.items()}
    matches, medians = interleaved_medians(calls, args.repeats)
    env = environment()
    print(
        f"{args.pair[0].name} / {args.pair[1].name} {image0.shape[1]}x{image0.shape[0]}, "
        f"{args.repeats} rounds, median; "
        f"{env.get('cpu')}, torch {env.get('torch')} ({torch.get_num_threads()} threads)"
    )
    first = medians[args.methods[0]]
    result = {"pair": [str(p) for p in args.pair], "repeats": args.repeats, "environment": env, "methods": {}}
    for name, median in medians.items():
        result["methods"][name] = {"median_ms": round(1000 * median, 1), "matches": len(matches[name])}
        print(
            f"{name:>34}: {1000 * median:8.1f} ms per pair  ({len(matches[name])} matches)  "
            f"x{median / first:.2f} of {args.methods[0]}"
        )
    if args.output:
        from tiepoint.io.files import write_json

        write_json(args.output, {**result, "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()

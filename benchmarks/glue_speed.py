"""Time of Glue beside mutual nearest neighbours on the same features, and how far its early exit and pruning
go: layers run per pair and the share of keypoints still in play when the pair stopped.

    python benchmarks/glue_speed.py [--features clidd-s96] [--keypoints 1024] [--pairs FILE] [--count N]
                                    [--repeats N] [--threads T] [--output JSON]

Pairs: the first ``--count`` pairs of a pairs file (default: the held-out scene benchmark written by
``tiepoint-lab data scenes --out data/bench/scenes``; every group of it in turn). Features are extracted once
(at most ``--keypoints`` per image); each round matches every pair with each matcher (interleaved, so that
they share the load); the median time per pair over the rounds and pairs is reported with the hardware.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tiepoint.evaluation.runner import environment
from tiepoint.io.image import load_image
from tiepoint.matchers.glue import GlueMatcher
from tiepoint.registry import build_extractor, build_matcher
from tiepoint_lab.bench.scripts import script_parser


def read_pairs(path: Path, count: int) -> list[tuple[Path, Path]]:
    """Up to ``count`` image pairs of a pairs file, spread over its lines."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    step = max(1, len(lines) // count)
    return [(path.parent / line[0], path.parent / line[1]) for line in lines[::step][:count]]


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--features", default="clidd-s96")
    parser.add_argument("--keypoints", type=int, default=1024)
    parser.add_argument("--pairs", type=Path, default=Path("data/bench/scenes/pairs.txt"))
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--output", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    extractor = build_extractor(args.features, max_keypoints=args.keypoints)
    features = [
        tuple(extractor.extract(load_image(path)) for path in pair)
        for pair in read_pairs(args.pairs, args.count)
    ]
    matchers = {
        "mnn": build_matcher("mnn"),
        "glue": GlueMatcher(features=args.features),
        "glue, every layer": GlueMatcher(features=args.features, depth_confidence=-1, width_confidence=-1),
    }
    times: dict[str, list[float]] = {name: [] for name in matchers}
    for _ in range(args.repeats + 1):  # the first round warms up
        for name, matcher in matchers.items():
            for features0, features1 in features:
                start = time.perf_counter()
                matcher.match(features0, features1)
                times[name].append(time.perf_counter() - start)
    net = matchers["glue"].net
    layers, kept = [], []
    for features0, features1 in features:
        tensors = [
            torch.from_numpy(np.asarray(x, np.float32))[None]
            for x in (features0.keypoints, features1.keypoints, features0.descriptors, features1.descriptors)
        ]
        sizes = [torch.tensor([f.image_size], dtype=torch.float32) for f in (features0, features1)]
        output = net(*tensors, *sizes)
        layers.append(int(output["layers"][0]))
        kept.append(float(torch.cat([output["kept0"][0], output["kept1"][0]]).float().mean()))
    env = environment()
    pairs = len(features)
    counts = [len(f.keypoints) for pair in features for f in pair]
    result = {
        "features": args.features,
        "keypoints": args.keypoints,
        "mean_keypoints": round(statistics.mean(counts), 1),
        "pairs": pairs,
        "pairs_file": str(args.pairs),
        "repeats": args.repeats,
        "threads": args.threads,
        "environment": env,
        "median_ms": {name: round(1000 * statistics.median(t[pairs:]), 2) for name, t in times.items()},
        "layers": {str(n): layers.count(n) for n in sorted(set(layers))},
        "layers_total": net.config.layers,
        "mean_kept": round(statistics.mean(kept), 3),
    }
    print(
        f"{pairs} pairs, {result['mean_keypoints']} keypoints per image ({args.features}), "
        f"{env.get('cpu')}, {args.threads} threads"
    )
    for name, median in result["median_ms"].items():
        print(f"{name:>20}: {median:8.1f} ms per pair (median)")
    print(
        f"layers run: {result['layers']} of {net.config.layers}; keypoints kept at the end: "
        f"{result['mean_kept']}"
    )
    if args.output:
        from tiepoint.io.files import write_json

        write_json(args.output, result)


if __name__ == "__main__":
    main()

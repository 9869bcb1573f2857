"""The parallax share of the aligned matches on every Oxford and Middlebury temple pair: the measurement
behind ``tiepoint.matchers.search.MAX_PARALLAX_SHARE``.

    python benchmarks/parallax_shares.py [--output JSON] METHOD ...

A METHOD is a registered name with its view-search options after a colon, ``align`` among them:
``"clidd-s96+mnn:scales=(1,0.5,0.25);rotations=(0,90,180,270);align=ratio"``. Each pair is matched under the
benchmark's protocol with the parallax check switched off, so the aligned matches are returned whenever they
beat the best view; their :func:`~tiepoint.matchers.align.parallax_share` is then reported. Pairs are counted
where the matches were aligned and a fundamental matrix fits at least a quarter of them within 1 px (elsewhere
the share measures chance). The threshold must lie above every Oxford share (planar scenes) and below every
temple share (a 3D scene seen with a baseline).
"""

import argparse
from pathlib import Path

from tiepoint.config import parse_spec
from tiepoint.errors import EstimationError
from tiepoint.evaluation.datasets import load_dataset
from tiepoint.evaluation.runner import Protocol
from tiepoint.geometry.estimate import estimate
from tiepoint.io.files import write_json
from tiepoint.matchers import search
from tiepoint.matchers.align import PARALLAX_EPIPOLAR_THRESHOLD, parallax_share
from tiepoint.registry import build_method

MIN_EPIPOLAR_SHARE = 0.25
"""The share of the aligned matches a fundamental matrix must fit for a pair to count."""


def epipolar_share(matches) -> float:
    """The share of ``matches`` a fundamental matrix fits within the parallax check's epipolar threshold."""
    try:
        fit = estimate(matches, model="fundamental", threshold=PARALLAX_EPIPOLAR_THRESHOLD)
    except EstimationError:
        return 0.0
    return fit.num_inliers / len(matches)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("methods", nargs="+")
    parser.add_argument("--output", type=Path, help="write every pair's share as JSON")
    args = parser.parse_args()
    search.MAX_PARALLAX_SHARE = float("inf")  # keep the aligned matches, to measure them
    result = {}
    for spec in args.methods:
        name, options = parse_spec(spec)
        result[spec] = {}
        for dataset in ("oxford", "middlebury"):
            method = build_method(name, **Protocol.default(dataset).method_options(), **options)
            shares = {}
            for pair in load_dataset(dataset):
                matches = method.match(*pair.load()[:2])
                if matches.info.get("aligned", False) and epipolar_share(matches) >= MIN_EPIPOLAR_SHARE:
                    shares[pair.name] = round(parallax_share(matches), 3)
            result[spec][dataset] = shares
            low, high = min(shares.values(), default=float("nan")), max(shares.values(), default=float("nan"))
            print(
                f"{spec} {dataset}: {len(shares)} pairs, parallax share {low:.2f} to {high:.2f}", flush=True
            )
    if args.output:
        write_json(args.output, result)


if __name__ == "__main__":
    main()

"""Extraction time per image of several extractors, measured interleaved so that they share the same load.

    python benchmarks/extract_speed.py [--image PATH] [--repeats N] [--max-keypoints K] EXTRACTOR ...

An EXTRACTOR is a registered name, optionally with options after a colon: ``clidd-s96:scales=(1,0.5,0.25)``.

Default image: Middlebury templeSR0001.png (640x480) from ../shared/data. Each round runs every extractor once
(after one warm-up call each); the median over the rounds is reported with the ratio to the first extractor.
"""

from functools import partial
from pathlib import Path

from tiepoint.config import parse_spec
from tiepoint.evaluation.runner import environment
from tiepoint.io.image import load_image
from tiepoint.registry import build_extractor
from tiepoint_lab.bench.scripts import interleaved_medians, script_parser

DEFAULT_IMAGE = Path("../shared/data/middlebury/templeSparseRing/templeSR0001.png")


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("extractors", nargs="+")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--max-keypoints", type=int, default=2048)
    args = parser.parse_args()
    image = load_image(args.image)
    extractors = {}
    for spec in args.extractors:
        name, options = parse_spec(spec)
        extractors[spec] = build_extractor(name, max_keypoints=args.max_keypoints, **options)
    calls = {name: partial(extractor.extract, image) for name, extractor in extractors.items()}
    keypoints, medians = interleaved_medians(calls, args.repeats)
    env = environment()
    print(
        f"{args.image} {image.shape[1]}x{image.shape[0]}, {args.repeats} rounds, median; {env.get('cpu')}, "
        f"torch {env.get('torch')} ({env.get('torch_threads')} threads)"
    )
    first = medians[args.extractors[0]]
    for name, median in medians.items():
        print(
            f"{name:>34}: {1000 * median:8.1f} ms  ({len(keypoints[name])} keypoints)  "
            f"x{median / first:.2f} of {args.extractors[0]}"
        )


if __name__ == "__main__":
    main()

"""Time per pair of matching on demand, its inner method and ASIFT, interleaved so that they share one load.

    python benchmarks/extreme_speed.py [METHOD ...] [--photos data/photos] [--synthetic NAME ...]
        [--threads 1] --output JSON

Default methods: ``sift+fginn extreme asift+ratio``. The pairs: the first synthetic extreme pair of
the mildest and the strongest tilt band (``tiepoint_lab.data.extreme``, 25 per band as in
``benchmarks/extreme.py``), an easy and a hard Oxford pair
(boat 1-2, graf 1-6) and the first temple pair. On each pair every method is called once to warm up and
once timed, one after the other (``interleaved_medians``), so a busy machine slows them alike; the ratios
to the first method are what to read.
"""

from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

from tiepoint.config import parse_spec
from tiepoint.evaluation.runner import environment
from tiepoint.io.files import write_json
from tiepoint.io.image import load_image
from tiepoint.registry import build_method
from tiepoint_lab.bench.scripts import interleaved_medians, script_parser
from tiepoint_lab.data.extreme import extreme_pairs

DATA = Path("../shared/data")
REAL = {
    "oxford boat/1-2": ("oxford_affine/boat/img1.png", "oxford_affine/boat/img2.png"),
    "oxford graf/1-6": ("oxford_affine/graf/img1.png", "oxford_affine/graf/img6.png"),
    "temple 01/02": (
        "middlebury/templeSparseRing/templeSR0001.png",
        "middlebury/templeSparseRing/templeSR0002.png",
    ),
}
SYNTHETIC = ["tilt-45-60/000", "tilt-70-80/000"]
"""The first pair of the mildest and of the strongest tilt band."""


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("methods", nargs="*", default=["sift+fginn", "extreme", "asift+ratio"])
    parser.add_argument("--photos", default="data/photos")
    parser.add_argument("--synthetic", nargs="*", default=SYNTHETIC)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    methods = {
        spec: build_method(parse_spec(spec)[0], max_keypoints=2048, **parse_spec(spec)[1])
        for spec in args.methods
    }
    pairs = {
        name: partial(lambda paths: tuple(load_image(DATA / p) for p in paths), paths)
        for name, paths in REAL.items()
    }
    synthetic = {pair.name: pair for pair in extreme_pairs(args.photos, 25)}
    pairs.update({name: synthetic[name].load for name in args.synthetic})
    first = args.methods[0]
    rows = {}
    for name, load in pairs.items():
        image0, image1 = load()
        calls = {spec: partial(method.match, image0, image1) for spec, method in methods.items()}
        matches, seconds = interleaved_medians(calls, repeats=1)
        rows[name] = {
            spec: {"seconds": round(seconds[spec], 3), "stage": matches[spec].info.get("stage")}
            for spec in methods
        }
        print(
            name,
            "  ".join(
                f"{spec} {seconds[spec]:.2f} s (x{seconds[spec] / seconds[first]:.2f})" for spec in methods
            ),
            flush=True,
        )
    ratios = {
        spec: {
            "median_ratio_to_first": float(
                np.median([rows[n][spec]["seconds"] / rows[n][first]["seconds"] for n in rows])
            ),
        }
        for spec in methods
    }
    write_json(
        args.output, {"threads": args.threads, "environment": environment(), "pairs": rows, "methods": ratios}
    )


if __name__ == "__main__":
    main()

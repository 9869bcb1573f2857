"""RaCo detector weights compared on the two numbers that trade against each other: repeatability under
rotation and upright repeatability on Oxford (the metric code of `tiepoint-lab bench raco`).

    python benchmarks/raco_checkpoints.py WEIGHTS [WEIGHTS ...]

For each weights file (shipped or a trainer checkpoint) prints repeatability@3 px with 512 keypoints at 0, 90
and 180 degrees on the rotated held-out photos (`tiepoint_lab.bench.raco.rotation_pairs`), the 90/0 ratio, and
repeatability@3 px with 1024 keypoints over the 40 Oxford pairs.
"""

import json

from tiepoint.evaluation.datasets import load_dataset
from tiepoint.features.raco import RaCo
from tiepoint_lab.bench.raco import mean_repeatability, rotation_pairs
from tiepoint_lab.bench.scripts import weights_parser
from tiepoint_lab.data.photos import list_photos


def main() -> None:
    parser = weights_parser(__doc__)
    parser.add_argument("--root", help="folder holding the datasets (default: ../shared/data)")
    args = parser.parse_args()
    rotated = {angle: rotation_pairs(list_photos(args.photos, "val"), angle) for angle in (0, 90, 180)}
    oxford = [(*pair.load(), pair.H) for pair in load_dataset("oxford", args.root).pairs]
    for path in args.weights:
        rotation = {
            angle: mean_repeatability(RaCo(max_keypoints=512, weights=path), pairs)
            for angle, pairs in rotated.items()
        }
        upright = mean_repeatability(RaCo(max_keypoints=1024, weights=path), oxford)
        print(
            json.dumps(
                {
                    "weights": path,
                    **{f"rotation{a}": round(100 * v, 1) for a, v in rotation.items()},
                    "ratio90": round(rotation[90] / rotation[0], 3),
                    "oxford@1024": round(100 * upright, 1),
                }
            )
        )


if __name__ == "__main__":
    main()

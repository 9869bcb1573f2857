"""Efficient LoFTR weights scored on held-out photo pairs (the val split of the corpus, never evaluation images):
the model selection behind the shipped checkpoint.

    python benchmarks/eloftr_validation.py WEIGHTS [WEIGHTS ...] [--zoom LOW HIGH] [--rotation DEG] [--threshold T ...]

For each weights file (shipped or a trainer checkpoint) and each coarse confidence threshold (default 0) prints
matches per pair, precision within 1 and 3 px and the number of matches within 3 px per pair, on 640x480 pairs
made by random homographies (seed 7). The shipped step-8000 weights were chosen with ``--zoom 0.4 2.5`` (437 per pair
against 408 for step 6000), ``--zoom 0.3 2.5 --rotation 180`` (146 vs 133) and the defaults (974 vs 1033).
"""

import argparse

import torch

from tiepoint.matchers.eloftr import EfficientLoFTR
from tiepoint.nn.image import gray
from tiepoint.train.homography import HomographyPairs, warp_points
from tiepoint.train.photos import list_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="+")
    parser.add_argument("--photos", default="data/photos", help="corpus from 'tiepoint data photos' (its val split)")
    parser.add_argument("--zoom", type=float, nargs=2, default=(0.6, 1.6), metavar=("LOW", "HIGH"))
    parser.add_argument("--rotation", type=float, default=45.0, help="largest in-plane rotation, degrees")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--threshold", type=float, nargs="+", default=[0.0], help="coarse confidence thresholds")
    args = parser.parse_args()
    pairs = HomographyPairs(list_photos(args.photos, "val"), size=(480, 640), seed=7, length=args.pairs,
                            rotation_deg=args.rotation, perspective=0.15, scale=tuple(args.zoom))
    for path in args.weights:
        model = EfficientLoFTR.from_pretrained("small", path)
        for threshold in args.threshold:
            matched = correct1 = correct3 = 0
            with torch.inference_mode():
                for index in range(len(pairs)):
                    item = pairs[index]
                    output = model(gray(item["image0"][None]), gray(item["image1"][None]), threshold=threshold)
                    warped = warp_points(output["keypoints0"].double(), item["H_0to1"].double())
                    errors = (warped - output["keypoints1"].double()).norm(dim=-1)
                    matched += len(errors)
                    correct1, correct3 = correct1 + int((errors < 1).sum()), correct3 + int((errors < 3).sum())
            print(f"{path} threshold {threshold:g}: matches/pair {matched / len(pairs):.0f}  "
                  f"precision@1 {correct1 / max(matched, 1):.3f}  precision@3 {correct3 / max(matched, 1):.3f}  "
                  f"correct@3/pair {correct3 / len(pairs):.0f}")

if __name__ == "__main__":
    main()

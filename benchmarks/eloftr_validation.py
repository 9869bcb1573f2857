"""Efficient LoFTR weights scored on held-out photo pairs (the val split of the corpus, never evaluation
images): the model selection behind the shipped checkpoint.

    python benchmarks/eloftr_validation.py WEIGHTS [WEIGHTS ...] [--zoom LOW HIGH] [--rotation DEG]
                                           [--threshold T ...] [--stages] [--shifts]

For each weights file (shipped or a trainer checkpoint) and each coarse confidence threshold (default 0)
prints matches per pair, precision within 1 and 3 px and the number of matches within 3 px per pair, on
640x480 pairs made by random homographies (seed 7). ``--stages`` also prints how far the refinement's two
stages land from the truth on the matches whose coarse cell is right (the true position lies in the matched
image-1 cell): the median error and the share within 0.5, 1 and 2 px after stage 1 (pixels) and after stage 2
(sub-pixel). ``--shifts`` matches each held-out image with a copy of itself moved by whole pixels and prints
how often stage 1 lands on the exact pixel (away from the borders): a network whose fine features were
shift-equivariant would always. The shipped step-8000 weights were chosen with ``--zoom 0.4 2.5`` (437 per
pair against 408 for step 6000), ``--zoom 0.3 2.5 --rotation 180`` (146 vs 133) and the defaults (974 vs
1033).
"""

import torch

from tiepoint.matchers.eloftr import CELL, EfficientLoFTR
from tiepoint.nn.image import gray
from tiepoint_lab.bench.scripts import weights_parser
from tiepoint_lab.data.homography import HomographyPairs, warp_points
from tiepoint_lab.data.photos import list_photos


def main() -> None:
    parser = weights_parser(__doc__)
    parser.add_argument("--zoom", type=float, nargs=2, default=(0.6, 1.6), metavar=("LOW", "HIGH"))
    parser.add_argument("--rotation", type=float, default=45.0, help="largest in-plane rotation, degrees")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument(
        "--threshold", type=float, nargs="+", default=[0.0], help="coarse confidence thresholds"
    )
    parser.add_argument(
        "--stages", action="store_true", help="errors of the two refinement stages (see above)"
    )
    parser.add_argument(
        "--shifts", action="store_true", help="stage 1 on images shifted by whole pixels (see above)"
    )
    args = parser.parse_args()
    pairs = HomographyPairs(
        list_photos(args.photos, "val"),
        size=(480, 640),
        seed=7,
        length=args.pairs,
        rotation_deg=args.rotation,
        perspective=0.15,
        scale=tuple(args.zoom),
    )
    for path in args.weights:
        model = EfficientLoFTR.from_pretrained("small", path)
        for threshold in args.threshold:
            matched = correct1 = correct3 = 0
            with torch.inference_mode():
                for index in range(len(pairs)):
                    item = pairs[index]
                    output = model(
                        gray(item["image0"][None]), gray(item["image1"][None]), threshold=threshold
                    )
                    warped = warp_points(output["keypoints0"].double(), item["H_0to1"].double())
                    errors = (warped - output["keypoints1"].double()).norm(dim=-1)
                    matched += len(errors)
                    correct1, correct3 = (
                        correct1 + int((errors < 1).sum()),
                        correct3 + int((errors < 3).sum()),
                    )
            print(
                f"{path} threshold {threshold:g}: matches/pair {matched / len(pairs):.0f}  "
                f"precision@1 {correct1 / max(matched, 1):.3f}  "
                f"precision@3 {correct3 / max(matched, 1):.3f}  "
                f"correct@3/pair {correct3 / len(pairs):.0f}"
            )
        if args.stages:
            print_stage_errors(model, pairs)
        if args.shifts:
            print_shift_exactness(model, pairs)


def print_stage_errors(model: EfficientLoFTR, pairs: HomographyPairs) -> None:
    """Refinement errors (px) on the matches whose coarse cell is right, after stage 1 and after stage 2."""
    stage1, stage2 = [], []
    with torch.inference_mode():
        for index in range(len(pairs)):
            item = pairs[index]
            image0, image1 = gray(item["image0"][None]), gray(item["image1"][None])
            pixels = model(image0, image1, threshold=0.0, subpixel=False)
            refined = model(image0, image1, threshold=0.0)
            truth = warp_points(pixels["keypoints0"].double(), item["H_0to1"].double())
            cell = pixels["keypoints1"].double() // CELL * CELL
            right = ((truth >= cell - 0.5) & (truth < cell + CELL - 0.5)).all(-1)
            stage1.append((truth - pixels["keypoints1"].double()).norm(dim=-1)[right])
            stage2.append((truth - refined["keypoints1"].double()).norm(dim=-1)[right])
    for name, errors in (("stage 1", torch.cat(stage1)), ("stage 2", torch.cat(stage2))):
        shares = "  ".join(
            f"<{limit:g}px {float((errors < limit).double().mean()):.3f}" for limit in (0.5, 1, 2)
        )
        print(
            f"  {name} on {len(errors)} right coarse cells: median {float(errors.median()):.2f} px  {shares}"
        )


def print_shift_exactness(
    model: EfficientLoFTR, pairs: HomographyPairs, shifts: tuple[int, ...] = (1, 3, 5, 8)
) -> None:
    """Share of stage-1 matches on the exact pixel when image 1 is image 0 moved by ``(2s, s)`` pixels
    (x, y)."""
    with torch.inference_mode():
        for shift in shifts:
            exact = total = 0
            for index in range(len(pairs)):
                image = gray(pairs[index]["image0"][None])
                moved = torch.roll(image, shifts=(shift, 2 * shift), dims=(2, 3))
                output = model(image, moved, threshold=0.0, subpixel=False)
                points = output["keypoints0"]
                inside = ((points >= 5 * CELL) & (points < torch.tensor(image.shape[:-3:-1]) - 5 * CELL)).all(
                    -1
                )
                error = (points + torch.tensor([2.0 * shift, shift]) - output["keypoints1"])[inside].norm(
                    dim=-1
                )
                exact, total = exact + int((error < 0.5).sum()), total + len(error)
            print(
                f"  stage 1, image moved by ({2 * shift}, {shift}) px: "
                f"exact pixel for {exact / max(total, 1):.3f} of {total} matches"
            )


if __name__ == "__main__":
    main()

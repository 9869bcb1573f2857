"""Relative-rotation errors between the registered views of a reconstruction, against the temple ring's
ground truth: for models whose few, nearly collinear camera centres admit no similarity alignment.

    python benchmarks/pairwise_rotations.py OUT/sparse/0 [--root ../shared/data/middlebury/templeSparseRing]

Prints, for every pair of registered views, the angle between the estimated and the true relative rotation;
with ``--aligned`` (enough views, not collinear), the median and largest rotation error after the
similarity alignment of :func:`tiepoint.evaluation.poses.pose_errors` instead.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from tiepoint.evaluation.poses import model_poses, pose_errors
from tiepoint.geometry.accuracy import rotation_error
from tiepoint.io.colmap import import_pycolmap
from tiepoint_lab.bench.reconstruction import temple_ground_truth
from tiepoint_lab.bench.scripts import script_parser
from tiepoint_lab.paths import shared_data


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("model", type=Path, help="a COLMAP model folder (OUT/sparse/0)")
    parser.add_argument("--root", type=Path, default=shared_data() / "middlebury" / "templeSparseRing")
    parser.add_argument("--aligned", action="store_true", help="errors after a similarity alignment")
    args = parser.parse_args()
    truth, _ = temple_ground_truth(args.root)
    poses = model_poses(import_pycolmap().Reconstruction(str(args.model)))
    if args.aligned:
        errors = pose_errors(poses, truth)["rotation_error_deg"]
        print(
            f"{len(poses)} views: rotation error {errors['median']:.2f} deg median, {errors['max']:.2f} max"
        )
        return
    for a, b in itertools.combinations(sorted(poses), 2):
        estimated = poses[b][0] @ poses[a][0].T
        true = truth[b][0] @ truth[a][0].T
        print(f"{a} {b}: {rotation_error(estimated, true):.2f} deg")


if __name__ == "__main__":
    main()

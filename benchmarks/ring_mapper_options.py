"""Mapper options for sparse rings and turntables, chosen on synthetic turntable rings (not on the temple).

    python benchmarks/ring_mapper_options.py [--rings 6] [--work outputs/ring-options] [--photos data/photos]

Renders ``--rings`` turntable rings (:mod:`tiepoint_lab.data.turntable`, textures from the photo corpus's
held-out split), reconstructs each whole ring and each of its 16 runs of 6 consecutive views with
``reconstruct``'s defaults (SIFT, exhaustive pairs), then maps every database again with each candidate of
:data:`CANDIDATES` (the features, matches and verification stay the same). Per candidate: registered views,
runs with every view registered, and the median and largest relative rotation error between registered
views. Writes ``benchmarks/reconstruction/rings/mapper_options.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from tiepoint.io.files import write_json
from tiepoint.pipeline.reconstruct import MapperOptions, reconstruct, run_mapper
from tiepoint_lab.bench.reconstruction import _environment, temple_ground_truth
from tiepoint_lab.bench.rings import held_out_photos, ring_order, ring_windows, score_views
from tiepoint_lab.bench.scripts import script_parser
from tiepoint_lab.data.turntable import render_ring
from tiepoint_lab.paths import REPOSITORY

COLMAP_DEFAULTS = {
    "abs_pose_min_num_inliers": 30,
    "init_min_tri_angle": 16.0,
    "ignore_two_view_tracks": True,
    "structure_less_fallback": False,
}
"""COLMAP's own values of the options tiepoint sets otherwise (:class:`MapperOptions`)."""

CANDIDATES: dict[str, dict[str, Any]] = {
    "COLMAP defaults": {},
    "two-view tracks": {"ignore_two_view_tracks": False},
    "15 pose inliers": {"abs_pose_min_num_inliers": 15},
    "initial angle 8": {"init_min_tri_angle": 8.0},
    "structure-less fallback": {"structure_less_fallback": True},
    "two-view tracks + 15 inliers": {"ignore_two_view_tracks": False, "abs_pose_min_num_inliers": 15},
    "two-view tracks + 15 inliers + fallback": {
        "ignore_two_view_tracks": False,
        "abs_pose_min_num_inliers": 15,
        "structure_less_fallback": True,
    },
    "all four": {
        "ignore_two_view_tracks": False,
        "abs_pose_min_num_inliers": 15,
        "structure_less_fallback": True,
        "init_min_tri_angle": 8.0,
    },
    "global mapper": {"kind": "global"},
}
"""Mapper options tried, each over :data:`COLMAP_DEFAULTS`."""


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--rings", type=int, default=6, help="synthetic rings (seeds 0 .. N-1)")
    parser.add_argument("--work", type=Path, default=Path("outputs/ring-options"))
    parser.add_argument(
        "--photos", type=Path, default=Path("data/photos"), help="corpus from 'tiepoint-lab data photos'"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=REPOSITORY / "benchmarks" / "reconstruction" / "rings" / "mapper_options.json",
    )
    args = parser.parse_args()
    logging.getLogger("tiepoint").setLevel(logging.ERROR)
    photos = held_out_photos(args.photos)
    results: dict[str, Any] = {
        "protocol": __doc__.strip().split("\n\n", 2)[2],
        "environment": _environment(),
        "candidates": CANDIDATES,
        "runs": {},
    }
    for seed in range(args.rings):
        folder = args.work / f"ring-{seed}"
        if not (folder / "ring_par.txt").is_file():
            render_ring(folder, photos, seed)
        truth, _ = temple_ground_truth(folder)
        order = ring_order(truth)
        runs = {"full": order, **{f"window-{i:02d}": w for i, w in enumerate(ring_windows(order, 6))}}
        for run, members in runs.items():
            out = args.work / "runs" / f"ring-{seed}" / run
            reconstruct([folder / n for n in members], out, progress=False)
            scores = {}
            for name, options in CANDIDATES.items():
                models = run_mapper(
                    out / "database.db",
                    folder,
                    out / "candidates" / name.replace(" ", "_"),
                    options=MapperOptions(**{**COLMAP_DEFAULTS, **options}),
                )
                scores[name] = score_views(models, truth, members)
            results["runs"][f"ring-{seed}/{run}"] = scores
            print(
                f"ring-{seed} {run}: " + ", ".join(f"{n} {s['registered']}" for n, s in scores.items()),
                flush=True,
            )
    totals = {}
    for name in CANDIDATES:
        scores = [run[name] for run in results["runs"].values()]
        windows = [s for key, s in zip(results["runs"], scores) if "window" in key]
        full = [s for key, s in zip(results["runs"], scores) if key.endswith("/full")]
        medians = [
            s["relative_rotation_error_deg"] for s in scores if s["relative_rotation_error_deg"] is not None
        ]
        largest = [
            s["max_relative_rotation_error_deg"]
            for s in scores
            if s["max_relative_rotation_error_deg"] is not None
        ]
        totals[name] = {
            "rings_all_registered": sum(s["registered"] == s["views"] for s in full),
            "rings": len(full),
            "ring_views_registered": sum(s["registered"] for s in full),
            "ring_views": sum(s["views"] for s in full),
            "windows_all_registered": sum(s["registered"] == s["views"] for s in windows),
            "windows": len(windows),
            "window_views_registered": sum(s["registered"] for s in windows),
            "window_views": sum(s["views"] for s in windows),
            "median_relative_rotation_error_deg": float(np.median(medians)) if medians else None,
            "runs_with_error_over_5_deg": sum(v > 5 for v in largest),
        }
        print(name, totals[name])
    results["totals"] = totals
    write_json(args.output, results)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

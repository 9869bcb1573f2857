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
from typing import Any

from tiepoint.io.files import write_json
from tiepoint.pipeline.reconstruct import MapperOptions, reconstruct, run_mapper
from tiepoint_lab.bench.reconstruction import _environment
from tiepoint_lab.bench.rings import (
    held_out_photos,
    ring_totals,
    score_views,
    synthetic_ring_parser,
    synthetic_ring_runs,
)

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
    args = synthetic_ring_parser(__doc__, rings=6, record="mapper_options.json").parse_args()
    logging.getLogger("tiepoint").setLevel(logging.ERROR)
    results: dict[str, Any] = {
        "protocol": __doc__.strip().split("\n\n", 2)[2],
        "environment": _environment(),
        "candidates": CANDIDATES,
        "runs": {},
    }
    for run, folder, truth, members in synthetic_ring_runs(
        args.work, held_out_photos(args.photos), args.rings
    ):
        out = args.work / "runs" / run
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
        results["runs"][run] = scores
        print(f"{run}: " + ", ".join(f"{n} {s['registered']}" for n, s in scores.items()), flush=True)
    results["totals"] = ring_totals(results["runs"])
    for name, total in results["totals"].items():
        print(name, total)
    write_json(args.output, results)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""tiepoint's reconstruction beside COLMAP's own pipeline on synthetic turntable rings (not on the temple).

    python benchmarks/ring_pipelines.py [--rings 4] [--work outputs/ring-options] [--photos data/photos]

Renders ``--rings`` turntable rings (:mod:`tiepoint_lab.data.turntable`, textures from the photo corpus's
held-out split; the same rings as ``benchmarks/ring_mapper_options.py``) and reconstructs each whole ring and
each of its 16 runs of 6 consecutive views: with ``reconstruct``'s defaults (SIFT, exhaustive pairs) at each
keypoint budget of :data:`BUDGETS`, and with COLMAP's own pipeline (pycolmap's SIFT extraction, exhaustive
matching and verification, all with pycolmap's defaults). Each database is mapped with the incremental and
the global mapper. Per variant: registered views, runs with every view registered, the median and largest
relative rotation error between registered views, and the stage times. Writes
``benchmarks/reconstruction/rings/pipelines.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from tiepoint.evaluation.poses import Poses
from tiepoint.pipeline.reconstruct import MapperOptions, reconstruct, run_mapper
from tiepoint_lab.bench.reconstruction import _environment, temple_ground_truth
from tiepoint_lab.bench.rings import (
    colmap_database,
    colmap_reconstruct,
    held_out_photos,
    ring_order,
    ring_windows,
    score_views,
)
from tiepoint_lab.bench.scripts import script_parser
from tiepoint_lab.data.turntable import render_ring
from tiepoint_lab.paths import REPOSITORY

BUDGETS = (2048, 8192)
"""SIFT keypoint budgets of ``reconstruct`` (COLMAP's own extraction keeps up to 8192)."""

MAPPERS = ("incremental", "global")


def _tiepoint_runs(folder: Path, members: list[str], truth: Poses, out: Path, budget: int) -> dict[str, Any]:
    """``reconstruct`` at one keypoint budget (incremental), then the global mapper on its database."""
    result = reconstruct([folder / n for n in members], out, max_keypoints=budget, progress=False)
    times = result.summary.get("timings_s", {})
    stages = {
        "features": times.get("extract", 0.0),
        "matching": sum(times.get(k, 0.0) for k in ("pairs", "match", "verify", "database")),
    }
    start = time.perf_counter()
    global_models = run_mapper(
        out / "database.db", folder, out / "global", options=MapperOptions(kind="global")
    )
    mapped = {
        "incremental": (result.models, times.get("map", 0.0)),
        "global": (global_models, time.perf_counter() - start),
    }
    return {
        f"tiepoint sift {budget}, {mapper}": {
            **score_views(models, truth, members),
            "times_s": {**stages, "mapping": seconds},
        }
        for mapper, (models, seconds) in mapped.items()
    }


def _colmap_runs(folder: Path, members: list[str], truth: Poses, out: Path) -> dict[str, Any]:
    """COLMAP's own pipeline, both mappers on one database."""
    stages = colmap_database(folder, members, out)
    runs = {}
    for mapper in MAPPERS:
        result = colmap_reconstruct(folder, members, out, mapper)
        runs[f"COLMAP's pipeline, {mapper}"] = {
            **score_views(result.models, truth, members),
            "times_s": {
                "features": stages["extract"],
                "matching": stages["match"],
                "mapping": result.summary["timings_s"]["map"],
            },
        }
    return runs


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--rings", type=int, default=4, help="synthetic rings (seeds 0 .. N-1)")
    parser.add_argument("--work", type=Path, default=Path("outputs/ring-options"))
    parser.add_argument(
        "--photos", type=Path, default=Path("data/photos"), help="corpus from 'tiepoint-lab data photos'"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=REPOSITORY / "benchmarks" / "reconstruction" / "rings" / "pipelines.json",
    )
    args = parser.parse_args()
    logging.getLogger("tiepoint").setLevel(logging.ERROR)
    from tiepoint.io.colmap import import_pycolmap

    import_pycolmap().logging.minloglevel = 2  # COLMAP's progress lines drown the script's
    photos = held_out_photos(args.photos)
    results: dict[str, Any] = {
        "protocol": __doc__.strip().split("\n\n", 2)[2],
        "environment": _environment(),
        "budgets": list(BUDGETS),
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
            out = args.work / "pipelines" / f"ring-{seed}" / run
            scores: dict[str, Any] = {}
            for budget in BUDGETS:
                scores.update(_tiepoint_runs(folder, members, truth, out / f"tiepoint-{budget}", budget))
            scores.update(_colmap_runs(folder, members, truth, out / "colmap"))
            results["runs"][f"ring-{seed}/{run}"] = scores
            print(
                f"ring-{seed} {run}: " + ", ".join(f"{n} {s['registered']}" for n, s in scores.items()),
                flush=True,
            )
    results["totals"] = _totals(results["runs"])
    for name, total in results["totals"].items():
        print(name, total)
    from tiepoint.io.files import write_json

    write_json(args.output, results)
    print(f"wrote {args.output}")


def _totals(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per variant: registered views and fully registered runs (whole rings and windows apart), the median
    of the runs' median relative rotation errors, runs off by more than 5 degrees, and the median stage
    times of the whole rings."""
    totals = {}
    for name in next(iter(runs.values())):
        full = [r[name] for key, r in runs.items() if key.endswith("/full")]
        windows = [r[name] for key, r in runs.items() if "/window" in key]
        scores = full + windows
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
            "ring_times_s": {
                stage: float(np.median([s["times_s"][stage] or 0.0 for s in full]))
                for stage in ("features", "matching", "mapping")
            },
        }
    return totals


if __name__ == "__main__":
    main()

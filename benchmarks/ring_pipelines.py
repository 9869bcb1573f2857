"""tiepoint's reconstruction beside COLMAP's own pipeline on synthetic turntable rings (not on the temple).

    python benchmarks/ring_pipelines.py [--rings 4] [--work outputs/ring-options] [--photos data/photos]
                                        [--variants sift:2048 sift:8192 sift+glue:2048]

Renders ``--rings`` turntable rings (:mod:`tiepoint_lab.data.turntable`, textures from the photo corpus's
held-out split; the same rings as ``benchmarks/ring_mapper_options.py``) and reconstructs each whole ring and
each of its 16 runs of 6 consecutive views: with ``reconstruct``'s defaults (exhaustive pairs) for each
method and keypoint budget of :data:`VARIANTS`, and with COLMAP's own pipeline (pycolmap's SIFT extraction,
exhaustive matching and verification, all with pycolmap's defaults). Each database is mapped with the
incremental and the global mapper. Per variant: registered views, runs with every view registered, the median
and largest relative rotation error between registered views, and the stage times. Writes
``benchmarks/reconstruction/rings/pipelines.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from tiepoint.evaluation.poses import Poses
from tiepoint.io.files import write_json
from tiepoint.pipeline.reconstruct import MapperOptions, reconstruct, run_mapper
from tiepoint_lab.bench.reconstruction import _environment
from tiepoint_lab.bench.rings import (
    colmap_database,
    colmap_reconstruct,
    held_out_photos,
    ring_totals,
    score_views,
    synthetic_ring_parser,
    synthetic_ring_runs,
)

VARIANTS = ("sift:2048", "sift:8192", "sift+glue:2048")
"""``reconstruct``'s variants, ``METHOD:KEYPOINTS`` (COLMAP's own extraction keeps up to 8192 keypoints)."""

MAPPERS = ("incremental", "global")


def _tiepoint_runs(folder: Path, members: list[str], truth: Poses, out: Path, variant: str) -> dict[str, Any]:
    """``reconstruct`` with one method and keypoint budget (incremental), then the global mapper on its
    database."""
    method, budget = variant.split(":")
    result = reconstruct(
        [folder / n for n in members], out, method=method, max_keypoints=int(budget), progress=False
    )
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
        f"tiepoint {method} {budget}, {mapper}": {
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
    parser = synthetic_ring_parser(__doc__, rings=4, record="pipelines.json")
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), help="METHOD:KEYPOINTS of reconstruct"
    )
    args = parser.parse_args()
    logging.getLogger("tiepoint").setLevel(logging.ERROR)
    from tiepoint.io.colmap import import_pycolmap

    import_pycolmap().logging.minloglevel = 2  # COLMAP's progress lines drown the script's
    results: dict[str, Any] = {
        "protocol": __doc__.strip().split("\n\n", 2)[2],
        "environment": _environment(),
        "variants": args.variants,
        "runs": {},
    }
    for run, folder, truth, members in synthetic_ring_runs(
        args.work, held_out_photos(args.photos), args.rings
    ):
        out = args.work / "pipelines" / run
        scores: dict[str, Any] = {}
        for variant in args.variants:
            name = variant.replace("+", "_").replace(":", "-")
            scores.update(_tiepoint_runs(folder, members, truth, out / f"tiepoint-{name}", variant))
        scores.update(_colmap_runs(folder, members, truth, out / "colmap"))
        results["runs"][run] = scores
        print(f"{run}: " + ", ".join(f"{n} {s['registered']}" for n, s in scores.items()), flush=True)
    results["totals"] = _totals(results["runs"])
    for name, total in results["totals"].items():
        print(name, total)
    write_json(args.output, results)
    print(f"wrote {args.output}")


def _totals(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """:func:`~tiepoint_lab.bench.rings.ring_totals`, with the median stage times of the whole rings."""
    totals = ring_totals(runs)
    for name, total in totals.items():
        full = [r[name] for key, r in runs.items() if key.endswith("/full")]
        total["ring_times_s"] = {
            stage: float(np.median([s["times_s"][stage] or 0.0 for s in full]))
            for stage in ("features", "matching", "mapping")
        }
    return totals


if __name__ == "__main__":
    main()

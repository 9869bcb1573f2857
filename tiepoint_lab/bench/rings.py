"""Default settings on the temple ring: the whole ring and every run of consecutive views, per mapper.

This is what ``tiepoint-lab bench reconstruction --run rings --method METHOD`` runs (``--method colmap``:
COLMAP's own pipeline instead of ``tiepoint reconstruct``, :func:`colmap_reconstruct`)::

    record = ring_benchmark("../shared/data/middlebury/templeSparseRing", "benchmarks/reconstruction/rings",
                            work="outputs/bench-reconstruction/rings", method="sift")

**Protocol.** :func:`tiepoint.pipeline.reconstruct.reconstruct` with its default settings (camera mode
``auto``, exhaustive pairs, default verification), only the method and the mapper given, on the 16 views of
the ring and on each of its 16 runs of ``window`` consecutive views (in ring order, :func:`ring_order`,
wrapping around). Each run is mapped with every mapper in turn from the same database. The registered
cameras of the largest model are aligned to the ground truth as in :mod:`tiepoint_lab.bench.reconstruction`
(similarity of the centres); the rotation error is per image after that alignment, the centre error in
percent of the whole ring's radius. Models whose centres admit no alignment (three views nearly in a line)
get only the errors of the relative rotations between every two registered views
(``relative_rotation_error_deg``, also given for the others). Unregistered views count as failures, not as
errors. The temple ring is an evaluation set: nothing here is tuned on it.

**COLMAP's own pipeline** (method ``colmap``) runs on the same views with pycolmap's defaults throughout:
its SIFT extraction (``CameraMode.AUTO``), exhaustive matching with its own geometric verification, then the
mapper. COLMAP judges no model, so its status is ``unchecked``.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tiepoint.errors import DatasetError
from tiepoint.evaluation.poses import model_poses, pose_errors
from tiepoint.geometry.accuracy import rotation_error
from tiepoint.io.files import write_json
from tiepoint.pipeline.extract import find_images

from .reconstruction import _environment, temple_ground_truth

logger = logging.getLogger("tiepoint")

MAPPERS = ("incremental", "global")
"""The mappers each run is mapped with."""

COLMAP = "colmap"
"""The method name that runs COLMAP's own pipeline (:func:`colmap_reconstruct`), not ``reconstruct``."""


def ring_order(truth: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """The views of a ring in order around it: by the angle of their centres in the plane that fits the
    centres best. (The temple ring's file names are not in ring order, and two of its views coincide.)"""
    names = sorted(truth)
    centres = np.array([-truth[n][0].T @ truth[n][1] for n in names])
    offsets = centres - centres.mean(0)
    axes = np.linalg.svd(offsets)[2][:2]
    planar = offsets @ axes.T
    angles = np.arctan2(planar[:, 1], planar[:, 0])
    return [names[i] for i in np.argsort(angles, kind="stable")]


def ring_windows(names: Sequence[str], window: int) -> list[list[str]]:
    """Every run of ``window`` consecutive views of a ring given in ring order (wrapping around), one
    starting at each view."""
    return [[names[(start + i) % len(names)] for i in range(window)] for start in range(len(names))]


def relative_rotation_errors(
    poses: Mapping[str, tuple[np.ndarray, np.ndarray]], truth: Mapping[str, tuple[np.ndarray, np.ndarray]]
) -> list[float]:
    """The error in degrees of the relative rotation between every two registered views (no alignment
    needed)."""
    return [
        rotation_error(poses[b][0] @ poses[a][0].T, truth[b][0] @ truth[a][0].T)
        for a, b in itertools.combinations(sorted(poses), 2)
    ]


def score_views(models: list[Any], truth: Mapping[str, Any], members: Sequence[str]) -> dict[str, Any]:
    """Registered views of the largest model and the median and largest of their relative rotation
    errors."""
    poses = model_poses(models[0]) if models else {}
    errors = relative_rotation_errors(poses, truth)
    return {
        "views": len(members),
        "registered": len(poses),
        "relative_rotation_error_deg": float(np.median(errors)) if errors else None,
        "max_relative_rotation_error_deg": float(np.max(errors)) if errors else None,
    }


def ring_totals(runs: Mapping[str, Mapping[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per variant, over runs named ``RING/full`` and ``RING/window-NN`` (scores of :func:`score_views`):
    registered views and fully registered runs (whole rings and windows apart), the median of the runs'
    median relative rotation errors, and the runs off by more than 5 degrees somewhere."""
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
        }
    return totals


def synthetic_ring_parser(doc: str | None, rings: int, record: str) -> Any:
    """The parser of a script on synthetic turntable rings: ``--rings`` (default ``rings``), ``--work``,
    ``--photos`` and ``--output`` (default ``benchmarks/reconstruction/rings/RECORD``)."""
    from ..paths import REPOSITORY
    from .scripts import script_parser

    parser = script_parser(doc)
    parser.add_argument("--rings", type=int, default=rings, help="synthetic rings (seeds 0 .. N-1)")
    parser.add_argument("--work", type=Path, default=Path("outputs/ring-options"))
    parser.add_argument(
        "--photos", type=Path, default=Path("data/photos"), help="corpus from 'tiepoint-lab data photos'"
    )
    parser.add_argument(
        "--output", type=Path, default=REPOSITORY / "benchmarks" / "reconstruction" / "rings" / record
    )
    return parser


def synthetic_ring_runs(
    work: Path, photos: Sequence[np.ndarray], rings: int, window: int = 6
) -> Iterator[tuple[str, Path, dict[str, Any], list[str]]]:
    """For each of ``rings`` synthetic turntable rings (seeds 0 .. rings-1, rendered into ``work/ring-SEED``
    unless there), the whole ring and each run of ``window`` consecutive views: ``(name, folder, truth,
    views)`` with names ``ring-SEED/full`` and ``ring-SEED/window-NN``."""
    from ..data.turntable import render_ring
    from .reconstruction import temple_ground_truth

    for seed in range(rings):
        folder = work / f"ring-{seed}"
        if not (folder / "ring_par.txt").is_file():
            render_ring(folder, photos, seed)
        truth, _ = temple_ground_truth(folder)
        order = ring_order(truth)
        yield f"ring-{seed}/full", folder, truth, order
        for index, views in enumerate(ring_windows(order, window)):
            yield f"ring-{seed}/window-{index:02d}", folder, truth, views


def held_out_photos(corpus: Path) -> list[np.ndarray]:
    """The held-out (val) photos of a corpus, shrunk to 640 px on the longer side: the textures of the
    synthetic turntable rings on which ring options are chosen."""
    import cv2

    from tiepoint.io.image import load_image

    from ..data.photos import list_photos

    photos = []
    for path in list_photos(corpus, "val"):
        image = load_image(path)
        scale = 640 / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        photos.append(image)
    return photos


def _score(result: Any, truth: dict[str, Any]) -> dict[str, Any]:
    """Registered views, status, the unregistered views' reasons and the pose errors of one run."""
    summary = result.summary
    entry: dict[str, Any] = {
        "num_images": summary["num_images"],
        "registered_images": summary["registered_images"],
        "num_models": summary.get("num_models", 0),
        "status": summary["status"],
        "num_verified_pairs": summary.get("num_verified_pairs"),
        "unregistered_images": summary.get("unregistered_images", []),
        "implausible_cameras": len(summary.get("implausible_cameras", [])),
        "cameras": summary.get("cameras", {}),
        "map_s": summary.get("timings_s", {}).get("map"),
        "timings_s": summary.get("timings_s", {}),
    }
    if result.models:
        poses = model_poses(result.models[0])
        relative = relative_rotation_errors(poses, truth)
        if relative:
            entry["relative_rotation_error_deg"] = {
                "median": float(np.median(relative)),
                "max": max(relative),
            }
        try:
            errors = pose_errors(poses, truth)
        except DatasetError as error:  # fewer than 3 views, or collinear centres
            entry["errors_missing"] = str(error)
        else:
            entry["rotation_error_deg"] = errors["rotation_error_deg"]
            entry["centre_error_percent"] = errors["centre_error_percent"]
    return entry


@dataclass
class ColmapRun:
    """What :func:`colmap_reconstruct` did: a summary with the keys of ``reconstruct``'s that the scores
    read, and the models, largest first."""

    summary: dict[str, Any]
    models: list[Any] = field(default_factory=list)


def colmap_database(folder: Path, names: Sequence[str], work: Path) -> dict[str, float]:
    """COLMAP's SIFT extraction and exhaustive matching (with its geometric verification) of ``names`` in
    ``folder`` into a new ``work/database.db``, pycolmap's defaults throughout; returns the stage times."""
    from tiepoint.io.colmap import import_pycolmap

    pycolmap = import_pycolmap()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    database = work / "database.db"
    start = time.perf_counter()
    pycolmap.extract_features(database, folder, image_names=list(names), device=pycolmap.Device.cpu)
    extracted = time.perf_counter()
    pycolmap.match_exhaustive(database, device=pycolmap.Device.cpu)
    matched = time.perf_counter()
    return {"extract": extracted - start, "match": matched - extracted}


def colmap_reconstruct(folder: Path, names: Sequence[str], work: Path, mapper: str) -> ColmapRun:
    """Map the database of :func:`colmap_database` in ``work`` with pycolmap's ``mapper`` (incremental or
    global) and its default options."""
    from tiepoint.io.colmap import import_pycolmap

    pycolmap = import_pycolmap()
    database = work / "database.db"
    output = work / mapper
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    start = time.perf_counter()
    mapping = pycolmap.incremental_mapping if mapper == "incremental" else pycolmap.global_mapping
    found = mapping(database, folder, output)
    seconds = time.perf_counter() - start
    models = sorted(found.values(), key=lambda m: m.num_reg_images(), reverse=True)
    registered = set(model_poses(models[0])) if models else set()
    with pycolmap.Database.open(database) as db:
        verified = len(db.read_two_view_geometries()[0])
    summary = {
        "num_images": len(names),
        "registered_images": len(registered),
        "num_models": len(models),
        "status": "unchecked",
        "num_verified_pairs": verified,
        "unregistered_images": [{"image": n} for n in names if n not in registered],
        "cameras": {
            str(camera_id): {"model": camera.model.name, "params": [float(v) for v in camera.params]}
            for camera_id, camera in (models[0].cameras.items() if models else [])
        },
        "timings_s": {"map": round(seconds, 3)},
    }
    return ColmapRun(summary, models)


def ring_benchmark(
    root: str | Path,
    output: str | Path,
    work: str | Path,
    method: str,
    mappers: Sequence[str] = MAPPERS,
    window: int = 6,
    progress: bool = False,
) -> dict[str, Any]:
    """Reconstruct the ring and its windows with default settings (see the module docstring); writes
    ``temple_METHOD.json`` under ``output``.

    Args:
        root: the ``templeSparseRing`` folder.
        output: the folder for the record (committed).
        work: the folder for the reconstructions (not committed).
        method: the method (``tiepoint methods``), or :data:`COLMAP` for COLMAP's own pipeline.
        mappers: the mappers, each run in turn on the same database.
        window: views per window.
        progress: show progress bars.

    Returns:
        The record: per mapper, ``full`` (the whole ring) and ``windows`` (one entry per window), and
        ``totals`` (windows with every view registered, median of the windows' median relative rotation
        errors).
    """
    from tiepoint.pipeline.reconstruct import MapperOptions, reconstruct

    truth, _ = temple_ground_truth(root)
    folder, _ = find_images(root)
    names = ring_order(truth)
    work = Path(work) / method.replace("+", "_")
    runs = {"full": names, **{f"window-{i:02d}": w for i, w in enumerate(ring_windows(names, window))}}
    record: dict[str, Any] = {
        "dataset": str(root),
        "method": method,
        "window": window,
        "environment": _environment(),
        "protocol": __doc__.split("**Protocol.**")[1].strip(),
        "mappers": {mapper: {"windows": {}} for mapper in mappers},
    }
    for run, members in runs.items():
        # the stages before mapping run once per run (later mappers reuse the database): their times too
        database_s = colmap_database(folder, members, work / run) if method == COLMAP else {}
        for mapper in mappers:
            if method == COLMAP:
                result = colmap_reconstruct(folder, members, work / run, mapper)
            else:
                result = reconstruct(
                    [folder / name for name in members],
                    work / run,
                    method=method,
                    mapper=MapperOptions(kind=mapper),
                    progress=progress,
                )
            times = result.summary.get("timings_s", {})
            database_s = database_s or {k: v for k, v in times.items() if k != "map"}
            result.summary["timings_s"] = {k: round(v, 3) for k, v in database_s.items()} | {
                "map": times.get("map")
            }
            entry = {"images": members, **_score(result, truth)}
            target = record["mappers"][mapper]
            if run == "full":
                target["full"] = entry
            else:
                target["windows"][run] = entry
            logger.info("ring %s %s %s: %d/%d", method, mapper, run, entry["registered_images"], len(members))
    for mapper, target in record["mappers"].items():
        windows = list(target["windows"].values())
        medians = [
            w["relative_rotation_error_deg"]["median"] for w in windows if "relative_rotation_error_deg" in w
        ]
        target["totals"] = {
            "windows": len(windows),
            "windows_all_registered": sum(w["registered_images"] == w["num_images"] for w in windows),
            "registered_views": sum(w["registered_images"] for w in windows),
            "views": sum(w["num_images"] for w in windows),
            "median_relative_rotation_error_deg": float(np.median(medians)) if medians else None,
            "max_window_median_relative_rotation_error_deg": float(np.max(medians)) if medians else None,
        }
    write_json(Path(output) / f"temple_{method.replace('+', '_')}.json", record)
    return record


def localization_split(truth: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[list[str], list[str]]:
    """The temple localization protocol of issue 30: ``(model views, queries)``, the queries every fourth
    view in ring order from the fourth (:func:`ring_order`), so that each has model views on both sides and
    none is one of the two views that coincide (``templeSR0001`` and ``templeSR0011``)."""
    order = ring_order(truth)
    queries = order[3::4]
    return [n for n in order if n not in queries], queries


def localization_benchmark(
    root: str | Path, output: str | Path, work: str | Path, method: str, progress: bool = False
) -> dict[str, Any]:
    """Build a model from 12 temple views with ``reconstruct``'s defaults, localize the other 4
    (:func:`localization_split`) at full size and at half size (another camera, its focal length
    estimated), and score them against the truth (:func:`~tiepoint.evaluation.poses.query_pose_errors`);
    writes ``localize_temple_METHOD.json`` under ``output``."""
    import shutil

    import cv2

    from tiepoint.evaluation.poses import query_pose_errors
    from tiepoint.io.colmap import import_pycolmap
    from tiepoint.pipeline.localize import localize, read_poses
    from tiepoint.pipeline.reconstruct import reconstruct

    pycolmap = import_pycolmap()
    truth, _ = temple_ground_truth(root)
    model_views, queries = localization_split(truth)
    work = Path(work) / f"localize-{method.replace('+', '_')}"
    folders = {name: work / name for name in ("images", "queries", "queries_half")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name in model_views:
        shutil.copyfile(Path(root) / name, folders["images"] / name)
    for name in queries:
        shutil.copyfile(Path(root) / name, folders["queries"] / name)
        image = cv2.imread(str(Path(root) / name))
        half = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folders["queries_half"] / name), half)
    built = reconstruct(folders["images"], work / "model", method=method, progress=False)
    record: dict[str, Any] = {
        "dataset": str(root),
        "method": method,
        "environment": _environment(),
        "protocol": localization_benchmark.__doc__,
        "model_views": model_views,
        "queries": queries,
        "model": {
            k: built.summary.get(k)
            for k in ("registered_images", "num_images", "status", "num_models", "unregistered_images")
        },
        "runs": {},
    }
    for run in ("queries", "queries_half"):
        result = localize(work / "model", folders[run], work / f"{run}.txt", progress=progress)
        poses = read_poses(work / f"{run}.txt")
        estimated = {
            n: (np.asarray(pycolmap.Rotation3d(np.array([*q[1:], q[0]])).matrix()), t)
            for n, (q, t) in poses.items()
        }
        errors = {}
        if built.models and poses:
            try:
                errors = query_pose_errors(model_poses(built.models[0]), estimated, truth)
            except DatasetError as error:  # too few or collinear model views: no alignment to the truth
                record.setdefault("errors_missing", {})[run] = str(error)
        record["runs"][run] = {
            name: {
                **{k: v for k, v in entry.items() if k not in ("features", "qvec", "tvec")},
                **errors.get(name, {}),
            }
            for name, entry in result.entries.items()
        }
    write_json(Path(output) / f"localize_temple_{method.replace('+', '_')}.json", record)
    return record

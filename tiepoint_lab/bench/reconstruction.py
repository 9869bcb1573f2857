"""Reconstruction benchmarks: the Middlebury temple ring against its ground-truth cameras, retrieval
precision of the pair selection, and the scaling of the Ray backend.

This is what ``tiepoint-lab bench reconstruction`` runs::

    results = temple_benchmark("../shared/data/middlebury/templeSparseRing", "benchmarks/reconstruction",
                               work="outputs/bench-reconstruction")

**Protocol.** Each variant (pairs strategy x intrinsics) is reconstructed from scratch with
:func:`tiepoint.pipeline.reconstruct.reconstruct`. The registered cameras are aligned to the ground truth by
the least-squares similarity between their centres (Umeyama, through ``pycolmap.estimate_sim3d``); then per
image the rotation error is the angle of ``R_gt (R_est S^T)^T`` (``S`` the rotation of the similarity) and
the centre error is the distance between the aligned and the true centre, in the ground truth's units and
in percent of the ring's radius (the mean distance of the true centres from their centroid). Unregistered
images count as failures, not as errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tiepoint import registry
from tiepoint.errors import DatasetError, OptionError
from tiepoint.evaluation.datasets import read_middlebury_parameters
from tiepoint.evaluation.poses import Poses, model_poses, pose_errors
from tiepoint.evaluation.runner import environment
from tiepoint.io.colmap import CameraOptions, import_pycolmap
from tiepoint.io.files import write_json
from tiepoint.pipeline.pairs import global_descriptors
from tiepoint.viz import plot_reconstruction

logger = logging.getLogger("tiepoint")

RECORD_METHOD = "sift"
"""The method of the committed temple and scaling records: SIFT with the ratio test, the pipelines' default
when they were made (``tiepoint.RECONSTRUCTION_METHOD`` is ``sift+glue`` now; pass ``method`` for it)."""


def _environment() -> dict[str, Any]:
    """:func:`~tiepoint.evaluation.runner.environment`, plus pycolmap's version and the machine's load (other
    processes sharing the CPU slow every stage down)."""
    import os

    pycolmap = import_pycolmap()
    return {
        **environment(),
        "pycolmap": pycolmap.__version__,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def view_neighbours(truth: Poses) -> dict[str, list[str]]:
    """For each image, the others sorted by the angle between their viewing directions (closest first)."""
    names = sorted(truth)
    directions = np.array([truth[n][0][2] for n in names])
    angles = np.degrees(np.arccos(np.clip(directions @ directions.T, -1, 1)))
    np.fill_diagonal(angles, np.inf)
    return {n: [names[j] for j in np.argsort(angles[i], kind="stable")[:-1]] for i, n in enumerate(names)}


def retrieval_precision(
    features: str | Path, neighbours: Mapping[str, Sequence[str]], k: int, aggregation: str = "vlad"
) -> float:
    """Mean precision@k of retrieval with :func:`~tiepoint.pipeline.pairs.global_descriptors`: the share of
    each image's ``k`` most similar images that are among its ``k`` true neighbours."""
    names = sorted(neighbours)
    descriptors = global_descriptors(features, names, aggregation=aggregation).astype(np.float64)
    similarity = descriptors @ descriptors.T
    np.fill_diagonal(similarity, -np.inf)
    hits = []
    for i, name in enumerate(names):
        retrieved = {names[j] for j in np.argsort(-similarity[i], kind="stable")[:k]}
        hits.append(len(retrieved & set(neighbours[name][:k])) / k)
    return float(np.mean(hits))


def true_neighbour_pairs(truth: Poses, k: int, path: Path) -> str:
    """Write a pairs file of each image with its ``k`` true neighbours (:func:`view_neighbours`); its path."""
    from tiepoint.pipeline.pairs import write_pairs

    neighbours = view_neighbours(truth)
    pairs = sorted({tuple(sorted((name, other))) for name in neighbours for other in neighbours[name][:k]})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_pairs(
        path, pairs, header=f"each temple view with its {k} closest viewing directions (ground truth)"
    )
    return str(path)


def temple_ground_truth(root: str | Path) -> tuple[Poses, np.ndarray]:
    """The temple ring's poses ``{name: (R, t)}`` and its (shared) ``K`` ``(3, 3)``."""
    files = sorted(Path(root).glob("*_par.txt"))
    if not files:
        raise DatasetError(f"{root}: no *_par.txt camera file (is this the templeSparseRing folder?)")
    parameters = read_middlebury_parameters(files[0])
    poses = {name: (R, t) for name, (K, R, t) in parameters.items()}
    return poses, next(iter(parameters.values()))[0]


TEMPLE_VARIANTS: dict[str, dict[str, Any]] = {
    "exhaustive": {"pairs": "exhaustive", "intrinsics": "unknown"},
    "exhaustive-single-camera": {"pairs": "exhaustive", "intrinsics": "shared"},
    "exhaustive-known-K": {"pairs": "exhaustive", "intrinsics": "known"},
    "retrieval-5": {"pairs": "retrieval:5", "intrinsics": "unknown"},
    "true-neighbours-4-known-K": {"pairs": "true-neighbours:4", "intrinsics": "known"},
}
"""The variants :func:`temple_benchmark` runs by default: the pairs strategy, and the intrinsics: unknown
per image (``tiepoint reconstruct``'s default), unknown but shared by all images, or the true ``K``. The pairs
``true-neighbours:K`` are each image with the ``K`` views of closest viewing direction
(:func:`view_neighbours`, from the ground truth): the matcher and the mapper without the pair selection's
mistakes (a thin view graph, though: with ``K = 4`` SIFT registers 13 of the 16 views)."""

_CAMERA_NOTES = {
    "unknown": (
        "unknown: SIMPLE_RADIAL per image, focal initialised at 1.2 x 640, principal point at the centre"
    ),
    "shared": "unknown: one SIMPLE_RADIAL camera for all images (--single-camera)",
    "known": "the true K (PINHOLE, one camera, kept fixed)",
}


def temple_benchmark(
    root: str | Path,
    output: str | Path,
    work: str | Path,
    method: str = RECORD_METHOD,
    variants: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Reconstruct the temple ring in each variant, align to the ground truth, write ``temple.json`` and
    ``temple.png`` (the first variant's cameras and points with the aligned true centres) under ``output``.

    A dense method (``eloftr``) takes its retrieval pairs from SIFT's descriptors
    (:data:`~tiepoint.pipeline.reconstruct.DENSE_RETRIEVAL_METHOD`), whose retrieval precision the SIFT run
    measures, so it is not measured again.

    Args:
        root: the ``templeSparseRing`` folder.
        output: the folder for the results (small files, meant to be committed).
        work: the folder for the reconstructions (features, matches, databases, models: not committed).
        method: a sparse or dense method.
        variants: names from :data:`TEMPLE_VARIANTS` (default: all).
        progress: show progress bars.

    Returns:
        The results written to ``temple.json``.
    """
    from tiepoint.pipeline.reconstruct import MapperOptions, reconstruct

    dense = registry.split_method_name(method)[1] is None
    variants = list(TEMPLE_VARIANTS) if variants is None else list(variants)
    unknown = [name for name in variants if name not in TEMPLE_VARIANTS]
    if unknown:
        raise OptionError(
            f"unknown temple variants {', '.join(unknown)}; variants: {', '.join(TEMPLE_VARIANTS)}"
        )
    truth, K = temple_ground_truth(root)
    output, work = Path(output), Path(work)
    results: dict[str, Any] = {
        "dataset": str(root),
        "method": method,
        "environment": _environment(),
        "protocol": __doc__.split("**Protocol.**")[1].strip(),
        "variants": {},
    }
    figure_done = False
    for name in variants:
        variant = TEMPLE_VARIANTS[name]
        camera = CameraOptions(mode="single" if variant["intrinsics"] == "shared" else "per_image")
        if variant["intrinsics"] == "known":
            camera = CameraOptions("PINHOLE", (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), single=True, refine=False)
        run_dir = work / name
        pairs = variant["pairs"]
        if pairs.startswith("true-neighbours:"):
            pairs = true_neighbour_pairs(truth, int(pairs.partition(":")[2]), work / f"{name}-pairs.txt")
        start = time.perf_counter()
        result = reconstruct(
            root,
            run_dir,
            method=method,
            pairs=pairs,
            camera=camera,
            mapper=MapperOptions(),
            progress=progress,
        )
        entry = {
            "pairs": variant["pairs"],
            "camera": _CAMERA_NOTES[variant["intrinsics"]],
            "total_s": round(time.perf_counter() - start, 2),
        }
        entry.update(
            {
                k: result.summary[k]
                for k in (
                    "num_images",
                    "registered_images",
                    "num_points3D",
                    "mean_track_length",
                    "mean_reprojection_error_px",
                    "num_pairs",
                    "num_verified_pairs",
                    "unregistered",
                    "timings_s",
                )
                if k in result.summary
            }
        )
        if result.models:
            errors = pose_errors(model_poses(result.models[0]), truth)
            if not figure_done:
                from tiepoint.pipeline.reconstruct import model_arrays

                arrays = model_arrays(result.models[0])
                similarity = np.asarray(errors["sim3"])
                points = (similarity[:, :3] @ arrays["points"].T).T + similarity[:, 3]
                rotations = arrays["rotations"] @ (similarity[:, :3] / errors["scale"]).T
                plot_reconstruction(
                    points,
                    errors["aligned_centres"],
                    rotations,
                    arrays["colours"],
                    path=output / "temple.png",
                    reference_centres=errors["true_centres"],
                    title=f"temple ring, {method}, {name}: aligned to the ground truth",
                )
                figure_done = True
            entry["errors"] = {
                k: v for k, v in errors.items() if k not in ("aligned_centres", "true_centres")
            }
        results["variants"][name] = entry
        logger.info("temple %s: %s", name, entry)

    if dense:
        write_json(output / "temple.json", results)
        return results
    features = work / variants[0] / "features.h5"
    neighbours = view_neighbours(truth)
    results["retrieval"] = {
        "truth": "the k views with the closest viewing directions (templeSR0011 repeats templeSR0001's view)",
        "random_expected": {str(k): k / (len(truth) - 1) for k in (2, 4)},
        **{
            aggregation: {str(k): retrieval_precision(features, neighbours, k, aggregation) for k in (2, 4)}
            for aggregation in ("vlad", "mean")
        },
    }
    write_json(output / "temple.json", results)
    return results


def scaling_benchmark(
    images: str | Path,
    output: str | Path,
    work: str | Path,
    method: str = RECORD_METHOD,
    workers: Sequence[int] = (1, 2),
) -> dict[str, Any]:
    """Throughput of extraction (images/s) and matching (pairs/s, exhaustive) on the local backend and on a
    local Ray instance with each number of ``workers``; writes ``scaling.json`` under ``output``.

    Each configuration starts from empty files; the Ray timings include shipping features to the workers
    but not Ray's start-up and the workers' first imports, which are timed separately (``ray_start_s``).
    """
    import shutil

    from tiepoint.pipeline.backends import LocalBackend, RayBackend
    from tiepoint.pipeline.extract import extract_features
    from tiepoint.pipeline.matching import match_pairs
    from tiepoint.pipeline.pairs import select_pairs

    work = Path(work)
    results: dict[str, Any] = {
        "images": str(images),
        "method": method,
        "environment": _environment(),
        "runs": {},
    }
    configurations: list[tuple[str, int]] = [("local", 1)] + [("ray", n) for n in workers]
    for kind, count in configurations:
        folder = work / f"{kind}-{count}"
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        backend = LocalBackend() if kind == "local" else RayBackend(num_workers=count)
        list(backend.run(_warm_up, [(method,)] * count))  # start the workers and import the models
        started = time.perf_counter() - start
        try:
            extraction = extract_features(
                images, folder / "features.h5", method=method, backend=backend, progress=False
            )
            pairs = select_pairs(folder / "features.h5", "exhaustive")
            matching = match_pairs(
                pairs,
                folder / "features.h5",
                folder / "matches.h5",
                method=method,
                backend=backend,
                progress=False,
            )
        finally:
            backend.close()
        results["runs"][f"{kind}-{count}"] = {
            "backend": kind,
            "workers": count,
            "ray_start_s": round(started, 2) if kind == "ray" else None,
            "images": len(extraction.extracted),
            "extract_s": round(extraction.seconds, 2),
            "images_per_s": round(len(extraction.extracted) / extraction.seconds, 2),
            "pairs": len(matching.done),
            "match_s": round(matching.seconds, 2),
            "pairs_per_s": round(len(matching.done) / matching.seconds, 2),
        }
        logger.info("scaling %s-%d: %s", kind, count, results["runs"][f"{kind}-{count}"])
    write_json(Path(output) / "scaling.json", results)
    return results


def _warm_up(method: str) -> None:
    """Worker function: import and build the method's extractor and matcher (so timings exclude this)."""
    from tiepoint import registry

    extractor_name, matcher_name = registry.split_method_name(method)
    registry.get_extractor(extractor_name)
    registry.build_matcher(matcher_name)
    time.sleep(0.5)  # holds this worker, so that the next warm-up task goes to another one

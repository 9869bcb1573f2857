"""Dense (detector-free) matchers such as ELoFTR in the feature-file pipeline, in two stages.

A dense matcher finds its own points in each pair, so an image gets different points in each of its pairs.
COLMAP needs one keypoint list per image; so, as hloc does for LoFTR:

1. :func:`match_dense` matches every pair from the images and stores each pair's points (resumable)::

       summary = match_dense(pairs, "photos/", "dense.h5", method="eloftr")

2. :func:`merge_dense` pools the points of each image over all its pairs, merges the points that fall in
   the same ``cell`` x ``cell`` pixel square into one keypoint (at their mean position), and writes an
   ordinary feature file (keypoints, no descriptors) and match file for the stages that follow
   (:func:`~tiepoint.pipeline.verify.verify_pairs`, :func:`~tiepoint.io.colmap.write_database`)::

       merge_dense(pairs, "dense.h5", "features.h5", "matches.h5")

The same two stages serve a sparse method given a view search (``rotations=(0, 90, 180, 270)``, for instance):
the search matches each pair from its images, and a turned view's keypoints are not the upright ones.

**Dense match file** — one group per pair under :func:`~tiepoint.io.h5.pair_key` (written and marked complete
as the other files are, see :mod:`tiepoint.io.h5`)::

    <name0 with '-'>/<name1 with '-'>/
        keypoints0    (K, 2) float32   pixel (x, y) in image 0, the centre of the top-left pixel is (0, 0)
        keypoints1    (K, 2) float32   the matching points in image 1
        scores        (K,)   float32   match confidences
        image_size0   (2,)   int64     (width, height) of image 0; image_size1 the same for image 1
        attributes:   method -- the method name and options, a JSON string; complete
                      source_size0, source_mtime_ns0, source_blake2b0 -- image 0's file when it was matched
                      (as extraction records it); the same ending in 1 for image 1

A rerun matches again the pairs whose image files changed since (another size, or another modification time
and hash: :func:`check_images`), as extraction does; groups without the record are kept.

In the merged files a pair keeps at most one match per keypoint on each side (the most confident), and each
keypoint's score is the best confidence of the matches it came from.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import registry
from ..errors import ImageError, OptionError
from ..io.files import atomic_path, output_lock
from ..io.h5 import (
    check_datasets,
    open_readable,
    pair_key,
    read_group,
    write_features,
    write_group,
    write_matches,
)
from ..types import Features
from .backends import Backend
from .extract import SOURCE_ATTRIBUTES, compare_source, image_source, recorded_source
from .matching import (
    InputChanged,
    Pair,
    PairFailure,
    PairStage,
    PairStageSummary,
    process_pairs,
    unique_pairs,
)

DENSE_DATASETS = ("keypoints0", "keypoints1", "scores", "image_size0", "image_size1")

_DENSE_SHAPES = {
    "keypoints0": (("K", 2), "f"),
    "keypoints1": (("K", 2), "f"),
    "scores": (("K",), "f"),
    "image_size0": ((2,), "iu"),
    "image_size1": ((2,), "iu"),
}


def validate_dense(
    group: h5py.Group, pair: Pair | None = None, feature_file: h5py.File | None = None
) -> None:
    """Check a pair's dense matches (a :attr:`~tiepoint.pipeline.matching.PairStage.validate`): the shapes
    and dtypes of :data:`DENSE_DATASETS` (``K`` agreeing), finite values.

    Raises:
        CorruptFileError: a check failed.
    """
    check_datasets(group, _DENSE_SHAPES)


def matches_from_images(method: str, options: dict[str, Any]) -> bool:
    """Whether ``method`` with ``options`` matches each pair from its images, and so goes through
    :func:`match_dense`: a dense method, or any method given a view search (``rotations``, ``zooms``,
    ``accept``, ``align``), which needs the images of each pair. A preset's own search options count only
    when they match on demand (``tilts``, as ``extreme`` does): the views it synthesises are the method."""
    dense = registry.split_method_name(method)[1] is None
    given = registry.route_options(method, options)["search"]
    return dense or bool(given) or registry.preset_options(method, "search").get("tilts") is not None


def dense_method_json(method: str, options: dict[str, Any]) -> str:
    """The ``method`` attribute of dense matches; resuming with another method or options is refused."""
    return json.dumps({"name": method, "config": options}, sort_keys=True, default=str)


def match_dense_chunk(
    pairs: list[Pair], payloads: list[None], settings: tuple[str, tuple, str], names: list[str]
) -> list[dict[str, np.ndarray] | PairFailure]:
    """Worker function: match some pairs from their images.

    Args:
        pairs: the pairs of this chunk (image names relative to the image folder).
        payloads: unused (one ``None`` per pair).
        settings: ``(method name, sorted option items, image folder)``.
        names: the images of the chunk (unused: the images are read from the folder).

    Returns:
        For each pair, its datasets (:data:`DENSE_DATASETS`) and, under ``"sources"``, the attributes that
        record its two image files (:func:`image_attributes`, taken before they were read); or a
        :class:`PairFailure` when an image of the pair cannot be read (the chunk's other pairs still count).
    """
    method_name, frozen_options, root = settings
    method = registry.get_method(method_name, **dict(frozen_options))
    results: list[dict[str, Any] | PairFailure] = []
    sources: dict[str, dict[str, Any]] = {}  # per image of the chunk, taken before its first read
    for name0, name1 in pairs:
        try:
            for name in (name0, name1):
                if name not in sources:
                    sources[name] = image_source(Path(root) / name)
        except OSError:
            pass  # the method says what is wrong
        try:
            matches = method.match(Path(root) / name0, Path(root) / name1)
        except ImageError as error:
            results.append(PairFailure(str(error)))
            continue
        results.append(
            {
                "keypoints0": np.asarray(matches.keypoints0, np.float32),
                "keypoints1": np.asarray(matches.keypoints1, np.float32),
                "scores": np.asarray(matches.scores, np.float32),
                "image_size0": np.asarray(matches.image_size0, np.int64),
                "image_size1": np.asarray(matches.image_size1, np.int64),
                "sources": image_attributes(sources.get(name0), sources.get(name1)),
            }
        )
    return results


def image_attributes(source0: dict[str, Any] | None, source1: dict[str, Any] | None) -> dict[str, Any]:
    """The attributes of a dense match group that record its image files: each attribute of
    :data:`~tiepoint.pipeline.extract.SOURCE_ATTRIBUTES` followed by ``0`` or ``1`` (``source_size0`` ...),
    from their :func:`~tiepoint.pipeline.extract.image_source`; none for an image without one."""
    attrs = {}
    for index, source in enumerate((source0, source1)):
        if source:
            attrs.update({f"{key}{index}": source[key] for key in SOURCE_ATTRIBUTES})
    return attrs


def check_images(group: h5py.Group, pair: Pair, root: Path, hashes: dict[str, str] | None = None) -> None:
    """Compare the image files that a dense match group records (:func:`image_attributes`) with those in
    ``root`` now, as extraction does (:func:`~tiepoint.pipeline.extract.compare_source`): same size and
    modification time, or same size and hash (the recorded time is then updated). A group without the record
    (an older tiepoint's) passes.

    Raises:
        InputChanged: an image file changed or is gone.
    """
    for index, name in enumerate(pair):
        recorded = recorded_source(group.attrs, str(index))
        if recorded is None:
            continue
        path = root / name
        state = compare_source(path, recorded, hashes)
        if state == "touched":
            group.attrs[f"source_mtime_ns{index}"] = os.stat(path).st_mtime_ns
        elif state != "same":
            raise InputChanged(f"image {name} {'is gone' if state == 'missing' else 'changed'} since")


def match_dense(
    pairs: Sequence[Pair],
    images: str | Path,
    output: str | Path,
    method: str = "eloftr",
    backend: str | Backend | None = None,
    chunk_size: int = 8,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
) -> PairStageSummary:
    """Match image pairs with a dense method and store each pair's points in a dense match file.

    Args:
        pairs: ``(name0, name1)`` image names relative to ``images``; repeats are dropped.
        images: the image folder.
        output: the dense match file (``.h5``), created or extended (layout in the module docstring).
        method: a dense method (``"eloftr"``, ``"eloftr-opt"``; see ``tiepoint methods``), or a sparse one
            with a view search in ``options``.
        backend: ``"local"`` (default), ``"ray"`` or a :class:`~tiepoint.pipeline.backends.Backend`.
        chunk_size: pairs per task.
        overwrite: match again the pairs already in ``output``.
        progress: show a progress bar.
        **options: options of the method (e.g. ``rotations=(0, 90, 180, 270)``).

    Returns:
        A :class:`~tiepoint.pipeline.matching.PairStageSummary`; a pair whose image cannot be read is reported
        there as failed, the other pairs are stored.

    Raises:
        OptionError: a sparse method, unknown options, or ``output`` holding matches made otherwise.
        FileNotFoundError: ``images`` is not a folder.
    """
    if not matches_from_images(method, options):
        raise OptionError(
            f"method {method!r} is sparse; match_dense needs a dense method such as 'eloftr', or a view "
            "search (rotations, zooms, align), which matches each pair from its images"
        )
    if not Path(images).is_dir():
        raise FileNotFoundError(f"image folder not found: {images}")
    registry.get_method(method, **options)  # unknown options fail here, before any work
    method_json = dense_method_json(method, options)

    def write(file: h5py.File, pair: Pair, result: dict[str, Any]) -> None:
        datasets = {key: result[key] for key in DENSE_DATASETS}
        write_group(
            file, pair_key(*pair), datasets, attrs={"method": method_json, **result.get("sources", {})}
        )

    hashes: dict[str, str] = {}

    def validate(group: h5py.Group, pair: Pair, feature_file: h5py.File | None) -> None:
        check_images(group, pair, Path(images), hashes)
        validate_dense(group)

    settings = (method, tuple(sorted(options.items())), str(images))
    stage = PairStage(match_dense_chunk, settings, write, method_json, "dense matches", validate=validate)
    return process_pairs(stage, pairs, None, output, backend, chunk_size, overwrite, progress)


def read_dense_matches(source: str | Path | h5py.File, name0: str, name1: str) -> dict[str, np.ndarray]:
    """One pair's datasets from a dense match file (:data:`DENSE_DATASETS`).

    Raises:
        KeyError: no complete dense matches for the pair.
        CorruptFileError: they fail :func:`validate_dense`.
    """
    key = pair_key(name0, name1)
    with open_readable(source) as file:
        data = read_group(file, key, DENSE_DATASETS, f"dense matches for pair {name0!r}, {name1!r}")
        validate_dense(file[key])
    return data


def merge_points(points: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge the points that fall in the same ``cell`` x ``cell`` square.

    Args:
        points: ``(N, 2)`` pixel ``(x, y)``.
        cell: side of the squares, pixels (a keypoint's squares are centred on multiples of ``cell``).

    Returns:
        ``(K, 2)`` float32 merged keypoints (the mean of their points) and ``(N,)`` int64: the keypoint of
        each point.
    """
    if cell <= 0:
        raise OptionError(f"cell must be positive, got {cell}")
    squares = np.round(np.asarray(points, np.float64) / cell).astype(np.int64).reshape(-1, 2)
    _, index = np.unique(squares, axis=0, return_inverse=True)
    index = index.reshape(-1)
    count = np.bincount(index)
    mean = (
        np.stack([np.bincount(index, points[:, axis]) / count for axis in range(2)], -1)
        if len(index)
        else np.zeros((0, 2))
    )
    return mean.astype(np.float32), index


def one_to_one(indices: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Positions of the matches ``(K, 2)`` to keep so that no keypoint is matched twice on either side: the
    most confident match of each keypoint, greedily, the best first."""
    order = np.argsort(-scores, kind="stable")
    kept = order[np.unique(indices[order, 0], return_index=True)[1]]
    kept = kept[np.argsort(-scores[kept], kind="stable")]
    return np.sort(kept[np.unique(indices[kept, 1], return_index=True)[1]])


def merge_dense(
    pairs: Sequence[Pair],
    dense: str | Path,
    features: str | Path,
    matches: str | Path,
    cell: float = 1.0,
) -> dict[str, int]:
    """Turn a dense match file into a feature file and a match file (see the module docstring).

    Both outputs are written whole and atomically (under a temporary name, then renamed), replacing any
    already there: merging is quick, and its result depends on every pair. Each is locked meanwhile
    (:func:`~tiepoint.io.files.output_lock`), so that no other run writes it at the same time.

    Args:
        pairs: the pairs to merge, all present in ``dense``.
        dense: the dense match file (:func:`match_dense`).
        features: the feature file to write (keypoints and scores; descriptors of width 0).
        matches: the match file to write.
        cell: points of an image closer than this (in a grid of this side, pixels) become one keypoint.

    Returns:
        ``{"images": ..., "keypoints": ..., "matches": ...}``: the totals written.

    Raises:
        FileNotFoundError: ``dense`` does not exist.
        CorruptFileError: ``dense`` is not readable HDF5.
        KeyError: a pair has no dense matches.
        OptionError: ``cell`` is not positive.
        tiepoint.io.files.OutputLockedError: another run is writing ``features`` or ``matches``.
    """
    if cell <= 0:
        raise OptionError(f"cell must be positive, got {cell}")
    pairs = unique_pairs(pairs)
    with open_readable(dense) as file:
        raw = {pair: read_dense_matches(file, *pair) for pair in pairs}
        method = _stored_method(file, pairs)
    points: dict[str, list[np.ndarray]] = defaultdict(list)
    sizes: dict[str, tuple[int, int]] = {}
    for (name0, name1), data in raw.items():
        points[name0].append(data["keypoints0"])
        points[name1].append(data["keypoints1"])
        sizes[name0], sizes[name1] = tuple(data["image_size0"].tolist()), tuple(data["image_size1"].tolist())

    keypoints, index_of = {}, {}  # per image: merged keypoints, and the keypoint of each pooled point
    for name, arrays in points.items():
        keypoints[name], index_of[name] = merge_points(np.concatenate(arrays), cell)
    offsets = {name: 0 for name in points}  # where each pair's points start in its image's pooled points
    pair_indices = {}
    best = {name: np.zeros(len(k), np.float32) for name, k in keypoints.items()}
    for (name0, name1), data in raw.items():
        count = len(data["scores"])
        index0 = index_of[name0][offsets[name0] : offsets[name0] + count]
        index1 = index_of[name1][offsets[name1] : offsets[name1] + count]
        offsets[name0] += count
        offsets[name1] += count
        indices, scores = np.stack([index0, index1], -1), data["scores"].astype(np.float32)
        kept = one_to_one(indices, scores)
        pair_indices[name0, name1] = (indices[kept], scores[kept])
        np.maximum.at(best[name0], index0, scores)
        np.maximum.at(best[name1], index1, scores)

    attrs = {"method": method}
    fingerprints = {}
    with output_lock(features), output_lock(matches):  # both, so that the pair is written by one run
        with atomic_path(features) as temporary, h5py.File(temporary, "w") as file:
            for name in sorted(keypoints):
                empty = np.zeros((len(keypoints[name]), 0), np.float32)
                merged = Features(keypoints[name], best[name], empty, sizes[name])
                fingerprints[name] = write_features(file, name, merged, attrs=attrs)
        with atomic_path(matches) as temporary, h5py.File(temporary, "w") as file:
            for (name0, name1), (indices, scores) in pair_indices.items():
                made_from = {
                    "features_fingerprint0": fingerprints[name0],
                    "features_fingerprint1": fingerprints[name1],
                }
                write_matches(
                    file, name0, name1, indices, scores, len(keypoints[name0]), attrs={**attrs, **made_from}
                )
    return {
        "images": len(keypoints),
        "keypoints": sum(len(k) for k in keypoints.values()),
        "matches": sum(len(s) for _, s in pair_indices.values()),
    }


def _stored_method(file: h5py.File, pairs: list[Pair]) -> str:
    """The method attribute of the pairs' dense matches (one method, as :func:`match_dense` ensures)."""
    values = {file[pair_key(*pair)].attrs.get("method", "") for pair in pairs}
    return values.pop() if len(values) == 1 else json.dumps(sorted(values))

"""Geometric verification of matched pairs: COLMAP two-view geometries, stored in a resumable HDF5 file.

This is what ``tiepoint verify`` runs::

    summary = verify_pairs(pairs, "features.h5", "matches.h5", "geometries.h5", camera=CameraOptions())

Each pair's matches go through pycolmap's ``estimate_two_view_geometry`` (RANSAC on the fundamental,
essential and homography matrices; with known focal lengths the calibrated case), which also decides the
pair's configuration (calibrated, uncalibrated, planar, panoramic, watermark, degenerate) that COLMAP's
mapper relies on. The RANSAC is seeded, so results are the same on every run and on every backend.

A pair whose inliers are fewer than ``min_inlier_ratio`` of its matches is then marked degenerate (no verified
matches), as GLOMAP's view graph filter does with the same default, 0.25 (``InlierThresholdOptions`` in
colmap/glomap). COLMAP alone keeps any pair with ``min_num_inliers`` (15) inliers; a dense matcher returns
hundreds of matches for any pair, and among them enough fit some two-view geometry by chance to pass that
test, even for views that do not overlap.

**Geometry file** — one group per pair, keyed like the match file (:func:`tiepoint.io.h5.pair_key`)::

    <name0 with '-'>/<name1 with '-'>/
        inlier_matches  (K, 2) int32    indices into the keypoints of image 0 and image 1
        F, E, H         (3, 3) float64  those estimated (absent otherwise)
        cam2_from_cam1  (3, 4) float64  relative pose [R | t], when estimated
        attributes:     config (int, ``pycolmap.TwoViewGeometryConfiguration``), config_name, method, complete

A pair that fails verification is stored too, with ``K = 0``, so a rerun does not try it again. A rerun
checks each stored group (:func:`validate_geometry`) and verifies again the pairs whose group is invalid.

Each group also records what it was verified from: ``matches_fingerprint``, the
:data:`~tiepoint.io.h5.FINGERPRINT` of the pair's match group, and ``features_fingerprint0`` and
``features_fingerprint1``, those of its images' features. A rerun verifies again the pairs whose matches or
features changed since (:attr:`~tiepoint.pipeline.matching.PairStageSummary.changed`); groups without these
attributes (an older tiepoint's) are kept. Matches that record other features than the feature file holds
now (images extracted again, not matched again) are refused
(:class:`~tiepoint.pipeline.matching.StaleInputError`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import OptionError
from ..io.colmap import (
    DEFAULT_CAMERA,
    CameraOptions,
    camera_descriptions,
    colmap_camera,
    image_sizes,
    import_pycolmap,
)
from ..io.h5 import (
    check_datasets,
    corrupt_group,
    matches_fingerprint,
    num_keypoints,
    open_file,
    pair_key,
    read_matches,
    write_group,
)
from ..types import Features
from .backends import Backend
from .matching import (
    FeatureFingerprints,
    InputChanged,
    Pair,
    PairStage,
    PairStageSummary,
    StaleInputError,
    check_recorded,
    process_pairs,
    unique_pairs,
)


@dataclass(frozen=True)
class VerificationOptions:
    """Options of the two-view geometry estimation (COLMAP's defaults, seeded).

    Attributes:
        max_error: RANSAC inlier threshold in pixels.
        min_num_inliers: fewer inliers than this make the pair degenerate (no verified matches).
        min_inlier_ratio: so do inliers fewer than this fraction of the pair's matches (0 turns the test off).
        max_num_trials: most RANSAC iterations.
        confidence: RANSAC confidence.
        seed: RANSAC random seed (a fixed seed makes runs repeatable).
    """

    max_error: float = 4.0
    min_num_inliers: int = 15
    min_inlier_ratio: float = 0.25
    max_num_trials: int = 10_000
    confidence: float = 0.999
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.max_error > 0:
            raise OptionError(f"max_error must be positive, got {self.max_error}")
        if self.min_num_inliers < 5 or self.max_num_trials < 1 or not 0 < self.confidence < 1:
            raise OptionError(
                "min_num_inliers must be at least 5, max_num_trials at least 1 and confidence in (0, 1); got "
                f"{self.min_num_inliers}, {self.max_num_trials}, {self.confidence}"
            )
        if not 0 <= self.min_inlier_ratio < 1:
            raise OptionError(f"min_inlier_ratio must be a fraction in [0, 1), got {self.min_inlier_ratio}")

    def to_colmap(self) -> Any:
        """The ``pycolmap.TwoViewGeometryOptions``."""
        pycolmap = import_pycolmap()
        options = pycolmap.TwoViewGeometryOptions()
        options.min_num_inliers = self.min_num_inliers
        options.ransac.max_error = self.max_error
        options.ransac.max_num_trials = self.max_num_trials
        options.ransac.confidence = self.confidence
        options.ransac.random_seed = self.seed
        return options


DEFAULT_VERIFICATION = VerificationOptions()
"""The verification options used where none are given (all defaults; the class is frozen)."""


def verify_chunk(
    pairs: list[Pair],
    payloads: list[tuple[np.ndarray, dict, dict]],
    settings: dict[str, Any],
    names: list[str],
    *features: Features,
) -> list[dict[str, Any]]:
    """Worker function: estimate the two-view geometry of some matched pairs.

    Args:
        pairs: the pairs of this chunk.
        payloads: per pair, the matches ``(K, 2)`` and the camera descriptions of its two images
            (:meth:`~tiepoint.io.colmap.CameraOptions.describe`).
        settings: :class:`VerificationOptions` as a dict.
        names: the images whose ``features`` follow.

    Returns:
        Per pair, a record for :func:`tiepoint.io.colmap.two_view_geometry`.
    """
    pycolmap = import_pycolmap()
    verification = VerificationOptions(**settings)
    options = verification.to_colmap()
    by_name = dict(zip(names, features))
    records = []
    for (name0, name1), (indices, camera0, camera1) in zip(pairs, payloads):
        points0 = by_name[name0].keypoints.astype(np.float64) + 0.5  # COLMAP's pixel convention
        points1 = by_name[name1].keypoints.astype(np.float64) + 0.5
        geometry = pycolmap.estimate_two_view_geometry(
            colmap_camera(camera0),
            points0,
            colmap_camera(camera1),
            points1,
            np.asarray(indices, np.uint32).reshape(-1, 2),
            options,
        )
        inliers = np.asarray(geometry.inlier_matches, np.int32).reshape(-1, 2)
        if len(inliers) < verification.min_inlier_ratio * len(indices):
            geometry = pycolmap.TwoViewGeometry()  # no matrices
            geometry.config = pycolmap.TwoViewGeometryConfiguration.DEGENERATE
            inliers = inliers[:0]
        record: dict[str, Any] = {
            "config": int(geometry.config),
            "config_name": pycolmap.TwoViewGeometryConfiguration(int(geometry.config)).name,
            "inlier_matches": inliers,
        }
        for key in ("F", "E", "H"):
            matrix = getattr(geometry, key)
            record[key] = None if matrix is None or not np.any(matrix) else np.asarray(matrix, np.float64)
        pose = geometry.cam2_from_cam1
        record["cam2_from_cam1"] = None if pose is None else np.asarray(pose.matrix(), np.float64)
        records.append(record)
    return records


def _write_record(
    file: h5py.File,
    pair: Pair,
    record: dict[str, Any],
    method_json: str,
    made_from: dict[str, str] | None = None,
) -> None:
    """Store one pair's record as a group (marked complete once written), with the attributes ``made_from``
    (what it was verified from)."""
    datasets = {"inlier_matches": record["inlier_matches"]}
    datasets.update({k: record[k] for k in ("F", "E", "H", "cam2_from_cam1") if record.get(k) is not None})
    attrs = {"config": record["config"], "config_name": record["config_name"], "method": method_json}
    write_group(file, pair_key(*pair), datasets, {**attrs, **(made_from or {})})


_MATRICES = {"F": (3, 3), "E": (3, 3), "H": (3, 3), "cam2_from_cam1": (3, 4)}


def validate_geometry(group: h5py.Group, pair: Pair, feature_file: h5py.File | None = None) -> None:
    """Check a stored two-view geometry (a :attr:`~tiepoint.pipeline.matching.PairStage.validate`):
    ``inlier_matches`` ``(K, 2)`` integers, within the pair's keypoints when ``feature_file`` is given; the
    matrices of their shapes and finite; a ``config`` attribute.

    Raises:
        CorruptFileError: a check failed.
    """
    shapes: dict[str, Any] = {"inlier_matches": (("K", 2), "iu")}
    shapes.update({key: (shape, "f") for key, shape in _MATRICES.items() if key in group})
    check_datasets(group, shapes)
    if "config" not in group.attrs:
        raise corrupt_group(group, "it has no 'config' attribute")
    inliers = np.asarray(group["inlier_matches"])
    if len(inliers) and feature_file is not None:
        for side, name in enumerate(pair):
            count = num_keypoints(feature_file, name)
            if inliers[:, side].min() < 0 or inliers[:, side].max() >= count:
                raise corrupt_group(
                    group, f"'inlier_matches' holds indices outside the {count} keypoints of {name}"
                )


def _refuse_stale_matches(
    match_file: h5py.File, pairs: list[Pair], fingerprints: FeatureFingerprints, features: Any, matches: Any
) -> None:
    """Refuse matches that record other features of their images than ``features`` holds now (the images
    were extracted again after matching): verifying them would pair old matches with new keypoints.

    Raises:
        StaleInputError: such matches, with the advice to match again.
    """
    stale = []
    for name0, name1 in pairs:
        key = pair_key(name0, name1)
        names = (name0, name1)
        if key not in match_file and pair_key(name1, name0) in match_file:
            key, names = pair_key(name1, name0), (name1, name0)
        group = match_file.get(key)
        if not isinstance(group, h5py.Group):
            continue  # no matches: the payload says so
        try:
            fingerprints.check(group, names)
        except (InputChanged, KeyError):
            stale.append((name0, name1))
    if stale:
        raise StaleInputError(
            f"{matches} holds matches of {len(stale)} pair(s) made from other features than {features} holds "
            f"now (first: {stale[0][0]} {stale[0][1]}); were images extracted again since? Run match-pairs "
            "again (it matches such pairs again), then verify"
        )


def verify_pairs(
    pairs: Sequence[Pair],
    features: str | Path,
    matches: str | Path,
    output: str | Path,
    camera: CameraOptions = DEFAULT_CAMERA,
    options: VerificationOptions = DEFAULT_VERIFICATION,
    backend: str | Backend | None = None,
    chunk_size: int = 16,
    overwrite: bool = False,
    progress: bool = True,
) -> PairStageSummary:
    """Verify the matches of image pairs geometrically and store the two-view geometries.

    Args:
        pairs: ``(name0, name1)`` pairs, all present in ``matches``.
        features: the feature file.
        matches: the match file.
        output: the geometry file (``.h5``), created or extended (layout in the module docstring).
        camera: the camera model and intrinsics (must be those given to the COLMAP database).
        options: RANSAC options.
        backend: ``"local"`` (default), ``"ray"`` or a :class:`~tiepoint.pipeline.backends.Backend`.
        chunk_size: pairs per task.
        overwrite: verify again the pairs already in ``output``.
        progress: show a progress bar.

    Returns:
        A :class:`~tiepoint.pipeline.matching.PairStageSummary`.

    Raises:
        FileNotFoundError: ``features`` or ``matches`` does not exist.
        KeyError: a pair has no matches, or an image no features.
        OptionError: ``output`` holds geometries made with other cameras or options.
        StaleInputError: ``matches`` holds matches made from other features than ``features`` holds now.
        CorruptFileError: a pair's matches fail :func:`~tiepoint.io.h5.check_matches` (against the keypoint
            counts in ``features``).
        tiepoint.io.files.OutputLockedError: another run is writing ``output``.
    """
    for source in (features, matches):
        if not Path(source).is_file():
            raise FileNotFoundError(f"file not found: {source}")
    pairs = unique_pairs(pairs)
    names = sorted({name for pair in pairs for name in pair})
    descriptions, camera_of = camera_descriptions(image_sizes(features, names), camera)
    method_json = json.dumps({"camera": asdict(camera), "options": asdict(options)}, sort_keys=True)
    fingerprints = FeatureFingerprints(features)
    match_file = open_file(matches)
    try:
        _refuse_stale_matches(match_file, pairs, fingerprints, features, matches)
    except BaseException:
        match_file.close()
        raise
    match_prints: dict[Pair, str] = {}

    def match_print(pair: Pair) -> str:
        if pair not in match_prints:
            match_prints[pair] = matches_fingerprint(match_file, *pair)
        return match_prints[pair]

    counts: dict[str, int] = {}

    def payload(pair: Pair) -> tuple[np.ndarray, dict, dict]:
        for name in pair:
            if name not in counts:
                counts[name] = num_keypoints(features, name)
        indices, _ = read_matches(match_file, *pair, num_keypoints=(counts[pair[0]], counts[pair[1]]))
        return indices, descriptions[camera_of[pair[0]]], descriptions[camera_of[pair[1]]]

    def write(file: h5py.File, pair: Pair, record: dict[str, Any]) -> None:
        made_from = {"matches_fingerprint": match_print(pair), **fingerprints.record(pair)}
        _write_record(file, pair, record, method_json, made_from)

    def validate(group: h5py.Group, pair: Pair, feature_file: h5py.File | None) -> None:
        fingerprints.check(group, pair, feature_file)
        try:
            check_recorded(group, {"matches_fingerprint": lambda: match_print(pair)})
        except InputChanged:
            raise InputChanged("its matches were computed again since") from None
        validate_geometry(group, pair, feature_file)

    stage = PairStage(
        verify_chunk, asdict(options), write, method_json, "two-view geometries", payload, validate
    )
    try:
        return process_pairs(stage, pairs, features, output, backend, chunk_size, overwrite, progress)
    finally:
        match_file.close()

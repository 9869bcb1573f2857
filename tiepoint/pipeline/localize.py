"""Localize new images against a model made by :func:`~tiepoint.pipeline.reconstruct.reconstruct`.

This is what ``tiepoint localize MODEL_DIR QUERY_IMAGES --output poses.txt`` runs::

    result = localize("outputs/scene", "queries/", "poses.txt")
    print(result.poses["q1.jpg"], result.failed)

For each query image:

1. **features** with the model's method and options (from the model's ``summary.json``), into
   ``poses.txt.features.h5`` beside the output (resumable, as
   :func:`~tiepoint.pipeline.extract.extract_features`);
2. **retrieval** of the ``num_retrieved`` most similar registered model images, by VLAD over the local
   descriptors with a vocabulary fitted on the model's images (as the pairs stage's ``retrieval:K``,
   :mod:`~tiepoint.pipeline.pairs`);
3. **matching** with the model's matcher against each retrieved image's features (``features.h5``);
4. **2D-3D correspondences** through the model's tracks: a query keypoint matched to a model keypoint that
   observes a 3D point gets that point (the model's keypoint ``i`` is its COLMAP ``points2D[i]``);
5. **absolute pose** by pycolmap's LO-RANSAC and non-linear refinement
   (``pycolmap.estimate_and_refine_absolute_pose``) with the query's camera (:func:`query_camera`): its EXIF
   focal length; else the model's camera when the sizes match; else a focal length estimated with the pose.

**Outputs.** ``poses.txt`` in hloc's results format, one line ``name qw qx qy qz tx ty tz`` per localized
query (world-to-camera, COLMAP's convention), and ``poses.txt.log.json`` with one entry per query: its
``status`` (``localized`` or ``failed``), the ``reason`` of a failure, the retrieved images, matches, 2D-3D
correspondences, inliers, camera and seconds. Both are written atomically; the log after each query, so an
interrupted run resumes: queries the log already holds, for the same model and options and unchanged
features, are not computed again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import registry
from ..errors import OptionError
from ..io.colmap import COLMAP_PIXEL_OFFSET, DEFAULT_FOCAL_FACTOR, import_pycolmap
from ..io.files import atomic_path, output_lock, write_json
from ..io.h5 import feature_fingerprint, read_features
from ..io.image import read_camera_exif
from .backends import Backend
from .extract import extract_features, find_images
from .pairs import float_descriptors, vlad_descriptors, vlad_vocabulary
from .reconstruct import FILES, PROVENANCE_FILES, load_summary, read_models, sparse_part_options

logger = logging.getLogger("tiepoint")


@dataclass(frozen=True)
class LocalizationOptions:
    """How queries are localized.

    Attributes:
        num_retrieved: model images each query is matched with (its most similar, by VLAD).
        max_error: RANSAC inlier threshold in pixels (pycolmap's and hloc's default, 12).
        min_inliers: fewest pose inliers for a query to count as localized (COLMAP's mapper registers an
            image from 30: ``abs_pose_min_num_inliers``).
        seed: RANSAC's random seed, so reruns give the same poses.
    """

    num_retrieved: int = 10
    max_error: float = 12.0
    min_inliers: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_retrieved < 1:
            raise OptionError(f"num_retrieved must be at least 1, got {self.num_retrieved}")
        if not self.max_error > 0:
            raise OptionError(f"max_error must be positive, got {self.max_error}")
        if self.min_inliers < 4:
            raise OptionError(
                f"min_inliers must be at least 4 (a pose needs 3 points and a check), got {self.min_inliers}"
            )


@dataclass
class LocalizationResult:
    """What :func:`localize` did.

    Attributes:
        output: the poses file.
        log: the log file.
        poses: ``{name: (qvec (4,) w x y z, tvec (3,))}`` world-to-camera, of the localized queries.
        entries: the log entry of every query, by name.
    """

    output: Path
    log: Path
    poses: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> dict[str, str]:
        """``{name: reason}`` of the queries that were not localized."""
        return {n: e["reason"] for n, e in self.entries.items() if e["status"] != "localized"}

    @property
    def exit_status(self) -> int:
        """The ``tiepoint localize`` exit status: 0 when every query was localized, else 1."""
        return 1 if self.failed else 0

    def report(self) -> str:
        """A few lines for the terminal."""
        lines = [f"localized {len(self.poses)} of {len(self.entries)} queries -> {self.output}"]
        for name, entry in self.entries.items():
            if entry["status"] == "localized":
                lines.append(f"  {name}: {entry['num_inliers']} inliers of {entry['num_correspondences']}")
            else:
                lines.append(f"  {name}: FAILED: {entry['reason']}")
        lines.append(f"log: {self.log}")
        return "\n".join(lines)


def log_path(output: str | Path) -> Path:
    """The log file of a poses file: ``poses.txt.log.json``."""
    output = Path(output)
    return output.with_name(output.name + ".log.json")


def query_features_path(output: str | Path) -> Path:
    """The query feature file of a poses file: ``poses.txt.features.h5``."""
    output = Path(output)
    return output.with_name(output.name + ".features.h5")


def query_camera(path: str | Path, size: tuple[int, int], model: Any) -> tuple[Any, str, str]:
    """The camera of a query image: ``(pycolmap.Camera, where it comes from, what of it is found with the
    pose)``, the last one of ``"none"``, ``"refine"`` (its focal length is refined), ``"estimate"``.

    In this order: the EXIF focal length (``SIMPLE_RADIAL``, its focal length refined with the pose); a
    copy of the model's camera of the same size (the one most registered images use; kept fixed); else
    ``SIMPLE_PINHOLE`` at COLMAP's default focal length ``1.2 * max(width, height)``, to be estimated with
    the pose.

    Args:
        path: the image file (for EXIF).
        size: ``(width, height)`` of the image the keypoints were found in.
        model: the ``pycolmap.Reconstruction``.
    """
    pycolmap = import_pycolmap()
    width, height = (int(v) for v in size)
    exif = read_camera_exif(path)
    focal = exif.focal_pixels if exif is not None and (exif.width, exif.height) == (width, height) else None
    if focal:
        camera = pycolmap.Camera(
            model="SIMPLE_RADIAL", width=width, height=height, params=[focal, width / 2, height / 2, 0.0]
        )
        return camera, f"EXIF focal length {focal:.1f} px", "refine"
    users: dict[int, int] = {}
    for image_id in model.reg_image_ids():
        camera_id = int(model.image(image_id).camera_id)
        users[camera_id] = users.get(camera_id, 0) + 1
    same = [c for c in users if (model.cameras[c].width, model.cameras[c].height) == (width, height)]
    if same:
        camera_id = max(same, key=lambda c: users[c])
        source = model.cameras[camera_id]  # copied: pose refinement must not change the model's camera
        camera = pycolmap.Camera(
            model=source.model.name, width=source.width, height=source.height, params=source.params
        )
        return camera, f"model camera {camera_id}", "none"
    focal = DEFAULT_FOCAL_FACTOR * max(width, height)
    camera = pycolmap.Camera(
        model="SIMPLE_PINHOLE", width=width, height=height, params=[focal, width / 2, height / 2]
    )
    return camera, "focal length estimated with the pose (no EXIF, no model camera of this size)", "estimate"


@dataclass
class _Model:
    """What localization needs of a reconstruction folder."""

    folder: Path
    reconstruction: Any
    method: str
    extractor_options: dict[str, Any]
    matcher_options: dict[str, Any]
    max_keypoints: int | None
    features: Path
    names: list[str]  # registered images
    point_ids: dict[str, np.ndarray]  # per image: 3D point id of each keypoint, -1 for none
    made_from: dict[str, Any]


def _load_model(folder: str | Path) -> _Model:
    """Read a reconstruction folder; refuse one that cannot be localized against, saying why."""
    folder = Path(folder)
    summary_file = folder / FILES["summary"]
    if not summary_file.is_file():
        raise FileNotFoundError(
            f"{summary_file} not found: MODEL_DIR must be a folder made by tiepoint reconstruct"
        )
    summary = load_summary(folder)
    method = str(summary.get("method", ""))
    if registry.split_method_name(method)[1] is None or "+" not in method:
        raise OptionError(
            f"{folder}: the model was made with {method!r}, which matches image pairs directly; localization "
            "needs a model made with a sparse method (sift, clidd, ...): reconstruct again with one"
        )
    models = read_models(folder / FILES["model"]) if (folder / FILES["model"]).is_dir() else []
    if not models:
        raise OptionError(
            f"{folder}: no model in {folder / FILES['model']} (did reconstruct register anything?)"
        )
    model = models[0]
    features = folder / FILES["features"]
    if not features.is_file():
        raise FileNotFoundError(f"{features} not found: the model's features are needed to match the queries")
    options = dict(summary.get("options") or {})
    extractor_options, matcher_options = sparse_part_options(method, options)
    point_ids = {}
    for image_id in model.reg_image_ids():
        image = model.image(image_id)
        point_ids[image.name] = np.array(
            [int(p.point3D_id) if p.has_point3D() else -1 for p in image.points2D], np.int64
        )
    provenance = (
        json.loads((folder / PROVENANCE_FILES["model"]).read_text())
        if (folder / PROVENANCE_FILES["model"]).is_file()
        else {}
    )
    return _Model(
        folder,
        model,
        method,
        extractor_options,
        matcher_options,
        summary.get("max_keypoints"),
        features,
        sorted(point_ids),
        point_ids,
        {"model": provenance.get("made_from"), "method": method, "options": options},
    )


def _retrieve(model: _Model, query_features: Path, queries: list[str], k: int) -> dict[str, list[str]]:
    """The ``k`` model images most similar to each query (VLAD, vocabulary fitted on the model's images)."""
    local = [float_descriptors(read_features(model.features, n).descriptors) for n in model.names]
    centres = vlad_vocabulary(local, where=str(model.features))
    database = vlad_descriptors(local, centres)
    query = vlad_descriptors(
        [float_descriptors(read_features(query_features, n).descriptors) for n in queries], centres
    )
    order = np.argsort(-(query @ database.T), axis=1, kind="stable")[:, :k]
    return {name: [model.names[j] for j in row] for name, row in zip(queries, order)}


def _correspondences(
    model: _Model, matcher: Any, query: Any, retrieved: list[str]
) -> tuple[np.ndarray, np.ndarray, int]:
    """The query's 2D points ``(M, 2)`` (tiepoint's pixel convention) and their 3D point ids ``(M,)`` through
    the retrieved images' tracks, and the number of matches."""
    pairs: set[tuple[int, int]] = set()
    num_matches = 0
    for name in retrieved:
        indices, _ = matcher.match(query, read_features(model.features, name))
        indices = np.asarray(indices, np.int64).reshape(-1, 2)
        num_matches += len(indices)
        ids = model.point_ids[name][indices[:, 1]]
        pairs.update(zip(indices[ids >= 0, 0].tolist(), ids[ids >= 0].tolist()))
    if not pairs:
        return np.zeros((0, 2)), np.zeros(0, np.int64), num_matches
    keypoint, point = (np.array(v, np.int64) for v in zip(*sorted(pairs)))
    return query.keypoints[keypoint].astype(np.float64), point, num_matches


def _pose(
    model: _Model,
    points2D: np.ndarray,
    point_ids: np.ndarray,
    camera: Any,
    focal: str,
    options: LocalizationOptions,
) -> dict[str, Any] | None:
    """pycolmap's LO-RANSAC absolute pose and its refinement (``focal``: see :func:`query_camera`);
    ``None`` when no pose is found."""
    pycolmap = import_pycolmap()
    xyz = np.array([model.reconstruction.points3D[int(i)].xyz for i in point_ids], np.float64)
    estimation = pycolmap.AbsolutePoseEstimationOptions()
    estimation.estimate_focal_length = focal == "estimate"
    estimation.ransac.max_error = options.max_error
    estimation.ransac.random_seed = options.seed
    refinement = pycolmap.AbsolutePoseRefinementOptions()
    refinement.refine_focal_length = focal != "none"
    return pycolmap.estimate_and_refine_absolute_pose(
        points2D + COLMAP_PIXEL_OFFSET, xyz, camera, estimation, refinement
    )


def _localize_one(
    model: _Model,
    matcher: Any,
    root: Path,
    name: str,
    query_features: Path,
    retrieved: list[str],
    options: LocalizationOptions,
) -> dict[str, Any]:
    """One query's log entry (with ``qvec``/``tvec`` when localized)."""
    start = time.perf_counter()
    query = read_features(query_features, name)
    entry: dict[str, Any] = {"retrieved": retrieved, "num_keypoints": len(query)}
    points2D, point_ids, num_matches = _correspondences(model, matcher, query, retrieved)
    camera, source, focal = query_camera(root / name, query.image_size, model.reconstruction)
    entry.update(num_matches=num_matches, num_correspondences=len(point_ids), camera_source=source)
    result = None
    if len(point_ids) >= options.min_inliers:
        result = _pose(model, points2D, point_ids, camera, focal, options)
    inliers = int(np.sum(result["inlier_mask"])) if result is not None else 0
    entry["num_inliers"] = inliers
    if len(point_ids) < options.min_inliers:
        entry.update(
            status="failed",
            reason=(
                f"{len(point_ids)} 2D-3D correspondences from {num_matches} matches with {len(retrieved)} "
                f"retrieved images, fewer than min_inliers={options.min_inliers}"
            ),
        )
    elif result is None:
        entry.update(
            status="failed",
            reason=f"no pose from {len(point_ids)} 2D-3D correspondences (RANSAC "
            f"found no model within {options.max_error:g} px)",
        )
    elif inliers < options.min_inliers:
        entry.update(
            status="failed",
            reason=(
                f"{inliers} pose inliers of {len(point_ids)} correspondences, fewer than "
                f"min_inliers={options.min_inliers}"
            ),
        )
    else:
        pose = result["cam_from_world"]
        x, y, z, w = (float(v) for v in pose.rotation.quat)
        entry.update(
            status="localized",
            qvec=[w, x, y, z],
            tvec=[float(v) for v in pose.translation],
            camera={
                "model": camera.model.name,
                "width": int(camera.width),
                "height": int(camera.height),
                "params": [round(float(p), 4) for p in camera.params],
            },
        )
    entry["seconds"] = round(time.perf_counter() - start, 3)
    return entry


def _read_log(path: Path, made_from: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The entries of an earlier run's log made from the same model and options (else none)."""
    try:
        log = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(log, dict) or log.get("made_from") != made_from:
        return {}
    return dict(log.get("queries") or {})


def write_poses(path: str | Path, poses: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write poses in hloc's results format (``name qw qx qy qz tx ty tz`` per line), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(
            "".join(f"{n} {' '.join(f'{v:.10g}' for v in (*q, *t))}\n" for n, (q, t) in sorted(poses.items()))
        )
    return Path(path)


def read_poses(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a results file of :func:`write_poses` (or hloc's): ``{name: (qvec w x y z, tvec)}``."""
    poses = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 8:
            raise OptionError(f"{path}:{number}: expected 'name qw qx qy qz tx ty tz', got {line!r}")
        values = np.array(fields[1:], np.float64)
        poses[fields[0]] = (values[:4], values[4:])
    return poses


def localize(
    model: str | Path,
    queries: str | Path | list[str | Path],
    output: str | Path,
    options: LocalizationOptions = LocalizationOptions(),
    backend: str | Backend | None = "local",
    overwrite: bool = False,
    progress: bool = True,
) -> LocalizationResult:
    """Localize query images against a reconstruction folder (see the module docstring).

    Args:
        model: the output folder of :func:`~tiepoint.pipeline.reconstruct.reconstruct` (a sparse method's).
        queries: a folder of images, a list file, an image or a sequence of paths
            (:func:`~tiepoint.pipeline.extract.find_images`).
        output: the poses file (hloc's results format); its log and query features go beside it.
        options: retrieval and RANSAC options.
        backend: where the query features are extracted (``"local"``, ``"ray"`` or a backend).
        overwrite: localize again the queries an earlier run logged.
        progress: show a progress bar while extracting.

    Returns:
        A :class:`LocalizationResult`.

    Raises:
        FileNotFoundError, OptionError: ``model`` is not a reconstruction of a sparse method, or bad options.
        NoImagesError: no query image.
    """
    loaded = _load_model(model)
    output, log = Path(output), log_path(output)
    root, names = find_images(queries)
    made_from = {**loaded.made_from, "options": asdict(options), "query_root": str(root.resolve())}
    extractor_name, matcher_name = registry.split_method_name(loaded.method)
    with output_lock(output):
        features = query_features_path(output)
        extracted = extract_features(
            [root / n for n in names],
            features,
            method=extractor_name,
            max_keypoints=loaded.max_keypoints,
            image_root=root,
            progress=progress,
            backend=backend,
            **loaded.extractor_options,
        )
        entries = {} if overwrite else _read_log(log, made_from)
        for name, reason in extracted.failed:
            entries[name] = {"status": "failed", "reason": f"skipped file: {reason}", "num_inliers": 0}
        usable = [n for n in names if n not in dict(extracted.failed)]
        fingerprints = {n: feature_fingerprint(features, n) for n in usable}
        todo = [n for n in usable if entries.get(n, {}).get("features") != fingerprints[n]]
        if todo:
            retrieved = _retrieve(loaded, features, todo, min(options.num_retrieved, len(loaded.names)))
            matcher = registry.build_matcher(
                matcher_name, **registry.part_options(loaded.method, "matcher", loaded.matcher_options)
            )
            for name in todo:
                entries[name] = {
                    **_localize_one(loaded, matcher, root, name, features, retrieved[name], options),
                    "features": fingerprints[name],
                }
                logger.info("%s: %s", name, entries[name].get("reason", "localized"))
                write_json(log, {"made_from": made_from, "queries": entries})
        entries = {n: entries[n] for n in names if n in entries}
        write_json(log, {"made_from": made_from, "queries": entries})
        poses = {
            n: (np.array(e["qvec"]), np.array(e["tvec"]))
            for n, e in entries.items()
            if e["status"] == "localized"
        }
        write_poses(output, poses)
    return LocalizationResult(output, log, poses, entries)


__all__ = [
    "LocalizationOptions",
    "LocalizationResult",
    "localize",
    "query_camera",
    "read_poses",
    "write_poses",
]

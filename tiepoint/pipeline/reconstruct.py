"""From a folder of photos to a sparse 3D reconstruction: features, pairs, matches, verification, COLMAP.

This is what ``tiepoint reconstruct IMAGES OUTPUT`` runs::

    result = reconstruct("photos/", "outputs/scene", method="sift", pairs="retrieval:10")
    print(result.summary["registered_images"], result.summary["mean_reprojection_error_px"])

The stages, each a function of its own (and a command of its own), each writing one output under
``OUTPUT``:

====================  ===================================================  ======================
stage                 function                                             output
====================  ===================================================  ======================
extract features      :func:`~tiepoint.pipeline.extract.extract_features`  ``features.h5``
choose pairs          :func:`~tiepoint.pipeline.pairs.make_pairs`          ``pairs.txt``
match pairs           :func:`~tiepoint.pipeline.matching.match_pairs`      ``matches.h5``
verify geometrically  :func:`~tiepoint.pipeline.verify.verify_pairs`       ``geometries.h5``
import into COLMAP    :func:`~tiepoint.io.colmap.write_database`           ``database.db``
mapping               :func:`run_mapper` (incremental or global)          ``sparse/0, 1, ...``
summary and figure    :func:`summarize`, :func:`plot_model`,               ``summary.json``,
                      :func:`export_ply`                                   ``reconstruction.png``,
                                                                           ``sparse.ply``
====================  ===================================================  ======================

With a dense method (``method="eloftr"``), or a sparse one given a view search
(``rotations=(0, 90, 180, 270)``: the search needs each pair's images), the first three stages are replaced by
:func:`~tiepoint.pipeline.dense.match_dense` (``dense_matches.h5``) and
:func:`~tiepoint.pipeline.dense.merge_dense` (``features.h5`` and ``matches.h5``, keypoints pooled per image).
Its pairs are chosen by name, or, for ``retrieval:K``, by the global descriptors of
:data:`DENSE_RETRIEVAL_METHOD`'s features (``retrieval_features.h5``): a dense method has no descriptors of
its own, so, as in hloc, retrieval uses features of its own.

**Resuming.** Every output is written atomically or through a ``.partial`` file, so a run that is
interrupted (Ctrl-C, a crash, a dead worker) leaves only complete files. Running the same command again
skips the images and pairs the HDF5 files already hold. The pairs file, the database and the model each
record what they were made from (``pairs.txt.json``, ``database.db.json``, ``sparse/provenance.json``) and
are reused only when that is unchanged: other pairs options or another set of images remake the pairs; new
work in an earlier stage, other pairs or cameras, or a database that fails its integrity check rebuild the
database; a rebuilt database or other mapper options map again. A new model replaces ``sparse/`` only once
mapping has produced one: a mapping that registers nothing keeps the previous model.

**Status.** ``summary.json`` holds ``status``: ``"complete"``; ``"incomplete"`` when images were skipped
(each listed in ``skipped_images`` with its reason); ``"unreliable"`` when a camera of the model came out
with implausible intrinsics (listed in ``implausible_cameras``, see
:func:`~tiepoint.io.colmap.implausible_intrinsics`): such a model can have a small reprojection error and
wrong poses; ``"failed"`` when mapping registered no image. :attr:`ReconstructionResult.exit_status` is the
command's exit status: 0 when complete, else 1.

**Cameras.** By default images share a camera when they share their EXIF camera and size, or their size
when they have no EXIF, with the EXIF focal length as a prior (``CameraOptions.mode``, see
:func:`~tiepoint.io.colmap.camera_descriptions`).

Extraction, matching and verification run on the ``local`` backend or on Ray (``backend="ray"``): see
:mod:`tiepoint.pipeline.backends`. The mapper always runs here (pycolmap, multi-threaded).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import registry
from ..api import RECONSTRUCTION_METHOD
from ..errors import CorruptFileError, ImageError, OptionError, OutputConflictError, TiepointError
from ..io.colmap import (
    DEFAULT_CAMERA,
    MAX_CORNER_DISTORTION,
    CameraOptions,
    database_counts,
    database_focal_priors,
    database_problem,
    database_verified_pairs,
    implausible_cameras,
    import_pycolmap,
    write_database,
)
from ..io.files import output_lock, write_json
from ..io.h5 import list_feature_names
from ..io.image import load_image
from ..io.ply import write_ply
from ..viz import plot_reconstruction
from .backends import Backend, get_backend
from .dense import match_dense, matches_from_images, merge_dense
from .extract import extract_features, find_images
from .matching import match_pairs
from .pairs import check_pair_name, parse_strategy, update_pairs
from .unregistered import unregistered_reasons
from .verify import DEFAULT_VERIFICATION, VerificationOptions, verify_pairs

logger = logging.getLogger("tiepoint")

FILES = {
    "features": "features.h5",
    "pairs": "pairs.txt",
    "matches": "matches.h5",
    "geometries": "geometries.h5",
    "database": "database.db",
    "model": "sparse",
    "summary": "summary.json",
    "figure": "reconstruction.png",
    "ply": "sparse.ply",
}
"""The outputs of :func:`reconstruct`, relative to its output folder."""

DENSE_FILES = {"dense": "dense_matches.h5", "retrieval": "retrieval_features.h5"}
"""The further outputs of :func:`reconstruct` with a dense method (:mod:`~tiepoint.pipeline.dense`): each
pair's points, merged into the ``features`` and ``matches`` files; and, with ``retrieval:K`` pairs only, the
features whose global descriptors chose the pairs."""

PROVENANCE_FILES = {"database": "database.db.json", "model": "sparse/provenance.json"}
"""What the database and the model were made from (besides ``pairs.txt.json``, see
:func:`~tiepoint.pipeline.pairs.provenance_path`), relative to the output folder."""

DENSE_RETRIEVAL_METHOD = "sift"
"""The extractor whose descriptors choose a dense method's ``retrieval:K`` pairs (VLAD, see
:mod:`~tiepoint.pipeline.pairs`): SIFT, whose VLAD retrieval needs no network."""


class IncompleteStageError(TiepointError):
    """A stage finished with chunks that failed (e.g. dead workers); its finished work is saved: run again."""

    exit_status = 1  # as a stage command whose pairs failed (tiepoint.cli.INCOMPLETE)


MAPPERS = ("incremental", "global")
"""The mappers of :class:`MapperOptions`: COLMAP's incremental mapper (``pycolmap.incremental_mapping``), or
its global one (GLOMAP's rotation averaging and global positioning, ``pycolmap.global_mapping``)."""


@dataclass(frozen=True)
class MapperOptions:
    """Options of COLMAP's mappers that tiepoint exposes.

    Attributes:
        min_model_size: smallest number of registered images for a model to be kept.
        min_num_matches: fewest verified matches for a pair to be used.
        num_threads: mapper threads (-1: all cores).
        seed: random seed of the mapper.
        multiple_models: keep reconstructing the images left over after the first model.
        kind: ``"incremental"`` (default) or ``"global"`` (:data:`MAPPERS`).
        abs_pose_min_num_inliers: incremental: fewest 2D-3D inliers to register an image (COLMAP: 30).
        init_min_tri_angle: incremental: smallest median triangulation angle (degrees) of the initial pair
            (COLMAP: 16).
        ignore_two_view_tracks: incremental: leave points seen in only two images out of triangulation
            (COLMAP: True).
        structure_less_fallback: incremental: register an image from its 2D-2D matches with registered
            images when it sees too few 3D points (COLMAP: False).

    The last four differ from COLMAP's defaults: chosen for sparse rings and turntables on synthetic
    turntable rings (``benchmarks/ring_mapper_options.py``, docs/reconstruction.md), where together they
    registered 318 of 384 views of 6-view runs (COLMAP's defaults: 211) and 50 of 64 views of whole rings
    (31), with a median relative rotation error of 0.95 degrees (2.03) and 12 runs with an error over
    5 degrees (25).
    """

    min_model_size: int = 3
    min_num_matches: int = 15
    num_threads: int = -1
    seed: int = 0
    multiple_models: bool = True
    kind: str = "incremental"
    abs_pose_min_num_inliers: int = 15
    init_min_tri_angle: float = 8.0
    ignore_two_view_tracks: bool = False
    structure_less_fallback: bool = True

    def __post_init__(self) -> None:
        if self.kind not in MAPPERS:
            raise OptionError(f"mapper {self.kind!r} is not one of {', '.join(MAPPERS)}")


def run_mapper(
    database: str | Path,
    image_root: str | Path,
    output: str | Path,
    camera: CameraOptions = DEFAULT_CAMERA,
    options: MapperOptions = MapperOptions(),
    provenance: dict[str, Any] | None = None,
) -> list[Any]:
    """Run pycolmap's incremental (or global) mapping on a database; write the models to ``output/0``,
    ``output/1``, ...

    The models are sorted by the number of registered images, largest first (``output/0``). They are written
    to ``output.partial`` and swapped in for ``output`` only once mapping has produced at least one model, so
    ``output`` never holds a half-written model, and a mapping that fails or registers nothing leaves the
    previous ``output`` as it was.

    Args:
        database: a COLMAP database with verified matches (:func:`~tiepoint.io.colmap.write_database`).
        image_root: the folder the image names are relative to (used to colour the points).
        output: the model folder.
        camera: with ``refine=False`` the intrinsics stay as given.
        options: mapper options.
        provenance: written to ``output/provenance.json`` with the models (what they were made from).

    Returns:
        The ``pycolmap.Reconstruction`` objects, largest first (empty if none could be started; ``output``
        is then untouched).
    """
    pycolmap = import_pycolmap()
    if not Path(database).is_file():
        raise FileNotFoundError(f"COLMAP database not found: {database}")
    mapping, pipeline = _mapper_call(pycolmap, camera, options)
    output = Path(output)
    scratch = output.with_name(output.name + ".partial")
    with output_lock(output):
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        return _map_into(mapping, database, image_root, pipeline, scratch, output, provenance)


def _mapper_call(pycolmap: Any, camera: CameraOptions, options: MapperOptions) -> tuple[Callable, Any]:
    """pycolmap's mapping function for ``options.kind`` and its pipeline options."""
    if options.kind == "global":
        pipeline = pycolmap.GlobalPipelineOptions()
        pipeline.mapper.random_seed = options.seed
        pipeline.mapper.num_threads = options.num_threads
        adjustment = pipeline.mapper.bundle_adjustment
        # the same results on every machine: no GPU solvers (used from 50 images where CUDA is built in)
        pipeline.mapper.global_positioning.use_gpu = False
        adjustment.ceres.use_gpu = False
    else:
        pipeline = pycolmap.IncrementalPipelineOptions()
        pipeline.mapper.abs_pose_min_num_inliers = options.abs_pose_min_num_inliers
        pipeline.mapper.init_min_tri_angle = options.init_min_tri_angle
        pipeline.triangulation.ignore_two_view_tracks = options.ignore_two_view_tracks
        pipeline.structure_less_registration_fallback = options.structure_less_fallback
        adjustment = None
    pipeline.min_model_size = options.min_model_size
    pipeline.min_num_matches = options.min_num_matches
    pipeline.num_threads = options.num_threads
    pipeline.random_seed = options.seed
    pipeline.multiple_models = options.multiple_models
    if not camera.refine:
        if adjustment is None:
            pipeline.ba_refine_focal_length = False
            pipeline.ba_refine_principal_point = False
            pipeline.ba_refine_extra_params = False
        else:
            adjustment.refine_focal_length = False
            adjustment.refine_principal_point = False
            adjustment.refine_extra_params = False
    mapping = pycolmap.global_mapping if options.kind == "global" else pycolmap.incremental_mapping
    return mapping, pipeline


def _map_into(
    mapping: Callable,
    database: str | Path,
    image_root: str | Path,
    pipeline: Any,
    scratch: Path,
    output: Path,
    provenance: dict[str, Any] | None,
) -> list[Any]:
    """Map into ``scratch`` with ``mapping`` (pycolmap's incremental or global mapping), then swap the models
    in for ``output`` (see :func:`run_mapper`)."""
    try:
        models = mapping(str(database), str(image_root), str(scratch / "raw"), pipeline)
        ordered = sorted(models.values(), key=lambda r: r.num_reg_images(), reverse=True)
        if not ordered:
            return []
        for index, model in enumerate(ordered):
            (scratch / str(index)).mkdir()
            model.write(str(scratch / str(index)))
        shutil.rmtree(scratch / "raw", ignore_errors=True)
        if provenance is not None:
            write_json(scratch / "provenance.json", provenance)
        _swap_in(scratch, output)
        return ordered
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _clear_scratch(output: Path) -> None:
    """Delete the scratch folders (``.partial``, ``.old``) a killed :func:`run_mapper` left beside
    ``output``; call it holding ``output``'s lock."""
    for suffix in (".partial", ".old"):
        shutil.rmtree(output.with_name(output.name + suffix), ignore_errors=True)


def _swap_in(new: Path, output: Path) -> None:
    """Replace the folder ``output`` by ``new``; at every moment one of them is complete on disk."""
    old = output.with_name(output.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if output.exists():
        os.replace(output, old)
    os.replace(new, output)
    shutil.rmtree(old, ignore_errors=True)


def read_models(folder: str | Path) -> list[Any]:
    """The models that :func:`run_mapper` wrote to ``folder/0``, ``folder/1``, ... as
    ``pycolmap.Reconstruction``."""
    pycolmap = import_pycolmap()
    folder = Path(folder)
    numbered = sorted(
        (p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    return [pycolmap.Reconstruction(str(path)) for path in numbered]


def summarize(models: list[Any], image_names: list[str]) -> dict[str, Any]:
    """Numbers of a reconstruction: registered images, 3D points, mean track length, reprojection error.

    Args:
        models: ``pycolmap.Reconstruction`` objects, largest first; the numbers are of the first.
        image_names: all images that were to be reconstructed.
    """
    if not models:
        return {
            "num_images": len(image_names),
            "registered_images": 0,
            "num_models": 0,
            "unregistered": sorted(image_names),
        }
    model = models[0]
    registered = sorted(model.image(i).name for i in model.reg_image_ids())
    cameras = {
        str(camera_id): {
            "model": camera.model.name,
            "width": camera.width,
            "height": camera.height,
            "params": [round(float(p), 6) for p in camera.params],
        }
        for camera_id, camera in list(model.cameras.items())[:20]
    }
    return {
        "num_images": len(image_names),
        "registered_images": len(registered),
        "num_points3D": int(model.num_points3D()),
        "num_observations": int(model.compute_num_observations()),
        "mean_track_length": float(model.compute_mean_track_length()),
        "mean_observations_per_image": float(model.compute_mean_observations_per_reg_image()),
        "mean_reprojection_error_px": float(model.compute_mean_reprojection_error()),
        "num_models": len(models),
        "registered_per_model": [int(m.num_reg_images()) for m in models],
        "unregistered": sorted(set(image_names) - set(registered)),
        "cameras": cameras,
    }


def model_arrays(model: Any) -> dict[str, Any]:
    """Points ``(P, 3)``, colours ``(P, 3)`` uint8, and per registered image its name, centre ``(3,)`` and
    world-to-camera rotation ``(3, 3)``, from a ``pycolmap.Reconstruction``."""
    points = model.points3D
    xyz = np.array([p.xyz for p in points.values()], np.float64).reshape(-1, 3)
    colours = np.array([p.color for p in points.values()], np.uint8).reshape(-1, 3)
    names, centres, rotations = [], [], []
    for image_id in sorted(model.reg_image_ids(), key=lambda i: model.image(i).name):
        image = model.image(image_id)
        names.append(image.name)
        centres.append(np.asarray(image.projection_center(), np.float64))
        rotations.append(np.asarray(image.cam_from_world().rotation.matrix(), np.float64))
    return {
        "points": xyz,
        "colours": colours,
        "names": names,
        "centres": np.array(centres).reshape(-1, 3),
        "rotations": np.array(rotations).reshape(-1, 3, 3),
    }


def plot_model(model: Any, path: str | Path, title: str | None = None) -> None:
    """Write a figure of a reconstruction's cameras and points (:func:`tiepoint.viz.plot_reconstruction`)."""
    arrays = model_arrays(model)
    plot_reconstruction(
        arrays["points"], arrays["centres"], arrays["rotations"], arrays["colours"], path=path, title=title
    )


def export_ply(model: Any, path: str | Path) -> Path:
    """Write a reconstruction's points and cameras to a PLY file for viewers
    (:func:`tiepoint.io.ply.write_ply`)."""
    arrays = model_arrays(model)
    return write_ply(path, arrays["points"], arrays["colours"], arrays["centres"], arrays["rotations"])


def map_database(
    database: str | Path,
    image_root: str | Path,
    output: str | Path,
    camera: CameraOptions = DEFAULT_CAMERA,
    options: MapperOptions = MapperOptions(),
) -> dict[str, Any]:
    """Map a COLMAP database made elsewhere: ``output/sparse``, ``output/summary.json`` and, if a model
    was made, ``output/reconstruction.png``.

    Returns:
        The summary (:func:`summarize`), with ``status`` ``"complete"``, ``"unreliable"`` when a camera's
        intrinsics are implausible (``implausible_cameras``), or ``"failed"`` when no image was registered
        (a model already in ``output/sparse`` is then kept, see :func:`run_mapper`).

    Raises:
        CorruptFileError: ``database`` fails its integrity check
            (:func:`~tiepoint.io.colmap.database_problem`).
    """
    pycolmap = import_pycolmap()
    output = Path(output)
    if Path(database).is_file():
        problem = database_problem(database)
        if problem is not None:
            raise CorruptFileError(
                f"{problem}; write it again (tiepoint map --features ... --database {database})"
            )
    models = run_mapper(database, image_root, output / FILES["model"], camera, options)
    database_handle = pycolmap.Database.open(str(database))
    try:
        names = [image.name for image in database_handle.read_all_images()]
    finally:
        database_handle.close()
    summary = summarize(models, names)
    summary["unregistered_images"] = _unregistered(models, names, database, options.min_num_matches)
    summary["implausible_cameras"] = _implausible(models, database)
    doubts = _global_without_priors(options, camera, database)
    summary.update(_status([], models, output / FILES["model"], summary["implausible_cameras"], doubts))
    if models:
        plot_model(models[0], output / FILES["figure"])
        export_ply(models[0], output / FILES["ply"])
    write_json(output / FILES["summary"], summary)
    return summary


def _unregistered(
    models: list[Any],
    names: list[str],
    database: str | Path,
    min_num_matches: int,
    skipped: Sequence[dict[str, str]] = (),
) -> list[dict[str, str]]:
    """Each unregistered image with its reason (:func:`~tiepoint.pipeline.unregistered.unregistered_reasons`,
    verified pairs from the database)."""
    try:
        verified = database_verified_pairs(database)
    except Exception as error:  # noqa: BLE001 - without the pairs, the reasons say less, they are not wrong
        logger.warning("cannot read the verified pairs of %s (%s)", database, error)
        verified = {}
    return unregistered_reasons(models, names, verified, min_num_matches, skipped)


def _implausible(models: list[Any], database: str | Path) -> list[dict[str, Any]]:
    """The cameras of the largest model with implausible intrinsics
    (:func:`~tiepoint.io.colmap.implausible_cameras`, priors from the database)."""
    if not models:
        return []
    try:
        priors = database_focal_priors(database)
    except Exception as error:  # noqa: BLE001 - without priors, every camera is judged against the default
        logger.warning("cannot read the camera priors of %s (%s): judged without", database, error)
        priors = {}
    return implausible_cameras(models[0], priors)


def _global_without_priors(options: MapperOptions, camera: CameraOptions, database: str | Path) -> list[str]:
    """Why a global mapping is not to be trusted: none of its cameras had a focal length prior (EXIF or
    known intrinsics). Its rotation averaging starts from relative rotations decomposed with the default
    focal length, and on the temple ring (true focal 2.4 x the default) it gave 16/16 views 75 degrees off
    (docs/reconstruction.md)."""
    if options.kind != "global" or camera.params is not None:
        return []
    try:
        priors = database_focal_priors(database)
    except Exception:  # noqa: BLE001 - a database pycolmap wrote but SQLite cannot read: judged without
        priors = {}
    if any(value is not None for value in priors.values()):
        return []
    reason = (
        "the global mapper ran without any focal length prior (no EXIF focal length, no --camera-params): "
        "its rotations come from relative poses decomposed with a guessed focal length and can be far off "
        "with a small reprojection error; run again with --mapper incremental, or give --camera-params"
    )
    return [reason]


def _status(
    skipped: list[dict[str, str]],
    models: list[Any],
    model_folder: Path,
    implausible: list[dict[str, Any]] | None = None,
    unreliable: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``status``, ``problems`` and ``skipped_images`` fields of a summary; ``unreliable`` holds further
    reasons not to trust the model."""
    problems = []
    if skipped:
        problems.append(
            f"{len(skipped)} image(s) skipped: "
            + "; ".join(f"{s['name']}: {s['reason']}" for s in skipped[:5])
            + (" ..." if len(skipped) > 5 else "")
        )
    if not models:
        kept = (model_folder / "0").is_dir()
        problems.append(
            "mapping registered no image (too few verified matches between the images?)"
            + (f"; the model of an earlier run is kept in {model_folder}" if kept else "")
        )
    if models and implausible:
        first = implausible[0]
        fixes = []
        if any(camera["num_images"] == 1 for camera in implausible):
            fixes.append("if the images come from one camera, share it: --camera-mode single")
        if any(camera["corner_distortion"] > MAX_CORNER_DISTORTION for camera in implausible):
            fixes.append("without distortion: --camera-model SIMPLE_PINHOLE")
        fixes.append("with known intrinsics: --camera-params")
        problems.append(
            f"{len(implausible)} camera(s) have implausible intrinsics (camera {first['camera_id']}, "
            f"{first['num_images']} image(s): {first['reason']}): the poses are likely wrong even with a "
            f"small reprojection error; run again {'; or '.join(fixes)}"
        )
    if models:
        problems += list(unreliable)
    status = (
        "failed"
        if not models
        else "incomplete"
        if skipped
        else "unreliable"
        if implausible or unreliable
        else "complete"
    )
    return {"status": status, "problems": problems, "skipped_images": skipped}


@dataclass
class ReconstructionResult:
    """What :func:`reconstruct` did.

    Attributes:
        output: the output folder.
        files: the files written, by kind (see :data:`FILES`).
        summary: the contents of ``summary.json``.
        models: the ``pycolmap.Reconstruction`` objects, largest first.
    """

    output: Path
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    models: list[Any] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        """The ``tiepoint reconstruct`` exit status: 0 when ``summary["status"]`` is ``"complete"``, 1 when
        images were skipped, a camera's intrinsics are implausible or nothing was registered."""
        return 0 if self.summary.get("status", "complete") == "complete" else 1

    def report(self) -> str:
        """A few lines for the terminal."""
        s = self.summary
        lines = [
            (
                f"registered {s.get('registered_images', 0)} of {s.get('num_images', 0)} images, "
                f"{s.get('num_points3D', 0)} points, mean track length {s.get('mean_track_length', 0):.2f}, "
                f"mean reprojection error {s.get('mean_reprojection_error_px', 0):.3f} px"
            ),
            "stage times: " + ", ".join(f"{k} {v:.1f} s" for k, v in s.get("timings_s", {}).items()),
        ]
        unregistered = s.get("unregistered_images", [])
        for record in unregistered[:20]:
            lines.append(f"not registered: {record['name']}: {record['reason']}")
        if len(unregistered) > 20:
            lines.append(f"not registered: {len(unregistered) - 20} more, listed in summary.json")
        for camera in s.get("implausible_cameras", [])[:10]:
            lines.append(
                f"implausible camera {camera['camera_id']} ({camera['num_images']} image(s), "
                f"{', '.join(camera['images'][:3])}{' ...' if camera['num_images'] > 3 else ''}): "
                f"{camera['reason']}"
            )
        lines += [f"{kind}: {path}" for kind, path in self.files.items()]
        if s.get("status", "complete") != "complete":
            lines += [f"{s['status'].upper()}: {problem}" for problem in s.get("problems", [])]
        return "\n".join(lines)


def _holding_the_output(function: Callable[..., ReconstructionResult]) -> Callable[..., ReconstructionResult]:
    """Run ``function(images, output, ...)`` holding the lock of ``output`` (``OUTPUT.lock`` beside the
    folder): a second run on the same folder is refused, naming the first, instead of mapping into the same
    files."""

    @functools.wraps(function)
    def locked(images: Any, output: str | Path, *args: Any, **kwargs: Any) -> ReconstructionResult:
        with output_lock(Path(output)):
            return function(images, output, *args, **kwargs)

    return locked


@_holding_the_output
def reconstruct(
    images: str | Path,
    output: str | Path,
    method: str = RECONSTRUCTION_METHOD,
    pairs: str = "exhaustive",
    backend: str | Backend | None = "local",
    address: str | None = None,
    num_workers: int | None = None,
    camera: CameraOptions = DEFAULT_CAMERA,
    verification: VerificationOptions = DEFAULT_VERIFICATION,
    mapper: MapperOptions = MapperOptions(),
    max_keypoints: int | None = None,
    progress: bool = True,
    **options: Any,
) -> ReconstructionResult:
    """Reconstruct a folder (or list) of images: run every stage, resuming from what ``output`` holds.

    Args:
        images: a folder of images, a text file listing them, or a sequence of paths (as for
            :func:`~tiepoint.pipeline.extract.extract_features`).
        output: the output folder (see :data:`FILES`).
        method: a sparse method (``"sift"``, ``"sift+mnn"``, ...) or a dense one (``"eloftr"``: each pair is
            matched from its images and the points merged into keypoints per image, see
            :mod:`~tiepoint.pipeline.dense`; its outputs add ``dense_matches.h5``); see ``tiepoint methods``.
            A sparse method given a view search (``rotations``, ``zooms``, ``accept``, ``align`` in
            ``options``) is run the dense way too, since the search matches each pair from its images.
        pairs: ``"exhaustive"``, ``"sequential:K"``, ``"retrieval:K"`` or a pairs file (retrieval with a dense
            method: see :data:`DENSE_RETRIEVAL_METHOD`).
        backend: ``"local"`` or ``"ray"`` (extraction, matching and verification), or a backend object.
        address: the Ray cluster to connect to (``None`` starts a local Ray instance).
        num_workers: CPUs of a local Ray instance.
        camera: camera model, intrinsics and how the images share cameras (``camera.mode``; by default
            by EXIF camera and size, with EXIF focal length priors: see
            :func:`~tiepoint.io.colmap.camera_descriptions`).
        verification: RANSAC options of the geometric verification.
        mapper: options of the mapper (incremental by default, or global: ``MapperOptions(kind="global")``).
        max_keypoints: keypoints per image (the extractor's default when ``None``; sparse methods only).
        progress: show progress bars.
        **options: options of the extractor and matcher (e.g. ``ratio=0.9``), each going to whichever
            declares it; or of the dense method.

    Returns:
        A :class:`ReconstructionResult`; ``summary.json`` holds its ``summary``. Its ``status`` is
        ``"incomplete"`` when images were skipped (listed in ``skipped_images``), ``"unreliable"`` when a
        camera's intrinsics are implausible (``implausible_cameras``), ``"failed"`` when no image was
        registered; :attr:`ReconstructionResult.exit_status` is then 1.

    Raises:
        IncompleteStageError: chunks of a stage failed (their work is missing; run again to resume).
        NoImagesError, FileNotFoundError, OptionError: bad input (an image name holding whitespace included:
            pairs files cannot hold it).
    """
    output = Path(output)
    strategy = parse_strategy(pairs)
    extractor_name, matcher_name = registry.split_method_name(method)
    dense = matcher_name is None
    if dense and max_keypoints is not None:
        raise OptionError(
            f"max_keypoints: the dense method {method!r} finds its own points in each pair; leave it unset"
        )
    pairwise = matches_from_images(method, options)
    if pairwise and not dense and max_keypoints is not None:
        options = {**options, "max_keypoints": max_keypoints}
    root, names = find_images(images)
    _check_names(names)
    files = {kind: output / name for kind, name in {**FILES, **(DENSE_FILES if pairwise else {})}.items()}
    if pairwise and strategy.kind != "retrieval":
        files.pop("retrieval")
    timings: dict[str, float] = {}
    skipped: list[dict[str, str]] = []
    runner = get_backend(backend, address, num_workers)
    # the database's record is taken away while the stages run: if they do new work and the run stops before
    # the database is rebuilt, the next run finds no record and rebuilds it
    database_record = _take_record(output / PROVENANCE_FILES["database"])
    try:
        if pairwise:
            names, pair_list, new_matches = _dense_matches(
                root, names, files, method, strategy, runner, progress, options, timings, skipped
            )
        else:
            names, pair_list, new_matches = _sparse_matches(
                images,
                names,
                files,
                extractor_name,
                matcher_name,
                strategy,
                runner,
                max_keypoints,
                progress,
                options,
                timings,
                skipped,
            )
        start = time.perf_counter()
        with _reconstruct_advice(output, files["geometries"]):
            verified = verify_pairs(
                pair_list,
                files["features"],
                files["matches"],
                files["geometries"],
                # how images share cameras does not change verification: a new mode needs no new geometries
                camera=replace(camera, mode="auto", single=False),
                options=verification,
                backend=runner,
                progress=progress,
                overwrite=pairwise and new_matches,
            )
        timings["verify"] = time.perf_counter() - start
        _require_complete("verification", verified.failed, files["geometries"])
    finally:
        if not isinstance(backend, Backend):
            runner.close()

    start = time.perf_counter()
    database_made_from = {
        "pairs_sha256": hashlib.sha256("".join(f"{a} {b}\n" for a, b in pair_list).encode()).hexdigest(),
        "images": names,
        "camera": asdict(camera),
    }
    reuse = _reusable_database(
        files["database"], database_record, database_made_from, new_matches or bool(verified.done)
    )
    if reuse:
        database_record = reuse
    else:
        database = write_database(
            files["database"],
            files["features"],
            files["matches"],
            pair_list,
            geometries=files["geometries"],
            camera=camera,
            names=names,
            image_root=root,
        )
        database_record = {
            "made_from": database_made_from,
            "build": uuid.uuid4().hex,
            "num_images": len(database.image_ids),
            "num_matched_pairs": database.num_matched_pairs,
            "num_verified_pairs": database.num_verified_pairs,
        }
    write_json(output / PROVENANCE_FILES["database"], database_record)
    timings["database"] = time.perf_counter() - start

    start = time.perf_counter()
    model_made_from = {
        "database_build": database_record["build"],
        "camera": asdict(camera),
        "mapper": asdict(mapper),
    }
    model_record = _read_record(output / PROVENANCE_FILES["model"])
    models = None
    if model_record.get("made_from") == model_made_from and (files["model"] / "0").is_dir():
        try:
            with output_lock(files["model"]):  # no one maps into it meanwhile; a dead run's lock is cleared
                models = read_models(files["model"])
                _clear_scratch(files["model"])
            logger.info("reusing the models in %s (nothing changed)", files["model"])
        except Exception as error:  # noqa: BLE001 - pycolmap raises assorted errors on damaged model files
            logger.warning("the models in %s cannot be read (%s); mapping again", files["model"], error)
    if models is None:
        models = run_mapper(
            files["database"], root, files["model"], camera, mapper, provenance={"made_from": model_made_from}
        )
    timings["map"] = time.perf_counter() - start

    summary = summarize(models, names)
    summary["unregistered_images"] = _unregistered(
        models, names, files["database"], mapper.min_num_matches, skipped
    )
    summary["implausible_cameras"] = _implausible(models, files["database"])
    doubts = _global_without_priors(mapper, camera, files["database"])
    summary.update(_status(skipped, models, files["model"], summary["implausible_cameras"], doubts))
    summary.update(
        {
            "images": str(images),
            "method": method if pairwise else f"{extractor_name}+{matcher_name}",
            "options": options,
            "max_keypoints": max_keypoints,
            "pairs": str(strategy) + (f" ({DENSE_RETRIEVAL_METHOD} VLAD)" if "retrieval" in files else ""),
            "num_pairs": len(pair_list),
            "num_verified_pairs": database_record.get("num_verified_pairs"),
            "backend": runner.name,
            "camera": asdict(camera),
            "verification": asdict(verification),
            "mapper": asdict(mapper),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
    )
    if models:
        plot_model(models[0], files["figure"], title=f"{summary['method']}, pairs {strategy}")
        export_ply(models[0], files["ply"])
    else:
        files.pop("figure")
        files.pop("ply")
        logger.warning("%s", summary["problems"][-1])
        if not files["model"].is_dir():
            files.pop("model")
    write_json(files["summary"], summary)
    return ReconstructionResult(output, files, summary, models)


def _check_names(names: list[str]) -> None:
    """Refuse image names that a pairs file cannot hold (:func:`~tiepoint.pipeline.pairs.check_pair_name`),
    before any work."""
    bad = []
    for name in names:
        try:
            check_pair_name(name)
        except OptionError:
            bad.append(name)
    if bad:
        listed = ", ".join(repr(name) for name in bad[:5]) + (
            f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        )
        raise OptionError(
            f"{len(bad)} image name(s) hold whitespace: {listed}; the pairs file (hloc's format: two names "
            "per line, split on whitespace) cannot hold them: rename these images"
        )


def _read_record(path: Path) -> dict[str, Any]:
    """A provenance record (JSON object), or ``{}`` if missing or unreadable."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _take_record(path: Path) -> dict[str, Any]:
    """Read a provenance record and delete its file (see :func:`reconstruct`)."""
    record = _read_record(path)
    path.unlink(missing_ok=True)
    return record


def _reusable_database(
    path: Path, record: dict[str, Any], made_from: dict[str, Any], new_work: bool
) -> dict[str, Any] | None:
    """``record`` if the database at ``path`` can be reused: no new work upstream, made from the same pairs,
    images and cameras, intact, and holding as many images as recorded; else ``None`` (it is rebuilt)."""
    if not path.exists():
        return None
    problem = database_problem(path)
    if problem is not None:
        logger.warning("%s: rebuilding it from the HDF5 files", problem)
        return None
    if new_work or record.get("made_from") != made_from or "build" not in record:
        return None
    if database_counts(path)["images"] != record.get("num_images"):
        logger.warning("%s holds other images than recorded: rebuilding it", path)
        return None
    return record


@contextmanager
def _reconstruct_advice(output: Path, path: Path) -> Iterator[None]:
    """A stage's refusal to resume into ``path``, with advice that works for :func:`reconstruct` (which has
    no overwrite option)."""
    try:
        yield
    except OutputConflictError as error:
        raise OutputConflictError(
            error.path,
            error.reason,
            f"reconstruct resumes from what {output} holds: delete {path} to compute it again with these "
            "settings, or choose another output folder",
        ) from None


def sparse_part_options(method: str, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The extractor's and the matcher's options of a sparse ``method`` (``"sift+ratio"``) given ``options``,
    as :func:`reconstruct` passes them to extraction and matching (and
    :func:`~tiepoint.pipeline.localize.localize` to a model's queries)."""
    routed = registry.route_options(method, options)
    extractor_options = {**registry.preset_options(method, "extractor"), **routed["extractor"]}
    matcher_options = {**registry.preset_options(method, "matcher"), **routed["matcher"]}
    return extractor_options, matcher_options


def _sparse_matches(
    images: Any,
    names: list[str],
    files: dict[str, Path],
    extractor_name: str,
    matcher_name: str,
    strategy: Any,
    runner: Backend,
    max_keypoints: int | None,
    progress: bool,
    options: dict[str, Any],
    timings: dict[str, float],
    skipped: list[dict[str, str]],
) -> tuple[list[str], list[tuple[str, str]], bool]:
    """Extract features, choose pairs and match them; returns the usable image names, the pairs and whether
    anything new was computed. Images that could not be used are added to ``skipped``."""
    method = f"{extractor_name}+{matcher_name}"
    extractor_options, matcher_options = sparse_part_options(method, options)
    start = time.perf_counter()
    with _reconstruct_advice(files["features"].parent, files["features"]):
        extracted = extract_features(
            images,
            files["features"],
            method=extractor_name,
            max_keypoints=max_keypoints,
            progress=progress,
            backend=runner,
            **extractor_options,
        )
    timings["extract"] = time.perf_counter() - start
    if extracted.failed:
        logger.warning(
            "%d image(s) could not be used: %s",
            len(extracted.failed),
            "; ".join(f"{n}: {r}" for n, r in extracted.failed[:5]),
        )
    failed = dict(extracted.failed)
    skipped += [{"name": name, "reason": str(reason)} for name, reason in extracted.failed]
    names = [name for name in names if name not in failed]
    if len(names) < 2:
        raise OptionError(f"{images}: fewer than two readable images, nothing to reconstruct")

    start = time.perf_counter()
    usable = set(names)
    pair_names = [name for name in list_feature_names(files["features"]) if name in usable]
    pair_list, _ = update_pairs(
        files["features"], files["pairs"], strategy, names=pair_names, replace_unrecorded=True
    )
    timings["pairs"] = time.perf_counter() - start

    start = time.perf_counter()
    with _reconstruct_advice(files["matches"].parent, files["matches"]):
        matched = match_pairs(
            pair_list,
            files["features"],
            files["matches"],
            method=method,
            backend=runner,
            progress=progress,
            **matcher_options,
        )
    timings["match"] = time.perf_counter() - start
    _require_complete("matching", matched.failed, files["matches"])
    return names, pair_list, bool(extracted.extracted or matched.done)


def _dense_matches(
    root: Path,
    names: list[str],
    files: dict[str, Path],
    method: str,
    strategy: Any,
    runner: Backend,
    progress: bool,
    options: dict[str, Any],
    timings: dict[str, float],
    skipped: list[dict[str, str]],
) -> tuple[list[str], list[tuple[str, str]], bool]:
    """Choose pairs (by name, or by :data:`DENSE_RETRIEVAL_METHOD`'s descriptors for retrieval), match them
    with a dense method and merge each image's points into keypoints (:mod:`~tiepoint.pipeline.dense`);
    returns the matched image names, the pairs and whether the merged files were (re)written. Images that
    cannot be read are added to ``skipped``."""
    start = time.perf_counter()
    # an unreadable image would fail each of its pairs on every rerun
    names = _readable_images(root, names, skipped)
    if len(names) < 2:
        raise OptionError(f"{root}: fewer than two readable images, nothing to reconstruct")
    if strategy.kind == "retrieval":
        with _reconstruct_advice(files["retrieval"].parent, files["retrieval"]):
            extract_features(
                [root / name for name in names],
                files["retrieval"],
                method=DENSE_RETRIEVAL_METHOD,
                image_root=root,
                progress=progress,
                backend=runner,
            )
    pair_list, remade = update_pairs(
        files.get("retrieval"), files["pairs"], strategy, names=names, replace_unrecorded=True
    )
    timings["pairs"] = time.perf_counter() - start

    start = time.perf_counter()
    with _reconstruct_advice(files["dense"].parent, files["dense"]):
        matched = match_dense(
            pair_list, root, files["dense"], method=method, backend=runner, progress=progress, **options
        )
    timings["match"] = time.perf_counter() - start
    _require_complete("dense matching", matched.failed, files["dense"])

    start = time.perf_counter()
    merge = remade or bool(matched.done) or not (files["features"].is_file() and files["matches"].is_file())
    if merge:
        merge_dense(pair_list, files["dense"], files["features"], files["matches"])
    timings["merge"] = time.perf_counter() - start
    paired = {name for pair in pair_list for name in pair}
    return [name for name in names if name in paired], pair_list, merge


def _readable_images(root: Path, names: list[str], skipped: list[dict[str, str]] | None = None) -> list[str]:
    """``names`` without the images that cannot be decoded, each reported in a warning (as extraction
    does) and added to ``skipped`` with its reason."""
    readable = []
    for name in names:
        try:
            load_image(root / name)
            readable.append(name)
        except ImageError as error:
            logger.warning("%s could not be used: %s", name, error)
            if skipped is not None:
                skipped.append({"name": name, "reason": str(error)})
    return readable


def _require_complete(stage: str, failed: list, path: Path) -> None:
    if failed:
        first = failed[0][1]
        raise IncompleteStageError(
            f"{stage}: {len(failed)} pair(s) failed (first: {first}); the finished ones are saved in {path}: "
            "run the same command again to resume"
        )


def load_summary(output: str | Path) -> dict[str, Any]:
    """The ``summary.json`` of a reconstruction folder.

    Raises:
        CorruptFileError: the file is not valid JSON.
    """
    path = Path(output) / FILES["summary"]
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CorruptFileError(f"{path}: not valid JSON ({error}); delete it and run again") from None

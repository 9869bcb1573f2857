"""COLMAP databases from tiepoint's (or hloc's) feature and match files, through pycolmap's API.

Importing your own features and matches into COLMAP is four calls::

    from tiepoint.io.colmap import CameraOptions, write_database
    write_database("database.db", "features.h5", "matches.h5", pairs, geometries="geometries.h5")
    # then: pycolmap.incremental_mapping("database.db", "images/", "sparse/")  (or `colmap mapper`)

:func:`write_database` writes, with :class:`pycolmap.Database`:

* the **cameras**: by default (``CameraOptions(mode="auto")``) one per group of images that share their
  EXIF camera (make, model, focal length) and size, or their size when they have no EXIF, with the EXIF
  focal length as a prior (:func:`camera_descriptions`); or one shared by all, one per folder, one per
  image (:data:`CAMERA_MODES`); with the model and, optionally, known intrinsics of :class:`CameraOptions`;
* one **image** per feature group, named like the group (the path relative to the image folder);
* its **keypoints**, shifted by +0.5 px into COLMAP's convention (the top-left pixel's centre is
  ``(0.5, 0.5)`` in COLMAP, ``(0, 0)`` in tiepoint, hloc and OpenCV);
* the raw **matches** of every pair;
* the **two-view geometries** (verified inlier matches, configuration, F, E, H, relative pose) from
  :func:`tiepoint.pipeline.verify.verify_pairs`; without them, run ``pycolmap.verify_matches`` (or
  ``colmap matches_importer``) on the database before mapping, as the mapper uses verified matches only.

Descriptors are not written: COLMAP's mapper does not need them.

The database is built in a temporary file and renamed into place when complete, so an interrupted run
never leaves a half-written database. :func:`database_problem` checks an existing database (SQLite's
``PRAGMA integrity_check`` and COLMAP's tables) before it is reused.
"""

from __future__ import annotations

import logging
import posixpath
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import MissingDependencyError, OptionError
from .files import atomic_path
from .h5 import list_feature_names, open_file, pair_key, read_features, read_matches
from .image import CameraExif, read_camera_exif

logger = logging.getLogger("tiepoint")

COLMAP_TABLES = ("cameras", "images", "keypoints", "matches", "two_view_geometries")
"""The tables of a COLMAP database that mapping reads (:func:`database_problem` checks they exist)."""

COLMAP_PIXEL_OFFSET = 0.5
"""Added to tiepoint's pixel coordinates to get COLMAP's."""

DEFAULT_FOCAL_FACTOR = 1.2
"""Without known intrinsics, the initial focal length is this times the longer image side (COLMAP's
default)."""

CAMERA_MODES = ("auto", "single", "per_folder", "per_image")
"""How images share cameras (the modes of hloc's ``CameraMode``): ``auto``, one camera per group of images
with the same EXIF camera (make, model, focal length) and size, or the same size when they have no EXIF;
``single``, one camera for all; ``per_folder``, one per folder of the image names; ``per_image``, one each."""

FOCAL_RANGE_WITH_PRIOR = (0.5, 2.0)
"""A refined focal length outside this range times its prior (EXIF, or known ``params``) is implausible
(:func:`implausible_intrinsics`): EXIF focal lengths are right to a few percent, so half or twice the prior
means the focal length was traded against the poses or the distortion."""

FOCAL_RANGE_WITHOUT_PRIOR = (0.5, 3.0)
"""Without a prior, the range of plausible focal lengths times the default ``1.2 * max(width, height)``:
0.6 to 3.6 times the longer side, horizontal angles of view from 80 to 16 degrees (21 to 130 mm on a full
frame), the rectilinear lenses that the models tiepoint offers describe; wider lenses need a fisheye model,
longer ones are rare enough to be worth a look."""

MAX_CORNER_DISTORTION = 0.2
"""Largest plausible radial distortion at the image corner, as a fraction of the corner's distance from the
principal point (``|k1 r^2 + k2 r^4|`` at the corner's normalised radius ``r``). Rectilinear lenses stay
within a few percent (wide-angle action cameras near 10%); at -1/3 ``SIMPLE_RADIAL`` folds the image over,
so a value beyond 20% means the distortion took up an error of focal length or pose, not a lens."""

# COLMAP camera models that tiepoint offers: name -> (parameter names, index of cx)
CAMERA_MODELS: dict[str, tuple[tuple[str, ...], int]] = {
    "SIMPLE_PINHOLE": (("f", "cx", "cy"), 1),
    "PINHOLE": (("fx", "fy", "cx", "cy"), 2),
    "SIMPLE_RADIAL": (("f", "cx", "cy", "k"), 1),
    "RADIAL": (("f", "cx", "cy", "k1", "k2"), 1),
    "OPENCV": (("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"), 2),
}

RADIAL_PARAMS = {"SIMPLE_RADIAL": (3,), "RADIAL": (3, 4), "OPENCV": (4, 5)}
"""Indices of the radial distortion coefficients ``k1`` (and ``k2``) in each model's parameters."""


def import_pycolmap() -> Any:
    """pycolmap, or a :class:`~tiepoint.errors.MissingDependencyError` that says how to install it."""
    try:
        import pycolmap
    except ImportError:
        raise MissingDependencyError(
            "COLMAP databases and reconstruction need pycolmap: pip install pycolmap (a dependency of "
            "tiepoint; reinstall tiepoint with pip install -e .)"
        ) from None
    return pycolmap


@dataclass(frozen=True)
class CameraOptions:
    """The camera model and intrinsics given to COLMAP.

    Attributes:
        model: a COLMAP camera model name, one of :data:`CAMERA_MODELS`.
        params: known intrinsics in the model's parameter order (e.g. ``fx, fy, cx, cy`` for ``PINHOLE``),
            with the principal point in tiepoint's convention (top-left pixel centre at ``(0, 0)``, as in
            OpenCV and Middlebury's ``K``); 0.5 px is added for COLMAP. ``None``: unknown, initialised
            to focal ``1.2 * max(width, height)``, principal point at the centre, no distortion.
        single: the same as ``mode="single"`` (kept for older code; it is ``True`` exactly when the mode is
            ``"single"``).
        refine: let bundle adjustment refine the intrinsics; with ``False`` known ``params`` stay fixed.
        mode: how images share cameras, one of :data:`CAMERA_MODES` (``"per-image"`` is accepted for
            ``"per_image"``): ``"auto"`` (default) groups them by EXIF camera and size
            (:func:`camera_descriptions`); ``"single"`` needs images of one size, as does each folder with
            ``"per_folder"``.
    """

    model: str = "SIMPLE_RADIAL"
    params: tuple[float, ...] | None = None
    single: bool = False
    refine: bool = True
    mode: str = "auto"

    def __post_init__(self) -> None:
        mode = str(self.mode).lower().replace("-", "_")
        if mode not in CAMERA_MODES:
            raise OptionError(f"camera mode {self.mode!r} is not one of {', '.join(CAMERA_MODES)}")
        if self.single and mode not in ("auto", "single"):
            raise OptionError(f"a single camera and camera mode {mode!r} contradict each other: give one")
        mode = "single" if self.single else mode
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "single", mode == "single")
        if self.model not in CAMERA_MODELS:
            raise OptionError(
                f"camera model {self.model!r} is not supported; use one of {', '.join(CAMERA_MODELS)}"
            )
        names = CAMERA_MODELS[self.model][0]
        if self.params is not None:
            object.__setattr__(self, "params", tuple(float(p) for p in self.params))
            if len(self.params) != len(names):
                raise OptionError(
                    f"camera params: model {self.model} takes {len(names)} parameters ({', '.join(names)}), "
                    f"got {len(self.params)}"
                )

    def describe(self, size: tuple[int, int], prior_focal: float | None = None) -> dict[str, Any]:
        """The COLMAP camera of an image of ``size`` ``(width, height)``: model, size, params (COLMAP's
        convention) and whether the focal length is a known prior. Without ``params``, the focal length is
        ``prior_focal`` (e.g. from EXIF, then a prior) or ``1.2 * max(width, height)`` (not a prior)."""
        width, height = (int(v) for v in size)
        names, cx_index = CAMERA_MODELS[self.model]
        if self.params is None:
            focal = float(prior_focal) if prior_focal else DEFAULT_FOCAL_FACTOR * max(width, height)
            params = [focal] * cx_index + [width / 2, height / 2] + [0.0] * (len(names) - cx_index - 2)
            prior = bool(prior_focal)
        else:
            params = list(self.params)
            params[cx_index] += COLMAP_PIXEL_OFFSET
            params[cx_index + 1] += COLMAP_PIXEL_OFFSET
            prior = True
        return {"model": self.model, "width": width, "height": height, "params": params, "prior_focal": prior}


DEFAULT_CAMERA = CameraOptions()
"""The camera options used where none are given (all defaults; the class is frozen, so one instance serves
every call)."""


def colmap_camera(description: Mapping[str, Any]) -> Any:
    """A ``pycolmap.Camera`` from :meth:`CameraOptions.describe`'s dict."""
    pycolmap = import_pycolmap()
    camera = pycolmap.Camera(
        model=description["model"],
        width=description["width"],
        height=description["height"],
        params=description["params"],
    )
    camera.has_prior_focal_length = bool(description["prior_focal"])
    return camera


def camera_descriptions(
    sizes: Mapping[str, tuple[int, int]],
    options: CameraOptions,
    exif: Mapping[str, CameraExif | None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The cameras of some images: their descriptions and, per image name, the index of its camera.

    ``options.mode`` groups the images (:data:`CAMERA_MODES`); in ``"auto"`` mode, by their EXIF camera
    (make, model, focal length in mm and in 35 mm terms) and size, or by size alone for images whose EXIF
    names no camera (or without ``exif``). Each group shares one camera, whose focal length starts at the
    EXIF focal length (:attr:`~tiepoint.io.image.CameraExif.focal_pixels`, then a prior) when its images
    give one, else at ``1.2 * max(width, height)``.

    Args:
        sizes: ``{name: (width, height)}``, the sizes the keypoints refer to.
        options: the camera options.
        exif: the EXIF camera of each image (:func:`~tiepoint.io.image.read_camera_exif`), if known.

    Raises:
        OptionError: a single camera (or one per folder) for images of different sizes.
    """
    exif = exif or {}
    groups: dict[Any, list[str]] = {}
    for name, size in sizes.items():
        size = tuple(int(v) for v in size)
        if options.mode == "per_image":
            key: Any = name
        elif options.mode == "single":
            key = "all"
        elif options.mode == "per_folder":
            key = posixpath.dirname(name)
        else:
            tags = _matching_exif(exif.get(name), size)
            camera = (tags.make, tags.model, tags.focal_length_mm, tags.focal_length_35mm) if tags else None
            key = (camera, size)
        groups.setdefault(key, []).append(name)
    descriptions, camera_of = [], {}
    for key, members in groups.items():
        distinct = sorted({tuple(int(v) for v in sizes[name]) for name in members})
        if len(distinct) > 1:
            where = "a single camera" if options.mode == "single" else f"one camera for folder {key!r}"
            raise OptionError(
                f"{where} needs images of one size; these have {len(distinct)} sizes "
                f"({', '.join(f'{w}x{h}' for w, h in distinct[:4])}): use camera mode auto or per_image"
            )
        priors = {_prior_focal(exif.get(name), distinct[0]) for name in members}
        prior = priors.pop() if len(priors) == 1 else None  # images that disagree: no prior
        for name in members:
            camera_of[name] = len(descriptions)
        descriptions.append(options.describe(distinct[0], prior))
    return descriptions, camera_of


def _matching_exif(tags: CameraExif | None, size: tuple[int, int]) -> CameraExif | None:
    """``tags`` if they name a camera and belong to an image of ``size`` (the keypoints' image), else
    ``None``."""
    if tags is None or not tags.has_camera or (tags.width, tags.height) != tuple(size):
        return None
    return tags


def _prior_focal(tags: CameraExif | None, size: tuple[int, int]) -> float | None:
    """The EXIF focal length in pixels of an image of ``size``, rounded to 0.01 px, or ``None``."""
    tags = _matching_exif(tags, size)
    focal = tags.focal_pixels if tags is not None else None
    return round(focal, 2) if focal else None


def read_exif(image_root: str | Path, names: Sequence[str]) -> dict[str, CameraExif | None]:
    """The EXIF camera of each image ``image_root / name`` (``None`` for a file Pillow cannot read)."""
    return {name: read_camera_exif(Path(image_root) / name) for name in names}


def image_sizes(
    features: str | Path | h5py.File, names: Sequence[str] | None = None
) -> dict[str, tuple[int, int]]:
    """``{name: (width, height)}`` of the images in a feature file (all of them by default)."""
    own = not isinstance(features, h5py.Group)
    file = open_file(features) if own else features
    try:
        names = list_feature_names(file) if names is None else list(names)
        return {name: tuple(int(v) for v in np.asarray(file[name]["image_size"])) for name in names}
    finally:
        if own:
            file.close()


def two_view_geometry(record: Mapping[str, Any]) -> Any:
    """A ``pycolmap.TwoViewGeometry`` from a dict with ``config`` (int), ``inlier_matches`` ``(K, 2)``, and
    optional ``F``, ``E``, ``H`` ``(3, 3)`` and ``cam2_from_cam1`` ``(3, 4)``."""
    pycolmap = import_pycolmap()
    geometry = pycolmap.TwoViewGeometry()
    geometry.config = pycolmap.TwoViewGeometryConfiguration(int(record["config"]))
    geometry.inlier_matches = np.asarray(record["inlier_matches"], np.uint32).reshape(-1, 2)
    for key in ("F", "E", "H"):
        if record.get(key) is not None:
            setattr(geometry, key, np.asarray(record[key], np.float64))
    if record.get("cam2_from_cam1") is not None:
        geometry.cam2_from_cam1 = pycolmap.Rigid3d(np.asarray(record["cam2_from_cam1"], np.float64))
    return geometry


def read_two_view_geometry(file: h5py.File, name0: str, name1: str) -> dict[str, Any] | None:
    """The verified geometry of a pair from a geometry file (:mod:`tiepoint.pipeline.verify`), or ``None``."""
    group = file.get(pair_key(name0, name1))
    if not isinstance(group, h5py.Group) or not group.attrs.get("complete", True):
        return None
    record: dict[str, Any] = {"config": int(group.attrs["config"])}
    record["inlier_matches"] = np.asarray(group["inlier_matches"], np.int64).reshape(-1, 2)
    for key in ("F", "E", "H", "cam2_from_cam1"):
        record[key] = np.asarray(group[key]) if key in group else None
    return record


@dataclass
class DatabaseSummary:
    """What :func:`write_database` wrote.

    Attributes:
        path: the database.
        image_ids: COLMAP's image id of each image name.
        num_cameras: cameras written.
        num_matched_pairs: pairs with raw matches.
        num_verified_pairs: pairs with a two-view geometry holding at least one inlier.
        cameras: the cameras written (:meth:`CameraOptions.describe`), each with its ``camera_id`` and
            ``images`` (their names).
    """

    path: Path
    image_ids: dict[str, int]
    num_cameras: int
    num_matched_pairs: int
    num_verified_pairs: int
    cameras: list[dict[str, Any]] = field(default_factory=list)


def write_database(
    path: str | Path,
    features: str | Path,
    matches: str | Path,
    pairs: Sequence[tuple[str, str]],
    geometries: str | Path | None = None,
    camera: CameraOptions = DEFAULT_CAMERA,
    names: Sequence[str] | None = None,
    image_root: str | Path | None = None,
) -> DatabaseSummary:
    """Write a COLMAP database (replacing ``path``) from a feature file, a match file and verified geometries.

    Args:
        path: the database file (``.db``), written atomically.
        features: the feature file; its images become COLMAP images named like their groups.
        matches: the match file holding the matches of ``pairs``.
        pairs: ``(name0, name1)`` pairs to import; pairs missing from ``matches`` are skipped with a warning.
        geometries: the geometry file of :func:`tiepoint.pipeline.verify.verify_pairs`, or ``None`` to
            write raw matches only (verify them in COLMAP before mapping).
        camera: camera model, intrinsics and how images share cameras (:func:`camera_descriptions`).
        names: the images to import (default: all in ``features``).
        image_root: the folder the image names are relative to: their EXIF blocks group the images into
            cameras and give focal length priors (``camera.mode`` ``"auto"``); ``None``: images are grouped by
            size alone, without priors.

    Returns:
        A :class:`DatabaseSummary`.

    Raises:
        FileNotFoundError: an input file does not exist.
        OptionError: bad camera options.
    """
    pycolmap = import_pycolmap()
    for source in (features, matches) + ((geometries,) if geometries is not None else ()):
        if not Path(source).is_file():
            raise FileNotFoundError(f"file not found: {source}")
    names = list_feature_names(features) if names is None else list(names)
    with atomic_path(path, locked=True) as tmp, open_file(features) as feature_file:
        sizes = image_sizes(feature_file, names)
        exif = read_exif(image_root, names) if image_root is not None else None
        cameras, camera_of = camera_descriptions(sizes, camera, exif)
        database = pycolmap.Database.open(str(tmp))
        try:
            camera_ids = [database.write_camera(colmap_camera(c)) for c in cameras]
            for description, camera_id in zip(cameras, camera_ids):
                description.update(camera_id=int(camera_id), images=[])
            for name in names:
                cameras[camera_of[name]]["images"].append(name)
            image_ids = {}
            for name in names:
                image_ids[name] = database.write_image(
                    pycolmap.Image(name=name, camera_id=camera_ids[camera_of[name]])
                )
                keypoints = (
                    read_features(feature_file, name).keypoints.astype(np.float64) + COLMAP_PIXEL_OFFSET
                )
                database.write_keypoints(image_ids[name], keypoints.astype(np.float32))
            matched, verified = _write_pairs(database, image_ids, matches, pairs, geometries)
        finally:
            database.close()
    logger.info(
        "wrote %s: %d images, %d cameras (mode %s, %d with an EXIF focal length prior), %d matched pairs, "
        "%d verified",
        path,
        len(names),
        len(cameras),
        camera.mode,
        sum(bool(c["prior_focal"]) for c in cameras) if camera.params is None else 0,
        matched,
        verified,
    )
    return DatabaseSummary(Path(path), image_ids, len(cameras), matched, verified, cameras)


def _write_pairs(
    database: Any,
    image_ids: Mapping[str, int],
    matches: str | Path,
    pairs: Sequence[tuple[str, str]],
    geometries: str | Path | None,
) -> tuple[int, int]:
    """Write the matches and two-view geometries of ``pairs``; returns (matched, verified) pair counts."""
    matched = verified = 0
    geometry_file = open_file(geometries) if geometries is not None else None
    try:
        with open_file(matches) as match_file:
            for name0, name1 in pairs:
                if name0 not in image_ids or name1 not in image_ids:
                    continue
                try:
                    indices, _ = read_matches(match_file, name0, name1)
                except KeyError:
                    logger.warning("no matches for %s, %s in %s: skipped", name0, name1, matches)
                    continue
                id0, id1 = image_ids[name0], image_ids[name1]
                database.write_matches(id0, id1, indices.astype(np.uint32))
                matched += 1
                if geometry_file is None:
                    continue
                for first, second in ((name0, name1), (name1, name0)):  # stored in either order
                    record = read_two_view_geometry(geometry_file, first, second)
                    if record is not None:
                        database.write_two_view_geometry(
                            image_ids[first], image_ids[second], two_view_geometry(record)
                        )
                        verified += len(record["inlier_matches"]) > 0
                        break
    finally:
        if geometry_file is not None:
            geometry_file.close()
    return matched, verified


def database_problem(path: str | Path) -> str | None:
    """What is wrong with a COLMAP database file, or ``None`` if it is sound.

    Runs SQLite's ``PRAGMA integrity_check`` (reading the whole file, read-only) and checks that COLMAP's
    tables (:data:`COLMAP_TABLES`) are there. A file that is missing, truncated, not SQLite or not a COLMAP
    database gets a one-line reason.
    """
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist"
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return f"{path} cannot be opened as SQLite: {error}"
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
        if [tuple(row) for row in rows] != [("ok",)]:
            return f"{path} fails SQLite's integrity check: {'; '.join(str(r[0]) for r in rows[:3])}"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as error:
        return f"{path} is not a readable SQLite database: {error}"
    finally:
        connection.close()
    missing = [table for table in COLMAP_TABLES if table not in tables]
    if missing:
        return f"{path} is not a COLMAP database: it has no {', '.join(missing)} table(s)"
    return None


def database_counts(path: str | Path) -> dict[str, int]:
    """Rows in each of COLMAP's tables (:data:`COLMAP_TABLES`) of a sound database
    (:func:`database_problem`)."""
    connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {
            table: int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in COLMAP_TABLES
        }
    finally:
        connection.close()


def database_focal_priors(path: str | Path) -> dict[int, float | None]:
    """The focal length prior of each camera of a COLMAP database: the focal length it was written with
    (mean of ``fx`` and ``fy``) when it is flagged as a prior (``prior_focal_length``), else ``None``.

    Read with SQLite, read-only: opening a database with pycolmap writes to it (and changes its time, which
    :func:`~tiepoint.pipeline.reconstruct.reconstruct` uses to tell a reused database).
    """
    pycolmap = import_pycolmap()
    connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        query = "SELECT camera_id, model, width, height, params, prior_focal_length FROM cameras"
        rows = connection.execute(query).fetchall()
    finally:
        connection.close()
    priors: dict[int, float | None] = {}
    for camera_id, model, width, height, params, prior in rows:
        priors[int(camera_id)] = None
        if prior:
            camera = pycolmap.Camera(
                model=pycolmap.CameraModelId(int(model)).name,
                width=int(width),
                height=int(height),
                params=np.frombuffer(params, np.float64),
            )
            priors[int(camera_id)] = float(camera.mean_focal_length())
    return priors


def implausible_intrinsics(camera: Any, prior_focal: float | None = None) -> dict[str, Any] | None:
    """Why a camera's refined intrinsics are implausible, or ``None`` when they are plausible.

    Two tests, for the models of :data:`CAMERA_MODELS` (other models are not judged):

    * the focal length (mean of ``fx``, ``fy``) against ``prior_focal``, within
      :data:`FOCAL_RANGE_WITH_PRIOR` times it; without a prior, within :data:`FOCAL_RANGE_WITHOUT_PRIOR`
      times COLMAP's default ``1.2 * max(width, height)``;
    * the radial distortion at the image corner farthest from the principal point, ``|k1 r^2 + k2 r^4|``,
      at most :data:`MAX_CORNER_DISTORTION`.

    Args:
        camera: a ``pycolmap.Camera`` (after bundle adjustment).
        prior_focal: its focal length prior in pixels (EXIF or known ``params``), or ``None``.

    Returns:
        ``None``, or a dict with ``model``, ``width``, ``height``, ``focal_px``, ``prior_focal_px``,
        ``reference_focal_px`` (the prior, or the default), ``focal_ratio``, ``k`` (radial coefficients),
        ``corner_distortion`` and ``reason`` (one line).
    """
    model = camera.model.name
    if model not in CAMERA_MODELS:
        return None
    params = np.asarray(camera.params, np.float64)
    width, height = int(camera.width), int(camera.height)
    cx_index = CAMERA_MODELS[model][1]
    fx, fy = float(params[0]), float(params[cx_index - 1])
    focal = (fx + fy) / 2
    reference = float(prior_focal) if prior_focal else DEFAULT_FOCAL_FACTOR * max(width, height)
    low, high = FOCAL_RANGE_WITH_PRIOR if prior_focal else FOCAL_RANGE_WITHOUT_PRIOR
    ratio = focal / reference
    reasons = []
    if not (np.isfinite(ratio) and low <= ratio <= high):
        reasons.append(
            f"focal length {focal:.0f} px is {ratio:.2f} x the {'prior' if prior_focal else 'default'} "
            f"{reference:.0f} px (plausible: {low:g} to {high:g} x)"
        )
    k = [float(params[i]) for i in RADIAL_PARAMS.get(model, ())]
    corner = 0.0
    if k and fx > 0 and fy > 0:
        cx, cy = params[cx_index], params[cx_index + 1]
        r2 = max(((x - cx) / fx) ** 2 + ((y - cy) / fy) ** 2 for x in (0, width) for y in (0, height))
        corner = abs(sum(coefficient * r2 ** (i + 1) for i, coefficient in enumerate(k)))
        if not corner <= MAX_CORNER_DISTORTION:
            reasons.append(
                f"radial distortion {', '.join(f'{v:.3g}' for v in k)} moves the image corners by "
                f"{100 * corner:.0f}% (plausible: up to {100 * MAX_CORNER_DISTORTION:.0f}%)"
            )
    if not reasons:
        return None
    return {
        "model": model,
        "width": width,
        "height": height,
        "focal_px": round(focal, 2),
        "prior_focal_px": round(float(prior_focal), 2) if prior_focal else None,
        "reference_focal_px": round(reference, 2),
        "focal_ratio": round(ratio, 3),
        "k": [round(v, 6) for v in k],
        "corner_distortion": round(corner, 4),
        "reason": "; ".join(reasons),
    }


def implausible_cameras(model: Any, priors: Mapping[int, float | None] | None = None) -> list[dict[str, Any]]:
    """The cameras of a ``pycolmap.Reconstruction`` whose intrinsics are implausible
    (:func:`implausible_intrinsics`), each with its ``camera_id``, registered ``images`` (the first 20
    names) and ``num_images``.

    Args:
        model: the reconstruction.
        priors: the focal length prior of each camera id (:func:`database_focal_priors`); missing: none.
    """
    priors = priors or {}
    images_of: dict[int, list[str]] = {}
    for image_id in model.reg_image_ids():
        image = model.image(image_id)
        images_of.setdefault(int(image.camera_id), []).append(image.name)
    flagged = []
    for camera_id, names in sorted(images_of.items()):
        record = implausible_intrinsics(model.cameras[camera_id], priors.get(camera_id))
        if record is not None:
            names = sorted(names)
            flagged.append({"camera_id": camera_id, "images": names[:20], "num_images": len(names), **record})
    return flagged


def database_verified_pairs(path: str | Path) -> dict[tuple[str, str], int]:
    """The verified inlier count of every pair in a COLMAP database's ``two_view_geometries`` table, by
    ``(name0, name1)`` (pairs with no inlier included, with 0).

    Read with SQLite, read-only (see :func:`database_focal_priors`).
    """
    pycolmap = import_pycolmap()
    connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = dict(connection.execute("SELECT image_id, name FROM images").fetchall())
        rows = connection.execute("SELECT pair_id, rows FROM two_view_geometries").fetchall()
    finally:
        connection.close()
    verified = {}
    for pair_id, count in rows:
        id0, id1 = pycolmap.pair_id_to_image_pair(int(pair_id))
        if id0 in names and id1 in names:
            verified[(names[id0], names[id1])] = int(count)
    return verified

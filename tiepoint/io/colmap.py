"""COLMAP databases from tiepoint's (or hloc's) feature and match files, through pycolmap's API.

Importing your own features and matches into COLMAP is four calls::

    from tiepoint.io.colmap import CameraOptions, write_database
    write_database("database.db", "features.h5", "matches.h5", pairs, geometries="geometries.h5")
    # then: pycolmap.incremental_mapping("database.db", "images/", "sparse/")  (or `colmap mapper`)

:func:`write_database` writes, with :class:`pycolmap.Database`:

* one **camera** per image, or one shared by all (``CameraOptions(single=True)``), with the model and,
  optionally, known intrinsics of :class:`CameraOptions`;
* one **image** per feature group, named like the group (the path relative to the image folder);
* its **keypoints**, shifted by +0.5 px into COLMAP's convention (the top-left pixel's centre is
  ``(0.5, 0.5)`` in COLMAP, ``(0, 0)`` in tiepoint, hloc and OpenCV);
* the raw **matches** of every pair;
* the **two-view geometries** (verified inlier matches, configuration, F, E, H, relative pose) from
  :func:`tiepoint.pipeline.verify.verify_pairs`; without them, run ``pycolmap.verify_matches`` (or
  ``colmap matches_importer``) on the database before mapping, as the mapper uses verified matches only.

Descriptors are not written: COLMAP's mapper does not need them.

The database is built in a temporary file and renamed into place when complete, so an interrupted run
never leaves a half-written database.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import MissingDependencyError, OptionError
from .files import atomic_path
from .h5 import list_feature_names, pair_key, read_features, read_matches

logger = logging.getLogger("tiepoint")

COLMAP_PIXEL_OFFSET = 0.5
"""Added to tiepoint's pixel coordinates to get COLMAP's."""

DEFAULT_FOCAL_FACTOR = 1.2
"""Without known intrinsics, the initial focal length is this times the longer image side (COLMAP's
default)."""

# COLMAP camera models that tiepoint offers: name -> (parameter names, index of cx)
CAMERA_MODELS: dict[str, tuple[tuple[str, ...], int]] = {
    "SIMPLE_PINHOLE": (("f", "cx", "cy"), 1),
    "PINHOLE": (("fx", "fy", "cx", "cy"), 2),
    "SIMPLE_RADIAL": (("f", "cx", "cy", "k"), 1),
    "RADIAL": (("f", "cx", "cy", "k1", "k2"), 1),
    "OPENCV": (("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"), 2),
}


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
        single: one camera for all images (they must have the same size) instead of one per image.
        refine: let bundle adjustment refine the intrinsics; with ``False`` known ``params`` stay fixed.
    """

    model: str = "SIMPLE_RADIAL"
    params: tuple[float, ...] | None = None
    single: bool = False
    refine: bool = True

    def __post_init__(self) -> None:
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

    def describe(self, size: tuple[int, int]) -> dict[str, Any]:
        """The COLMAP camera of an image of ``size`` ``(width, height)``: model, size, params (COLMAP's
        convention) and whether the focal length is a known prior."""
        width, height = (int(v) for v in size)
        names, cx_index = CAMERA_MODELS[self.model]
        if self.params is None:
            focal = DEFAULT_FOCAL_FACTOR * max(width, height)
            params = [focal] * cx_index + [width / 2, height / 2] + [0.0] * (len(names) - cx_index - 2)
            prior = False
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
    sizes: Mapping[str, tuple[int, int]], options: CameraOptions
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The cameras of some images: their descriptions and, per image name, the index of its camera.

    Raises:
        OptionError: ``options.single`` with images of different sizes.
    """
    names = list(sizes)
    if options.single:
        distinct = sorted({tuple(int(v) for v in s) for s in sizes.values()})
        if len(distinct) > 1:
            raise OptionError(
                f"a single camera needs images of one size; these have {len(distinct)} sizes "
                f"({', '.join(f'{w}x{h}' for w, h in distinct[:4])}): drop the single-camera option"
            )
        return ([options.describe(sizes[names[0]])] if names else []), {name: 0 for name in names}
    return [options.describe(sizes[name]) for name in names], {name: i for i, name in enumerate(names)}


def image_sizes(
    features: str | Path | h5py.File, names: Sequence[str] | None = None
) -> dict[str, tuple[int, int]]:
    """``{name: (width, height)}`` of the images in a feature file (all of them by default)."""
    own = not isinstance(features, h5py.Group)
    file = h5py.File(features, "r") if own else features
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
    """

    path: Path
    image_ids: dict[str, int]
    num_cameras: int
    num_matched_pairs: int
    num_verified_pairs: int


def write_database(
    path: str | Path,
    features: str | Path,
    matches: str | Path,
    pairs: Sequence[tuple[str, str]],
    geometries: str | Path | None = None,
    camera: CameraOptions = DEFAULT_CAMERA,
    names: Sequence[str] | None = None,
) -> DatabaseSummary:
    """Write a COLMAP database (replacing ``path``) from a feature file, a match file and verified geometries.

    Args:
        path: the database file (``.db``), written atomically.
        features: the feature file; its images become COLMAP images named like their groups.
        matches: the match file holding the matches of ``pairs``.
        pairs: ``(name0, name1)`` pairs to import; pairs missing from ``matches`` are skipped with a warning.
        geometries: the geometry file of :func:`tiepoint.pipeline.verify.verify_pairs`, or ``None`` to
            write raw matches only (verify them in COLMAP before mapping).
        camera: camera model and intrinsics.
        names: the images to import (default: all in ``features``).

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
    with atomic_path(path) as tmp, h5py.File(features, "r") as feature_file:
        sizes = image_sizes(feature_file, names)
        cameras, camera_of = camera_descriptions(sizes, camera)
        database = pycolmap.Database.open(str(tmp))
        try:
            camera_ids = [database.write_camera(colmap_camera(c)) for c in cameras]
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
    logger.info("wrote %s: %d images, %d matched pairs, %d verified", path, len(names), matched, verified)
    return DatabaseSummary(Path(path), image_ids, len(cameras), matched, verified)


def _write_pairs(
    database: Any,
    image_ids: Mapping[str, int],
    matches: str | Path,
    pairs: Sequence[tuple[str, str]],
    geometries: str | Path | None,
) -> tuple[int, int]:
    """Write the matches and two-view geometries of ``pairs``; returns (matched, verified) pair counts."""
    matched = verified = 0
    geometry_file = h5py.File(geometries, "r") if geometries is not None else None
    try:
        with h5py.File(matches, "r") as match_file:
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

"""Feature and match files in HDF5, in the layout of hloc, so that files move freely between the two.

**Feature file** — one group per image, keyed by the image name, a relative path such as ``seq/img1.png``
(a ``/`` in the name makes nested groups, ``seq`` then ``img1.png``)::

    <image name>/
        keypoints     (N, 2) float32   pixel coordinates (x, y); the centre of the top-left pixel is (0, 0)
        descriptors   (D, N) float32, or float16 when written with ``as_half=True``  -- transposed, as in hloc
                      (B, N) uint8 for binary descriptors packed into B bytes
        scores        (N,)   float32   detection scores, higher is better
        image_size    (2,)   int64     (width, height) of the original image
        covariances   (N, 2, 2) float32, optional: keypoint position covariances in pixels²
        attributes:   method   -- the extractor's name and configuration, a JSON string
                      complete -- True once every dataset of the group is written

**Match file** — one group per image pair, keyed by :func:`pair_key`: the first name with ``/`` replaced by
``-``, then ``/``, then the second name treated the same way (hloc's ``names_to_pair``)::

    <name0 with '-'>/<name1 with '-'>/
        matches0           (N0,) int32    for each keypoint of image 0, the index of its match in image 1,
                                          -1 where unmatched
        matching_scores0   (N0,) float32 (float16 with ``as_half=True``), 0 where unmatched
        attributes:        complete

Keypoints are always stored in float32, even with ``as_half`` (which hloc also applies to keypoints): float16
keeps only about one pixel of precision at 2000 pixels.

**Completeness.** The writers mark a group ``complete=False`` when they create it and ``complete=True`` after
its last dataset, so that a group cut short by a crash is recognised. Readers accept a group whose
``complete`` attribute is True or absent (files written by hloc carry none) and reject one where it is False.
:func:`open_for_update` is stricter with its own unfinished output (see there).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import CorruptFileError
from ..types import Features

logger = logging.getLogger("tiepoint")

H5Source = str | os.PathLike | h5py.Group
"""A path to an HDF5 file, or an already open ``h5py.File`` (or group)."""

PARTIAL_SUFFIX = ".partial"
"""Suffix of the file that :func:`open_for_update` works on until it is done."""

COMPLETE = "complete"
"""The group attribute that marks a group as fully written."""

_FEATURE_DATASETS = ("keypoints", "descriptors", "image_size")


def pair_key(name0: str, name1: str) -> str:
    """The key of an image pair in a match file, as in hloc: ``"a/b.png", "c.png"`` -> ``"a-b.png/c.png"``."""
    return "/".join((name0.replace("/", "-"), name1.replace("/", "-")))


# --- writing ------------------------------------------------------------------------------------------------


def write_features(
    file: h5py.Group,
    name: str,
    features: Features,
    as_half: bool = False,
    attrs: dict[str, Any] | None = None,
) -> None:
    """Write the features of one image, replacing any features already stored under ``name``.

    Args:
        file: an ``h5py.File`` open for writing.
        name: the image name, a relative path such as ``seq/img1.png``.
        features: keypoints ``(N, 2)``, scores ``(N,)``, descriptors ``(N, D)`` (stored as ``(D, N)``).
        as_half: store float descriptors as float16 (halves the file; binary descriptors are unaffected).
        attrs: further group attributes, e.g. ``{"method": ...}``; dicts and lists are stored as JSON.
    """
    group = _create_group(file, name)
    descriptors = features.descriptors.T
    if not features.binary:
        descriptors = descriptors.astype(np.float16 if as_half else np.float32)
    group.create_dataset("keypoints", data=np.asarray(features.keypoints, np.float32))
    group.create_dataset("descriptors", data=descriptors)
    group.create_dataset("scores", data=np.asarray(features.scores, np.float32))
    group.create_dataset("image_size", data=np.asarray(features.image_size, np.int64))
    if features.covariances is not None:
        group.create_dataset("covariances", data=np.asarray(features.covariances, np.float32))
    _finish_group(group, attrs)


def write_matches(
    file: h5py.Group,
    name0: str,
    name1: str,
    indices: np.ndarray,
    scores: np.ndarray,
    num_keypoints0: int,
    as_half: bool = False,
    attrs: dict[str, Any] | None = None,
) -> None:
    """Write the matches of one image pair in hloc's ``matches0`` form, replacing any stored for the pair.

    Args:
        file: an ``h5py.File`` open for writing.
        name0, name1: the image names.
        indices: ``(K, 2)`` integer indices into the keypoints of image 0 and image 1; each keypoint of
            image 0 may appear at most once.
        scores: ``(K,)`` match confidences.
        num_keypoints0: ``N0``, the number of keypoints of image 0.
        as_half: store the scores as float16, as hloc does.
        attrs: further group attributes; dicts and lists are stored as JSON.

    Raises:
        ValueError: bad shapes, indices out of range, or a keypoint of image 0 matched twice.
    """
    indices = np.asarray(indices)
    scores = np.asarray(scores)
    count = len(indices)
    if indices.shape != (count, 2) or (count and not np.issubdtype(indices.dtype, np.integer)):
        raise ValueError(f"indices must be a (K, 2) integer array, got shape {indices.shape} {indices.dtype}")
    if scores.shape != (count,):
        raise ValueError(f"scores must have shape ({count},), got {scores.shape}")
    if count and (indices.min() < 0 or indices[:, 0].max() >= num_keypoints0):
        raise ValueError(f"indices out of range for {num_keypoints0} keypoints in image 0 ({name0!r})")
    if len(np.unique(indices[:, 0])) != count:
        raise ValueError(f"a keypoint of image 0 ({name0!r}) is matched twice; matches0 needs one-to-one")
    indices = indices.astype(np.int64)
    matches0 = np.full(num_keypoints0, -1, np.int32)
    matches0[indices[:, 0]] = indices[:, 1]
    scores0 = np.zeros(num_keypoints0, np.float16 if as_half else np.float32)
    scores0[indices[:, 0]] = scores
    group = _create_group(file, pair_key(name0, name1))
    group.create_dataset("matches0", data=matches0)
    group.create_dataset("matching_scores0", data=scores0)
    _finish_group(group, attrs)


def write_group(
    file: h5py.Group, key: str, datasets: dict[str, np.ndarray], attrs: dict[str, Any] | None = None
) -> None:
    """Write a group of other data (e.g. two-view geometries) under ``key``, replacing any stored there,
    with the same completeness marking as features and matches.

    Args:
        file: an ``h5py.File`` open for writing.
        key: the group's key (``/`` makes nested groups), e.g. a :func:`pair_key`.
        datasets: name -> array.
        attrs: group attributes; dicts and lists are stored as JSON.
    """
    group = _create_group(file, key)
    for name, data in datasets.items():
        group.create_dataset(name, data=data)
    _finish_group(group, attrs)


def _create_group(file: h5py.Group, key: str) -> h5py.Group:
    """A fresh group at ``key`` (nested for '/'), marked incomplete until :func:`_finish_group`."""
    if not key.strip("/"):
        raise ValueError(f"an image name must be a non-empty relative path, got {key!r}")
    if key in file:
        del file[key]
    group = file.create_group(key)
    group.attrs[COMPLETE] = False
    return group


def _finish_group(group: h5py.Group, attrs: dict[str, Any] | None) -> None:
    for key, value in (attrs or {}).items():
        group.attrs[key] = json.dumps(value) if isinstance(value, (dict, list, tuple)) else value
    group.attrs[COMPLETE] = True  # last: a group without it was cut short


# --- reading ------------------------------------------------------------------------------------------------


@contextmanager
def open_readable(source: H5Source) -> Iterator[h5py.Group]:
    """Yield an open file for ``source``, opening (and afterwards closing) it for reading if it is a path.

    Raises:
        FileNotFoundError: the file does not exist.
        CorruptFileError: the file is not readable HDF5 (the message names it).
    """
    if isinstance(source, h5py.Group):
        yield source
        return
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"HDF5 file not found: {path}")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise _corrupt(path, error) from None
    with file:
        yield file


def _corrupt(path: Path, error: Exception) -> CorruptFileError:
    return CorruptFileError(f"cannot read {path} as an HDF5 file (corrupt, truncated or not HDF5): {error}")


def _filename(file: h5py.Group) -> str:
    return file.file.filename


def _is_readable(group: h5py.Group) -> bool:
    """Whether readers accept a group: ``complete`` is True, or absent (written by another tool)."""
    return bool(group.attrs.get(COMPLETE, True))


def _complete_group(file: h5py.Group, key: str, required: tuple[str, ...], what: str) -> h5py.Group:
    """The group at ``key`` if it holds the ``required`` datasets and is readable, else a ``KeyError``."""
    group = file.get(key)
    if not isinstance(group, h5py.Group) or not _is_readable(group) or any(r not in group for r in required):
        raise KeyError(f"no complete {what} in {_filename(file)}")
    return group


def read_features(source: H5Source, name: str) -> Features:
    """Read the features of one image.

    Args:
        source: a feature file path or an open ``h5py.File``.
        name: the image name it was written under.

    Returns:
        :class:`Features` with ``(N, 2)`` float32 keypoints, ``(N,)`` float32 scores and ``(N, D)``
        descriptors (float32, or uint8 if binary). Scores missing from a file written elsewhere read as ones.

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: no complete features for ``name`` in the file.
        CorruptFileError: the file is not readable HDF5.
    """
    with open_readable(source) as file:
        group = _complete_group(file, name, _FEATURE_DATASETS, f"features for image {name!r}")
        keypoints = np.asarray(group["keypoints"], np.float32).reshape(-1, 2)
        descriptors = np.asarray(group["descriptors"]).T
        if descriptors.dtype != np.uint8:
            descriptors = descriptors.astype(np.float32)
        scores = np.asarray(group["scores"] if "scores" in group else np.ones(len(keypoints)), np.float32)
        width, height = (int(v) for v in np.asarray(group["image_size"]))
        covariances = np.asarray(group["covariances"], np.float32) if "covariances" in group else None
    return Features(keypoints, scores, np.ascontiguousarray(descriptors), (width, height), covariances)


def read_matches(source: H5Source, name0: str, name1: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the matches of one image pair.

    A pair stored the other way round (``name1``, ``name0``) is found as well, with its indices swapped.

    Args:
        source: a match file path or an open ``h5py.File``.
        name0, name1: the image names.

    Returns:
        ``indices`` ``(K, 2)`` int64 into the keypoints of image 0 and image 1, and ``scores`` ``(K,)``
        float32.

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: no complete matches for the pair in the file.
        CorruptFileError: the file is not readable HDF5.
    """
    with open_readable(source) as file:
        reverse = pair_key(name0, name1) not in file and pair_key(name1, name0) in file
        key = pair_key(name1, name0) if reverse else pair_key(name0, name1)
        what = f"matches for pair {name0!r}, {name1!r} (key {key!r})"
        group = _complete_group(file, key, ("matches0",), what)
        matches0 = np.asarray(group["matches0"]).astype(np.int64)
        if "matching_scores0" in group:
            scores0 = np.asarray(group["matching_scores0"], np.float32)
        else:
            scores0 = np.ones(len(matches0), np.float32)
    matched = np.flatnonzero(matches0 >= 0)
    indices = np.stack([matched, matches0[matched]], axis=1).astype(np.int64).reshape(-1, 2)
    if reverse:
        indices = indices[:, ::-1].copy()
    return indices, scores0[matched]


def read_group(source: H5Source, key: str, required: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """Read every dataset of a group written by :func:`write_group`.

    Args:
        source: an HDF5 file path or an open ``h5py.File``.
        key: the group's key.
        required: datasets the group must hold.
        what: what the group holds, for the error message (``"dense matches for pair ..."``).

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: no complete group with the ``required`` datasets at ``key``.
        CorruptFileError: the file is not readable HDF5.
    """
    with open_readable(source) as file:
        group = _complete_group(file, key, required, what)
        return {name: np.asarray(data) for name, data in group.items() if isinstance(data, h5py.Dataset)}


def has_matches(source: H5Source, name0: str, name1: str) -> bool:
    """Whether the file holds complete matches for the pair, in either order."""
    with open_readable(source) as file:
        for key in (pair_key(name0, name1), pair_key(name1, name0)):
            group = file.get(key)
            if isinstance(group, h5py.Group) and "matches0" in group and _is_readable(group):
                return True
    return False


def list_feature_names(source: H5Source) -> list[str]:
    """The names of all images with complete features in a feature file, nested names included, sorted.

    Args:
        source: a feature file path or an open ``h5py.File``.
    """
    names: list[str] = []

    def visit(group: h5py.Group, prefix: str) -> None:
        for key, child in group.items():
            if not isinstance(child, h5py.Group):
                continue
            if "keypoints" in child:
                if _is_readable(child) and all(d in child for d in _FEATURE_DATASETS):
                    names.append(prefix + key)
            else:
                visit(child, prefix + key + "/")

    with open_readable(source) as file:
        visit(file, "")
    return sorted(names)


def feature_attribute(source: H5Source, name: str, attribute: str, default: Any = None) -> Any:
    """An attribute of an image's feature group (e.g. ``"method"``), or ``default`` if it has none."""
    with open_readable(source) as file:
        group = _complete_group(file, name, _FEATURE_DATASETS, f"features for image {name!r}")
        value = group.attrs.get(attribute, default)
    return value.decode() if isinstance(value, bytes) else value


# --- resumable output ---------------------------------------------------------------------------------------


@contextmanager
def open_for_update(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open an HDF5 output file for adding groups, so that it is never left half-written.

    The work happens on ``path + ".partial"``:

    * if a ``.partial`` is left from a killed run and opens cleanly, it is resumed, after dropping its
      incomplete groups (those that do not carry ``complete=True``; parent groups left empty go too);
      a corrupt ``.partial`` is deleted;
    * otherwise, if ``path`` exists, it is copied to the ``.partial`` (its groups are trusted: those written
      by another tool, without a ``complete`` attribute, are marked complete);
    * otherwise a new file is made.

    On leaving the block, normally or by an exception (``KeyboardInterrupt`` included), incomplete groups are
    dropped and the ``.partial`` is closed and renamed onto ``path``: finished work is kept and a later run
    resumes from it. Only one process may update a given ``path`` at a time.

    Yields:
        The open ``h5py.File``.

    Raises:
        CorruptFileError: ``path`` exists but is not readable HDF5 (it is left untouched).
    """
    path = Path(path)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    file = _resume_partial(partial)
    if file is None:
        file = _start_partial(path, partial)
    try:
        yield file
    finally:
        try:
            dropped = _drop_incomplete(file)
            if dropped:
                logger.info("dropped %d incomplete group(s) from %s", len(dropped), path)
            file.flush()
        finally:
            file.close()
        os.replace(partial, path)


def _resume_partial(partial: Path) -> h5py.File | None:
    """Open the ``.partial`` of a killed run, less its incomplete groups; ``None`` if absent or corrupt."""
    if not partial.exists():
        return None
    try:
        file = h5py.File(partial, "a")
    except OSError as error:
        logger.warning("discarding corrupt %s: %s", partial, error)
        partial.unlink()
        return None
    try:
        dropped = _drop_incomplete(file)
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        file.close()
        logger.warning("discarding corrupt %s: %s", partial, error)
        partial.unlink()
        return None
    logger.info("resuming from %s (%d incomplete group(s) dropped)", partial, len(dropped))
    return file


def _start_partial(path: Path, partial: Path) -> h5py.File:
    """A ``.partial`` holding a copy of ``path``, or a new file if ``path`` does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return h5py.File(partial, "w")
    shutil.copyfile(path, partial)
    try:
        file = h5py.File(partial, "a")
    except OSError as error:
        partial.unlink()
        raise _corrupt(path, error) from None
    try:
        _mark_complete(file)
    except (OSError, RuntimeError, KeyError) as error:
        file.close()
        partial.unlink()
        raise _corrupt(path, error) from None
    return file


def _holds_datasets(group: h5py.Group) -> bool:
    return any(isinstance(child, h5py.Dataset) for child in group.values())


def _drop_incomplete(group: h5py.Group) -> list[str]:
    """Delete the groups under ``group`` that are not marked complete; returns their names.

    A group with a ``complete`` attribute is kept if it is True. A group without one is dropped if it holds
    datasets (it was cut short); otherwise it is searched recursively, then deleted if left empty.
    """
    dropped = []
    for key in list(group.keys()):
        child = group.get(key)
        if not isinstance(child, h5py.Group):
            continue
        if COMPLETE in child.attrs:
            keep = bool(child.attrs[COMPLETE])
        elif _holds_datasets(child):
            keep = False
        else:
            dropped += _drop_incomplete(child)
            if len(child) == 0:  # only held incomplete groups, or was cut short right after its creation
                del group[key]
            continue
        if not keep:
            dropped.append(child.name)
            del group[key]
    return dropped


def _mark_complete(group: h5py.Group) -> None:
    """Mark every group that holds datasets and has no ``complete`` attribute as complete."""
    for child in group.values():
        if not isinstance(child, h5py.Group) or COMPLETE in child.attrs:
            continue
        if _holds_datasets(child):
            child.attrs[COMPLETE] = True
        else:
            _mark_complete(child)

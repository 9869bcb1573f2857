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
                      fingerprint -- a hash of the datasets (:data:`FINGERPRINT`)
                      complete -- True once every dataset of the group is written

**Match file** — one group per image pair, keyed by :func:`pair_key`: the first name with ``/`` replaced by
``-``, then ``/``, then the second name treated the same way (hloc's ``names_to_pair``)::

    <name0 with '-'>/<name1 with '-'>/
        matches0           (N0,) int32    for each keypoint of image 0, the index of its match in image 1,
                                          -1 where unmatched
        matching_scores0   (N0,) float32 (float16 with ``as_half=True``), 0 where unmatched
        attributes:        fingerprint (:data:`FINGERPRINT`), complete

Keypoints are always stored in float32, even with ``as_half`` (which hloc also applies to keypoints): float16
keeps only about one pixel of precision at 2000 pixels.

**Completeness.** The writers mark a group ``complete=False`` when they create it and ``complete=True`` after
its last dataset, so that a group cut short by a crash is recognised. Readers accept a group whose
``complete`` attribute is True or absent (files written by hloc carry none) and reject one where it is False.
:func:`open_for_update` is stricter with its own unfinished output (see there).

**Validation.** :func:`read_features` and :func:`read_matches` check what they read (:func:`check_features`,
:func:`check_matches`): shapes and dtypes as above, counts that agree, finite values, match indices in
range; a group that fails raises :class:`~tiepoint.errors.CorruptFileError` naming the file, the group and
the fault, rather than passing garbage on. A stage that resumes into its output recomputes such groups.

**Fingerprints.** :func:`write_features` and :func:`write_matches` store a hash of the group's datasets as its
``fingerprint`` attribute, so that a later stage can record what it was made from and notice when that
changes (:mod:`tiepoint.pipeline.matching`) without reading the data again; for a group without one (written
by hloc), :func:`group_fingerprint` computes the same hash from the datasets.

**One writer.** :func:`open_for_update` holds :func:`~tiepoint.io.files.output_lock` on its output, so a
second run on the same output fails at once, naming the first, instead of taking its ``.partial``.
"""

from __future__ import annotations

import hashlib
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
from .files import OutputLockedError, output_lock

logger = logging.getLogger("tiepoint")

H5Source = str | os.PathLike | h5py.Group
"""A path to an HDF5 file, or an already open ``h5py.File`` (or group)."""

PARTIAL_SUFFIX = ".partial"
"""Suffix of the file that :func:`open_for_update` works on until it is done."""

COMPLETE = "complete"
"""The group attribute that marks a group as fully written."""

FINGERPRINT = "fingerprint"
"""The group attribute holding a fingerprint of the group's datasets (:func:`fingerprint_arrays`), written by
:func:`write_features` and :func:`write_matches`; see :func:`group_fingerprint`."""

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
) -> str:
    """Write the features of one image, replacing any features already stored under ``name``.

    Args:
        file: an ``h5py.File`` open for writing.
        name: the image name, a relative path such as ``seq/img1.png``.
        features: keypoints ``(N, 2)``, scores ``(N,)``, descriptors ``(N, D)`` (stored as ``(D, N)``).
        as_half: store float descriptors as float16 (halves the file; binary descriptors are unaffected).
        attrs: further group attributes, e.g. ``{"method": ...}``; dicts and lists are stored as JSON.

    Returns:
        The group's :data:`FINGERPRINT`, also stored as its attribute.
    """
    descriptors = features.descriptors.T
    if not features.binary:
        descriptors = descriptors.astype(np.float16 if as_half else np.float32)
    datasets = {
        "keypoints": np.asarray(features.keypoints, np.float32),
        "descriptors": descriptors,
        "scores": np.asarray(features.scores, np.float32),
        "image_size": np.asarray(features.image_size, np.int64),
    }
    if features.covariances is not None:
        datasets["covariances"] = np.asarray(features.covariances, np.float32)
    return _write_fingerprinted(file, name, datasets, attrs)


def write_matches(
    file: h5py.Group,
    name0: str,
    name1: str,
    indices: np.ndarray,
    scores: np.ndarray,
    num_keypoints0: int,
    as_half: bool = False,
    attrs: dict[str, Any] | None = None,
) -> str:
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

    Returns:
        The group's :data:`FINGERPRINT`, also stored as its attribute.

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
    datasets = {"matches0": matches0, "matching_scores0": scores0}
    return _write_fingerprinted(file, pair_key(name0, name1), datasets, attrs)


def _write_fingerprinted(
    file: h5py.Group, key: str, datasets: dict[str, np.ndarray], attrs: dict[str, Any] | None
) -> str:
    """:func:`write_group` with the datasets' :data:`FINGERPRINT` added to the attributes; returns it."""
    fingerprint = fingerprint_arrays(datasets)
    write_group(file, key, datasets, {**(attrs or {}), FINGERPRINT: fingerprint})
    return fingerprint


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


# --- fingerprints -------------------------------------------------------------------------------------------


def fingerprint_arrays(arrays: dict[str, np.ndarray]) -> str:
    """A 128-bit BLAKE2b hash (hex) of named arrays: their names, dtypes, shapes and bytes, in name order.

    It is what :data:`FINGERPRINT` holds for the datasets of a group; the same arrays read back give the same
    value (:func:`group_fingerprint`).
    """
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        array = np.asarray(arrays[name])
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def group_fingerprint(group: h5py.Group) -> str:
    """A group's :data:`FINGERPRINT`: its attribute, or, for a group written without one (by hloc, by an
    older tiepoint), :func:`fingerprint_arrays` of its datasets, read for that (what the writers would have
    stored).

    Raises:
        CorruptFileError: a dataset cannot be read.
    """
    value = group.attrs.get(FINGERPRINT)
    if value is not None:
        return value.decode() if isinstance(value, bytes) else str(value)
    arrays = {}
    for key, item in group.items():
        if isinstance(item, h5py.Dataset):
            arrays[key] = _dataset(group, key)
    return fingerprint_arrays(arrays)


def feature_fingerprint(source: H5Source, name: str) -> str:
    """The :func:`group_fingerprint` of an image's features: its attribute (read only that), else the hash
    of its datasets (read whole).

    Raises:
        KeyError: no complete features for ``name``.
    """
    with open_readable(source) as file:
        return group_fingerprint(
            _complete_group(file, name, _FEATURE_DATASETS, f"features for image {name!r}")
        )


def matches_fingerprint(source: H5Source, name0: str, name1: str) -> str:
    """The :func:`group_fingerprint` of a pair's matches, stored in either order.

    Raises:
        KeyError: no complete matches for the pair.
    """
    with open_readable(source) as file:
        key = pair_key(name0, name1)
        if key not in file and pair_key(name1, name0) in file:
            key = pair_key(name1, name0)
        return group_fingerprint(
            _complete_group(file, key, ("matches0",), f"matches for pair {name0!r}, {name1!r} (key {key!r})")
        )


# --- reading ------------------------------------------------------------------------------------------------


def open_file(path: str | Path) -> h5py.File:
    """Open an HDF5 file for reading; the caller closes it (or uses it in a ``with`` block).

    Raises:
        FileNotFoundError: the file does not exist.
        CorruptFileError: the file is not readable HDF5 (the message names it).
        OutputLockedError: another process has it open for writing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HDF5 file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        if _is_lock_error(error):
            raise OutputLockedError(
                f"cannot read {path}: another process has it open for writing ({error}); wait for it to end"
            ) from None
        raise _corrupt(path, error) from None


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
    with open_file(source) as file:
        yield file


def _is_lock_error(error: Exception) -> bool:
    """Whether h5py failed to open a file because another process holds HDF5's own file lock on it."""
    return "unable to lock file" in str(error).lower()


def _corrupt(path: Path, error: Exception) -> CorruptFileError:
    return CorruptFileError(
        f"cannot read {path} as an HDF5 file (corrupt, truncated or not HDF5): {error}; delete it, or run "
        "the stage that writes it again with --overwrite (overwrite=True) to replace it"
    )


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


# --- validation ---------------------------------------------------------------------------------------------

FIX_CORRUPT = (
    "run the stage that wrote the file again (it recomputes invalid entries), or with --overwrite "
    "(overwrite=True) to recompute everything, or delete the file"
)
"""What an invalid group's error message advises."""


def corrupt_group(group: h5py.Group, problem: str) -> CorruptFileError:
    """The error for a group of a file that holds something other than what its layout says."""
    return CorruptFileError(f"{_filename(group)}: group {group.name!r} is invalid: {problem}; {FIX_CORRUPT}")


def _dataset(group: h5py.Group, key: str, optional: bool = False) -> np.ndarray | None:
    """A dataset's values, or a :class:`CorruptFileError` if it is not a readable dataset."""
    item = group.get(key)
    if item is None and optional:
        return None
    if not isinstance(item, h5py.Dataset):
        raise corrupt_group(group, f"{key!r} is missing or not a dataset")
    try:
        return np.asarray(item[()])
    except (OSError, RuntimeError, ValueError, TypeError) as error:
        raise corrupt_group(group, f"{key!r} cannot be read ({error})") from None


def _check_array(
    group: h5py.Group, key: str, array: np.ndarray, shape: tuple[int | None, ...], kinds: str
) -> None:
    """Check ``array``'s shape (``None``: any length) and dtype kind (``"f"``, ``"iu"``, ...) and that floats
    are finite."""
    if array.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape)
    ):
        wanted = (
            "(" + ", ".join("*" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "")
        )
        raise corrupt_group(group, f"{key!r} has shape {array.shape}, expected {wanted})")
    if array.dtype.kind not in kinds:
        raise corrupt_group(group, f"{key!r} has dtype {array.dtype}, expected {_KINDS[kinds]}")
    if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
        count = int(array.size - np.isfinite(array).sum())
        raise corrupt_group(group, f"{key!r} holds {count} non-finite value(s) (NaN or infinity)")


_KINDS = {"f": "floats", "iu": "integers", "fiu": "numbers", "fu": "floats or uint8"}


def check_features(group: h5py.Group) -> dict[str, np.ndarray | None]:
    """Read and check one image's feature group (layout in the module docstring).

    Checks: keypoints ``(N, 2)`` finite floats, within the image give or take its size (garbage bytes are
    rarely that tame); descriptors ``(D, N)`` finite floats or uint8; scores ``(N,)`` finite if present;
    image_size two positive integers; covariances ``(N, 2, 2)`` finite if present.

    Returns:
        The datasets read: ``keypoints``, ``descriptors``, ``scores``, ``image_size``, ``covariances`` (the
        last two optional ones ``None`` when absent).

    Raises:
        CorruptFileError: a check failed; the message names the file, the group and the fault.
    """
    keypoints = _dataset(group, "keypoints")
    _check_array(group, "keypoints", keypoints, (None, 2), "f")
    count = len(keypoints)
    image_size = _dataset(group, "image_size")
    _check_array(group, "image_size", image_size, (2,), "fiu")
    if not (
        np.all(image_size > 0) and np.all(image_size == np.round(image_size)) and np.all(image_size < 2**31)
    ):
        raise corrupt_group(group, f"'image_size' must be two positive integers, got {image_size.tolist()}")
    descriptors = _dataset(group, "descriptors")
    _check_array(group, "descriptors", descriptors, (None, count), "fu")
    if descriptors.dtype.kind == "u" and descriptors.dtype != np.uint8:
        raise corrupt_group(group, f"'descriptors' has dtype {descriptors.dtype}, expected floats or uint8")
    scores = _dataset(group, "scores", optional=True)
    if scores is not None:
        _check_array(group, "scores", scores, (count,), "fiu")
    covariances = _dataset(group, "covariances", optional=True)
    if covariances is not None:
        _check_array(group, "covariances", covariances, (count, 2, 2), "f")
    if count:
        size = image_size.astype(np.float64)
        low, high = keypoints.min(0).astype(np.float64), keypoints.max(0).astype(np.float64)
        if np.any(low < -size) or np.any(high > 2 * size):
            raise corrupt_group(
                group,
                f"keypoints reach ({low[0]:.4g}, {low[1]:.4g}) to ({high[0]:.4g}, {high[1]:.4g}), far "
                f"outside the {int(size[0])}x{int(size[1])} image",
            )
    return {
        "keypoints": keypoints,
        "descriptors": descriptors,
        "scores": scores,
        "image_size": image_size,
        "covariances": covariances,
    }


def check_matches(
    group: h5py.Group, num_keypoints0: int | None = None, num_keypoints1: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read and check one pair's match group: ``matches0`` ``(N0,)`` integers, each -1 or a keypoint of image
    1; ``matching_scores0`` ``(N0,)`` finite if present; with the images' keypoint counts, ``N0`` equal to the
    first and the indices below the second.

    Returns:
        ``matches0`` and ``matching_scores0`` (``None`` when absent).

    Raises:
        CorruptFileError: a check failed; the message names the file, the group and the fault.
    """
    matches0 = _dataset(group, "matches0")
    _check_array(group, "matches0", matches0, (None,), "iu")
    if num_keypoints0 is not None and len(matches0) != num_keypoints0:
        raise corrupt_group(
            group,
            f"'matches0' has {len(matches0)} entries but image 0 has {num_keypoints0} keypoints (were the "
            "features extracted again after matching?)",
        )
    if len(matches0):
        low, high = int(matches0.min()), int(matches0.max())
        if low < -1 or (num_keypoints1 is not None and high >= num_keypoints1):
            limit = "" if num_keypoints1 is None else f" (image 1 has {num_keypoints1} keypoints)"
            raise corrupt_group(group, f"'matches0' holds indices from {low} to {high}{limit}")
    scores0 = _dataset(group, "matching_scores0", optional=True)
    if scores0 is not None:
        _check_array(group, "matching_scores0", scores0, (len(matches0),), "fiu")
    return matches0, scores0


def check_datasets(group: h5py.Group, shapes: dict[str, tuple[tuple[int | str | None, ...], str]]) -> None:
    """Check a group written by :func:`write_group`: for each dataset name, its shape and dtype kinds, where a
    string in a shape is a length that must agree across the datasets (``"K"``) and ``None`` any length.

    Example:
        >>> check_datasets(group, {"points": (("K", 2), "f"), "scores": (("K",), "f")})  # doctest: +SKIP

    Raises:
        CorruptFileError: a check failed.
    """
    lengths: dict[str, int] = {}
    for key, (shape, kinds) in shapes.items():
        array = _dataset(group, key)
        sized = tuple(lengths.get(n) if isinstance(n, str) else n for n in shape)
        _check_array(group, key, array, sized, kinds)
        for n, got in zip(shape, array.shape):
            if isinstance(n, str):
                lengths[n] = got


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
        CorruptFileError: the file is not readable HDF5, or the group fails :func:`check_features`.
    """
    with open_readable(source) as file:
        group = _complete_group(file, name, _FEATURE_DATASETS, f"features for image {name!r}")
        data = check_features(group)
    keypoints = data["keypoints"].astype(np.float32)
    descriptors = data["descriptors"].T
    if descriptors.dtype != np.uint8:
        descriptors = descriptors.astype(np.float32)
    scores = (
        np.ones(len(keypoints), np.float32) if data["scores"] is None else data["scores"].astype(np.float32)
    )
    width, height = (int(v) for v in data["image_size"])
    covariances = None if data["covariances"] is None else data["covariances"].astype(np.float32)
    return Features(keypoints, scores, np.ascontiguousarray(descriptors), (width, height), covariances)


def read_matches(
    source: H5Source, name0: str, name1: str, num_keypoints: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read the matches of one image pair.

    A pair stored the other way round (``name1``, ``name0``) is found as well, with its indices swapped.

    Args:
        source: a match file path or an open ``h5py.File``.
        name0, name1: the image names.
        num_keypoints: the keypoint counts of ``name0`` and ``name1``, if known: then the matches are checked
            against them (:func:`check_matches`).

    Returns:
        ``indices`` ``(K, 2)`` int64 into the keypoints of image 0 and image 1, and ``scores`` ``(K,)``
        float32.

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: no complete matches for the pair in the file.
        CorruptFileError: the file is not readable HDF5, or the group fails :func:`check_matches`.
    """
    with open_readable(source) as file:
        reverse = pair_key(name0, name1) not in file and pair_key(name1, name0) in file
        key = pair_key(name1, name0) if reverse else pair_key(name0, name1)
        what = f"matches for pair {name0!r}, {name1!r} (key {key!r})"
        group = _complete_group(file, key, ("matches0",), what)
        counts = (None, None) if num_keypoints is None else tuple(num_keypoints)
        matches0, scores0 = check_matches(group, *(counts[::-1] if reverse else counts))
        matches0 = matches0.astype(np.int64)
        scores0 = np.ones(len(matches0), np.float32) if scores0 is None else scores0.astype(np.float32)
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


def num_keypoints(source: H5Source, name: str) -> int:
    """The number of keypoints of an image in a feature file, from the dataset's shape (nothing is read).

    Raises:
        KeyError: no complete features for ``name``.
    """
    with open_readable(source) as file:
        group = _complete_group(file, name, _FEATURE_DATASETS, f"features for image {name!r}")
        return int(group["keypoints"].shape[0]) if group["keypoints"].ndim else 0


# --- resumable output ---------------------------------------------------------------------------------------


@contextmanager
def open_for_update(path: str | os.PathLike, replace_corrupt: bool = False) -> Iterator[h5py.File]:
    """Open an HDF5 output file for adding groups, so that it is never left half-written.

    First the run takes :func:`~tiepoint.io.files.output_lock` on ``path`` (``path + ".lock"``): while it
    writes, another run on the same ``path`` fails at once with :class:`~tiepoint.io.files.OutputLockedError`
    naming this one, and never touches this run's ``.partial``. Then the work happens on
    ``path + ".partial"``:

    * if a ``.partial`` is left from a killed run and opens cleanly, it is resumed, after dropping its
      incomplete groups (those that do not carry ``complete=True``; parent groups left empty go too);
      a corrupt ``.partial`` is deleted;
    * otherwise, if ``path`` exists, it is copied to the ``.partial`` (its groups are trusted: those written
      by another tool, without a ``complete`` attribute, are marked complete);
    * otherwise a new file is made.

    On leaving the block, normally or by an exception (``KeyboardInterrupt`` included), incomplete groups are
    dropped and the ``.partial`` is closed and renamed onto ``path``: finished work is kept and a later run
    resumes from it. The rename is refused if the ``.partial`` on disk is no longer the file this run wrote.

    Args:
        path: the output file.
        replace_corrupt: if ``path`` exists but is not readable HDF5 (corrupt, truncated), start a new file
            that replaces it (the ``overwrite`` of the stages) instead of raising.

    Yields:
        The open ``h5py.File``.

    Raises:
        OutputLockedError: another run writes ``path``.
        CorruptFileError: ``path`` exists but is not readable HDF5 (it is left untouched), unless
            ``replace_corrupt``.
    """
    path = Path(path)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    with output_lock(path):
        file = _resume_partial(partial)
        if file is None:
            file = _start_partial(path, partial, replace_corrupt)
        identity = os.stat(partial)
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
            _check_identity(partial, identity)
            os.replace(partial, path)


def _check_identity(partial: Path, identity: os.stat_result) -> None:
    """Refuse to rename a ``.partial`` that is not the file this run opened (another process replaced or
    deleted it: only possible if that process ignored the lock)."""
    try:
        same = os.path.samestat(os.stat(partial), identity)
    except FileNotFoundError:
        same = False
    if not same:
        raise CorruptFileError(
            f"{partial} was deleted or replaced by another process while this run wrote it; this run's work "
            f"is lost and {partial.with_suffix('')} was left as it was; run again"
        )


def _resume_partial(partial: Path) -> h5py.File | None:
    """Open the ``.partial`` of a killed run, less its incomplete groups; ``None`` if absent or corrupt."""
    if not partial.exists():
        return None
    try:
        file = h5py.File(partial, "a")
    except OSError as error:
        if _is_lock_error(error):  # another program has it open: not ours to delete
            raise OutputLockedError(
                f"{partial} is open in another process ({error}); wait for it to finish or stop it, then run "
                "again"
            ) from None
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


def _start_partial(path: Path, partial: Path, replace_corrupt: bool = False) -> h5py.File:
    """A ``.partial`` holding a copy of ``path``, or a new file if ``path`` does not exist (or is corrupt and
    ``replace_corrupt``)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return h5py.File(partial, "w")
    shutil.copyfile(path, partial)
    try:
        file = h5py.File(partial, "a")
    except OSError as error:
        partial.unlink()
        return _replace_corrupt(path, partial, error, replace_corrupt)
    try:
        _mark_complete(file)
    except (OSError, RuntimeError, KeyError) as error:
        file.close()
        partial.unlink()
        return _replace_corrupt(path, partial, error, replace_corrupt)
    return file


def _replace_corrupt(path: Path, partial: Path, error: Exception, replace: bool) -> h5py.File:
    """A new ``.partial`` that will replace the corrupt ``path``, if ``replace``; else the error."""
    if _is_lock_error(error):
        raise OutputLockedError(
            f"{path} is open in another process ({error}); wait for it to finish or stop it, then run again"
        ) from None
    if not replace:
        raise _corrupt(path, error) from None
    logger.warning("replacing %s, which is not readable HDF5 (%s), with a new file", path, error)
    return h5py.File(partial, "w")


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

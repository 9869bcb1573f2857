"""Match many image pairs from a feature file into one resumable match file (hloc's layout).

This is what ``tiepoint match-pairs`` runs::

    summary = match_pairs(read_pairs("pairs.txt"), "features.h5", "matches.h5", method="sift+ratio")

Matches are written as hloc's ``matches0`` / ``matching_scores0`` (:func:`tiepoint.io.h5.write_matches`),
so the file is usable by hloc and by :func:`tiepoint.io.colmap.write_database`. A rerun skips the pairs
already in the file, except those made from features that changed since and those whose stored group fails
its checks (:func:`tiepoint.io.h5.check_matches` against the images' keypoint counts). Each pair's group
records the :data:`~tiepoint.io.h5.FINGERPRINT` of the features of its two images (attributes
``features_fingerprint0`` and ``features_fingerprint1``, see :class:`FeatureFingerprints`): a pair whose
images were extracted again since, with other results, is matched again (:attr:`PairStageSummary.changed`),
whatever their keypoint counts. Groups without these attributes (hloc's, an older tiepoint's) are kept as
they are. An interrupted run leaves the finished pairs in ``matches.h5`` (see
:func:`tiepoint.io.h5.open_for_update`, which also keeps a second run off the same output). With
``backend="ray"``, chunks of pairs are matched on Ray workers (see :mod:`tiepoint.pipeline.backends`); the
features each chunk needs are put in Ray's object store once per image and the matches come back as arrays
that this process writes.

:func:`process_pairs` runs a :class:`PairStage`: the driver shared with geometric verification
(:mod:`tiepoint.pipeline.verify`) and dense matching (:mod:`tiepoint.pipeline.dense`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from .. import registry
from ..api import RECONSTRUCTION_METHOD
from ..errors import CorruptFileError, OptionError, TiepointError
from ..io.h5 import (
    COMPLETE,
    check_matches,
    feature_attribute,
    feature_fingerprint,
    open_file,
    open_for_update,
    open_readable,
    pair_key,
    read_features,
    write_matches,
)
from ..types import Features
from .backends import Backend, chunked, get_backend
from .extract import check_same_method

logger = logging.getLogger("tiepoint")

Pair = tuple[str, str]


class InputChanged(Exception):
    """Raised by a :attr:`PairStage.validate` hook: the stored group was made from inputs that have changed
    since (features extracted again, images replaced); the pair is computed again and reported in
    :attr:`PairStageSummary.changed`. The message says what changed."""


class StaleInputError(TiepointError, ValueError):
    """A stage's input file was made from other inputs than those given with it now (matches of features
    extracted again since): the stage that makes it must be run again first."""


@dataclass(frozen=True)
class PairFailure:
    """A worker's result for a pair it could not compute while the rest of its chunk succeeded (an unreadable
    image): recorded in :attr:`PairStageSummary.failed`, nothing is written, and a rerun tries the pair
    again."""

    reason: str


@dataclass
class PairStageSummary:
    """What a pair stage (:func:`match_pairs`, :func:`~tiepoint.pipeline.verify.verify_pairs`) did.

    Attributes:
        output: the file written.
        done: pairs computed by this run.
        skipped: pairs already in ``output``.
        failed: ``(pair, reason)`` of the pairs that failed, alone (:class:`PairFailure`) or with their chunk
            (a worker died, an error): a rerun computes them.
        invalid: pairs that were in ``output`` but failed the stage's checks (:attr:`PairStage.validate`), so
            computed again (they are in ``done`` or ``failed`` too).
        changed: pairs that were in ``output`` but made from inputs that changed since (features extracted
            again, images replaced: :class:`InputChanged`), so computed again (in ``done`` or ``failed`` too).
        seconds: wall-clock time of the run.
    """

    output: Path
    done: list[Pair] = field(default_factory=list)
    skipped: list[Pair] = field(default_factory=list)
    failed: list[tuple[Pair, str]] = field(default_factory=list)
    invalid: list[Pair] = field(default_factory=list)
    changed: list[Pair] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        why = [f"{len(self.changed)} with changed inputs"] if self.changed else []
        why += [f"{len(self.invalid)} of them invalid in the file"] if self.invalid else []
        redone = f" ({', '.join(why)})" if why else ""
        return (
            f"{len(self.done)} pairs done{redone}, {len(self.skipped)} already there, "
            f"{len(self.failed)} failed in {self.seconds:.1f} s -> {self.output}"
        )


def _has_group(file: h5py.File, key: str) -> bool:
    group = file.get(key)
    return isinstance(group, h5py.Group) and bool(group.attrs.get(COMPLETE, True)) and len(group) > 0


def unique_pairs(pairs: Sequence[Pair]) -> list[Pair]:
    """``pairs`` without repeats (``(a, b)`` and ``(b, a)`` count as one) or self-pairs, order kept."""
    seen: set[frozenset[str]] = set()
    kept = []
    for name0, name1 in pairs:
        key = frozenset((name0, name1))
        if name0 != name1 and key not in seen:
            seen.add(key)
            kept.append((name0, name1))
    return kept


@dataclass(frozen=True)
class PairStage:
    """What a pair stage computes for each pair and how it stores it; :func:`process_pairs` runs it.

    Attributes:
        worker: a module-level function ``worker(pairs, payloads, settings, names, *features)`` returning
            one result per pair; ``features`` are the :class:`Features` of ``names``, in that order.
        settings: passed to every call of ``worker`` (method name and options, camera models ...).
        write: ``write(file, pair, result)`` stores one result (as a group marked complete).
        method_json: stored as each group's ``method`` attribute; resuming with another value is refused.
        what: what the groups hold, for messages (``"matches"``).
        payload: per-pair data the worker needs besides the features (e.g. the matches to verify).
        validate: ``validate(group, pair, feature_file)`` checks a stored group when resuming and raises
            :class:`~tiepoint.errors.CorruptFileError` if it is invalid, or :class:`InputChanged` if it was
            made from inputs that changed since (the pair is then computed again); ``feature_file`` is the
            open feature file, or ``None`` for a stage without one. ``group`` may be updated (its file is the
            output being written).
    """

    worker: Callable[..., list[Any]]
    settings: Any
    write: Callable[[h5py.File, Pair, Any], None]
    method_json: str
    what: str
    payload: Callable[[Pair], Any] | None = None
    validate: Callable[[h5py.Group, Pair, h5py.File | None], None] | None = None


def process_pairs(
    stage: PairStage,
    pairs: Sequence[Pair],
    features: str | Path | None,
    output: str | Path,
    backend: str | Backend | None,
    chunk_size: int,
    overwrite: bool,
    progress: bool,
) -> PairStageSummary:
    """Run a stage's ``worker`` on chunks of pairs through a backend and write each pair's result into
    ``output``.

    Args:
        stage: the worker and how its results are stored.
        pairs: image name pairs; repeats are dropped.
        features: the feature file the pairs' images are read from, or ``None`` for a worker that reads the
            images itself (dense matching: then ``worker`` gets no features).
        output: the HDF5 output, one group per pair under :func:`~tiepoint.io.h5.pair_key`.
        backend: ``"local"``, ``"ray"`` or a :class:`~tiepoint.pipeline.backends.Backend`.
        chunk_size: pairs per task.
        overwrite: compute again the pairs already in ``output``; replace an ``output`` that is not readable
            HDF5.
        progress: show a progress bar.

    Returns:
        The summary, once ``output`` is in place and holds every pair listed in ``done`` and ``skipped``.

    Raises:
        OptionError: ``output`` holds groups made with another ``stage.method_json``.
        KeyError: an image of a pair has no features in ``features``.
        tiepoint.io.files.OutputLockedError: another run is writing ``output``.
        CorruptFileError: ``output`` is not readable HDF5 (without ``overwrite``), or does not hold what this
            run wrote once it is done.
    """
    start = time.perf_counter()
    pairs = unique_pairs(pairs)
    summary = PairStageSummary(Path(output))
    runner = get_backend(backend)
    opened = nullcontext(None) if features is None else open_file(features)
    with open_for_update(output, replace_corrupt=overwrite) as file, opened as feature_file:
        present = [] if overwrite else [p for p in pairs if _has_group(file, pair_key(*p))]
        check_same_method(file, [pair_key(*p) for p in present], stage.method_json, Path(output), stage.what)
        summary.changed, summary.invalid = _recheck(file, present, stage, feature_file)
        redo = set(summary.changed) | set(summary.invalid)
        for pair in redo:
            del file[pair_key(*pair)]
        present = [p for p in present if p not in redo]
        done = set(present)
        summary.skipped = present
        todo = sorted(p for p in pairs if p not in done)  # sorted: a chunk's pairs share images
        chunks = chunked(todo, chunk_size)
        tasks = _tasks(chunks, feature_file, runner, stage.settings, stage.payload)
        with tqdm(total=len(todo), desc=stage.what, unit="pair", disable=not progress) as bar:
            for result in runner.run(stage.worker, tasks):
                chunk = chunks[result.index]
                if result.error is not None:
                    summary.failed += [(pair, result.error) for pair in chunk]
                else:
                    for pair, value in zip(chunk, result.value):
                        if isinstance(value, PairFailure):
                            summary.failed.append((pair, value.reason))
                        else:
                            stage.write(file, pair, value)
                            summary.done.append(pair)
                    file.flush()  # a killed run keeps this chunk
                bar.update(len(chunk))
    _check_written(Path(output), summary.done + summary.skipped)
    summary.seconds = time.perf_counter() - start
    logger.info("%s: %s", stage.what, summary)
    return summary


def _recheck(
    file: h5py.File, present: list[Pair], stage: PairStage, feature_file: h5py.File | None
) -> tuple[list[Pair], list[Pair]]:
    """The pairs among ``present`` to compute again (logged): those whose stored group was made from inputs
    that changed since, and those whose group fails ``stage.validate``."""
    if stage.validate is None:
        return [], []
    changed, invalid = [], []
    for pair in present:
        try:
            stage.validate(file[pair_key(*pair)], pair, feature_file)
        except InputChanged as change:
            logger.info("%s of %s %s: computing them again: %s", stage.what, *pair, change)
            changed.append(pair)
        except (CorruptFileError, KeyError) as error:
            logger.warning("%s of %s %s: computing them again: %s", stage.what, *pair, error)
            invalid.append(pair)
    return changed, invalid


def check_recorded(group: h5py.Group, current: dict[str, Callable[[], Any]]) -> None:
    """Compare what a stored group records it was made from with the inputs now.

    Args:
        group: a stored group.
        current: attribute name -> a function giving that input's value now; called only for attributes the
            group holds (groups written by hloc or an older tiepoint record nothing: they are kept).

    Raises:
        InputChanged: a recorded value differs from the current one.
    """
    for key, value_now in current.items():
        recorded = group.attrs.get(key)
        if recorded is None:
            continue
        recorded = recorded.decode() if isinstance(recorded, bytes) else recorded
        if recorded != value_now():
            raise InputChanged(f"its attribute {key!r} records other inputs than those given now")


class FeatureFingerprints:
    """The :func:`~tiepoint.io.h5.feature_fingerprint` of each image of a feature file, each found once (a
    feature file written by hloc or an older tiepoint holds none: the features are then read to compute it).

    Args:
        features: the feature file's path (opened for reading when a fingerprint is not known yet).
    """

    def __init__(self, features: str | Path) -> None:
        self.features = Path(features)
        self.known: dict[str, str] = {}

    def __call__(self, name: str, file: h5py.File | None = None) -> str:
        """The fingerprint of ``name``'s features, from ``file`` if given (the open feature file)."""
        if name not in self.known:
            self.known[name] = feature_fingerprint(self.features if file is None else file, name)
        return self.known[name]

    def record(self, pair: Pair) -> dict[str, str]:
        """The attributes that record the features of ``pair``: ``features_fingerprint0`` and ``1``."""
        return {f"features_fingerprint{i}": self(name) for i, name in enumerate(pair)}

    def check(self, group: h5py.Group, pair: Pair, file: h5py.File | None = None) -> None:
        """Raise :class:`InputChanged` if ``group`` records other features of ``pair``'s images than those
        of the feature file now (see :func:`check_recorded`)."""
        try:
            check_recorded(
                group,
                {f"features_fingerprint{i}": (lambda n=name: self(n, file)) for i, name in enumerate(pair)},
            )
        except InputChanged:
            raise InputChanged("the features of its images were extracted again since") from None


def _check_written(output: Path, pairs: list[Pair]) -> None:
    """Make sure that ``output``, now in place, holds every pair this run reports as done or kept.

    Raises:
        CorruptFileError: some are missing (another process wrote the file meanwhile).
    """
    with open_readable(output) as file:
        missing = [pair for pair in pairs if not _has_group(file, pair_key(*pair))]
    if missing:
        raise CorruptFileError(
            f"{output} holds {len(pairs) - len(missing)} of the {len(pairs)} pairs this run computed or kept "
            f"(missing: {missing[0][0]} {missing[0][1]}{', ...' if len(missing) > 1 else ''}); another "
            "process wrote it meanwhile; run again"
        )


def _tasks(
    chunks: list[list[Pair]],
    feature_file: h5py.File | None,
    runner: Backend,
    settings: Any,
    payload: Callable[[Pair], Any] | None,
) -> Iterator[tuple]:
    """The arguments of each chunk's task, made lazily; each image's features are put in the backend once
    and released after the last chunk that needs them has been submitted."""
    uses = Counter(name for chunk in chunks for pair in chunk for name in pair)
    handles: dict[str, Any] = {}
    for chunk in chunks:
        names = list(dict.fromkeys(name for pair in chunk for name in pair))
        for name in names:
            if name not in handles and feature_file is not None:
                handles[name] = runner.put(read_features(feature_file, name))
        arguments = [handles[name] for name in names if name in handles]
        payloads = [payload(pair) for pair in chunk] if payload else [None] * len(chunk)
        yield (chunk, payloads, settings, names, *arguments)
        for name in names:
            uses[name] -= sum(name in pair for pair in chunk)
            if uses[name] == 0:
                handles.pop(name, None)


@lru_cache(maxsize=8)
def _matcher(name: str, frozen_options: tuple) -> Any:
    return registry.build_matcher(name, **dict(frozen_options))


def match_chunk(
    pairs: list[Pair],
    payloads: list[None],
    settings: tuple[str, tuple],
    names: list[str],
    *features: Features,
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Worker function: match the descriptors of some pairs.

    Args:
        pairs: the pairs of this chunk.
        payloads: unused (one ``None`` per pair).
        settings: ``(matcher name, sorted option items)``.
        names: the images whose ``features`` follow.

    Returns:
        For each pair, ``indices`` ``(K, 2)`` int64, ``scores`` ``(K,)`` float32 and ``N0``, the number of
        keypoints of the first image.
    """
    by_name = dict(zip(names, features))
    matcher = _matcher(*settings)
    results = []
    for name0, name1 in pairs:
        indices, scores = matcher.match(by_name[name0], by_name[name1])
        results.append((np.asarray(indices, np.int64), np.asarray(scores, np.float32), len(by_name[name0])))
    return results


def match_pairs(
    pairs: Sequence[Pair],
    features: str | Path,
    output: str | Path,
    method: str = RECONSTRUCTION_METHOD,
    backend: str | Backend | None = None,
    chunk_size: int = 32,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
) -> PairStageSummary:
    """Match the descriptors of image pairs and store the matches in a match file.

    Args:
        pairs: ``(name0, name1)`` image names as stored in ``features``.
        features: the feature file (:func:`~tiepoint.pipeline.extract.extract_features`).
        output: the match file (``.h5``), created or extended.
        method: a sparse method name (``"sift+ratio"``) or an extractor name (its default matcher); its
            extractor must be the one that made ``features``.
        backend: ``"local"`` (default), ``"ray"`` or a :class:`~tiepoint.pipeline.backends.Backend`.
        chunk_size: pairs per task.
        overwrite: match again the pairs already in ``output``.
        progress: show a progress bar.
        **options: options of the matcher (e.g. ``ratio=0.9``).

    Returns:
        A :class:`PairStageSummary`.

    Raises:
        OptionError: a dense method, unknown matcher options, features made by another extractor, or
            ``output`` holding matches made with another matcher or options.
        FileNotFoundError: ``features`` does not exist.
        KeyError: an image of ``pairs`` has no features.
    """
    extractor_name, matcher_name = registry.split_method_name(method)
    if matcher_name is None:
        raise OptionError(f"method {method!r} matches images directly; pair matching needs a sparse method")
    options = registry.part_options(method, "matcher", options)
    _matcher(matcher_name, tuple(sorted(options.items())))  # unknown options fail here, before any work
    pairs = list(pairs)
    _check_extractor(features, pairs, extractor_name, method)
    method_json = json.dumps({"name": f"{extractor_name}+{matcher_name}", "config": options}, sort_keys=True)
    fingerprints = FeatureFingerprints(features)

    def write(file: h5py.File, pair: Pair, value: tuple[np.ndarray, np.ndarray, int]) -> None:
        indices, scores, count = value
        attrs = {"method": method_json, **fingerprints.record(pair)}
        write_matches(file, pair[0], pair[1], indices, scores, count, attrs=attrs)

    def validate(group: h5py.Group, pair: Pair, feature_file: h5py.File | None) -> None:
        fingerprints.check(group, pair, feature_file)  # first: other features often have another count
        validate_matches(group, pair, feature_file)

    stage = PairStage(
        match_chunk,
        (matcher_name, tuple(sorted(options.items()))),
        write,
        method_json,
        "matches",
        validate=validate,
    )
    return process_pairs(stage, pairs, features, output, backend, chunk_size, overwrite, progress)


def validate_matches(group: h5py.Group, pair: Pair, feature_file: h5py.File | None) -> None:
    """A :attr:`PairStage.validate` for match groups: :func:`~tiepoint.io.h5.check_matches` against the
    keypoint counts of the pair's images in ``feature_file``."""
    counts = [None, None]
    if feature_file is not None:
        for i, name in enumerate(pair):
            keypoints = feature_file.get(f"{name}/keypoints")
            if not isinstance(keypoints, h5py.Dataset):
                raise KeyError(f"no features for image {name!r} in {feature_file.filename}")
            counts[i] = int(keypoints.shape[0]) if keypoints.ndim else 0
    check_matches(group, *counts)


def _check_extractor(features: str | Path, pairs: Sequence[Pair], extractor_name: str, method: str) -> None:
    """Refuse to match features made by another extractor than the method's."""
    if not Path(features).is_file():
        raise FileNotFoundError(f"feature file not found: {features}")
    if not pairs:
        return
    stored = feature_attribute(features, pairs[0][0], "method")
    try:
        stored_name = json.loads(stored)["name"] if stored else None
    except (ValueError, KeyError, TypeError):
        stored_name = None
    if stored_name is not None and stored_name != extractor_name:
        raise OptionError(
            f"{features} holds {stored_name!r} features, but method {method!r} needs {extractor_name!r} ones"
        )

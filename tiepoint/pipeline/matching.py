"""Match many image pairs from a feature file into one resumable match file (hloc's layout).

This is what ``tiepoint match-pairs`` runs::

    summary = match_pairs(read_pairs("pairs.txt"), "features.h5", "matches.h5", method="sift+ratio")

Matches are written as hloc's ``matches0`` / ``matching_scores0`` (:func:`tiepoint.io.h5.write_matches`),
so the file is usable by hloc and by :func:`tiepoint.io.colmap.write_database`. A rerun skips the pairs
already in the file; an interrupted run leaves the finished pairs in ``matches.h5`` (see
:func:`tiepoint.io.h5.open_for_update`). With ``backend="ray"``, chunks of pairs are matched on Ray workers
(see :mod:`tiepoint.pipeline.backends`); the features each chunk needs are put in Ray's object store once per
image and the matches come back as arrays that this process writes.

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
from ..errors import OptionError
from ..io.h5 import COMPLETE, feature_attribute, open_for_update, pair_key, read_features, write_matches
from ..types import Features
from .backends import Backend, chunked, get_backend
from .extract import check_same_method

logger = logging.getLogger("tiepoint")

Pair = tuple[str, str]


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
        seconds: wall-clock time of the run.
    """

    output: Path
    done: list[Pair] = field(default_factory=list)
    skipped: list[Pair] = field(default_factory=list)
    failed: list[tuple[Pair, str]] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"{len(self.done)} pairs done, {len(self.skipped)} already there, {len(self.failed)} failed "
            f"in {self.seconds:.1f} s -> {self.output}"
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
    """

    worker: Callable[..., list[Any]]
    settings: Any
    write: Callable[[h5py.File, Pair, Any], None]
    method_json: str
    what: str
    payload: Callable[[Pair], Any] | None = None


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
        overwrite: compute again the pairs already in ``output``.
        progress: show a progress bar.

    Raises:
        OptionError: ``output`` holds groups made with another ``stage.method_json``.
        KeyError: an image of a pair has no features in ``features``.
    """
    start = time.perf_counter()
    pairs = unique_pairs(pairs)
    summary = PairStageSummary(Path(output))
    runner = get_backend(backend)
    opened = nullcontext(None) if features is None else h5py.File(features, "r")
    with open_for_update(output) as file, opened as feature_file:
        present = [] if overwrite else [p for p in pairs if _has_group(file, pair_key(*p))]
        check_same_method(file, [pair_key(*p) for p in present], stage.method_json, Path(output), stage.what)
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
    summary.seconds = time.perf_counter() - start
    logger.info("%s: %s", stage.what, summary)
    return summary


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

    def write(file: h5py.File, pair: Pair, value: tuple[np.ndarray, np.ndarray, int]) -> None:
        indices, scores, count = value
        write_matches(file, pair[0], pair[1], indices, scores, count, attrs={"method": method_json})

    stage = PairStage(
        match_chunk, (matcher_name, tuple(sorted(options.items()))), write, method_json, "matches"
    )
    return process_pairs(stage, pairs, features, output, backend, chunk_size, overwrite, progress)


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

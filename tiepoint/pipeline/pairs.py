"""Which image pairs to match: exhaustive, sequential (video) or by image retrieval.

This is what ``tiepoint pairs`` runs::

    pairs = make_pairs("features.h5", "pairs.txt", strategy="retrieval:10")

Strategies (the ``--pairs`` argument):

* ``exhaustive``: every pair, ``N (N - 1) / 2`` of them; best up to a few hundred images.
* ``sequential:K``: each image with the next ``K`` images in name order (frames of a video, a walk).
* ``retrieval:K``: each image with the ``K`` images most similar to it by a global descriptor (the union over
  all images, so an image may get more than ``K`` pairs); ``N K`` pairs at most.
* a path to a pairs file (one ``name0 name1`` per line, hloc's format): those pairs.

**The global descriptor** (:func:`global_descriptors`) is VLAD (Jégou et al., *Aggregating local descriptors
into a compact image representation*, CVPR 2010) over the image's own local descriptors, read from the
feature file: a vocabulary of ``num_words`` centres is fitted by k-means on descriptors sampled from the
images being paired, each image sums the residuals of its descriptors to their nearest centre, and the
result is normalised per centre, square-rooted (signed) and L2-normalised. It needs no network weights
(none for NetVLAD are reachable offline), works with any float or binary local descriptor, including the
learned ones, and costs a few milliseconds per image. It finds true neighbours far better than mean-pooled
descriptors (docs/reconstruction.md).

**Pairs files** are hloc's: one pair per line, ``name0 name1``, and nothing else (no header, no comments).
They are read by hloc's rules: each line is split on whitespace into exactly two names, empty lines are
skipped, and every other line is data, so an image named ``#1.png`` is an image, not a comment. A name
holding whitespace cannot be written in this format (hloc would split it), so such names are refused. How a
file was made (the strategy and the images it paired) is recorded beside it in ``PAIRS.json``
(:func:`provenance_path`), which :func:`make_pairs` reads to decide whether the file can be reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionError, OutputConflictError
from ..io.files import atomic_path, write_json
from ..io.h5 import feature_fingerprint, list_feature_names, open_readable, read_features

logger = logging.getLogger("tiepoint")

Pair = tuple[str, str]

STRATEGIES = ("exhaustive", "sequential:K", "retrieval:K", "PATH to a pairs file")

PROVENANCE_FORMAT = "tiepoint pairs provenance 1"
"""The ``format`` field of a pairs file's provenance record (:func:`provenance_path`)."""

RETRIEVAL_SETTINGS = {"aggregation": "vlad", "num_words": 64, "max_samples": 50_000, "seed": 0}
"""How :func:`select_pairs` describes images for ``retrieval:K`` (recorded in the provenance)."""


@dataclass(frozen=True)
class PairStrategy:
    """A parsed ``--pairs`` argument.

    Attributes:
        kind: ``"exhaustive"``, ``"sequential"``, ``"retrieval"`` or ``"file"``.
        k: the number of neighbours for ``sequential`` and ``retrieval``.
        path: the pairs file for ``file``.
    """

    kind: str
    k: int = 0
    path: Path | None = None

    def __str__(self) -> str:
        if self.kind == "file":
            return str(self.path)
        return self.kind if self.kind == "exhaustive" else f"{self.kind}:{self.k}"


def parse_strategy(text: str | PairStrategy) -> PairStrategy:
    """Parse ``"exhaustive"``, ``"sequential:K"``, ``"retrieval:K"`` or the path of an existing pairs file.

    Raises:
        OptionError: anything else, or ``K < 1``.
    """
    if isinstance(text, PairStrategy):
        return text
    kind, _, number = str(text).partition(":")
    if kind == "exhaustive" and not number:
        return PairStrategy("exhaustive")
    if kind in ("sequential", "retrieval"):
        try:
            k = int(number)
        except ValueError:
            raise OptionError(f"pairs: {text!r} needs a number of neighbours, e.g. {kind}:10") from None
        if k < 1:
            raise OptionError(f"pairs: the number of neighbours must be at least 1, got {text!r}")
        return PairStrategy(kind, k)
    if Path(text).is_file():
        return PairStrategy("file", path=Path(text))
    raise OptionError(f"pairs: unknown strategy {text!r}; use one of {', '.join(STRATEGIES)}")


def exhaustive_pairs(names: Sequence[str]) -> list[Pair]:
    """Every pair ``(names[i], names[j])`` with ``i < j``."""
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]


def sequential_pairs(names: Sequence[str], k: int) -> list[Pair]:
    """Each image with the next ``k`` images in the order given."""
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, min(i + 1 + k, len(names)))]


def retrieval_pairs(names: Sequence[str], descriptors: np.ndarray, k: int) -> list[Pair]:
    """Each image with its ``k`` nearest neighbours by cosine similarity of global descriptors.

    Args:
        names: ``N`` image names.
        descriptors: ``(N, D)`` L2-normalised global descriptors.
        k: neighbours per image (at most ``N - 1``).

    Returns:
        The union of the neighbour pairs, each once, as ``(names[i], names[j])`` with ``i < j``, sorted.
    """
    descriptors = np.asarray(descriptors, np.float64)
    if descriptors.shape[0] != len(names):
        raise ValueError(f"got {descriptors.shape[0]} descriptors for {len(names)} images")
    similarity = descriptors @ descriptors.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(k, len(names) - 1)
    pairs: set[tuple[int, int]] = set()
    for i, row in enumerate(similarity):
        # stable sort on the negated similarity: ties go to the earlier image, deterministically
        for j in np.argsort(-row, kind="stable")[:k]:
            pairs.add((min(i, int(j)), max(i, int(j))))
    return [(names[i], names[j]) for i, j in sorted(pairs)]


def global_descriptors(
    features: str | Path,
    names: Sequence[str],
    num_words: int = 64,
    max_samples: int = 50_000,
    seed: int = 0,
    aggregation: str = "vlad",
) -> np.ndarray:
    """VLAD descriptors of images from their local descriptors in a feature file (see the module docstring).

    Args:
        features: a feature file (:mod:`tiepoint.io.h5` layout).
        names: the images to describe.
        num_words: vocabulary size ``K`` (fewer if there are fewer sampled descriptors).
        max_samples: at most this many local descriptors, sampled uniformly, fit the vocabulary.
        seed: seeds the sampling and k-means, so the result is deterministic.
        aggregation: ``"vlad"``, or ``"mean"`` (the L2-normalised mean descriptor, ``(N, D)``: the baseline
            VLAD is compared with).

    Returns:
        ``(N, K * D)`` float32, L2-normalised rows (all zero for an image without keypoints).
    """
    local = [float_descriptors(read_features(features, name).descriptors) for name in names]
    if aggregation == "mean":
        means = np.stack([d.mean(0) if len(d) else np.zeros(d.shape[1], np.float32) for d in local])
        return (means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    if aggregation != "vlad":
        raise OptionError(f"aggregation must be 'vlad' or 'mean', got {aggregation!r}")
    centres = vlad_vocabulary(local, num_words, max_samples, seed, where=str(features))
    return vlad_descriptors(local, centres)


def vlad_vocabulary(
    local: Sequence[np.ndarray],
    num_words: int = 64,
    max_samples: int = 50_000,
    seed: int = 0,
    where: str = "",
) -> np.ndarray:
    """The VLAD vocabulary ``(K, D)`` fitted by k-means on up to ``max_samples`` of the float local
    descriptors of some images (a list of ``(N_i, D)`` arrays), sampled with ``seed``.

    Raises:
        OptionError: no image has keypoints (``where`` names their source in the message).
    """
    stacked = np.concatenate([d for d in local if len(d)] or [np.zeros((0, 1), np.float32)])
    if len(stacked) == 0:
        raise OptionError(f"{where}: no image has keypoints, so there is nothing to retrieve with")
    rng = np.random.default_rng(seed)
    sample = stacked[rng.choice(len(stacked), min(len(stacked), max_samples), replace=False)]
    return kmeans(sample, min(num_words, len(sample)), seed=seed)


def vlad_descriptors(local: Sequence[np.ndarray], centres: np.ndarray) -> np.ndarray:
    """``(N, K * D)`` float32 L2-normalised VLAD descriptors of images' float local descriptors (a list of
    ``(N_i, D)`` arrays) over the vocabulary ``centres`` ``(K, D)`` (:func:`vlad_vocabulary`)."""
    return np.stack([_vlad(d, centres) for d in local]).astype(np.float32)


def float_descriptors(descriptors: np.ndarray) -> np.ndarray:
    """``(N, D)`` L2-normalised float32 descriptors; binary ones (uint8 bytes) become ±1 per bit first."""
    if descriptors.dtype == np.uint8:
        descriptors = np.unpackbits(descriptors, axis=1).astype(np.float32) * 2 - 1
    descriptors = np.asarray(descriptors, np.float32)
    norms = np.linalg.norm(descriptors, axis=1, keepdims=True)
    return descriptors / np.maximum(norms, 1e-12)


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of each point, ``(N,)``."""
    distances = (centres**2).sum(1)[None] - 2 * points @ centres.T
    return np.argmin(distances, axis=1)


def kmeans(points: np.ndarray, k: int, iterations: int = 20, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding.

    Args:
        points: ``(N, D)`` float data, ``N >= k >= 1``.
        k: number of centres.
        iterations: Lloyd iterations (stops early when the assignment no longer changes).
        seed: seeds the k-means++ draws.

    Returns:
        ``(k, D)`` float32 centres; a centre that loses all its points keeps its position.
    """
    points = np.asarray(points, np.float32)
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(len(points))]]
    closest = ((points - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = closest.sum()
        index = rng.choice(len(points), p=closest / total) if total > 0 else rng.integers(len(points))
        centres.append(points[index])
        closest = np.minimum(closest, ((points - points[index]) ** 2).sum(1))
    centres = np.stack(centres)
    assignment = None
    for _ in range(iterations):
        new = _nearest(points, centres)
        if assignment is not None and np.array_equal(new, assignment):
            break
        assignment = new
        counts = np.bincount(assignment, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, assignment, points)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def _vlad(descriptors: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """VLAD of ``(N, D)`` descriptors on ``(K, D)`` centres: intra-, power- and L2-normalised,
    ``(K * D,)``."""
    vector = np.zeros_like(centres)
    if len(descriptors):
        words = _nearest(descriptors, centres)
        np.add.at(vector, words, descriptors - centres[words])
    vector /= np.maximum(np.linalg.norm(vector, axis=1, keepdims=True), 1e-12)
    vector = np.sign(vector) * np.sqrt(np.abs(vector))
    vector = vector.ravel()
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def select_pairs(
    features: str | Path | None, strategy: str | PairStrategy, names: Sequence[str] | None = None
) -> list[Pair]:
    """The pairs of images to match.

    Args:
        features: the feature file (read for its image names and, for retrieval, their descriptors).
        strategy: see :func:`parse_strategy`.
        names: the images to pair (default: every image in ``features``, sorted by name).

    Raises:
        OptionError: a bad strategy, or a pairs file naming images that are not in ``names``.
    """
    strategy = parse_strategy(strategy)
    names = list(names) if names is not None else list_feature_names(features)
    if strategy.kind == "exhaustive":
        return exhaustive_pairs(names)
    if strategy.kind == "sequential":
        return sequential_pairs(names, strategy.k)
    if strategy.kind == "retrieval":
        if len(names) < 2:
            return []
        return retrieval_pairs(names, global_descriptors(features, names), strategy.k)
    pairs = read_pairs(strategy.path)
    unknown = sorted({name for pair in pairs for name in pair} - set(names))
    if unknown:
        raise OptionError(
            f"pairs file {strategy.path} names images without features: {', '.join(unknown[:5])}"
        )
    return pairs


def make_pairs(
    features: str | Path | None,
    output: str | Path,
    strategy: str | PairStrategy = "exhaustive",
    overwrite: bool = False,
    names: Sequence[str] | None = None,
) -> list[Pair]:
    """Select pairs (:func:`select_pairs`) and write them to a pairs file, with their provenance beside it.

    An existing ``output`` is reused when its provenance (:func:`provenance_path`) says it was made with the
    same strategy from the same images (and, for a pairs file given as the strategy, the same file contents);
    when it was made otherwise, it is made again. ``features`` may be ``None`` when ``names`` are given and
    the strategy needs no descriptors (not retrieval).

    Args:
        features: the feature file (image names and, for retrieval, descriptors).
        output: the pairs file to write.
        strategy: see :func:`parse_strategy`.
        overwrite: make the file again even if it could be reused, and replace a file without provenance.
        names: the images to pair (default: every image in ``features``, sorted by name).

    Returns:
        The pairs, as written (or as read from a reused ``output``).

    Raises:
        OptionError: a bad strategy; an image name holding whitespace; or ``output`` exists without a
            provenance record (not made by :func:`make_pairs`), and ``overwrite`` is false.
    """
    return update_pairs(features, output, strategy, names, overwrite)[0]


def update_pairs(
    features: str | Path | None,
    output: str | Path,
    strategy: str | PairStrategy = "exhaustive",
    names: Sequence[str] | None = None,
    overwrite: bool = False,
    replace_unrecorded: bool = False,
) -> tuple[list[Pair], bool]:
    """:func:`make_pairs`, also saying whether an existing ``output`` was made again.

    Args:
        replace_unrecorded: make a file without a provenance record again (with a warning) instead of
            refusing it, as a pipeline that owns its output folder does.

    Returns:
        The pairs, and whether ``output`` existed and was written anew.
    """
    output = Path(output)
    strategy = parse_strategy(strategy)
    names = list(names) if names is not None else list_feature_names(features)
    wanted = pairs_made_from(strategy, names, features)
    existed = output.is_file()
    if existed and not overwrite:
        recorded = read_provenance(output)
        if recorded is None and not replace_unrecorded:
            raise OutputConflictError(
                output,
                f"{output} exists but has no record of how it was made ({provenance_path(output)} is "
                "missing or does not match it)",
            )
        if recorded is None:
            logger.warning(
                "%s has no record of how it was made (an earlier tiepoint's?): making it again", output
            )
        elif recorded.get("made_from") == wanted:
            logger.info("reusing the pairs in %s", output)
            return read_pairs(output), False
        else:
            logger.info(
                "%s was made %s; making it again %s",
                output,
                _describe(recorded["made_from"]),
                _describe(wanted),
            )
    pairs = select_pairs(features, strategy, names)
    provenance = {"made_from": wanted, "features": None if features is None else str(features)}
    write_pairs(output, pairs, provenance=provenance)
    return pairs, existed


def pairs_made_from(
    strategy: str | PairStrategy, names: Sequence[str], features: str | Path | None = None
) -> dict[str, Any]:
    """What a pairs file made by :func:`make_pairs` depends on: the strategy, the images in the order they
    were paired, and the contents of a pairs file given as the strategy, or the retrieval settings and the
    fingerprints of the features retrieval compared (so that a re-extracted image is paired again)."""
    strategy = parse_strategy(strategy)
    made_from: dict[str, Any] = {"strategy": str(strategy), "images": list(names)}
    if strategy.kind == "file":
        made_from["source_sha256"] = hashlib.sha256(strategy.path.read_bytes()).hexdigest()
    if strategy.kind == "retrieval":
        made_from["retrieval"] = dict(RETRIEVAL_SETTINGS)
        if features is not None:
            with open_readable(features) as file:
                made_from["features"] = {name: feature_fingerprint(file, name) for name in names}
    return made_from


def _describe(made_from: dict[str, Any]) -> str:
    return f"with {made_from.get('strategy')} from {len(made_from.get('images', []))} images"


def provenance_path(path: str | Path) -> Path:
    """The provenance record of a pairs file: ``PATH.json`` beside it (``pairs.txt.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_provenance(path: str | Path) -> dict[str, Any] | None:
    """The provenance record of a pairs file, or ``None`` if it is missing, unreadable, or was written for
    other contents than the file now holds (its ``pairs_sha256``)."""
    path = Path(path)
    try:
        record = json.loads(provenance_path(path).read_text())
        contents = path.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != PROVENANCE_FORMAT:
        return None
    if record.get("pairs_sha256") != hashlib.sha256(contents).hexdigest():
        return None
    return record


def check_pair_name(name: str) -> str:
    """``name`` if it can stand in a pairs file (non-empty, no whitespace).

    Raises:
        OptionError: otherwise, naming the image.
    """
    if not isinstance(name, str) or name.split() != [name]:
        raise OptionError(
            f"image name {name!r} cannot go in a pairs file: pairs files are hloc's format, two names per "
            "line split on whitespace, so names must be non-empty and hold no spaces, tabs or newlines; "
            "rename the image"
        )
    return name


def write_pairs(
    path: str | Path,
    pairs: Sequence[Pair],
    header: str | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write a pairs file atomically, in hloc's format (``name0 name1`` per line, nothing else).

    Args:
        path: the pairs file.
        pairs: ``(name0, name1)`` pairs.
        header: a description of the pairs; kept in the provenance record (never in the pairs file).
        provenance: fields of the provenance record (:func:`provenance_path`), e.g. ``made_from``. With
            neither ``header`` nor ``provenance``, a record left beside ``path`` is removed (it would describe
            other pairs).

    Raises:
        OptionError: an image name holds whitespace or is empty (:func:`check_pair_name`).
    """
    path = Path(path)
    lines = [f"{check_pair_name(name0)} {check_pair_name(name1)}" for name0, name1 in pairs]
    text = "".join(line + "\n" for line in lines)
    record_path = provenance_path(path)
    record_path.unlink(missing_ok=True)  # first: a crash below must not leave a record of other pairs
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    if header is not None or provenance is not None:
        record = {"format": PROVENANCE_FORMAT, **(provenance or {})}
        if header is not None:
            record["description"] = header
        record["num_pairs"] = len(lines)
        record["pairs_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        write_json(record_path, record)
    return path


def read_pairs(path: str | Path) -> list[Pair]:
    """Read a pairs file by hloc's rules: each line split on whitespace into exactly two names; empty lines
    are skipped; there are no comments (``#1.png`` is a name).

    Raises:
        FileNotFoundError: no such file.
        OptionError: a line that does not hold exactly two names, or the file is not text.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as error:
        raise OptionError(
            f"pairs file {path} is not text ({error.reason} at byte {error.start}); give a file with two "
            "image names per line"
        ) from None
    pairs = []
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            hint = ""
            if line.lstrip().startswith("#"):
                hint = (
                    " (pairs files have no comment lines; earlier tiepoint versions wrote a '# pairs: ...' "
                    "header: delete that line)"
                )
            raise OptionError(
                f"pairs file {path}, line {number}: expected two image names separated by whitespace, got "
                f"{line!r}{hint}"
            )
        pairs.append((fields[0], fields[1]))
    return pairs

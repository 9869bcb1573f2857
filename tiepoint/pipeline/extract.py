"""Extract features from many images into one resumable feature file (the layout of :mod:`tiepoint.io.h5`).

This is what ``tiepoint extract`` runs::

    summary = extract_features("images/", "outputs/features.h5", method="sift", max_keypoints=4096)
    print(summary)  # extracted 120, skipped 0, failed 1 in 14.2 s -> outputs/features.h5

Images are stored under their names: their paths relative to the image root, with ``/`` separators.
Running it again skips the images already in the file, so an interrupted run (Ctrl-C, a crash) resumes
where it stopped. An image that cannot be read is reported in :attr:`ExtractionSummary.failed` and does
not stop the run; finding no images at all raises :class:`NoImagesError`.

**What a rerun reuses.** Each image's group records what it was made from: the extractor and its settings
(attribute ``method``, JSON) and the image file (attributes ``source_size``, ``source_mtime_ns`` and
``source_blake2b``, a 128-bit BLAKE2b hash of its bytes). A rerun keeps an image's features only if they were
made with the same settings (else it refuses, see :func:`check_same_method`), the image file has the same
size and modification time (or, when only the time changed, the same hash: a copied or touched image is not
extracted again), and the group passes :func:`tiepoint.io.h5.check_features`. An image that changed is
extracted again (:attr:`ExtractionSummary.changed`), so is a group that fails the checks
(:attr:`ExtractionSummary.invalid`). Groups without the ``source_*`` attributes (written by hloc or by an
older tiepoint) are kept as they are.

Each group also carries a :data:`~tiepoint.io.h5.FINGERPRINT` of its datasets, written with them, which the
later stages record (:mod:`tiepoint.pipeline.matching`): features extracted again with other results give
another fingerprint, and the pairs matched from the old ones are matched again. A rerun adds it to the kept
groups that lack it, from the datasets it reads to check them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import h5py
from tqdm import tqdm

from .. import registry
from ..api import RECONSTRUCTION_METHOD
from ..errors import CorruptFileError, ImageError, NoImagesError, OutputConflictError
from ..io.h5 import (
    FINGERPRINT,
    check_features,
    fingerprint_arrays,
    group_fingerprint,
    list_feature_names,
    open_for_update,
    write_features,
)
from ..io.image import IMAGE_EXTENSIONS
from ..types import Features
from .backends import Backend, chunked, get_backend

logger = logging.getLogger("tiepoint")


@dataclass
class ExtractionSummary:
    """What :func:`extract_features` did.

    Attributes:
        output: the feature file.
        image_root: the folder that the image names are relative to.
        extracted: names of the images extracted by this run, in order.
        skipped: names of the images already in ``output``, left as they were.
        failed: ``(name, reason)`` of each image that could not be read.
        changed: images that were in ``output`` but whose image file changed since, so extracted again
            (they are in ``extracted``, or in ``failed`` if they can no longer be read: their old features
            are gone then).
        invalid: images whose stored features failed the checks of :func:`tiepoint.io.h5.check_features`, so
            extracted again (they are in ``extracted`` or ``failed`` too).
        seconds: wall-clock time of the run.
    """

    output: Path
    image_root: Path
    extracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        redone = [
            f"{len(names)} {why}"
            for names, why in ((self.changed, "image changed"), (self.invalid, "invalid"))
        ]
        redone_text = f" (redone: {', '.join(redone)})" if self.changed or self.invalid else ""
        return (
            f"extracted {len(self.extracted)}{redone_text}, skipped {len(self.skipped)}, "
            f"failed {len(self.failed)} in {self.seconds:.1f} s -> {self.output}"
        )


def extract_features(
    images: str | Path | Sequence[str | Path],
    output: str | Path,
    method: str = RECONSTRUCTION_METHOD,
    max_keypoints: int | None = None,
    image_root: str | Path | None = None,
    overwrite: bool = False,
    as_half: bool = False,
    progress: bool = True,
    backend: str | Backend | None = None,
    chunk_size: int | None = None,
    **options: Any,
) -> ExtractionSummary:
    """Detect and describe keypoints in many images and store them in an HDF5 feature file.

    Args:
        images: a folder (searched recursively for :data:`IMAGE_EXTENSIONS`), a text file listing image
            paths one per line (relative to ``image_root``, or else to the list's folder; blank lines and
            lines starting with ``#`` are ignored), a single image file, or a sequence of image paths.
        output: the feature file (``.h5``); created, or extended if it exists.
        method: an extractor name, or a method name whose extractor part is used (``"sift+ratio"``).
        max_keypoints: keep at most this many keypoints per image (the extractor's default when ``None``).
        image_root: the folder the stored image names are relative to. Defaults to the folder for a folder,
            the list's folder for a list file, and the deepest common folder for a sequence of paths.
        overwrite: extract again images already in ``output`` (other images in it are kept); an ``output``
            that is not readable HDF5 (corrupt, truncated) is replaced by a new file.
        as_half: store float descriptors as float16.
        progress: show a progress bar (tqdm, on stderr).
        backend: where extraction runs: ``"local"`` (default), ``"ray"`` or a
            :class:`~tiepoint.pipeline.backends.Backend`. Workers return the features and this process writes
            them, so results are the same whichever runs them (see :mod:`tiepoint.pipeline.backends`).
        chunk_size: images per task (default 1 locally, 4 on Ray); the file is flushed after each chunk.
        **options: further options of the extractor's ``Config`` (e.g. ``resize=1600``).

    Returns:
        An :class:`ExtractionSummary`, returned once ``output`` is in place and holds the features of every
        image listed in ``extracted`` and ``skipped``. Images of a chunk whose worker died are listed in
        ``failed`` too.

    Raises:
        NoImagesError: ``images`` names no image.
        FileNotFoundError: ``images`` is a path that does not exist.
        OptionError: unknown extractor options, or ``output`` holds features of these images made with
            another method or configuration (pass ``overwrite=True`` or choose another output).
        tiepoint.io.files.OutputLockedError: another run is writing ``output``.
        tiepoint.io.h5.CorruptFileError: ``output`` exists but is not readable HDF5 (without ``overwrite``),
            or does not hold what this run wrote once it is done.
    """
    start = time.perf_counter()
    root, names = find_images(images, image_root)
    extractor_name, _ = registry.split_method_name(method)
    options = registry.part_options(method, "extractor", options)
    if max_keypoints is not None:
        options["max_keypoints"] = max_keypoints
    extractor = registry.get_extractor(extractor_name, **options)
    method_json = _describe_method(extractor_name, extractor, options)
    summary = ExtractionSummary(Path(output), root)

    with open_for_update(output, replace_corrupt=overwrite) as file:
        present = set() if overwrite else set(list_feature_names(file)) & set(names)
        check_same_method(file, sorted(present), method_json, Path(output))
        summary.changed, summary.invalid = _recheck(file, root, [name for name in names if name in present])
        for name in summary.changed + summary.invalid:
            del file[name]  # old features of a changed image are wrong even if it cannot be extracted now
            present.discard(name)
        summary.skipped = [name for name in names if name in present]
        todo = [name for name in names if name not in present]
        runner = get_backend(backend)
        chunks = chunked(todo, chunk_size or (1 if runner.name == "local" else 4))
        # in this process, the extractor itself; on Ray, how to build it (models are not shipped pickled)
        spec = extractor if runner.name == "local" else (extractor_name, options)
        tasks = ((str(root), chunk, spec) for chunk in chunks)
        with tqdm(
            total=len(todo), desc=f"extract {extractor_name}", unit="image", disable=not progress
        ) as bar:
            for result in runner.run(extract_chunk, tasks):
                if result.error is not None:
                    summary.failed += [
                        (name, f"worker failed: {result.error}") for name in chunks[result.index]
                    ]
                    bar.update(len(chunks[result.index]))
                    continue
                for name, features, error, *source in result.value:
                    if features is None:
                        logger.warning("skipping image %s: %s", name, error)
                        summary.failed.append((name, error))
                        continue
                    attrs = {"method": method_json, **(source[0] if source else {})}
                    write_features(file, name, features, as_half=as_half, attrs=attrs)
                    summary.extracted.append(name)
                file.flush()  # a killed run keeps this chunk
                bar.update(len(result.value))

    _check_written(Path(output), summary.extracted + summary.skipped)
    summary.seconds = time.perf_counter() - start
    logger.info("%s", summary)
    return summary


def _check_written(output: Path, names: list[str]) -> None:
    """Make sure that ``output``, now in place, holds every image this run reports as extracted or kept.

    Raises:
        CorruptFileError: some are missing (another process wrote the file meanwhile).
    """
    stored = set(list_feature_names(output))
    missing = [name for name in names if name not in stored]
    if missing:
        raise CorruptFileError(
            f"{output} holds {len(names) - len(missing)} of the {len(names)} images this run extracted or "
            f"kept (missing: {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); another process "
            "wrote it meanwhile; run again"
        )


SOURCE_ATTRIBUTES = ("source_size", "source_mtime_ns", "source_blake2b")
"""The attributes of a feature group that record the image file it was made from."""


def image_source(path: str | Path) -> dict[str, int | str]:
    """What an image file is, for :data:`SOURCE_ATTRIBUTES`: its size and modification time (ns), taken
    first, and the BLAKE2b hash of its bytes."""
    stat = os.stat(path)
    return {
        "source_size": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
        "source_blake2b": _hash_file(path),
    }


def _hash_file(path: str | Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _recheck(file: h5py.File, root: Path, names: list[str]) -> tuple[list[str], list[str]]:
    """The images among ``names`` (all in ``file``) to extract again: those whose image file changed since
    their features were made, and those whose stored features fail :func:`~tiepoint.io.h5.check_features`.

    An image whose size and modification time are those recorded is unchanged; one whose time differs but
    whose hash is the recorded one is too (its recorded time is updated). Groups without a record are kept.
    A kept group without a :data:`~tiepoint.io.h5.FINGERPRINT` (written by hloc or an older tiepoint) gets
    one, from the datasets just read, so that later stages need not read them to fingerprint them.
    """
    changed, invalid = [], []
    for name in names:
        group = file[name]
        try:
            data = check_features(group)
        except CorruptFileError as error:
            logger.warning("extracting %s again: %s", name, error)
            invalid.append(name)
            continue
        if not all(key in group.attrs for key in SOURCE_ATTRIBUTES):
            _add_fingerprint(group, data)
            continue
        state = compare_source(root / name, recorded_source(group.attrs))
        if state == "touched":
            group.attrs["source_mtime_ns"] = os.stat(root / name).st_mtime_ns  # touched or copied, same bytes
        elif state == "missing":
            logger.warning("extracting %s again: its image %s cannot be found", name, root / name)
            changed.append(name)
            continue
        elif state == "changed":
            logger.info("extracting %s again: its image file changed since its features were made", name)
            changed.append(name)
            continue
        _add_fingerprint(group, data)
    return changed, invalid


def _add_fingerprint(group: h5py.Group, data: dict[str, Any]) -> None:
    """Store the :data:`~tiepoint.io.h5.FINGERPRINT` of a feature group that has none, from ``data``, its
    datasets as :func:`~tiepoint.io.h5.check_features` read them (or read again if the group holds others)."""
    if FINGERPRINT in group.attrs:
        return
    arrays = {key: value for key, value in data.items() if value is not None}
    stored = {key for key, item in group.items() if isinstance(item, h5py.Dataset)}
    group.attrs[FINGERPRINT] = (
        fingerprint_arrays(arrays) if set(arrays) == stored else group_fingerprint(group)
    )


def recorded_source(attrs: Any, suffix: str = "") -> dict[str, Any] | None:
    """The image file record (:data:`SOURCE_ATTRIBUTES`, each name followed by ``suffix``) in a group's
    attributes, without the suffix; ``None`` when the group has none (written by another tool)."""
    keys = [key + suffix for key in SOURCE_ATTRIBUTES]
    if not all(key in attrs for key in keys):
        return None
    return {
        "source_size": int(attrs[keys[0]]),
        "source_mtime_ns": int(attrs[keys[1]]),
        "source_blake2b": _text(attrs[keys[2]]),
    }


def compare_source(path: str | Path, recorded: dict[str, Any], hashes: dict[str, str] | None = None) -> str:
    """How the image file at ``path`` compares with its ``recorded`` :func:`image_source`.

    Returns:
        ``"same"``: the recorded size and modification time; ``"touched"``: only the time differs, and the
        bytes hash to the recorded value (a copied or touched image); ``"changed"``: otherwise;
        ``"missing"``: the file cannot be found. ``hashes`` caches the hash of each path across calls.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    if stat.st_size != recorded["source_size"]:
        return "changed"
    if stat.st_mtime_ns == recorded["source_mtime_ns"]:
        return "same"
    hashes = {} if hashes is None else hashes
    if str(path) not in hashes:
        hashes[str(path)] = _hash_file(path)
    return "touched" if hashes[str(path)] == recorded["source_blake2b"] else "changed"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def extract_chunk(
    root: str, names: list[str], extractor: Any
) -> list[tuple[str, Features | None, str | None, dict[str, Any]]]:
    """Worker function: extract the features of some images (run by a :mod:`~tiepoint.pipeline.backends`
    backend).

    Args:
        root: the image root; ``names`` are relative to it.
        names: the images of this chunk.
        extractor: an extractor, or ``(extractor name, options)`` to build one with (cached per process).

    Returns:
        ``(name, features, None, source)`` for each image read, where ``source`` is the image file's
        :func:`image_source` taken before it was read; ``(name, None, reason, {})`` for each that could not
        be.
    """
    if isinstance(extractor, tuple):
        extractor = registry.get_extractor(extractor[0], **extractor[1])
    results: list[tuple[str, Features | None, str | None, dict[str, Any]]] = []
    for name in names:
        path = Path(root) / name
        try:
            source = image_source(path)
        except OSError:
            source = {}  # the extractor says what is wrong
        try:
            results.append((name, extractor.extract(path), None, source))
        except ImageError as error:
            results.append((name, None, str(error), {}))
    return results


def find_images(
    images: str | Path | Sequence[str | Path], image_root: str | Path | None = None
) -> tuple[Path, list[str]]:
    """Resolve the ``images`` argument of :func:`extract_features` to an image root and image names.

    Returns:
        The root folder and the names of the images (paths relative to it, ``/``-separated), without
        duplicates, folders sorted by name and lists in their order.

    Raises:
        FileNotFoundError: ``images`` is a path that does not exist.
        NoImagesError: no image found.
        ValueError: an image lies outside ``image_root``.
    """
    root = None if image_root is None else Path(image_root)
    if isinstance(images, (str, os.PathLike)):
        source = Path(images)
        if source.is_dir():
            root = source if root is None else root
            paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            paths = [p for p in paths if p.is_file()]
            where = f"folder {source} (extensions {', '.join(sorted(IMAGE_EXTENSIONS))})"
        elif source.is_file() and source.suffix.lower() in IMAGE_EXTENSIONS:
            root = source.parent if root is None else root
            paths, where = [source], str(source)
        elif source.is_file():
            root = source.parent if root is None else root
            paths, where = _read_list(source, root), f"image list {source}"
        else:
            raise FileNotFoundError(f"no such image folder, image or image list: {source}")
    else:
        paths = [Path(p) for p in images]
        where = "the given list of images"
        if root is None and paths:
            root = Path(os.path.commonpath([_normalised(p).parent for p in paths]))
    if not paths:
        raise NoImagesError(f"no images found in {where}")
    names = list(dict.fromkeys(_relative_name(path, root) for path in paths))
    return root, names


def _read_list(list_file: Path, root: Path) -> list[Path]:
    """The image paths of a list file, one per line, relative ones taken relative to ``root``. A line starting
    with ``#`` is a comment, as in hloc's image lists, unless it names an existing file: names are data.

    Raises:
        NoImagesError: the file is not text, or none of its lines names an existing file (not an image list).
    """
    try:
        text = list_file.read_text()
    except (UnicodeDecodeError, OSError) as error:
        raise NoImagesError(f"{list_file} is neither an image nor a readable image list: {error}") from None
    lines = (line.strip() for line in text.splitlines())
    paths = [root / line for line in lines if line and (not line.startswith("#") or (root / line).is_file())]
    if paths and not any(path.is_file() for path in paths):
        raise NoImagesError(
            f"image list {list_file}: none of its {len(paths)} entries is an existing file "
            f"(the first is {paths[0]}); is it an image list, and is the image root right?"
        )
    return paths


def _relative_name(path: Path, root: Path) -> str:
    """The name of an image: its path relative to ``root``, ``/``-separated."""
    try:
        relative = _normalised(path).relative_to(_normalised(root))
    except ValueError:
        if not path.exists():
            raise FileNotFoundError(f"image {path} not found; correct or remove it from the list") from None
        raise ValueError(f"image {path} is not inside the image root {root}; set image_root") from None
    return relative.as_posix()


def _normalised(path: Path) -> Path:
    """An absolute path without ``.`` and ``..`` parts (symbolic links are kept as they are)."""
    return Path(os.path.normpath(path.absolute()))


def _describe_method(name: str, extractor: Any, options: dict[str, Any]) -> str:
    """The ``method`` attribute: the extractor's name and configuration as a JSON string."""
    config = (
        registry.extractor_settings(extractor)
        if is_dataclass(getattr(extractor, "config", None))
        else options
    )
    return json.dumps({"name": name, "config": config}, sort_keys=True, default=str)


def check_same_method(
    file: h5py.File, names: list[str], method_json: str, output: Path, what: str = "features"
) -> None:
    """Refuse to resume into an output whose groups ``names`` were made with another method or configuration.

    Raises:
        OutputConflictError: a group's ``method`` attribute differs from ``method_json``.
    """
    for name in names:
        stored = file[name].attrs.get("method")
        if isinstance(stored, bytes):
            stored = stored.decode()
        if stored is not None and stored != method_json:
            raise OutputConflictError(
                output, f"{output} already holds {what} of {name!r} made with {stored}, not {method_json}"
            )

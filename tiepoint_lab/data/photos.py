"""The training photo corpus: real photographs from Debian packages and the scikit-image wheel.

:func:`build_photo_corpus` reads a photo list (``../shared/data/photos.tsv``: source, licence, installed
path, width, height, bytes), fetches each Debian package once with ``apt-get download`` into a cache folder,
reads the listed files straight out of the package's data archive (``dpkg-deb --fsys-tarfile``, so a 400 MB
package is never unpacked to disk), and writes a compact JPEG copy of every photo (longer side at most
``max_edge``) together with ``manifest.json``: for each photo its file, source package, licence, original path
and size, and its split. The split is fixed by a hash of the photo's scene (its name without stereo/sequence
suffixes), so a stereo pair never straddles train and validation, and it stays when photos are added.

Special sources:

* ``enlightenment-data``: the photos are JPEG streams inside Edje ``.edj`` theme files; the largest JPEG found
  at a ``FF D8 FF`` start marker is carved out and decoded with Pillow.
* ``plasma-workspace-wallpapers``: the largest file in the wallpaper's ``contents/images/`` folder.
* ``scikit-image``: read from the installed wheel.

Evaluation images are refused, whatever the list says: names of the Oxford affine sequences (``graf1``,
``leuvenA``, ``bark/img1`` ...), Middlebury temple views, the bundled demo pair (Middlebury 2014 'Motorcycle',
scored against its ground truth by ``tiepoint demo``), and, when the evaluation data is found, any photo whose
16×16 thumbnail equals that of an evaluation image.

Example:
    >>> summary = build_photo_corpus("../shared/data/photos.tsv", "data/photos")  # doctest: +SKIP
    >>> train = list_photos("data/photos", split="train")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from tiepoint.errors import DatasetError, ImageError
from tiepoint.io.files import atomic_path, write_json
from tiepoint.io.image import IMAGE_EXTENSIONS, MAX_PIXELS, as_image

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
"""Name of the corpus manifest inside the corpus folder."""

SPLITS = ("train", "val")
VAL_PERCENT = 10
"""Share of scenes (by hash) held out for validation."""

DEFAULT_MAX_EDGE = 960
DEFAULT_QUALITY = 92

_EVALUATION_NAME = re.compile(
    r"^(bark|bikes|boat|graf|leuven|trees|ubc|wall)([a-f]|\d)?$"  # Oxford affine (opencv-doc: graf1, leuvenA)
    r"|^templesr\d+$|^temple\d*$"  # Middlebury temple views
    r"|^motorcycle_(left|right)$",  # tiepoint's demo pair, scored against its ground truth
    re.IGNORECASE,
)
_OXFORD_PATH = re.compile(r"(^|/)(bark|bikes|boat|graf|leuven|trees|ubc|wall)/img\d\.\w+$", re.IGNORECASE)


@dataclass(frozen=True)
class PhotoSource:
    """One line of the photo list.

    Attributes:
        source: where it comes from, e.g. ``"deb:mate-backgrounds"`` or ``"pypi:scikit-image (wheel)"``.
        license: the licence as the list states it.
        installed_path: the file's path as installed (inside the wheel for ``pypi:`` sources).
        width, height: the original size in pixels, as listed.
        bytes: the original file size, as listed.
    """

    source: str
    license: str
    installed_path: str
    width: int
    height: int
    bytes: int

    @property
    def package(self) -> str:
        """The Debian package or PyPI distribution name (``mate-backgrounds``, ``scikit-image``)."""
        return self.source.split(":", 1)[-1].split()[0]

    @property
    def kind(self) -> str:
        """``"deb"`` or ``"pypi"``."""
        return self.source.split(":", 1)[0]

    @property
    def name(self) -> str:
        """The corpus file name: ``<package>__<photo>.jpg``; a plasma wallpaper is named by its folder."""
        path = Path(self.installed_path)
        stem = (
            path.parts[-4]
            if path.parent.name == "images" and path.parent.parent.name == "contents"
            else path.stem
        )
        return f"{self.package}__{_safe(stem)}.jpg"


@dataclass
class CorpusSummary:
    """What :func:`build_photo_corpus` did.

    Attributes:
        written: names of photos written in this run.
        existing: names already in the corpus (skipped, resumable runs).
        skipped: ``(installed path, reason)`` of photos that could not be read or were refused.
        counts: photos per split in the finished manifest.
        total_bytes: size of all corpus files (photos + manifest).
    """

    written: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    total_bytes: int = 0


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "photo"


def read_photo_list(path: str | os.PathLike) -> list[PhotoSource]:
    """Parse a photo list (tab-separated, header ``source license installed_path w h bytes``).

    Raises:
        DatasetError: the file is missing, lacks a column or has a malformed line.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"photo list not found: {path}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    needed = {"source", "license", "installed_path", "w", "h", "bytes"}
    if not rows or not needed <= set(rows[0]):
        raise DatasetError(f"photo list {path}: expected tab-separated columns {sorted(needed)}")
    photos = []
    for number, row in enumerate(rows, start=2):
        try:
            photos.append(
                PhotoSource(
                    row["source"],
                    row["license"],
                    row["installed_path"],
                    int(row["w"]),
                    int(row["h"]),
                    int(row["bytes"]),
                )
            )
        except (TypeError, ValueError):
            raise DatasetError(f"photo list {path}, line {number}: malformed row {row}") from None
        if photos[-1].kind not in ("deb", "pypi"):
            raise DatasetError(
                f"photo list {path}, line {number}: unknown source kind {row['source']!r} (deb: or pypi:)"
            )
    return photos


def scene_key(name: str) -> str:
    """The scene a corpus photo belongs to: its name without stereo and sequence suffixes
    (``opencv-doc__left07.jpg`` and ``opencv-doc__right07.jpg`` -> ``opencv-doc``; ``aloeL``/``aloeR`` ->
    ``aloe``)."""
    stem = re.sub(r"(left|right|(?<=[a-z])[LR])?[_-]?\d*$", "", Path(name).stem)
    return stem.rstrip("_-")


def split_of(name: str, val_percent: int = VAL_PERCENT) -> str:
    """``"val"`` for about ``val_percent`` % of scenes (by a SHA-1 hash of :func:`scene_key`), else
    ``"train"``."""
    digest = hashlib.sha1(scene_key(name).encode()).digest()
    return "val" if int.from_bytes(digest[:4], "big") % 100 < val_percent else "train"


def is_evaluation_name(path: str) -> bool:
    """True when a file's name or path is that of an evaluation image (Oxford affine, Middlebury temple, or
    the bundled demo pair)."""
    return bool(_EVALUATION_NAME.match(Path(path).stem) or _OXFORD_PATH.search(path.replace(os.sep, "/")))


# --- evaluation guard by content ----------------------------------------------------------------------------

_THUMB = 16


def _thumbnail(image: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return cv2.resize(gray, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


def evaluation_thumbnails(root: str | os.PathLike | None) -> list[tuple[str, np.ndarray]]:
    """``(path, 16x16 grey thumbnail)`` of every image under an evaluation data folder (empty if ``None``)."""
    if root is None or not Path(root).is_dir():
        return []
    thumbs = []
    for path in sorted(Path(root).rglob("*")):
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is not None:
                thumbs.append((str(path), _thumbnail(image)))
    return thumbs


def _matching_evaluation_image(image: np.ndarray, thumbs: Sequence[tuple[str, np.ndarray]]) -> str | None:
    """The evaluation image whose thumbnail is (nearly) identical to this photo's, if any (also mirrored by
    180°, as some Middlebury views are)."""
    thumb = _thumbnail(image)
    for path, other in thumbs:
        for candidate in (thumb, thumb[::-1, ::-1]):
            if float(np.abs(candidate - other).mean()) < 3.0:
                return path
    return None


# --- decoding -----------------------------------------------------------------------------------------------


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode image bytes to ``(H, W, 3)`` uint8 RGB (16-bit scaled to 8, alpha dropped).

    Raises:
        ImageError: not an image, corrupt, or larger than :data:`tiepoint.io.image.MAX_PIXELS`.
    """
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ImageError(f"{name}: not a readable image ({error})") from None
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name}: {width}x{height} is larger than tiepoint.io.image.MAX_PIXELS")
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                array = np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as error:
            raise ImageError(f"{name}: cannot decode ({error})") from None
    elif array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return as_image(array, name=name)


def carve_largest_jpeg(data: bytes, name: str = "file") -> bytes:
    """The JPEG stream with the most pixels among those that start at a ``FF D8 FF`` marker in ``data``
    (Edje ``.edj`` theme files store their images this way). The returned bytes run to the end of ``data``;
    decoders stop at the JPEG's end marker.

    Raises:
        ImageError: no decodable JPEG in ``data``.
    """
    best, best_pixels = None, 0
    start = data.find(b"\xff\xd8\xff")
    while start >= 0:
        try:
            with Image.open(io.BytesIO(data[start:])) as image:
                if image.format == "JPEG" and image.size[0] * image.size[1] > best_pixels:
                    best, best_pixels = start, image.size[0] * image.size[1]
        except (UnidentifiedImageError, OSError, ValueError):
            pass
        start = data.find(b"\xff\xd8\xff", start + 3)
    if best is None:
        raise ImageError(f"{name}: no JPEG stream found")
    return data[best:]


def compact_jpeg(
    image: np.ndarray, max_edge: int = DEFAULT_MAX_EDGE, quality: int = DEFAULT_QUALITY
) -> bytes:
    """Shrink ``(H, W, 3)`` uint8 RGB so that its longer side is at most ``max_edge`` (area interpolation)
    and encode it as a JPEG of the given quality."""
    height, width = image.shape[:2]
    if max(height, width) > max_edge:
        factor = max_edge / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ImageError("JPEG encoding failed")
    return encoded.tobytes()


# --- fetching -----------------------------------------------------------------------------------------------


def _run(command: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    # the callers read the return code
    return subprocess.run(list(command), check=False, cwd=cwd, capture_output=True, text=True)


def fetch_deb(package: str, cache: Path) -> Path:
    """The ``.deb`` of ``package`` in ``cache`` (downloaded with ``apt-get download`` if absent; runs
    ``apt-get update`` once when apt does not know the package yet).

    Raises:
        DatasetError: apt-get is missing or the package cannot be downloaded (the message gives apt's reason).
    """
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise DatasetError(
            f"package {package}: apt-get not found (the photo corpus needs a Debian-based system)"
        )
    result = _run(["apt-get", "download", package], cwd=cache)
    if result.returncode != 0:
        logger.info("apt-get download %s failed; running apt-get update once", package)
        _run(["apt-get", "update"])
        result = _run(["apt-get", "download", package], cwd=cache)
    found = sorted(cache.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not found:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise DatasetError(
            f"package {package}: apt-get download failed: {reason[-1] if reason else 'no .deb'}"
        )
    return found[-1]


def read_deb_members(deb: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """``{installed path: bytes}`` of the files in a ``.deb`` for which ``wanted(installed path)`` is true,
    streamed from ``dpkg-deb --fsys-tarfile`` without unpacking the rest."""
    if shutil.which("dpkg-deb") is None:
        raise DatasetError(f"{deb.name}: dpkg-deb not found (the photo corpus needs a Debian-based system)")
    process = subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for member in archive:
                path = "/" + member.name.lstrip("./")
                if member.isfile() and wanted(path):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        members[path] = handle.read()
    except tarfile.TarError as error:
        raise DatasetError(f"{deb}: cannot read the package's data archive ({error})") from None
    finally:
        process.stdout.close()
        stderr = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        if process.wait() != 0 and not members:
            raise DatasetError(f"{deb}: dpkg-deb failed: {stderr.strip()}")
    return members


def _plasma_images_dir(path: str) -> str | None:
    parent = Path(path).parent
    return str(parent) if parent.name == "images" and parent.parent.name == "contents" else None


def _photo_bytes(photo: PhotoSource, members: dict[str, bytes]) -> bytes:
    """The original bytes of a photo (largest file of a plasma ``contents/images/``; a carved .edj JPEG)."""
    images_dir = _plasma_images_dir(photo.installed_path)
    if images_dir is not None:
        candidates = {p: b for p, b in members.items() if str(Path(p).parent) == images_dir}
        if not candidates:
            raise ImageError(f"{images_dir}: no files in the package")
        data = max(candidates.items(), key=lambda item: (len(item[1]), item[0]))[1]
    elif photo.installed_path in members:
        data = members[photo.installed_path]
    else:
        raise ImageError(f"{photo.installed_path}: not in package {photo.package}")
    if photo.installed_path.endswith(".edj"):
        data = carve_largest_jpeg(data, photo.installed_path)
    return data


def _wanted(photos: Iterable[PhotoSource]) -> Callable[[str], bool]:
    paths = {p.installed_path for p in photos}
    dirs = {d for d in (_plasma_images_dir(p.installed_path) for p in photos) if d}
    return lambda path: path in paths or str(Path(path).parent) in dirs


def _wheel_members(photos: Sequence[PhotoSource]) -> dict[str, bytes]:
    """Files of ``pypi:`` sources, read from the installed distribution (e.g.
    ``/skimage/data/camera.png``)."""
    from importlib import metadata

    members = {}
    for photo in photos:
        try:
            distribution = metadata.distribution(photo.package)
        except metadata.PackageNotFoundError:
            continue
        path = Path(distribution.locate_file(photo.installed_path.lstrip("/")))
        if path.is_file():
            members[photo.installed_path] = path.read_bytes()
    return members


# --- the corpus ---------------------------------------------------------------------------------------------


def build_photo_corpus(
    photo_list: str | os.PathLike,
    output: str | os.PathLike,
    cache: str | os.PathLike | None = None,
    max_edge: int = DEFAULT_MAX_EDGE,
    quality: int = DEFAULT_QUALITY,
    evaluation_root: str | os.PathLike | None = None,
    keep_debs: bool = True,
    progress: Callable[[str], None] | None = None,
) -> CorpusSummary:
    """Build (or complete) the training photo corpus.

    Args:
        photo_list: the photo list (see :func:`read_photo_list`).
        output: the corpus folder: ``<name>.jpg`` files and ``manifest.json``.
        cache: where downloaded ``.deb`` files are kept (default ``<output>/../cache/debs``).
        max_edge: longer side of the stored copies, in pixels.
        quality: JPEG quality of the stored copies.
        evaluation_root: a folder of evaluation images (e.g. ``../shared/data``) whose content is refused
            even under another name; ``None`` checks names only.
        keep_debs: keep downloaded packages in ``cache`` (a later run with new photos need not fetch them
            again).
        progress: called with one line per photo written or skipped.

    Returns:
        A :class:`CorpusSummary`. Photos already in the corpus are not read again (the run is resumable);
        unreadable and refused photos are listed in ``skipped`` with the reason, not fatal.
    """
    output = Path(output)
    cache = Path(cache) if cache is not None else output.parent / "cache" / "debs"
    if max_edge < 64:
        raise DatasetError(f"max_edge must be at least 64 pixels, got {max_edge}")
    photos = read_photo_list(photo_list)
    output.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(output)
    summary = CorpusSummary()
    say = progress or (lambda line: logger.info(line))
    thumbs = evaluation_thumbnails(evaluation_root)

    names = [p.name for p in photos]
    duplicates = {n for n in names if names.count(n) > 1}
    todo: dict[str, list[PhotoSource]] = {}

    def skip(photo: PhotoSource, reason: str) -> None:
        reason = reason.removeprefix(f"{photo.installed_path}: ")
        summary.skipped.append((photo.installed_path, reason))
        say(f"skipped {photo.installed_path}: {reason}")

    for photo in photos:
        if photo.name in duplicates:
            skip(photo, f"name {photo.name} is not unique in the list")
        elif is_evaluation_name(photo.installed_path):
            skip(photo, "refused: an evaluation image")
        elif photo.name in manifest and (output / photo.name).is_file():
            summary.existing.append(photo.name)
        else:
            todo.setdefault(f"{photo.kind}:{photo.package}", []).append(photo)

    for key, group in todo.items():
        kind, package = key.split(":", 1)
        try:
            if kind == "deb":
                deb = fetch_deb(package, cache)
                members = read_deb_members(deb, _wanted(group))
            else:
                members = _wheel_members(group)
        except DatasetError as error:
            for photo in group:
                skip(photo, str(error))
            continue
        for photo in group:
            try:
                image = decode_image(_photo_bytes(photo, members), photo.installed_path)
                match = _matching_evaluation_image(image, thumbs) if thumbs else None
                if match is not None:
                    raise ImageError(f"refused: same content as evaluation image {match}")
                data = compact_jpeg(image, max_edge, quality)
            except ImageError as error:
                skip(photo, str(error))
                continue
            with atomic_path(output / photo.name) as tmp:
                tmp.write_bytes(data)
            height, width = image.shape[:2]
            with Image.open(io.BytesIO(data)) as stored:
                stored_size = list(stored.size)
            manifest[photo.name] = {
                "file": photo.name,
                "source": photo.source,
                "package": photo.package,
                "license": photo.license,
                "original_path": photo.installed_path,
                "original_size": [width, height],
                "size": stored_size,
                "bytes": len(data),
                "split": split_of(photo.name),
            }
            summary.written.append(photo.name)
            say(
                f"wrote {photo.name} ({width}x{height} -> {len(data) / 1e3:.0f} kB, "
                f"{manifest[photo.name]['split']})"
            )
        _write_manifest(output, manifest, max_edge, quality)
        if kind == "deb" and not keep_debs:
            for deb_file in cache.glob(f"{package}_*.deb"):
                deb_file.unlink()

    _write_manifest(output, manifest, max_edge, quality)
    summary.counts = {split: sum(1 for e in manifest.values() if e["split"] == split) for split in SPLITS}
    summary.total_bytes = sum(p.stat().st_size for p in output.iterdir() if p.is_file())
    return summary


def _read_manifest(folder: Path) -> dict[str, dict]:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        return {entry["file"]: entry for entry in data["photos"]}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DatasetError(f"corrupt corpus manifest {path}: {error}; delete it to rebuild") from None


def _write_manifest(folder: Path, manifest: dict[str, dict], max_edge: int, quality: int) -> None:
    entries = [manifest[name] for name in sorted(manifest)]
    write_json(
        folder / MANIFEST,
        {
            "description": "tiepoint training photos; every photo keeps its licence and attribution "
            "(see README)",
            "max_edge": max_edge,
            "jpeg_quality": quality,
            "val_percent": VAL_PERCENT,
            "counts": {split: sum(1 for e in entries if e["split"] == split) for split in SPLITS},
            "photos": entries,
        },
    )


def list_photos(root: str | os.PathLike, split: str = "train") -> list[Path]:
    """The photos of one split of a corpus built by :func:`build_photo_corpus`, sorted by name.

    Args:
        root: the corpus folder (holding ``manifest.json``).
        split: ``"train"`` or ``"val"``.

    Returns:
        Paths of the JPEG files of that split that exist.

    Raises:
        DatasetError: no manifest in ``root``, an unknown split, or a manifest that names an evaluation image.
    """
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    if not (root / MANIFEST).is_file():
        raise DatasetError(
            f"no photo corpus in {root} (no {MANIFEST}); build it with "
            f"`tiepoint-lab data photos --out {root}`"
        )
    manifest = _read_manifest(root)
    paths = []
    for name, entry in sorted(manifest.items()):
        if is_evaluation_name(entry.get("original_path", name)) or is_evaluation_name(
            name.split("__", 1)[-1]
        ):
            raise DatasetError(f"{root / MANIFEST} lists an evaluation image: {name}")
        if entry.get("split") == split and (root / name).is_file():
            paths.append(root / name)
    return paths

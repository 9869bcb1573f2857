"""Benchmark datasets: image pairs with ground-truth geometry.

A :class:`Dataset` is a name, a task and a list of :class:`Pair`. The task says which ground truth the pairs
carry and which metrics apply:

* ``"homography"``: each pair has ``H`` (3x3, image 0 -> image 1, normalised so that ``H[2, 2] = 1``);
* ``"relative_pose"``: each pair has ``camera0``, ``camera1`` (:class:`~tiepoint.types.Camera`) and the
  relative pose ``R``, ``t`` with ``X1 = R @ X0 + t`` (the conventions of :mod:`tiepoint.types`).

Images are read only when :meth:`Pair.load` is called, so building a dataset is cheap. Loaders check the
layout up front and raise :class:`~tiepoint.errors.DatasetError` naming the path and what is missing.

Loaders: :func:`oxford_affine`, :func:`hpatches`, :func:`middlebury`, :func:`pairs_file`, :func:`synthetic`;
:func:`load_dataset` picks one by name (the names the ``tiepoint bench`` command accepts).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError
from ..io.image import IMAGE_EXTENSIONS, load_image
from ..types import Camera

logger = logging.getLogger("tiepoint")

TASKS = ("homography", "relative_pose")
"""The benchmark tasks: which ground truth the pairs of a dataset carry."""

DATA_ENV = "TIEPOINT_DATA"
"""Environment variable naming the folder that holds the benchmark data (``oxford_affine/`` etc.)."""

ImagePair = tuple[np.ndarray, np.ndarray]


@dataclass
class Pair:
    """One image pair with ground truth.

    The images are given either as two paths (``path0``, ``path1``) or as ``loader``, a zero-argument
    callable returning both ``(H, W, 3)`` uint8 RGB arrays (synthetic pairs). Call :meth:`load` for them.

    Attributes:
        name: unique name in the dataset, e.g. ``"graf/1-3"``.
        path0, path1: image files, or ``None`` when ``loader`` is set.
        loader: callable returning ``(image0, image1)``, or ``None`` when the paths are set.
        H: ``(3, 3)`` float64 homography image 0 -> image 1 with ``H[2, 2] = 1`` (homography task).
        camera0, camera1: the pinhole cameras of both images (relative-pose task).
        R: ``(3, 3)`` rotation and ``t``: ``(3,)`` translation with ``X1 = R @ X0 + t`` (relative-pose task;
            ``t`` keeps the scale the ground truth has, only its direction is evaluated).
        group: the sequence or scene the pair belongs to (``"graf"``), for per-group breakdowns.
        info: further details (e.g. HPatches' ``"subset"``: ``"illumination"`` or ``"viewpoint"``).
    """

    name: str
    path0: Path | None = None
    path1: Path | None = None
    loader: Callable[[], ImagePair] | None = field(default=None, repr=False, compare=False)
    H: np.ndarray | None = field(default=None, repr=False)
    camera0: Camera | None = None
    camera1: Camera | None = None
    R: np.ndarray | None = field(default=None, repr=False)
    t: np.ndarray | None = field(default=None, repr=False)
    group: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loader is None and (self.path0 is None or self.path1 is None):
            raise ValueError(f"pair {self.name!r}: give either both paths or a loader")
        if self.H is not None:
            self.H = _normalise_h(np.asarray(self.H, dtype=np.float64), self.name)
        if self.R is not None:
            self.R = np.asarray(self.R, dtype=np.float64).reshape(3, 3)
        if self.t is not None:
            self.t = np.asarray(self.t, dtype=np.float64).reshape(3)

    @property
    def task(self) -> str:
        """``"homography"`` when the pair has ``H``, else ``"relative_pose"``."""
        return "homography" if self.H is not None else "relative_pose"

    def load(self) -> ImagePair:
        """Both images as ``(H, W, 3)`` uint8 RGB arrays.

        Raises:
            ImageError: an image file is missing or unreadable.
        """
        if self.loader is not None:
            return self.loader()
        return load_image(self.path0), load_image(self.path1)


@dataclass
class Dataset:
    """A named list of pairs for one task.

    Attributes:
        name: e.g. ``"oxford"``; it names the dataset in tables and result files.
        task: ``"homography"`` or ``"relative_pose"``.
        pairs: the pairs, in a fixed order.
        description: one line on what the data is and where it came from.
    """

    name: str
    task: str
    pairs: list[Pair]
    description: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"dataset {self.name!r}: task must be one of {TASKS}, got {self.task!r}")
        for pair in self.pairs:
            if pair.task != self.task:
                raise ValueError(f"dataset {self.name!r}: pair {pair.name!r} has no {self.task} ground truth")
            if self.task == "relative_pose" and (
                pair.camera0 is None or pair.camera1 is None or pair.R is None or pair.t is None
            ):
                raise ValueError(f"dataset {self.name!r}: pair {pair.name!r} needs camera0, camera1, R and t")

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.pairs)

    def subset(
        self, selection: Iterable[str | int] | Callable[[Pair], bool], name: str | None = None
    ) -> Dataset:
        """A dataset with some of the pairs: given by names, indices, or a predicate on :class:`Pair`.

        Example:
            >>> small = load_dataset("oxford").subset(["graf/1-2", "boat/1-2"])  # doctest: +SKIP
        """
        if callable(selection):
            pairs = [pair for pair in self.pairs if selection(pair)]
        else:
            by_name = {pair.name: pair for pair in self.pairs}
            pairs = []
            for item in selection:
                if isinstance(item, (int, np.integer)):
                    pairs.append(self.pairs[item])
                elif item in by_name:
                    pairs.append(by_name[item])
                else:
                    raise DatasetError(f"dataset {self.name!r} has no pair named {item!r}")
        return Dataset(name or self.name, self.task, pairs, self.description)


# --- helpers ------------------------------------------------------------------------------------------------


def _normalise_h(H: np.ndarray, what: str) -> np.ndarray:
    if H.shape != (3, 3) or not np.all(np.isfinite(H)):
        raise DatasetError(f"{what}: a homography must be a finite 3x3 matrix, got {H.tolist()}")
    if abs(H[2, 2]) < 1e-12:
        raise DatasetError(f"{what}: homography has H[2, 2] = 0 and cannot be normalised")
    return H / H[2, 2]


def _read_matrix(path: Path, shape: tuple[int, int]) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"ground-truth file not found: {path}")
    try:
        values = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError:
        raise DatasetError(f"{path}: expected {shape[0]}x{shape[1]} numbers") from None
    if values.size != shape[0] * shape[1]:
        raise DatasetError(f"{path}: expected {shape[0] * shape[1]} numbers, found {values.size}")
    return values.reshape(shape)


def _require_dir(root: str | os.PathLike, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{what} folder not found: {root}")
    return root


def image_size_from_header(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header only (no decoding)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            return int(image.size[0]), int(image.size[1])
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"cannot read the image header of {path}: {error}") from None


def _find_file(folder: Path, stem: str, extensions: Sequence[str]) -> Path | None:
    for extension in extensions:
        candidate = folder / f"{stem}{extension}"
        if candidate.is_file():
            return candidate
    return None


# --- Oxford affine ------------------------------------------------------------------------------------------

OXFORD_SEQUENCES = ("bark", "bikes", "boat", "graf", "leuven", "trees", "ubc", "wall")


def oxford_affine(root: str | os.PathLike) -> Dataset:
    """The Oxford/VGG affine-covariant sequences: 8 sequences x (img1 -> img2..img6) = 40 pairs.

    Layout: ``root/<seq>/img1.png .. img6.png`` (``.ppm``/``.pgm`` also accepted) and ``root/<seq>/H1to{k}p``.
    Pairs are named ``"<seq>/1-<k>"``, their ``group`` is the sequence.
    """
    root = _require_dir(root, "Oxford affine dataset")
    sequences = [name for name in OXFORD_SEQUENCES if (root / name).is_dir()]
    if not sequences:
        raise DatasetError(
            f"{root} is not the Oxford affine dataset: expected the sequence folders "
            f"{', '.join(OXFORD_SEQUENCES)} "
            "(each with img1.png..img6.png and H1to2p..H1to6p)"
        )
    missing = sorted(set(OXFORD_SEQUENCES) - set(sequences))
    if missing:
        raise DatasetError(f"Oxford affine dataset {root}: missing sequence folder(s) {', '.join(missing)}")
    pairs = []
    for sequence in sequences:
        folder = root / sequence
        images = {}
        for index in range(1, 7):
            path = _find_file(folder, f"img{index}", (".png", ".ppm", ".pgm", ".jpg"))
            if path is None:
                raise DatasetError(f"Oxford affine dataset: image img{index}.png not found in {folder}")
            images[index] = path
        for k in range(2, 7):
            H = _normalise_h(_read_matrix(folder / f"H1to{k}p", (3, 3)), str(folder / f"H1to{k}p"))
            pairs.append(Pair(f"{sequence}/1-{k}", images[1], images[k], H=H, group=sequence))
    return Dataset(
        "oxford",
        "homography",
        pairs,
        "Oxford affine-covariant sequences (Mikolajczyk et al. 2005), img1 to img2..6, "
        "ground-truth homographies",
    )


# --- HPatches -----------------------------------------------------------------------------------------------


def hpatches(root: str | os.PathLike) -> Dataset:
    """HPatches sequences: every ``<seq>`` folder with ``1.ppm .. 6.ppm`` and ``H_1_2 .. H_1_6``.

    Sequences whose names start with ``i_`` change illumination and ``v_`` viewpoint; each pair records it in
    ``info["subset"]`` (``"illumination"`` / ``"viewpoint"``). Pairs are named ``"<seq>/1-<k>"``.
    """
    root = _require_dir(root, "HPatches dataset")
    sequences = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[:2] in ("i_", "v_"))
    if not sequences:
        raise DatasetError(
            f"{root} is not an HPatches folder: expected sequence folders named i_* (illumination) and v_* "
            "(viewpoint), each with 1.ppm..6.ppm and H_1_2..H_1_6"
        )
    pairs = []
    for sequence in sequences:
        folder = root / sequence
        images = {}
        for index in range(1, 7):
            path = _find_file(folder, str(index), (".ppm", ".png", ".jpg"))
            if path is None:
                raise DatasetError(f"HPatches: image {index}.ppm not found in {folder}")
            images[index] = path
        subset = "illumination" if sequence.startswith("i_") else "viewpoint"
        for k in range(2, 7):
            path = folder / f"H_1_{k}"
            H = _normalise_h(_read_matrix(path, (3, 3)), str(path))
            pairs.append(
                Pair(f"{sequence}/1-{k}", images[1], images[k], H=H, group=sequence, info={"subset": subset})
            )
    return Dataset(
        "hpatches",
        "homography",
        pairs,
        f"HPatches sequences ({len(sequences)}: i_ illumination, v_ viewpoint), image 1 to 2..6, "
        "homographies",
    )


# --- Middlebury templeSparseRing ----------------------------------------------------------------------------


def read_middlebury_parameters(
    path: str | os.PathLike,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Read a Middlebury ``*_par.txt``: ``{image name: (K, R, t)}`` with ``P = K [R | t]`` world -> camera."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Middlebury camera file not found: {path}")
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    try:
        count = int(lines[0][0])
    except (IndexError, ValueError):
        raise DatasetError(f"{path}: the first line must hold the number of views") from None
    if len(lines) - 1 != count:
        raise DatasetError(f"{path}: the first line says {count} views but {len(lines) - 1} lines follow")
    cameras = {}
    for number, fields_ in enumerate(lines[1:], start=2):
        if len(fields_) != 22:
            raise DatasetError(
                f"{path}, line {number}: expected an image name and 21 numbers, got {len(fields_)} fields"
            )
        try:
            values = np.array(fields_[1:], dtype=np.float64)
        except ValueError:
            raise DatasetError(f"{path}, line {number}: non-numeric camera parameters") from None
        cameras[fields_[0]] = (values[:9].reshape(3, 3), values[9:18].reshape(3, 3), values[18:])
    return cameras


def middlebury(root: str | os.PathLike, step: int | Sequence[int] = 1) -> Dataset:
    """Middlebury multi-view stereo ``templeSparseRing``: nearby views along the ring as pose pairs.

    Pairs are ``(i, i + step)`` over all views in file order, wrapping around (16 pairs for ``step=1``;
    ``step=(1, 2)`` gives every neighbour and second-neighbour pair, 32). Views turned upside down in the
    data stay as they are. Ground truth from ``templeSR_par.txt``: the relative pose of view j from view i
    is ``R = Rj Ri^T``, ``t = tj - R ti``.

    Args:
        root: the folder holding ``*_par.txt`` and the images.
        step: how far apart along the ring the two views of a pair are, or several such distances.
    """
    root = _require_dir(root, "Middlebury dataset")
    steps = [step] if isinstance(step, int) else list(step)
    if not steps or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in steps):
        raise DatasetError(f"middlebury: step must be a positive integer or a list of them, got {step!r}")
    parameter_files = sorted(root.glob("*_par.txt"))
    if not parameter_files:
        raise DatasetError(
            f"Middlebury dataset {root}: no camera file *_par.txt (e.g. templeSR_par.txt) found"
        )
    parameters = read_middlebury_parameters(parameter_files[0])
    names = list(parameters)
    if len(names) < 2 or max(steps) >= len(names):
        raise DatasetError(f"middlebury: {len(names)} views cannot make pairs {max(steps)} apart")
    cameras = {}
    for name in names:
        path = root / name
        width, height = image_size_from_header(path)
        K, _, _ = parameters[name]
        try:
            cameras[name] = Camera.from_K(K, width, height)
        except ValueError as error:
            raise DatasetError(f"{parameter_files[0]}: calibration of {name}: {error}") from None
    pairs = []
    for i, name0, step_ in ((i, name, s) for s in steps for i, name in enumerate(names)):
        name1 = names[(i + step_) % len(names)]
        _, R0, t0 = parameters[name0]
        _, R1, t1 = parameters[name1]
        R = R1 @ R0.T
        t = t1 - R @ t0
        pairs.append(
            Pair(
                f"{Path(name0).stem}-{Path(name1).stem}",
                root / name0,
                root / name1,
                camera0=cameras[name0],
                camera1=cameras[name1],
                R=R,
                t=t,
                group=root.name,
            )
        )
    apart = " or ".join(str(s) for s in steps)
    return Dataset(
        "middlebury" if steps == [1] else f"middlebury:{','.join(str(s) for s in steps)}",
        "relative_pose",
        pairs,
        f"Middlebury {root.name} (Seitz et al. 2006): views {apart} apart on the ring, calibrated poses",
    )


# --- SuperGlue / LoFTR pairs files --------------------------------------------------------------------------


def _rotate_camera(
    K: np.ndarray, size: tuple[int, int], rotation: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """For an image turned by ``np.rot90(image, rotation)`` (counter-clockwise quarter turns): the new ``K``,
    the rotation ``Rz`` from the old camera frame to the new one, and the new size."""
    Rz = np.eye(3)
    width, height = size
    K = K.copy()
    for _ in range(rotation % 4):
        # np.rot90 by one turn maps pixel (x, y) to (y, width - 1 - x); write that as K' Rz.
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        K = np.array([[fy, 0.0, cy], [0.0, fx, width - 1 - cx], [0.0, 0.0, 1.0]])
        Rz = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) @ Rz
        width, height = height, width
    return K, Rz, (width, height)


def _load_rotated(path0: Path, path1: Path, rotation0: int, rotation1: int) -> Callable[[], ImagePair]:
    def load() -> ImagePair:
        image0, image1 = load_image(path0), load_image(path1)
        return (
            np.ascontiguousarray(np.rot90(image0, rotation0)),
            np.ascontiguousarray(np.rot90(image1, rotation1)),
        )

    return load


def pairs_file(
    path: str | os.PathLike, image_root: str | os.PathLike | None = None, name: str | None = None
) -> Dataset:
    """Relative-pose pairs in the SuperGlue / LoFTR test-list format.

    Each non-empty line (``#`` starts a comment) is::

        name0 name1 [rot0 rot1] K0 (9 values) K1 (9 values) T_0to1 (16 values, row-major 4x4)

    ``name0``/``name1`` are image paths relative to ``image_root`` (default: the pairs file's folder), ``K``
    refers to the image file as stored, and ``T_0to1`` maps camera-0 coordinates to camera-1 coordinates.
    ``rot0``/``rot1`` (optional) are counter-clockwise quarter turns applied to each image before matching
    (``np.rot90``, as SuperGlue does); the cameras and the pose are turned with them. Image sizes are read
    from the image headers.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"pairs file not found: {path}")
    image_root = path.parent if image_root is None else Path(image_root)
    if not image_root.is_dir():
        raise DatasetError(f"image folder of pairs file {path} not found: {image_root}")
    pairs = []
    sizes: dict[Path, tuple[int, int]] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields_ = line.split()
        if len(fields_) == 38:
            name0, name1, rotation0, rotation1, values = (
                fields_[0],
                fields_[1],
                fields_[2],
                fields_[3],
                fields_[4:],
            )
        elif len(fields_) == 36:
            name0, name1, rotation0, rotation1, values = fields_[0], fields_[1], "0", "0", fields_[2:]
        else:
            raise DatasetError(
                f"{path}, line {number}: expected 38 fields "
                "(name0 name1 rot0 rot1 K0[9] K1[9] T_0to1[16]) or 36 "
                f"(without rot0 rot1), got {len(fields_)}"
            )
        try:
            rotation0, rotation1 = int(rotation0), int(rotation1)
            numbers = np.array(values, dtype=np.float64)
        except ValueError:
            raise DatasetError(
                f"{path}, line {number}: rotations must be integers and K, T numbers"
            ) from None
        K0, K1, T = numbers[:9].reshape(3, 3), numbers[9:18].reshape(3, 3), numbers[18:].reshape(4, 4)
        if not np.allclose(T[3], [0, 0, 0, 1]):
            raise DatasetError(
                f"{path}, line {number}: the last row of T_0to1 must be 0 0 0 1, got {T[3].tolist()}"
            )
        path0, path1 = image_root / name0, image_root / name1
        for image_path in (path0, path1):
            if image_path not in sizes:
                try:
                    sizes[image_path] = image_size_from_header(image_path)
                except DatasetError as error:
                    raise DatasetError(f"{path}, line {number}: {error}") from None
        K0, Rz0, size0 = _rotate_camera(K0, sizes[path0], rotation0)
        K1, Rz1, size1 = _rotate_camera(K1, sizes[path1], rotation1)
        R = Rz1 @ T[:3, :3] @ Rz0.T
        t = Rz1 @ T[:3, 3]
        try:
            camera0, camera1 = Camera.from_K(K0, *size0), Camera.from_K(K1, *size1)
        except ValueError as error:
            raise DatasetError(f"{path}, line {number}: {error}") from None
        rotated = rotation0 % 4 or rotation1 % 4
        pairs.append(
            Pair(
                f"{name0} {name1}",
                path0,
                path1,
                loader=_load_rotated(path0, path1, rotation0, rotation1) if rotated else None,
                camera0=camera0,
                camera1=camera1,
                R=R,
                t=t,
                group=str(Path(name0).parent),
                info={"rotation0": rotation0, "rotation1": rotation1} if rotated else {},
            )
        )
    if not pairs:
        raise DatasetError(f"pairs file {path} holds no pairs")
    return Dataset(
        name or f"pairs:{path.name}", "relative_pose", pairs, f"relative-pose pairs listed in {path}"
    )


# --- synthetic homographies ---------------------------------------------------------------------------------

SYNTHETIC_LONG_SIDE = 640
"""Longer side, in pixels, of the photos synthetic pairs are made from."""

SYNTHETIC_MIN_SIDE = 128
"""Photos whose shorter side is below this many pixels are skipped: they hold too little to match."""


def _homography_matrix(
    rng: np.random.Generator,
    size: tuple[int, int],
    max_rotation_deg: float,
    scale_range: tuple[float, float],
    perspective: float,
    max_shift: float,
) -> np.ndarray:
    """A random homography that keeps the image centre near the centre of the (same-size) output."""
    width, height = size
    centre = np.array([[1.0, 0.0, -(width - 1) / 2], [0.0, 1.0, -(height - 1) / 2], [0.0, 0.0, 1.0]])
    half = max(width, height) / 2
    # perspective terms chosen so that the projective depth w varies by at most +-perspective over the image
    p = rng.uniform(-perspective, perspective, size=2) / half
    P = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [p[0], p[1], 1.0]])
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    c, s = np.cos(angle), np.sin(angle)
    RS = np.array([[c * scale, -s * scale, 0.0], [s * scale, c * scale, 0.0], [0.0, 0.0, 1.0]])
    shift = rng.uniform(-max_shift, max_shift, size=2) * np.array([width, height])
    uncentre = np.array(
        [[1.0, 0.0, (width - 1) / 2 + shift[0]], [0.0, 1.0, (height - 1) / 2 + shift[1]], [0.0, 0.0, 1.0]]
    )
    H = uncentre @ RS @ P @ centre
    return H / H[2, 2]


def _photometric(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Random brightness, contrast, gamma and Gaussian noise (``strength`` 0 = none, 1 = default ranges)."""
    x = image.astype(np.float32) / 255.0
    gamma = float(np.exp(rng.uniform(-np.log(1.5), np.log(1.5)) * strength))
    contrast = 1.0 + rng.uniform(-0.3, 0.3) * strength
    brightness = rng.uniform(-0.12, 0.12) * strength
    noise = rng.uniform(0.0, 4.0 / 255.0) * strength
    x = np.power(x, gamma)
    x = (x - 0.5) * contrast + 0.5 + brightness
    x = x + rng.normal(0.0, 1.0, size=x.shape).astype(np.float32) * noise
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _synthetic_loader(
    photo: Path, size: tuple[int, int], H: np.ndarray, seed: int, index: int, photometric: float
) -> Callable[[], ImagePair]:
    def load() -> ImagePair:
        image = load_image(photo)
        if (image.shape[1], image.shape[0]) != size:
            shrink = size[0] < image.shape[1]
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        warped = cv2.warpPerspective(
            image, H, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
        )
        if photometric > 0:
            warped = _photometric(warped, np.random.default_rng([seed, index, 1]), photometric)
        return image, warped

    return load


def synthetic(
    folder: str | os.PathLike,
    num_pairs: int = 100,
    seed: int = 0,
    max_rotation_deg: float = 180.0,
    scale_range: tuple[float, float] = (0.7, 1.4),
    perspective: float = 0.2,
    max_shift: float = 0.1,
    photometric: float = 1.0,
) -> Dataset:
    """Homography pairs made from any folder of photos.

    For pair ``i`` a photo is picked (from ``seed`` and ``i``), resized so that its longer side is 640 px, and
    warped with a random homography: in-plane rotation up to ``+-max_rotation_deg``, a scale from
    ``scale_range``, a perspective term (the projective depth varies by up to ``+-perspective`` over the
    image) and a shift of up to ``max_shift`` of the image size. The warped image then gets random
    brightness, contrast, gamma and noise (scaled by ``photometric``, 0 turns it off). Image 0 is the
    resized photo, image 1 the warped one, of the same size; ``H`` maps image 0 to image 1.

    Images are made in :meth:`Pair.load`; the same arguments always give identical pairs.
    """
    folder = _require_dir(folder, "photo")
    candidates = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    photo_sizes = _readable_photos(candidates)
    photos = list(photo_sizes)
    if not photos:
        raise DatasetError(
            f"synthetic dataset: no photos ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {folder} "
            f"that can be read and are at least {SYNTHETIC_MIN_SIDE} px on each side"
        )
    if not isinstance(num_pairs, int) or num_pairs < 1:
        raise DatasetError(f"synthetic dataset: num_pairs must be a positive integer, got {num_pairs!r}")
    if not 0 < scale_range[0] <= scale_range[1]:
        raise DatasetError(f"synthetic dataset: scale_range must be 0 < low <= high, got {scale_range}")
    pairs = []
    for index in range(num_pairs):
        rng = np.random.default_rng([seed, index])
        photo = photos[int(rng.integers(len(photos)))]
        width, height = photo_sizes[photo]
        factor = SYNTHETIC_LONG_SIDE / max(width, height)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        H = _homography_matrix(rng, size, max_rotation_deg, scale_range, perspective, max_shift)
        pairs.append(
            Pair(
                f"{index:04d}-{photo.stem}",
                loader=_synthetic_loader(photo, size, H, seed, index, photometric),
                H=H,
                group=photo.stem,
                info={"photo": str(photo)},
            )
        )
    return Dataset(
        f"synthetic:{folder.name}",
        "homography",
        pairs,
        f"{num_pairs} synthetic homography pairs from {len(photos)} photos in {folder} (seed {seed}, "
        f"rotation up to {max_rotation_deg:g} deg)",
    )


def _readable_photos(paths: Sequence[Path]) -> dict[Path, tuple[int, int]]:
    """``{path: (width, height)}`` of the photos that can be read and are large enough; the others are skipped
    with a warning."""
    sizes = {}
    for path in paths:
        try:
            size = image_size_from_header(path)
        except DatasetError as error:
            logger.warning("synthetic dataset: skipping %s", error)
            continue
        if min(size) < SYNTHETIC_MIN_SIDE:
            logger.warning(
                "synthetic dataset: skipping %s, %dx%d is smaller than %d px", path, *size, SYNTHETIC_MIN_SIDE
            )
            continue
        sizes[path] = size
    return sizes


# --- by name ------------------------------------------------------------------------------------------------

_SUBFOLDERS = {
    "oxford": ("oxford_affine", "oxford"),
    "hpatches": ("hpatches-sequences-release", "hpatches"),
    "middlebury": ("middlebury/templeSparseRing", "templeSparseRing"),
}

_LAYOUT_CHECKS: dict[str, Callable[[Path], bool]] = {
    "oxford": lambda p: (p / "graf" / "H1to2p").is_file() or any(p.glob("*/H1to2p")),
    "hpatches": lambda p: any(p.glob("[iv]_*/H_1_2")),
    "middlebury": lambda p: any(p.glob("*_par.txt")),
}

DATASET_NAMES = (
    "oxford",
    "hpatches",
    "middlebury",
    "middlebury:<steps>",
    "pairs:<file>",
    "synthetic:<folder>",
)
"""The names :func:`load_dataset` accepts."""


def data_roots() -> list[Path]:
    """Where datasets are looked for when no root is given: the folders in ``$TIEPOINT_DATA`` (separated
    by the platform's path separator), in order."""
    value = os.environ.get(DATA_ENV, "")
    return [Path(part) for part in value.split(os.pathsep) if part]


def _locate(kind: str, root: str | os.PathLike | None) -> Path:
    check = _LAYOUT_CHECKS[kind]
    if root is not None:
        root = Path(root)
        for candidate in (root, *(root / sub for sub in _SUBFOLDERS[kind])):
            if candidate.is_dir() and check(candidate):
                return candidate.resolve()
        return root  # the loader names what is missing
    searched = []
    for base in data_roots():
        for sub in _SUBFOLDERS[kind]:
            candidate = base / sub
            searched.append(str(candidate))
            if candidate.is_dir() and check(candidate):
                return candidate.resolve()
    where = (
        f"looked in {', '.join(searched)}" if searched else f"no root was given and ${DATA_ENV} is not set"
    )
    raise DatasetError(
        f"dataset {kind!r} not found; {where}. Give its folder with --root "
        f"(root= in Python) or set the environment variable {DATA_ENV} to the folder that holds "
        f"{' or '.join(_SUBFOLDERS[kind])}"
    )


def load_dataset(name: str | Dataset, root: str | os.PathLike | None = None, **options: Any) -> Dataset:
    """A dataset by name.

    Names: ``"oxford"``, ``"hpatches"``, ``"middlebury"`` (``"middlebury:1,2"``: views 1 or 2 apart on the
    ring), ``"pairs:<file>"`` (a SuperGlue/LoFTR pairs file;
    ``root`` is the image folder, default the file's folder) and ``"synthetic:<folder>"`` (homographies made
    from the photos in a folder).

    Args:
        name: the dataset name, or a :class:`Dataset` (returned as it is).
        root: the dataset's folder, or a folder holding it (e.g. the one with ``oxford_affine/``). When
            ``None``, it is looked for under the folders of ``$TIEPOINT_DATA``.
        **options: further arguments of the loader (``step`` for middlebury; ``num_pairs``, ``seed``,
            ``max_rotation_deg`` ... for synthetic).

    Raises:
        DatasetError: unknown name, data not found, or a malformed layout.
    """
    if isinstance(name, Dataset):
        return name
    if not isinstance(name, str) or not name:
        raise DatasetError(f"dataset name must be a non-empty string, got {name!r}")
    kind, _, argument = name.partition(":")
    try:
        if kind == "oxford" and not argument:
            return oxford_affine(_locate("oxford", root), **options)
        if kind == "hpatches" and not argument:
            return hpatches(_locate("hpatches", root), **options)
        if kind == "middlebury":
            steps = _steps(name, argument) if argument else options.pop("step", 1)
            return middlebury(_locate("middlebury", root), step=steps, **options)
        if kind == "pairs" and argument:
            return pairs_file(argument, root, **options)
        if kind == "synthetic" and argument:
            return synthetic(argument, **options)
    except TypeError as error:  # an option the loader does not take
        raise DatasetError(f"dataset {name!r}: {error}") from None
    raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(DATASET_NAMES)}")


def _steps(name: str, argument: str) -> list[int]:
    """The ring distances of ``middlebury:1,2``."""
    try:
        return [int(part) for part in argument.split(",")]
    except ValueError:
        raise DatasetError(
            f"dataset {name!r}: after 'middlebury:' give ring distances separated by commas, "
            "e.g. middlebury:1,2"
        ) from None


def dataset_task(name: str | Dataset) -> str:
    """The task of a dataset given by name (without loading it) or as a :class:`Dataset`."""
    if isinstance(name, Dataset):
        return name.task
    kind = str(name).partition(":")[0]
    if kind in ("oxford", "hpatches", "synthetic"):
        return "homography"
    if kind in ("middlebury", "pairs"):
        return "relative_pose"
    raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(DATASET_NAMES)}")


__all__ = [
    "DATASET_NAMES",
    "TASKS",
    "Dataset",
    "Pair",
    "data_roots",
    "dataset_task",
    "hpatches",
    "image_size_from_header",
    "load_dataset",
    "middlebury",
    "oxford_affine",
    "pairs_file",
    "read_middlebury_parameters",
    "synthetic",
]

"""Reading, validating and resizing images, with the bookkeeping that maps coordinates back.

Every image that enters tiepoint passes through :func:`as_image`, which turns paths, NumPy arrays and torch
tensors into one canonical form: a ``(H, W, 3)`` uint8 RGB NumPy array. Methods that work at another
resolution use :func:`resize_to_max_edge` and map their keypoints back with :meth:`Resize.to_original`,
so that every coordinate a user sees is in pixels of the image they passed.

Orientation: by default (``orientation="stored"``) pixels are read as stored in the file, ignoring an EXIF
orientation tag, as COLMAP and hloc read them, so that keypoints agree with what COLMAP reads; the first image
with a tag that this ignores is reported with one warning per process. ``orientation="exif"`` turns the
pixels as a photo viewer shows them (keypoints then refer to the turned image). Every pipeline that writes
COLMAP data reads pixels as stored.

Bit depth: 16-bit images are scaled from the full 16-bit range (``value / 65535``). A 16-bit array holding
only values up to 255 (8-bit data stored in 16 bits) would come out black; it is scaled the same way, with one
warning per process.

Size: images with more than :data:`MAX_PIXELS` pixels are refused from their header, before decoding.
Pillow's own decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``) is left as it is for the rest of the
process; it is lifted, under a lock, only for the one call that reads an image between Pillow's limit and
ours.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError, OptionError

logger = logging.getLogger("tiepoint")

ImageLike = str | os.PathLike | np.ndarray | Any
"""A path to an image file, a NumPy array or a torch tensor (see :func:`as_image`)."""

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp"})
"""File extensions (lower case) taken as images when a folder is searched."""

MIN_SIDE = 16
"""Smallest accepted width or height in pixels: no method finds tie points in a smaller image."""

MAX_PIXELS = 2**28
"""Largest accepted number of pixels (about 268 megapixels), a guard against decompression bombs."""

LARGE_PIXELS = 8_000_000
"""Images with more pixels than this are logged (INFO) with their size when they are read: methods work at
full resolution unless asked otherwise (``resize``), which takes seconds and gigabytes per image."""

ORIENTATIONS = ("stored", "exif")
"""Values of :func:`load_image`'s ``orientation``: pixels as stored in the file (default, as COLMAP reads
them), or turned by the EXIF orientation tag (as a viewer shows them)."""

EXIF_ORIENTATION = 0x0112
"""The EXIF tag of the orientation (1: as stored; 2-8: mirrored and/or turned)."""

_ORIENTATION_WORDS = {
    2: "mirrored left-right",
    3: "turned 180 degrees",
    4: "mirrored top-bottom",
    5: "transposed",
    6: "turned 90 degrees clockwise",
    7: "transversed",
    8: "turned 90 degrees counter-clockwise",
}

_warned: set[str] = set()
"""The kinds of once-per-process warnings already given (see :func:`_warn_once`)."""

_pillow_lock = threading.Lock()


@dataclass(frozen=True)
class ImageInfo:
    """What an image file's header says, read without decoding the pixels (:func:`read_image_info`).

    Attributes:
        width, height: size of the pixels as stored.
        orientation: the EXIF orientation tag (1 to 8; 1 when the file has none).
    """

    width: int
    height: int
    orientation: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_image_info(path: str | os.PathLike) -> ImageInfo | None:
    """The size and EXIF orientation of an image file from its header (``None`` when Pillow cannot read
    it; OpenCV may still decode it)."""
    try:
        return _read_info(Path(path).read_bytes())
    except OSError:
        return None


FULL_FRAME_DIAGONAL_MM = 43.27
"""The diagonal of a 36 x 24 mm frame: ``FocalLengthIn35mmFilm`` is the focal length that gives the same
diagonal angle of view on it."""

_EXIF_IFD = 0x8769
_FOCAL_PLANE_UNITS_MM = {1: 25.4, 2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # ResolutionUnit -> mm (1: none: inch)


@dataclass(frozen=True)
class CameraExif:
    """What an image's EXIF block says about its camera (:func:`read_camera_exif`).

    Attributes:
        width, height: size of the pixels as stored.
        make, model: the ``Make`` and ``Model`` tags (``""`` when missing).
        focal_length_mm: ``FocalLength``.
        focal_length_35mm: ``FocalLengthIn35mmFilm`` (0 in the file means unknown: ``None``).
        focal_plane_px_per_mm: ``FocalPlaneXResolution`` in pixels per millimetre
            (``FocalPlaneResolutionUnit`` applied), for images of ``exif_width`` pixels.
        exif_width: ``PixelXDimension``, the width the focal plane resolution refers to (``None``: the
            stored width).
    """

    width: int
    height: int
    make: str = ""
    model: str = ""
    focal_length_mm: float | None = None
    focal_length_35mm: float | None = None
    focal_plane_px_per_mm: float | None = None
    exif_width: int | None = None

    @property
    def has_camera(self) -> bool:
        """Whether the block names the camera or its focal length (else the image is grouped by size only)."""
        return bool(self.make or self.model or self.focal_length_mm or self.focal_length_35mm)

    @property
    def focal_pixels(self) -> float | None:
        """The focal length in pixels of the stored image, or ``None`` when EXIF cannot give it.

        From ``FocalLengthIn35mmFilm`` (the same diagonal angle of view as on a 36 x 24 mm frame), else from
        ``FocalLength`` and the sensor width that ``FocalPlaneXResolution`` gives (as COLMAP's
        ``Bitmap::ExifFocalLength`` does without its sensor database).
        """
        if self.focal_length_35mm:
            return self.focal_length_35mm * float(np.hypot(self.width, self.height)) / FULL_FRAME_DIAGONAL_MM
        if self.focal_length_mm and self.focal_plane_px_per_mm:
            sensor_width_mm = (self.exif_width or self.width) / self.focal_plane_px_per_mm
            return self.focal_length_mm / sensor_width_mm * self.width
        return None


def read_camera_exif(path: str | os.PathLike) -> CameraExif | None:
    """The camera tags of an image file's EXIF block, read from its header with Pillow (``None`` when Pillow
    cannot read the file; a file without EXIF gives its size and no camera)."""

    def number(value: Any) -> float | None:
        try:
            value = float(value)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return value if np.isfinite(value) and value > 0 else None

    def text(value: Any) -> str:
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        return str(value).strip("\x00 ") if value is not None else ""

    def read(image: Image.Image) -> CameraExif:
        width, height = image.size
        try:
            tags = image.getexif()
            sub = dict(tags.get_ifd(_EXIF_IFD))
        except Exception:  # noqa: BLE001 - a broken EXIF block: the image is used without it
            return CameraExif(width, height)
        resolution = number(sub.get(0xA20E))  # FocalPlaneXResolution
        unit_mm = _FOCAL_PLANE_UNITS_MM.get(int(number(sub.get(0xA210)) or 2))  # FocalPlaneResolutionUnit
        exif_width = number(sub.get(0xA002))  # PixelXDimension
        return CameraExif(
            width,
            height,
            make=text(tags.get(0x010F)),
            model=text(tags.get(0x0110)),
            focal_length_mm=number(sub.get(0x920A)),
            focal_length_35mm=number(sub.get(0xA405)),
            focal_plane_px_per_mm=resolution / unit_mm if resolution and unit_mm else None,
            exif_width=int(exif_width) if exif_width else None,
        )

    try:
        return _with_pillow(lambda: Path(path), read)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def load_image(path: str | os.PathLike, orientation: str = "stored") -> np.ndarray:
    """Read an image file as a ``(H, W, 3)`` uint8 RGB array.

    Greyscale images are repeated over three channels, alpha channels are dropped and 16-bit images are
    scaled to 8 bits (from the full 16-bit range).

    Args:
        path: the image file.
        orientation: ``"stored"`` (default): pixels as stored in the file, ignoring an EXIF orientation tag,
            as COLMAP and hloc read them (one warning per process when a tag is ignored); ``"exif"``: turned
            and mirrored as the tag says, as a photo viewer shows them. Keypoints refer to the pixels
            returned, so data for COLMAP must use ``"stored"``.

    Raises:
        ImageError: the file is missing, empty, not an image, corrupt, too small or too large, or ``path``
            is not a path.
        OptionError: ``orientation`` is not one of :data:`ORIENTATIONS`.
    """
    if orientation not in ORIENTATIONS:
        raise OptionError(f"orientation must be one of {', '.join(ORIENTATIONS)}, got {orientation!r}")
    if not isinstance(path, (str, os.PathLike)):
        raise ImageError(
            f"load_image expects the path of an image file, got {type(path).__name__}; as_image() takes "
            "arrays and tensors"
        )
    path = Path(path)
    if not path.exists():
        raise ImageError(f"image file not found: {path}")
    if not path.is_file():
        raise ImageError(f"not an image file (a directory?): {path}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(f"cannot read image file {path}: {error}") from None
    if not data:
        raise ImageError(f"image file is empty (0 bytes): {path}")
    info = _read_info(data, path)
    if info is not None and info.pixels > LARGE_PIXELS:
        logger.info(
            "%s: %dx%d pixels (%.1f MP), %.0f MB decoded; methods work at full resolution unless given "
            "resize",
            path,
            info.width,
            info.height,
            info.pixels / 1e6,
            info.pixels * 3 / 1e6,
        )
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # never applies EXIF turns
    if array is None:
        array = _decode_with_pillow(path)
    elif array.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
        array = cv2.cvtColor(array, code)
    image = as_image(array, name=str(path))
    tag = 1 if info is None else info.orientation
    if tag in _ORIENTATION_WORDS:
        if orientation == "exif":
            return np.ascontiguousarray(apply_orientation(image, tag))
        _warn_once(
            "orientation",
            f"{path} has EXIF orientation {tag} ({_ORIENTATION_WORDS[tag]} for viewing), which is ignored: "
            "pixels are read as stored in the file, as COLMAP reads them, so a viewer may show it turned; "
            "load_image(path, orientation='exif') turns it (not for data given to COLMAP). Further images "
            "with an orientation tag are not reported",
        )
    return image


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """The image as a viewer shows it, for an EXIF orientation tag 1 to 8 (a view: no copy).

    The same as Pillow's ``ImageOps.exif_transpose``.
    """
    turns: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    if orientation not in turns:
        raise ValueError(f"EXIF orientation must be 1 to 8, got {orientation!r}")
    return turns[orientation](image)


def _warn_once(kind: str, message: str) -> None:
    """Log a warning of this kind the first time only (in this process)."""
    if kind not in _warned:
        _warned.add(kind)
        logger.warning(message)


def _read_info(data: bytes, path: Path | None = None) -> ImageInfo | None:
    """The header of an encoded image; rejects a huge image (when ``path`` is given) before decoding it."""

    def read(image: Image.Image) -> ImageInfo:
        try:
            tag = image.getexif().get(EXIF_ORIENTATION, 1)
        except Exception:  # noqa: BLE001 - a broken EXIF block must not stop reading the pixels
            tag = 1
        width, height = image.size
        return ImageInfo(width, height, tag if tag in _ORIENTATION_WORDS else 1)

    try:
        info = _with_pillow(lambda: io.BytesIO(data), read)
    except Image.DecompressionBombError:
        info = ImageInfo(2 * MAX_PIXELS + 1, 1)  # beyond Pillow's limit even when lifted to ours
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None  # not a format Pillow knows: OpenCV may still decode it, and as_image checks the size
    if path is not None and info.pixels > MAX_PIXELS:
        size = f"{info.width}x{info.height} = " if info.height > 1 else "more than "
        raise ImageError(
            f"image {path} has {size}{info.pixels / 1e6:.0f} megapixels, more than "
            f"tiepoint.io.image.MAX_PIXELS ({MAX_PIXELS / 1e6:.0f} MP); resize it first"
        )
    return info


def _with_pillow(source: Callable[[], Any], read: Callable[[Image.Image], Any]) -> Any:
    """``read(image)`` of the image Pillow opens from ``source()``. Pillow's decompression-bomb limit stays
    as it is, except that an image beyond it but within :data:`MAX_PIXELS` is opened again with the limit
    lifted to ours for this call only (under a lock, restored after)."""

    def attempt() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source()) as image:
                return read(image)

    try:
        return attempt()
    except Image.DecompressionBombError:
        pass
    with _pillow_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max(MAX_PIXELS, saved or 0)
        try:
            return attempt()
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _decode_with_pillow(path: Path) -> np.ndarray:
    def read(image: Image.Image) -> np.ndarray:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(image).astype(np.uint16)
        return np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB"))

    try:
        return _with_pillow(lambda: path, read)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageError(f"cannot decode image file {path} (corrupt or not an image): {error}") from None


def as_image(image: ImageLike, name: str = "image") -> np.ndarray:
    """Convert an image given in any supported form to a ``(H, W, 3)`` uint8 RGB array.

    Accepted forms:
        * a path (``str`` or ``os.PathLike``), read with :func:`load_image`;
        * a NumPy array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, of dtype uint8,
          uint16 (scaled to 8 bits from the full range ``[0, 65535]``; one warning per process when the values
          all lie in ``[1, 255]``: 8-bit data stored in 16 bits) or float in ``[0, 1]``;
        * a torch tensor ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` with C in {1, 3}, uint8 or float in
          ``[0, 1]`` (kornia's convention).

    Args:
        image: the image.
        name: how to name the image in error messages.

    Raises:
        ImageError: unsupported type, shape or dtype, values out of range, or an empty, tiny or huge image.
    """
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if type(image).__module__.startswith("torch"):
        image = _tensor_to_array(image, name)
    if not isinstance(image, np.ndarray):
        raise ImageError(
            f"{name}: expected a path, a NumPy array or a torch tensor, got {type(image).__name__}"
        )
    array = image
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: expected shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ImageError(f"{name} is empty ({width}x{height} pixels)")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ImageError(f"{name} is {width}x{height} pixels; tiepoint needs at least {MIN_SIDE}x{MIN_SIDE}")
    if height * width > MAX_PIXELS:
        raise ImageError(
            f"{name} has {width * height / 1e6:.0f} megapixels, more than tiepoint.io.image.MAX_PIXELS"
        )
    array = _to_uint8(array, name)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    return np.ascontiguousarray(array)


def _tensor_to_array(tensor: Any, name: str) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ImageError(
                f"{name}: a 4-D tensor must hold one image (1, C, H, W), got {tuple(tensor.shape)}"
            )
        tensor = tensor[0]
    if tensor.ndim == 3:
        if tensor.shape[0] not in (1, 3):
            raise ImageError(
                f"{name}: expected a (C, H, W) tensor with C in {{1, 3}}, got {tuple(tensor.shape)}"
            )
        tensor = tensor.permute(1, 2, 0)
    if tensor.is_floating_point():
        tensor = tensor.float()
    return tensor.numpy()


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        high = int(array.max())
        if 0 < high <= 255:
            _warn_once(
                "uint16",
                f"{name}: 16-bit image whose values are all in [0, {high}]: 16-bit images are scaled from "
                "the full range [0, 65535], so this one becomes almost black and gives few or no keypoints; "
                "if it holds 8-bit data, pass array.astype(np.uint8) (this warning is shown once)",
            )
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageError(f"{name}: float image contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ImageError(
                f"{name}: float images must hold values in [0, 1], found [{low:g}, {high:g}] "
                "(divide by 255 for 8-bit data)"
            )
        return np.round(array * 255.0).astype(np.uint8)
    raise ImageError(f"{name}: unsupported dtype {array.dtype}; use uint8, uint16 or float in [0, 1]")


def to_gray(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB to ``(H, W)`` uint8 luminance."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


@dataclass(frozen=True)
class Resize:
    """How an image was resized, to map coordinates between the resized and the original image.

    Attributes:
        scale_x: original width divided by resized width.
        scale_y: original height divided by resized height.
    """

    scale_x: float = 1.0
    scale_y: float = 1.0

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` pixel coordinates of the resized image to the original image."""
        scale = np.array([self.scale_x, self.scale_y], dtype=np.float64)
        return ((np.asarray(points, np.float64) + 0.5) * scale - 0.5).astype(np.float32)

    def matrix(self) -> np.ndarray:
        """``(3, 3)`` homogeneous form of :meth:`to_original` (resized pixels to original pixels)."""
        return np.array(
            [
                [self.scale_x, 0.0, 0.5 * self.scale_x - 0.5],
                [0.0, self.scale_y, 0.5 * self.scale_y - 0.5],
                [0.0, 0.0, 1.0],
            ]
        )

    def covariances_to_original(self, covariances: np.ndarray) -> np.ndarray:
        """Map ``(N, 2, 2)`` position covariances (pixels²) of the resized image to the original image."""
        scale = np.diag([self.scale_x, self.scale_y])
        return (scale @ covariances @ scale).astype(np.float32)


def resize_to_max_edge(image: np.ndarray, max_edge: int | None) -> tuple[np.ndarray, Resize]:
    """Shrink an image so that its longer side is at most ``max_edge`` pixels (never enlarges it).

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` array.
        max_edge: the largest allowed side in pixels, or ``None`` to keep the image as it is.

    Returns:
        The resized image and the :class:`Resize` that maps its coordinates back to ``image``.
    """
    height, width = image.shape[:2]
    if max_edge is None or max(height, width) <= max_edge:
        return image, Resize()
    return resize_long_side(image, max_edge)


def resize_long_side(image: np.ndarray, side: int) -> tuple[np.ndarray, Resize]:
    """Resize an image so that its longer side is ``side`` pixels, shrinking (area interpolation) or
    enlarging (bilinear) as needed, as LightGlue's extractors prepare images.

    Returns:
        The resized image and the :class:`Resize` that maps its coordinates back to ``image``.
    """
    height, width = image.shape[:2]
    factor = side / max(height, width)
    if factor <= 1:
        return resize_by_factor(image, factor)
    new_width, new_height = shrunk_size((width, height), factor)
    resized = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    return resized, Resize(width / new_width, height / new_height)


def shrunk_size(size: tuple[int, int], factor: float) -> tuple[int, int]:
    """``(width, height)`` of an image of ``size`` resized by ``factor`` (:func:`resize_by_factor`,
    :func:`resize_long_side`): each side rounded, at least one pixel."""
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


def resize_by_factor(image: np.ndarray, factor: float) -> tuple[np.ndarray, Resize]:
    """Shrink an image by ``factor`` in ``(0, 1]`` (area interpolation; 1 returns the image itself).

    Returns:
        The resized image (each side rounded, at least one pixel) and the :class:`Resize` that maps its
        coordinates back to ``image``.
    """
    if not 0 < factor <= 1:
        raise ValueError(f"factor must be in (0, 1], got {factor}")
    if factor == 1:
        return image, Resize()
    height, width = image.shape[:2]
    new_width, new_height = shrunk_size((width, height), factor)
    resized = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)
    return resized, Resize(width / new_width, height / new_height)


def image_size(image: np.ndarray) -> tuple[int, int]:
    """``(width, height)`` of an image array."""
    return int(image.shape[1]), int(image.shape[0])


def resize_for_network(
    image: np.ndarray, max_edge: int | None, multiple: int, upsample: float = 1.0
) -> tuple[np.ndarray, Resize]:
    """Shrink an image to at most ``max_edge`` pixels on its longer side, enlarge it by ``upsample``, then
    bring its sides to multiples of ``multiple`` (for networks whose feature grids need it).

    Each side is rounded to the nearest multiple (at least one), so the aspect ratio changes by at most half a
    multiple per side; the returned :class:`Resize` maps coordinates back exactly, per axis.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` array.
        max_edge: the largest allowed side in pixels, or ``None`` to keep the scale.
        multiple: the required divisor of both sides.
        upsample: a factor >= 1 applied after the shrinking (a finer pixel grid for sub-pixel matching).

    Returns:
        The resized image and the :class:`Resize` that maps its coordinates back to ``image``.
    """
    if not upsample >= 1.0:
        raise ValueError(f"upsample must be at least 1, got {upsample!r}")
    height, width = image.shape[:2]
    factor = 1.0 if max_edge is None or max(height, width) <= max_edge else max_edge / max(height, width)
    factor *= upsample
    # factor may be a NumPy scalar (upsample, max_edge from configs), whose round() is not an int in NumPy 1.x
    new_width = max(multiple, int(round(width * factor / multiple)) * multiple)  # noqa: RUF046
    new_height = max(multiple, int(round(height * factor / multiple)) * multiple)  # noqa: RUF046
    if (new_width, new_height) == (width, height):
        return image, Resize()
    shrinking = new_width * new_height < width * height
    resized = cv2.resize(
        image, (new_width, new_height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )
    return resized, Resize(width / new_width, height / new_height)

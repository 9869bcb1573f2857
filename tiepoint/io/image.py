"""Reading, validating and resizing images, with the bookkeeping that maps coordinates back.

Every image that enters tiepoint passes through :func:`as_image`, which turns paths, NumPy arrays and torch
tensors into one canonical form: a ``(H, W, 3)`` uint8 RGB NumPy array. Methods that work at another
resolution use :func:`resize_to_max_edge` and map their keypoints back with :meth:`Resize.to_original`,
so that every coordinate a user sees is in pixels of the image they passed.

Pixels are not rotated by EXIF orientation tags: coordinates refer to the pixel grid as stored in the file,
as in COLMAP.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError

ImageLike = str | os.PathLike | np.ndarray | Any
"""A path to an image file, a NumPy array or a torch tensor (see :func:`as_image`)."""

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp"})
"""File extensions (lower case) taken as images when a folder is searched."""

MIN_SIDE = 16
"""Smallest accepted width or height in pixels: no method finds tie points in a smaller image."""

MAX_PIXELS = 2**28
"""Largest accepted number of pixels (about 268 megapixels), a guard against decompression bombs."""


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as a ``(H, W, 3)`` uint8 RGB array.

    Greyscale images are repeated over three channels, alpha channels are dropped and 16-bit images are
    scaled to 8 bits.

    Raises:
        ImageError: the file is missing, empty, not an image, corrupt, too small or too large.
    """
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
    _check_pixel_count(data, path)
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        array = _decode_with_pillow(path)
    elif array.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
        array = cv2.cvtColor(array, code)
    return as_image(array, name=str(path))


def _check_pixel_count(data: bytes, path: Path) -> None:
    """Reject huge images from the file header, before decoding them."""
    import io

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None  # we apply our own limit below
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return  # not a format Pillow knows: OpenCV may still decode it, and as_image checks the size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"image {path} has {width}x{height} = {width * height / 1e6:.0f} megapixels, more than "
            f"tiepoint.io.image.MAX_PIXELS ({MAX_PIXELS / 1e6:.0f} MP); resize it first"
        )


def _decode_with_pillow(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.asarray(image).astype(np.uint16)
            return np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ImageError(f"cannot decode image file {path} (corrupt or not an image): {error}") from None


def as_image(image: ImageLike, name: str = "image") -> np.ndarray:
    """Convert an image given in any supported form to a ``(H, W, 3)`` uint8 RGB array.

    Accepted forms:
        * a path (``str`` or ``os.PathLike``), read with :func:`load_image`;
        * a NumPy array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, of dtype uint8,
          uint16 (scaled to 8 bits) or float in ``[0, 1]``;
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
    return resize_by_factor(image, max_edge / max(height, width))


def shrunk_size(size: tuple[int, int], factor: float) -> tuple[int, int]:
    """``(width, height)`` of an image of ``size`` shrunk by ``factor`` with :func:`resize_by_factor`."""
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

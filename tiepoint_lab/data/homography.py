"""Training pairs made from single photos by random homographies and photometric changes.

Coordinates follow :mod:`tiepoint.types`: pixel ``(x, y)``, the centre of the top-left pixel at ``(0, 0)``.
Both images of a pair are rendered from the photo itself (never one from the other), so the ground truth
homography ``H_0to1`` is exact and image 1 shows real photo content where it leaves image 0:

* image 0 is a crop of the photo at a random scale (``A0``: photo -> image 0, a scale and a shift);
* image 1 is the photo seen through ``H_0to1 @ A0``, with ``H_0to1`` from :func:`random_homography`.

Downscaling is anti-aliased: :func:`render` first shrinks the photo with area interpolation to the scale the
warp needs at the output's centre, then warps with bilinear interpolation.

Example:
    >>> from tiepoint_lab.data.photos import list_photos
    >>> pairs = HomographyPairs(list_photos("data/photos"), size=(256, 256), seed=0)  # doctest: +SKIP
    >>> item = pairs[0]; item["image0"].shape, item["H_0to1"].shape  # doctest: +SKIP
    (torch.Size([3, 256, 256]), torch.Size([3, 3]))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from tiepoint.errors import OptionError
from tiepoint.io.image import load_image


def random_homography(
    rng: np.random.Generator,
    size: tuple[int, int],
    max_rotation_deg: float = 180.0,
    scale: tuple[float, float] = (0.6, 1.6),
    perspective: float = 0.1,
    translation: float = 0.1,
) -> np.ndarray:
    """A random homography of an image onto a same-size image, in pixel coordinates.

    The image is rotated about its centre by an angle uniform in ``+-max_rotation_deg``, scaled by a factor
    log-uniform in ``scale`` (> 1 zooms in), shifted by up to ``translation`` times the image size along each
    axis, and its four corners are then moved independently by up to ``perspective`` times the image size,
    which gives the projective part.

    Args:
        rng: the random generator (the same state gives the same homography).
        size: ``(width, height)`` of the image, pixels.
        max_rotation_deg: largest in-plane rotation, degrees (0 for none).
        scale: ``(low, high)`` zoom factors, ``0 < low <= high``.
        perspective: largest corner displacement as a fraction of the image size (0 keeps it affine).
        translation: largest shift as a fraction of the image size.

    Returns:
        ``(3, 3)`` float64 ``H`` with ``H[2, 2] == 1`` mapping ``(x, y, 1)`` of the image to the warped one.
    """
    width, height = size
    if width < 2 or height < 2:
        raise OptionError(f"size must be at least (2, 2) pixels, got {size}")
    if not 0 < scale[0] <= scale[1]:
        raise OptionError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
    if perspective < 0 or translation < 0 or max_rotation_deg < 0:
        raise OptionError("max_rotation_deg, perspective and translation must be >= 0")
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)
    angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    zoom = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    rotation = zoom * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shift = rng.uniform(-translation, translation, 2) * (width, height)
    target = (corners - centre) @ rotation.T + centre + shift
    target = target + rng.uniform(-perspective, perspective, (4, 2)) * (width, height) * zoom
    H = cv2.getPerspectiveTransform(corners.astype(np.float32), target.astype(np.float32)).astype(np.float64)
    return H / H[2, 2]


def warp_points(points, H):
    """Map points through a homography.

    Args:
        points: ``(..., N, 2)`` pixel coordinates, a NumPy array or a torch tensor.
        H: ``(..., 3, 3)`` homographies of the same kind (batch dimensions broadcast).

    Returns:
        ``(..., N, 2)`` mapped points, of the type of ``points``. Points mapped to infinity (``w == 0``) come
        back as ``inf``; points behind the camera (``w < 0``) are still divided by ``w``.
    """
    if isinstance(points, torch.Tensor):
        H = torch.as_tensor(H, dtype=points.dtype, device=points.device)
        mapped = points @ H[..., :2, :2].transpose(-1, -2) + H[..., None, :2, 2]
        w = points @ H[..., 2:, :2].transpose(-1, -2) + H[..., None, 2:, 2]
        return mapped / w
    points, H = np.asarray(points, np.float64), np.asarray(H, np.float64)
    mapped = points @ np.swapaxes(H[..., :2, :2], -1, -2) + H[..., None, :2, 2]
    w = points @ np.swapaxes(H[..., 2:, :2], -1, -2) + H[..., None, 2:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return mapped / w


def _local_scale(M: np.ndarray, x: float, y: float) -> float:
    """sqrt(|det J|) of the map ``M`` at output point ``(x, y)``: output pixels per source pixel."""
    Minv = np.linalg.inv(M)
    p = Minv @ (x, y, 1.0)
    w = M[2] @ p
    # Jacobian of (M p)_xy / w at p (source coordinates)
    J = (M[:2, :2] * w - np.outer(M[:2] @ p, M[2, :2])) / (w * w)
    return float(np.sqrt(abs(np.linalg.det(J))))


def _crop_to_footprint(photo: np.ndarray, M: np.ndarray, size: tuple[int, int], margin: int):
    """The part of ``photo`` that ``M`` maps into the output (plus ``margin`` pixels), and ``M`` for that
    part."""
    width, height = size
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]])
    Minv = np.linalg.inv(M)
    if np.any(corners @ Minv[2, :2] + Minv[2, 2] <= 0):  # the output sees the horizon: keep the whole photo
        return photo, M
    source = warp_points(corners, Minv)
    ph, pw = photo.shape[:2]
    x0, y0 = (int(max(0, np.floor(source[:, i].min()) - margin)) for i in (0, 1))
    x1 = int(min(pw, np.ceil(source[:, 0].max()) + margin + 1))
    y1 = int(min(ph, np.ceil(source[:, 1].max()) + margin + 1))
    if x1 - x0 < 2 or y1 - y0 < 2:  # the output lies outside the photo
        x0, y0, x1, y1 = 0, 0, min(pw, 2), min(ph, 2)
    shift = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
    return photo[y0:y1, x0:x1], M @ shift


def render(
    photo: np.ndarray, M: np.ndarray, size: tuple[int, int], border: int = cv2.BORDER_CONSTANT
) -> np.ndarray:
    """The image seen through ``M`` (photo pixels -> output pixels), anti-aliased when it shrinks.

    Args:
        photo: ``(h, w, C)`` or ``(h, w)`` array.
        M: ``(3, 3)`` map from photo pixel coordinates to output pixel coordinates.
        size: ``(width, height)`` of the output.
        border: OpenCV border mode for output pixels that fall outside the photo (black by default).

    Returns:
        ``(height, width[, C])`` array of the photo's dtype.
    """
    width, height = size
    scale = _local_scale(M, (width - 1) / 2, (height - 1) / 2)
    photo, M = _crop_to_footprint(photo, M, size, margin=2 + int(np.ceil(1 / max(scale, 1e-3))))
    if scale < 0.9:  # shrink first with area interpolation, then the warp is close to 1:1 at the centre
        ph, pw = photo.shape[:2]
        new_w, new_h = max(2, round(pw * scale)), max(2, round(ph * scale))
        photo = cv2.resize(photo, (new_w, new_h), interpolation=cv2.INTER_AREA)
        fx, fy = new_w / pw, new_h / ph
        S = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1.0]])
        M = M @ np.linalg.inv(S)
    return cv2.warpPerspective(photo, M, (width, height), flags=cv2.INTER_LINEAR, borderMode=border)


def inside_mask(H: np.ndarray, size_from: tuple[int, int], size_to: tuple[int, int]) -> np.ndarray:
    """Which pixels of the target image come from inside the source image under ``H`` (source -> target).

    Args:
        H: ``(3, 3)`` homography from the source to the target image.
        size_from: ``(width, height)`` of the source image.
        size_to: ``(width, height)`` of the target image.

    Returns:
        ``(height_to, width_to)`` bool mask.
    """
    width, height = size_to
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    Hinv = np.linalg.inv(H)
    w = Hinv[2, 0] * xs + Hinv[2, 1] * ys + Hinv[2, 2]
    x = (Hinv[0, 0] * xs + Hinv[0, 1] * ys + Hinv[0, 2]) / w
    y = (Hinv[1, 0] * xs + Hinv[1, 1] * ys + Hinv[1, 2]) / w
    # w of the source point under H is 1/w here; both signs flip together, so w > 0 means "in front"
    return (w > 0) & (x >= -0.5) & (x <= size_from[0] - 0.5) & (y >= -0.5) & (y <= size_from[1] - 0.5)


@dataclass
class Photometric:
    """Random photometric changes of a float image in ``[0, 1]``; each is applied with its probability.

    Attributes:
        brightness: largest added offset.
        contrast: ``(low, high)`` factor around the mean.
        gamma: largest gamma (log-uniform in ``[1/gamma, gamma]``).
        saturation: ``(low, high)`` factor of the distance to grey.
        noise: largest standard deviation of additive Gaussian noise.
        blur: ``(low, high)`` sigma of a Gaussian blur, pixels.
        jpeg_quality: ``(low, high)`` JPEG quality of a re-compression.
        probabilities: chance of each change, by name.
    """

    brightness: float = 0.12
    contrast: tuple[float, float] = (0.7, 1.4)
    gamma: float = 1.5
    saturation: tuple[float, float] = (0.5, 1.5)
    noise: float = 0.03
    blur: tuple[float, float] = (0.3, 1.5)
    jpeg_quality: tuple[int, int] = (30, 90)
    probabilities: dict[str, float] = field(
        default_factory=lambda: {
            "brightness": 0.5,
            "contrast": 0.5,
            "gamma": 0.5,
            "saturation": 0.5,
            "noise": 0.5,
            "blur": 0.2,
            "jpeg": 0.15,
        }
    )

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Change ``(H, W, 3)`` float32 ``image`` in ``[0, 1]``; returns a new float32 array in ``[0, 1]``."""
        p = self.probabilities
        x = image.astype(np.float32, copy=True)
        draws = rng.random(7)  # one draw per change, always taken, so each change's randomness is stable
        if draws[0] < p.get("gamma", 0):
            x = np.power(np.clip(x, 0, 1), np.float32(np.exp(rng.uniform(-1, 1) * np.log(self.gamma))))
        if draws[1] < p.get("contrast", 0):
            mean = x.mean(dtype=np.float32)
            x = (x - mean) * np.float32(rng.uniform(*self.contrast)) + mean
        if draws[2] < p.get("brightness", 0):
            x += np.float32(rng.uniform(-self.brightness, self.brightness))
        if draws[3] < p.get("saturation", 0):
            grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[:, :, None]
            x = grey + (x - grey) * np.float32(rng.uniform(*self.saturation))
        if draws[4] < p.get("blur", 0):
            x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(*self.blur)))
        if draws[5] < p.get("noise", 0):
            x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(rng.uniform(0, self.noise))
        x = np.clip(x, 0.0, 1.0)
        if draws[6] < p.get("jpeg", 0):
            quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            ok, data = cv2.imencode(
                ".jpg", np.round(x * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality]
            )
            if ok:
                x = cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
        return x


class HomographyPairs(torch.utils.data.Dataset):
    """Pairs of views of photos related by known random homographies, for training keypoint models.

    Item ``i`` of epoch ``e`` uses photo ``i % len(photos)`` and a random state seeded by ``(seed, e, i)``:
    the same arguments, epoch and index always give the same pair (:meth:`set_epoch` changes the epoch; call
    it in each DataLoader worker's copy through the sampler, or before iterating).

    Args:
        photos: photo paths (e.g. from :func:`tiepoint_lab.data.photos.list_photos`).
        size: ``(height, width)`` of both images, pixels (torch's order, as in the returned tensors).
        rotation_deg: largest in-plane rotation of image 1, degrees.
        scale: ``(low, high)`` zoom of image 1 relative to image 0.
        perspective: largest corner displacement of the homography, as a fraction of the image size.
        translation: largest shift of the homography, as a fraction of the image size.
        crop_scale: ``(low, high)`` scale of image 0 relative to the photo; it is raised where needed so that
            image 0 always fits inside the photo.
        photometric: apply :class:`Photometric` changes to each image independently (``True`` for the default
            ranges, a :class:`Photometric` for others, ``False`` for none).
        appearance1: a change of image 1 used instead of ``photometric`` there, called as
            ``appearance1(image, rng, view=1)`` (e.g. :class:`~tiepoint_lab.data.appearance.Appearance`).
        min_overlap: redraw the homography (up to 10 times) while less than this share of the smaller of the
            two images' footprints overlaps.
        seed: the base seed.
        length: items per epoch (default: one per photo).
        cache: keep decoded photos in memory (per process).

    Each item is a dict:
        ``image0``, ``image1``: ``(3, H, W)`` float32 in ``[0, 1]``;
        ``H_0to1``: ``(3, 3)`` float32, maps pixel coordinates of image 0 to image 1;
        ``valid1``: ``(H, W)`` bool, image 1 pixels whose source lies inside image 0;
        ``clean1`` (with ``appearance1`` only): ``(3, H, W)`` image 1 before that change (for teachers);
        ``index``: the item index; ``photo``: the photo index.
    """

    def __init__(
        self,
        photos: Sequence[str | os.PathLike],
        size: tuple[int, int] = (256, 256),
        rotation_deg: float = 180.0,
        scale: tuple[float, float] = (0.6, 1.6),
        perspective: float = 0.1,
        translation: float = 0.1,
        crop_scale: tuple[float, float] = (0.3, 1.0),
        photometric: bool | Photometric = True,
        appearance1: Any = None,
        min_overlap: float = 0.5,
        seed: int = 0,
        length: int | None = None,
        cache: bool = True,
    ) -> None:
        self.photos = [Path(p) for p in photos]
        if not self.photos:
            raise OptionError("photos: HomographyPairs needs at least one photo")
        if len(size) != 2 or min(size) < 8:
            raise OptionError(f"size must be (height, width) with both >= 8, got {size}")
        if not 0 < crop_scale[0] <= crop_scale[1]:
            raise OptionError(f"crop_scale must be (low, high) with 0 < low <= high, got {crop_scale}")
        self.size = (int(size[0]), int(size[1]))
        self.homography_options = {
            "max_rotation_deg": rotation_deg,
            "scale": tuple(scale),
            "perspective": perspective,
            "translation": translation,
        }
        random_homography(np.random.default_rng(0), self.size[::-1], **self.homography_options)  # validates
        self.crop_scale = crop_scale
        self.photometric = Photometric() if photometric is True else (photometric or None)
        self.appearance1 = appearance1
        self.min_overlap = min_overlap
        self.seed = seed
        self.length = len(self.photos) if length is None else int(length)
        self.cache = cache
        self.epoch = 0
        self._photos: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Use the random pairs of this epoch (epoch 0 is the default; a validation set keeps it fixed)."""
        self.epoch = int(epoch)

    def photo(self, index: int) -> np.ndarray:
        """The ``(h, w, 3)`` uint8 RGB photo with this index."""
        if index in self._photos:
            return self._photos[index]
        image = load_image(self.photos[index])
        if self.cache:
            self._photos[index] = image
        return image

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pairs")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        photo_index = index % len(self.photos)
        photo = self.photo(photo_index)
        A0 = self._crop(rng, photo.shape[1], photo.shape[0])
        H = self._homography(rng)
        wh = self.size[::-1]
        image0 = render(photo, A0, wh)
        image1 = render(photo, H @ A0, wh)
        valid1 = inside_mask(H, wh, wh)
        image0, image1 = image0.astype(np.float32) / 255.0, image1.astype(np.float32) / 255.0
        if self.photometric is not None:
            image0 = self.photometric(image0, rng)
            if self.appearance1 is None:
                image1 = self.photometric(image1, rng)
        clean1 = image1
        if self.appearance1 is not None:
            image1 = self.appearance1(image1, rng, view=1)
        item = {
            "image0": torch.from_numpy(np.ascontiguousarray(image0.transpose(2, 0, 1))),
            "image1": torch.from_numpy(np.ascontiguousarray(image1.transpose(2, 0, 1))),
            "H_0to1": torch.from_numpy(H.astype(np.float32)),
            "valid1": torch.from_numpy(valid1),
            "index": index,
            "photo": photo_index,
        }
        if self.appearance1 is not None:
            item["clean1"] = torch.from_numpy(np.ascontiguousarray(clean1.transpose(2, 0, 1)))
        return item

    def _crop(self, rng: np.random.Generator, photo_w: int, photo_h: int) -> np.ndarray:
        """``A0``: photo -> image 0, a random scale and a crop whose pixel centres lie inside the photo."""
        height, width = self.size
        fit = max((width - 1) / max(photo_w - 1, 1), (height - 1) / max(photo_h - 1, 1))
        low, high = max(fit, self.crop_scale[0]), max(fit, self.crop_scale[1])
        s = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        ox = rng.uniform(0, max(0.0, photo_w - 1 - (width - 1) / s))
        oy = rng.uniform(0, max(0.0, photo_h - 1 - (height - 1) / s))
        return np.array([[s, 0, -s * ox], [0, s, -s * oy], [0, 0, 1.0]])

    def _homography(self, rng: np.random.Generator) -> np.ndarray:
        wh = self.size[::-1]
        grid = np.stack(
            np.meshgrid(np.linspace(0, wh[0] - 1, 16), np.linspace(0, wh[1] - 1, 16)), -1
        ).reshape(-1, 2)
        for _ in range(10):
            H = random_homography(rng, wh, **self.homography_options)
            if self.min_overlap <= 0 or _overlap(H, grid, wh) >= self.min_overlap:
                break
        return H


def _overlap(H: np.ndarray, grid: np.ndarray, wh: tuple[int, int]) -> float:
    """Share of grid points of one image that land inside the other (the larger of both directions)."""

    def inside(points: np.ndarray, M: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            w = points @ M[2, :2] + M[2, 2]
            mapped = warp_points(points, M)
            ok = (
                (w > 0)
                & (mapped >= -0.5).all(1)
                & (mapped[:, 0] <= wh[0] - 0.5)
                & (mapped[:, 1] <= wh[1] - 0.5)
            )
        return float(ok.mean())

    return max(inside(grid, H), inside(grid, np.linalg.inv(H)))

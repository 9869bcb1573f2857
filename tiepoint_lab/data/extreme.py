"""Synthetic extreme-viewpoint pairs from held-out photos: a plane seen frontally and from far off its normal.

The frontal image is a crop of a *val* photo (:func:`~tiepoint_lab.data.photos.list_photos`, never seen in
training); the other is the same photo plane seen by a pinhole camera (focal length :data:`FOCAL` times the
image width, narrow enough that no view reaches the horizon) whose optical axis makes the angle ``tilt_deg``
with the plane's normal about the axis at ``azimuth_deg`` in the frontal image (the view is compressed by
``cos(tilt_deg)`` across that axis), rolled by ``roll_deg`` (up to ±180) about its
axis, at the distance that shows the plane ``scale`` times larger than the frontal image at its centre;
then a random photometric change (:class:`~tiepoint_lab.data.homography.Photometric`). The ground truth
is the exact homography ``H`` from image 0 to image 1. Which image is the frontal one is drawn per pair
(``info["frontal"]``), so no method profits from knowing it. Rendering is anti-aliased
(:func:`~tiepoint_lab.data.homography.render`).

The pairs fall in difficulty bands (:data:`BANDS`). A draw whose image 0 covers less than
:data:`MIN_COVER` of image 1, or the reverse, is drawn again. Nothing is tuned on these pairs' images after
they are made: the bands and constants were set before any method ran on them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from tiepoint.errors import DatasetError
from tiepoint.evaluation.datasets import Dataset, Pair, image_size_from_header
from tiepoint.io.image import load_image
from tiepoint_lab.data.homography import Photometric, inside_mask, render
from tiepoint_lab.data.photos import list_photos

SIZE = (640, 480)
"""``(width, height)`` of both images."""
FOCAL = 5.0
"""Focal length of image 1's camera in image widths (half-diagonal field of view 7°: at a tilt of 80° no
pixel sees the horizon)."""
MIN_COVER = 0.03
"""The smallest share of each image that the other's content must cover."""


@dataclass(frozen=True)
class Band:
    """A difficulty band: ranges of the tilt (degrees) and of the scale (log-uniform); ``far_scale`` draws the
    scale from ``scale`` or its inverse range, for zooms away from 1 both ways."""

    tilt_deg: tuple[float, float]
    scale: tuple[float, float]
    far_scale: bool = False


BANDS: dict[str, Band] = {
    "tilt-45-60": Band((45.0, 60.0), (0.5, 2.0)),
    "tilt-60-70": Band((60.0, 70.0), (0.5, 2.0)),
    "tilt-70-80": Band((70.0, 80.0), (0.7, 1.4)),
    "zoom-2-4": Band((30.0, 60.0), (2.0, 4.0), far_scale=True),
}
"""The bands: tilts from 45° (t = 1.4) to 80° (t = 5.8); the last band zooms by 2-4 either way
(scale 0.25-0.5 or 2-4) at moderate tilts. Every band draws the roll uniformly in ±180°."""


def view_homography(
    tilt_deg: float, azimuth_deg: float, roll_deg: float, scale: float, size: tuple[int, int] = SIZE
) -> np.ndarray:
    """The homography from a frontal image of ``size`` to the view of its plane described in the module
    (``(3, 3)``, ``H[2, 2] = 1``); both images share ``size`` and their centres show the same point."""
    width, height = size
    f = FOCAL * width
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])

    def turn(axis: str, degrees: float) -> np.ndarray:
        c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        if axis == "z":
            return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])

    R = turn("z", roll_deg) @ turn("x", tilt_deg) @ turn("z", -azimuth_deg)
    depth = f / scale
    K = np.array([[f, 0.0, centre[0]], [0.0, f, centre[1]], [0.0, 0.0, 1.0]])
    to_plane = np.array([[1.0, 0.0, -centre[0]], [0.0, 1.0, -centre[1]], [0.0, 0.0, 1.0]])
    H = K @ np.column_stack([R[:, 0], R[:, 1], [0.0, 0.0, depth]]) @ to_plane
    return H / H[2, 2]


def _cover(H: np.ndarray, size: tuple[int, int]) -> float:
    """The smaller of the shares of image 1 covered by image 0 and of image 0 covered by image 1."""
    small = (size[0] // 8, size[1] // 8)
    S = np.diag([1 / 8, 1 / 8, 1.0])
    H_small = S @ H @ np.linalg.inv(S)
    return float(
        min(
            inside_mask(H_small, small, small).mean(),
            inside_mask(np.linalg.inv(H_small), small, small).mean(),
        )
    )


def draw_view(rng: np.random.Generator, band: Band, size: tuple[int, int] = SIZE) -> dict[str, float]:
    """Random view parameters in ``band`` with enough overlap (see :data:`MIN_COVER`)."""
    for _ in range(1000):
        low, high = band.scale
        scale = math.exp(rng.uniform(math.log(low), math.log(high)))
        if band.far_scale and rng.random() < 0.5:
            scale = 1.0 / scale
        view = {
            "tilt_deg": float(rng.uniform(*band.tilt_deg)),
            "azimuth_deg": float(rng.uniform(0.0, 360.0)),
            "roll_deg": float(rng.uniform(-180.0, 180.0)),
            "scale": float(scale),
        }
        if _cover(view_homography(**view, size=size), size) >= MIN_COVER:
            return view
    raise DatasetError(f"no view of band {band} covers {MIN_COVER:.0%} of both images")


def _frontal_crop(photo_size: tuple[int, int], rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """The ``(3, 3)`` map from pixels of a photo of ``photo_size`` ``(W, H)`` to a frontal crop of ``size``:
    the photo scaled to cover it 1 to 1.5 times, the crop placed at random."""
    width, height = photo_size
    zoom = max(size[0] / width, size[1] / height) * rng.uniform(1.0, 1.5)
    shift = [rng.uniform(0.0, max(0.0, extent * zoom - out)) for extent, out in zip((width, height), size)]
    return np.array([[zoom, 0.0, -shift[0]], [0.0, zoom, -shift[1]], [0.0, 0.0, 1.0]])


def _loader(path: os.PathLike, A0: np.ndarray, H: np.ndarray, seed: list[int], swapped: bool) -> Any:
    """The pair's loader: the frontal crop, the view through ``H`` with its photometric change, in that
    order or ``swapped``."""

    def load() -> tuple[np.ndarray, np.ndarray]:
        photo = load_image(path)
        frontal = render(photo, A0, SIZE, border=cv2.BORDER_REFLECT)
        view = render(photo, H @ A0, SIZE).astype(np.float32) / 255.0
        changed = np.round(Photometric()(view, np.random.default_rng(seed)) * 255.0).astype(np.uint8)
        return (changed, frontal) if swapped else (frontal, changed)

    return load


def extreme_pairs(photos: str | os.PathLike, pairs_per_band: int = 25, seed: int = 29) -> Dataset:
    """The benchmark: ``pairs_per_band`` pairs in each of :data:`BANDS` from the *val* photos of the corpus at
    ``photos`` (photos taken in turn), as a homography :class:`~tiepoint.evaluation.datasets.Dataset` whose
    pairs render on :meth:`~tiepoint.evaluation.datasets.Pair.load` (the same seed gives the same images).
    Each pair's ``info`` holds its photo and view parameters; its ``group`` is its band."""
    held_out = list_photos(photos, split="val")
    if not held_out:
        raise DatasetError(f"the photo corpus at {photos} has no val photos")
    pairs = []
    sizes = {path: image_size_from_header(path) for path in held_out}
    for band_index, (name, band) in enumerate(BANDS.items()):
        for number in range(pairs_per_band):
            rng = np.random.default_rng([seed, band_index, number])
            path = held_out[(band_index * pairs_per_band + number) % len(held_out)]
            A0 = _frontal_crop(sizes[path], rng, SIZE)
            view = draw_view(rng, band)
            H = view_homography(**view)
            swapped = bool(rng.random() < 0.5)  # the frontal image is image 0 or image 1
            pairs.append(
                Pair(
                    f"{name}/{number:03d}",
                    loader=_loader(path, A0, H, [seed, band_index, number, 1], swapped),
                    H=np.linalg.inv(H) if swapped else H,
                    group=name,
                    info={
                        "photo": path.name,
                        "frontal": 1 if swapped else 0,
                        **{key: round(value, 3) for key, value in view.items()},
                    },
                )
            )
    return Dataset(
        "extreme",
        "homography",
        pairs,
        f"synthetic extreme-viewpoint pairs from {len(held_out)} held-out photos, {len(BANDS)} bands, "
        f"seed {seed}",
    )

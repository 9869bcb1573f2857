"""The extractor interface: an image in, :class:`~tiepoint.types.Features` in original pixels out.

:class:`ExtractorWrapper` is the base of what runs an extractor differently (on an image pyramid, on a larger
candidate pool); the registry composes wrappers around the extractor a name builds, each with its own options.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

import numpy as np

from ..config import check_positive, make_config
from ..errors import OptionError
from ..io.image import (
    MIN_SIDE,
    ImageLike,
    Resize,
    as_image,
    image_size,
    resize_long_side,
    resize_to_max_edge,
)
from ..types import Features


class Extractor:
    """Base class of keypoint detectors and descriptors.

    Subclasses set :attr:`name`, extend :class:`Config` and implement :meth:`_extract`, which sees the image
    already validated and resized. :meth:`extract` maps the keypoints back to the original image.
    """

    name: ClassVar[str] = ""
    binary: ClassVar[bool] = False
    """True when the descriptors are packed bits (compared by Hamming distance)."""

    @dataclass
    class Config:
        max_keypoints: int = 2048
        """Keep at most this many keypoints, those with the highest scores."""
        resize: int | None = None
        """Shrink the image so that its longer side is at most this many pixels before extraction."""
        enlarge: bool = False
        """With ``resize``, also enlarge smaller images so that their longer side is exactly ``resize``."""

        def __post_init__(self) -> None:
            check_positive(self.max_keypoints, "max_keypoints")
            check_positive(self.resize, "resize", allow_none=True)
            if self.resize is not None and self.resize < MIN_SIDE:
                raise ValueError(f"resize must be at least {MIN_SIDE} pixels, got {self.resize}")

    def __init__(self, **options) -> None:
        self.config = make_config(self.Config, options, f"extractor {self.name!r}")

    def extract(self, image: ImageLike) -> Features:
        """Detect and describe keypoints.

        Args:
            image: a path, a ``(H, W[, C])`` array or a ``([1, ]C, H, W)`` tensor (see :func:`as_image`).

        Returns:
            Features with ``(N, 2)`` keypoints in pixels of ``image``, sorted by decreasing score,
            ``N <= config.max_keypoints``.
        """
        array = as_image(image)
        c = self.config
        if c.resize is not None and c.enlarge:
            resized, resize = resize_long_side(array, c.resize)
        else:
            resized, resize = resize_to_max_edge(array, c.resize)
        features = self.extract_resized(resized)
        return replace(in_original_pixels(features, resize), image_size=image_size(array))

    def extract_resized(self, image: np.ndarray) -> Features:
        """The ``max_keypoints`` best features of a validated image already resized by ``config.resize``, in
        its pixels: the stage an :class:`ExtractorWrapper` replaces."""
        return top_k(self._extract(image), self.config.max_keypoints)

    def _extract(self, image: np.ndarray) -> Features:
        """Extract from a validated ``(H, W, 3)`` uint8 RGB image; coordinates in this image's pixels."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Every option of this extractor with its value (wrappers add their own)."""
        return asdict(self.config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


class ExtractorWrapper(Extractor):
    """An extractor run differently by a wrapper with options of its own.

    Subclasses set :attr:`label`, declare a ``Config`` dataclass whose defaults leave the extractor as it is
    (the registry wraps an extractor only when a wrapper's options differ from them) and override
    :meth:`extract_resized`. The wrapped extractor's :attr:`config` (``max_keypoints``, ``resize``, ...) stays
    its own; the wrapper's options are :attr:`wrapper_config`. Wrappers do not nest.
    """

    label: ClassVar[str] = ""
    """What the wrapper is, with its options, for error messages (e.g. ``"a pyramid (scales)"``)."""

    @dataclass
    class Config:
        pass

    def __init__(self, extractor: Extractor, **options) -> None:
        if isinstance(extractor, ExtractorWrapper):
            raise OptionError(
                f"extractor {extractor.name!r}: {self.label} cannot be combined with {extractor.label}"
            )
        self.extractor = extractor
        self.wrapper_config = make_config(self.Config, options, f"extractor {extractor.name!r}")

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.extractor.name

    @property
    def binary(self) -> bool:  # type: ignore[override]
        return self.extractor.binary

    @property
    def config(self):
        """The wrapped extractor's options."""
        return self.extractor.config

    def _extract(self, image: np.ndarray) -> Features:
        return self.extractor._extract(image)

    def settings(self) -> dict[str, Any]:
        return {**self.extractor.settings(), **asdict(self.wrapper_config)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extractor!r}, {self.wrapper_config})"


def in_original_pixels(features: Features, resize: Resize) -> Features:
    """Features of a resized image with their keypoints and covariances mapped back by ``resize``."""
    covariances = (
        None if features.covariances is None else resize.covariances_to_original(features.covariances)
    )
    return replace(features, keypoints=resize.to_original(features.keypoints), covariances=covariances)


def top_k(features: Features, k: int) -> Features:
    """The ``k`` highest-scoring features, sorted by decreasing score (stable for equal scores)."""
    order = np.argsort(-features.scores, kind="stable")[:k]
    return features.subset(order)


def concatenate(features: list[Features]) -> Features:
    """The features of several extractions of one image, one after the other (covariances kept only when all
    have them)."""
    covariances = [f.covariances for f in features]
    return replace(
        features[0],
        keypoints=np.concatenate([f.keypoints for f in features]),
        scores=np.concatenate([f.scores for f in features]),
        descriptors=np.concatenate([f.descriptors for f in features]),
        covariances=None if any(c is None for c in covariances) else np.concatenate(covariances),
    )

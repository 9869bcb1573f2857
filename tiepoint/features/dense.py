"""Matching with upsampled features of a frozen backbone: library keypoints, dense descriptors.

Keypoints come from a library detector (OpenCV SIFT by default); the descriptor of each keypoint is the
backbone's low-resolution map upsampled at that position (:mod:`tiepoint.upsamplers`), L2-normalised. Only
the keypoints are queried, so no full-resolution map is ever built. Registered as ``<backbone>-<upsampler>``
(``dinov2s-loftup``, ``effl0-bilinear``, ...); match with ``+mnn``.

Backbone maps are kept in a small in-process cache keyed by the image's bytes, so benchmarking several
upsamplers of one backbone runs the backbone once per image.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..backbones import BACKBONES, backbone_layer, build_backbone, image_tensor, pad_to_stride, tiled_features
from ..errors import OptionError
from ..io.image import MIN_SIDE, image_size
from ..types import Features
from ..upsamplers import METHODS, TRAINED
from ..upsamplers.weights import from_pretrained, training_record
from .base import Extractor

_CACHE_ENTRIES = 64
_maps: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = OrderedDict()


def _backbone(name: str, layer: int | None = None):
    """The one shared instance of a backbone at a layer (see :func:`backbone_layer`), so that asking with and
    without the default layer builds and runs a single network."""
    return _backbone_at(name, backbone_layer(name, layer))


@lru_cache(maxsize=4)
def _backbone_at(name: str, layer: int | None):
    return build_backbone(name, layer)


@lru_cache(maxsize=16)
def _upsampler(method: str, backbone: str):
    return from_pretrained(method, backbone, _backbone(backbone).dim)


def backbone_maps(
    backbone: str, padded: torch.Tensor, tiles: int, layer: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The backbone's ``(1, C, h, w)`` map of a padded ``(1, 3, H, W)`` image and, when ``tiles > 0``, its
    tiled map (see :func:`tiepoint.backbones.tiled_features`); cached by image content."""
    network = _backbone(backbone, layer)
    key = (
        backbone,
        getattr(network, "layer", None),
        tuple(padded.shape),
        hashlib.sha1(padded.numpy().tobytes()).hexdigest(),
    )
    low, tiled = _maps.pop(key, (None, None))
    if low is None:
        low = network(padded).half()
    if tiles and (tiled is None or tiled.shape[-1] != tiles * low.shape[-1]):
        tiled = tiled_features(network, padded, tiles).half()
    _maps[key] = (low, tiled)
    while len(_maps) > _CACHE_ENTRIES:
        _maps.popitem(last=False)
    return low.float(), None if tiled is None else tiled.float()


class DenseFeatures(Extractor):
    """Keypoints of a library detector described by an upsampled frozen-backbone map."""

    name = "dense"

    @dataclass
    class Config(Extractor.Config):
        backbone: str = "dinov2s"
        """``dinov2s`` or ``effl0``."""
        upsampler: str = "bilinear"
        """``bilinear``, ``bicubic``, ``jbu``, ``loftup`` or ``featsharp``."""
        detector: str = "sift"
        """A registered extractor whose keypoints are used (its descriptors are not)."""
        resize: int | None = 640
        """Longer side of the image the backbone sees (the backbone's cost grows with the area)."""
        layer: int | None = None
        """``dinov2s`` only: the transformer layer, 1..12 (default
        :data:`tiepoint.backbones.dinov2.DEFAULT_LAYER`). The learned upsamplers work only on the layer their
        shipped weights were trained on (in their record)."""

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.backbone not in BACKBONES:
                raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {self.backbone!r}")
            if self.upsampler not in METHODS:
                raise ValueError(f"upsampler must be one of {METHODS}, got {self.upsampler!r}")
            if self.resize is not None and self.resize < MIN_SIDE:
                raise ValueError(f"resize must be at least {MIN_SIDE} pixels, got {self.resize}")
            self.layer = backbone_layer(self.backbone, self.layer)

    def __init__(self, **options) -> None:
        super().__init__(**options)
        from ..registry import get_extractor

        if self.config.detector.split("-")[0] in BACKBONES:
            raise OptionError(
                f"detector {self.config.detector!r} must be a keypoint extractor such as 'sift'"
            )
        self.detector = get_extractor(self.config.detector, max_keypoints=self.config.max_keypoints)
        backbone, method = self.config.backbone, self.config.upsampler
        trained = training_record(backbone, method).get("layer")
        if method in TRAINED and trained != self.config.layer:
            raise OptionError(
                f"the shipped {method} weights for {backbone} are trained on layer {trained}, "
                f"not layer {self.config.layer}"
            )
        self.upsampler = _upsampler(method, backbone)

    def describe(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        """Unit-length upsampled features ``(N, C)`` float32 at ``(N, 2)`` pixel positions of an ``(H, W, 3)``
        uint8 image."""
        stride = _backbone(self.config.backbone, self.config.layer).stride
        padded = pad_to_stride(image_tensor(image), stride)
        low, tiled = backbone_maps(self.config.backbone, padded, self.upsampler.tiles, self.config.layer)
        if len(keypoints) == 0:
            return np.zeros((0, low.shape[1]), np.float32)
        with torch.inference_mode():
            state = self.upsampler.prepare(padded, low, tiled)
            points = torch.from_numpy(np.ascontiguousarray(keypoints, np.float32))[None]
            chunks = [
                self.upsampler.query(state, points[:, i : i + 4096]) for i in range(0, points.shape[1], 4096)
            ]
            descriptors = F.normalize(torch.cat(chunks, 1)[0], dim=-1)
        return descriptors.numpy().astype(np.float32)

    def _extract(self, image: np.ndarray) -> Features:
        detected = self.detector.extract(image)
        return Features(
            detected.keypoints, detected.scores, self.describe(image, detected.keypoints), image_size(image)
        )

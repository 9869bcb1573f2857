"""Feature upsamplers for frozen backbones: interpolation baselines, JBU, LoftUp and FeatSharp.

``build_upsampler(method, dim)`` makes an untrained one; :func:`tiepoint.upsamplers.weights.from_pretrained`
loads the shipped weights for a backbone.
"""

from __future__ import annotations

from ..errors import UnknownMethodError
from .base import Bicubic, Bilinear, Upsampler
from .featsharp import FeatSharp
from .jbu import JBU
from .loftup import LoftUp

METHODS = ("bilinear", "bicubic", "jbu", "loftup", "featsharp")
TRAINED = ("jbu", "loftup", "featsharp")


def build_upsampler(method: str, dim: int) -> Upsampler:
    """An untrained upsampler for ``dim``-channel features (the baselines have no parameters)."""
    if method == "bilinear":
        return Bilinear()
    if method == "bicubic":
        return Bicubic()
    if method == "jbu":
        return JBU()
    if method == "loftup":
        return LoftUp(dim)
    if method == "featsharp":
        return FeatSharp(dim)
    raise UnknownMethodError(f"unknown upsampler {method!r}; available: {', '.join(METHODS)}")


__all__ = [
    "JBU",
    "METHODS",
    "TRAINED",
    "Bicubic",
    "Bilinear",
    "FeatSharp",
    "LoftUp",
    "Upsampler",
    "build_upsampler",
]

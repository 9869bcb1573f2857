"""The frozen-backbone interface: an image batch in, a low-resolution feature map out.

A backbone is any object with the attributes and method of :class:`Backbone`; subclassing it is optional
(``isinstance(obj, Backbone)`` only checks the protocol). Coordinates: feature cell ``(i, j)`` of a backbone
with stride ``s`` covers pixels ``[j*s, (j+1)*s) x [i*s, (i+1)*s)`` of the image padded on the right and
bottom to a multiple of ``s`` (see :func:`pad_to_stride`); its centre is pixel
``((j + 0.5) s - 0.5, (i + 0.5) s - 0.5)``.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ImageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class Backbone(Protocol):
    """A frozen feature extractor.

    Attributes:
        name: registry name (``"dinov2s"``).
        stride: pixels per feature cell.
        dim: feature channels ``C``.
    """

    name: str
    stride: int
    dim: int

    def __call__(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` float RGB in [0, 1], ``H`` and ``W`` multiples of ``stride`` ->
        ``(B, C, H / stride, W / stride)`` float32 features (no gradient)."""
        ...


class FrozenBackbone:
    """Shared checks and normalisation for the shipped backbones; subclasses implement :meth:`_forward`."""

    name: ClassVar[str] = ""
    stride: ClassVar[int] = 1
    dim: ClassVar[int] = 0

    def __call__(self, images: Tensor) -> Tensor:
        images = check_images(images, self.stride)
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        with torch.inference_mode():
            return self._forward((images - mean) / std).float()

    def _forward(self, normalised: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(stride={self.stride}, dim={self.dim})"


def check_images(images: Tensor, stride: int, name: str = "images") -> Tensor:
    """Validate a ``(B, 3, H, W)`` float batch whose sides are multiples of ``stride``."""
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ImageError(f"{name} must be a (B, 3, H, W) tensor, got {shape}")
    if not images.is_floating_point():
        raise ImageError(f"{name} must be float RGB in [0, 1], got dtype {images.dtype}")
    height, width = images.shape[-2:]
    if height % stride or width % stride or height == 0 or width == 0:
        raise ImageError(
            f"{name}: height and width must be positive multiples of {stride}, "
            f"got {height}x{width} (use pad_to_stride)"
        )
    return images.float()


def pad_to_stride(images: Tensor, stride: int) -> Tensor:
    """Pad ``(B, 3, H, W)`` on the right and bottom (edge replication) to multiples of ``stride``."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % stride, -width % stride
    if pad_h == 0 and pad_w == 0:
        return images
    return F.pad(images, (0, pad_w, 0, pad_h), mode="replicate")


def image_tensor(image) -> Tensor:
    """An ``(H, W, 3)`` uint8 array -> ``(1, 3, H, W)`` float tensor in [0, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tiled_features(backbone: Backbone, images: Tensor, tiles: int) -> Tensor:
    """The backbone's map of ``images`` enlarged ``tiles`` times, run as ``tiles x tiles`` tiles of the
    original size (as FeatSharp does): ``(B, 3, H, W)`` -> ``(B, C, tiles H / s, tiles W / s)``."""
    batch, _, height, width = images.shape
    enlarged = F.interpolate(images, scale_factor=tiles, mode="bilinear", align_corners=False).clamp_(0, 1)
    crops = (
        enlarged.reshape(batch, 3, tiles, height, tiles, width)
        .permute(0, 2, 4, 1, 3, 5)
        .reshape(-1, 3, height, width)
    )
    maps = torch.cat([backbone(crops[start : start + 4]) for start in range(0, crops.shape[0], 4)])
    h, w = maps.shape[-2:]
    maps = maps.reshape(batch, tiles, tiles, -1, h, w).permute(0, 3, 1, 4, 2, 5)
    return maps.reshape(batch, -1, tiles * h, tiles * w)

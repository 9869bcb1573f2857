"""CLIDD: cross-layer independent deformable description (Yao et al., arXiv 2601.09230).

A small convolutional backbone produces four feature levels (strides 2, 4, 8, 16). A detection head at
1/2 resolution, upsampled to full resolution by PixelShuffle, gives a score map; keypoints are its local
maxima, refined to sub-pixel positions. Descriptors are never computed densely: for each keypoint,

1. the *cross-layer predictor* reads the keypoint's feature vector from every level (bilinear),
   concatenates them and predicts ``M`` sampling offsets per level;
2. the *layer-independent sampler* samples each level at the keypoint plus its offsets and aggregates the
   samples linearly into a ``descriptor_dim`` vector, which is L2-normalised
   (:mod:`tiepoint.nn.sampler`, fused kernel on CPU).

Nine sizes, :data:`SIZES`, from Atom (``A48``, about 4 thousand parameters) to Ultra (``U128``, about
4.4 million). The source fixes only the end points; the widths, depths and sample counts in between are
our choices. Images are read as grayscale.

Shipped weights are in ``tiepoint/weights/clidd_<size>.pt`` with a JSON training record beside each;
:meth:`CLIDDModel.from_pretrained` loads them, and :class:`CLIDD` is the registered extractor.
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
from ..errors import OptionError
from ..nn.blocks import ResidualBlock, conv_bn_relu
from ..nn.detection import detect_textured
from ..nn.image import MIN_CONTRAST, gray, gray_input
from ..nn.sampler import grid_sample_points, sample_aggregate, sample_aggregate_reference
from ..nn.weights import load_weights
from ..types import Features
from ..weights import WEIGHTS_DIR
from .base import Extractor

__all__ = ["CLIDD", "SIZES", "CLIDDConfig", "CLIDDModel", "parameter_count", "weights_path"]

STRIDES = (2, 4, 8, 16)
"""Stride of each feature level relative to the input image."""


@dataclass(frozen=True)
class CLIDDConfig:
    """Architecture of one CLIDD size.

    Attributes:
        channels: channels of the four levels (strides 2, 4, 8, 16).
        blocks: residual blocks after the first convolution of each level (high resolution stays shallow).
        descriptor_dim: ``C_desc``, the descriptor length.
        samples: ``M``, sampling points per level per keypoint.
        predictor_hidden: hidden width of the offset predictor (0: a single linear layer).
        head_channels: hidden width of the detection head (0: a single 1x1 convolution).
    """

    channels: tuple[int, int, int, int]
    blocks: tuple[int, int, int, int]
    descriptor_dim: int
    samples: int
    predictor_hidden: int = 0
    head_channels: int = 0


SIZES: dict[str, CLIDDConfig] = {
    "A48": CLIDDConfig((4, 8, 8, 16), (0, 0, 0, 0), 48, 1),
    "P64": CLIDDConfig((4, 8, 16, 24), (0, 0, 0, 1), 64, 1),
    "N64": CLIDDConfig((8, 16, 24, 32), (0, 0, 1, 1), 64, 2, 16, 8),
    "T64": CLIDDConfig((8, 16, 32, 48), (0, 1, 1, 1), 64, 2, 32, 8),
    "S96": CLIDDConfig((8, 24, 48, 64), (0, 1, 1, 2), 96, 4, 64, 16),
    "M128": CLIDDConfig((16, 32, 64, 96), (0, 1, 2, 2), 128, 4, 128, 16),
    "G128": CLIDDConfig((16, 48, 96, 128), (1, 1, 2, 2), 128, 6, 128, 32),
    "E128": CLIDDConfig((24, 64, 128, 160), (1, 2, 2, 3), 128, 8, 256, 32),
    "U128": CLIDDConfig((32, 80, 144, 192), (1, 2, 3, 3), 128, 8, 256, 32),
}
"""The nine sizes by name; the number is the descriptor length."""


# ----------------------------------------------------------------------------------------- building blocks


def _mlp(in_features: int, hidden: int, out_features: int) -> nn.Module:
    if hidden == 0:
        return nn.Linear(in_features, out_features)
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features)
    )


# ------------------------------------------------------------------------------------------------- model


class CLIDDModel(nn.Module):
    """The CLIDD network: backbone, detection head, cross-layer predictor and layer-independent sampler.

    Args:
        size: a key of :data:`SIZES`, or a :class:`CLIDDConfig`.
    """

    def __init__(self, size: str | CLIDDConfig = "A48") -> None:
        super().__init__()
        self.size = size if isinstance(size, str) else "custom"
        self.config = SIZES[size] if isinstance(size, str) else size
        c = self.config
        levels, previous = [], 1
        for channels, blocks in zip(c.channels, c.blocks, strict=True):
            levels.append(
                nn.Sequential(
                    conv_bn_relu(previous, channels, stride=2),
                    *[ResidualBlock(channels) for _ in range(blocks)],
                )
            )
            previous = channels
        self.levels = nn.ModuleList(levels)

        head_in = c.channels[0] + c.channels[1]
        if c.head_channels:
            self.head = nn.Sequential(
                conv_bn_relu(head_in, c.head_channels), nn.Conv2d(c.head_channels, 4, 1)
            )
        else:
            self.head = nn.Conv2d(head_in, 4, 1)
        self.shuffle = nn.PixelShuffle(2)

        self.predictor = _mlp(sum(c.channels), c.predictor_hidden, len(STRIDES) * c.samples * 2)
        # Zero offsets at the start: every sample begins at its keypoint, and training spreads them.
        last = self.predictor if isinstance(self.predictor, nn.Linear) else self.predictor[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.aggregation = nn.ParameterList(
            nn.Parameter(
                torch.randn(c.samples, channels, c.descriptor_dim) / (sum(c.channels) * c.samples) ** 0.5
            )
            for channels in c.channels
        )
        self.aggregation_bias = nn.Parameter(torch.zeros(c.descriptor_dim))
        self.use_fused_sampler = True

    # ---------------------------------------------------------------------------------------- stages

    def features(self, image: Tensor) -> tuple[list[Tensor], Tensor]:
        """Feature levels and detection logits.

        Args:
            image: ``(B, 1, H, W)`` grayscale in [0, 1] (3 channels are converted).

        Returns:
            levels: four ``(B, C_l, ceil(H / s_l), ceil(W / s_l))`` maps for strides ``s_l`` = 2, 4, 8, 16
            (computed on the image padded to a multiple of 16).
            logits: ``(B, 1, H, W)`` detection logits.
        """
        image = gray(image)
        height, width = image.shape[-2:]
        pad_h, pad_w = (-height) % 16, (-width) % 16
        x = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image
        levels = []
        for level in self.levels:
            x = level(x)
            levels.append(x)
        fine = torch.cat(
            [
                levels[0],
                F.interpolate(levels[1], size=levels[0].shape[-2:], mode="bilinear", align_corners=False),
            ],
            1,
        )
        logits = self.shuffle(self.head(fine))[..., :height, :width]
        return levels, logits

    def describe(self, levels: list[Tensor], keypoints: Tensor) -> Tensor:
        """Descriptors at given keypoints.

        Args:
            levels: the feature maps from :meth:`features`.
            keypoints: ``(B, N, 2)`` positions ``(x, y)`` in pixels of the input image.

        Returns:
            ``(B, N, descriptor_dim)`` L2-normalised descriptors.
        """
        c = self.config
        batch, count = keypoints.shape[:2]
        centres = [((keypoints + 0.5) / stride - 0.5)[:, :, None] for stride in STRIDES]  # (B, N, 1, 2) each
        context = torch.cat(
            [
                grid_sample_points(level, centre)[..., 0]
                for level, centre in zip(levels, centres, strict=True)
            ],
            1,
        )
        offsets = self.predictor(context.transpose(1, 2)).view(batch, count, len(STRIDES), c.samples, 2)
        positions = [centre + offsets[:, :, index] for index, centre in enumerate(centres)]
        sample = sample_aggregate if self.use_fused_sampler else sample_aggregate_reference
        descriptors = sample(levels, positions, list(self.aggregation), self.aggregation_bias)
        return F.normalize(descriptors, dim=-1)

    def forward(
        self,
        image: Tensor,
        max_keypoints: int = 2048,
        nms_radius: int = 2,
        threshold: float | None = None,
        min_contrast: float = MIN_CONTRAST,
    ) -> dict[str, Tensor]:
        """Detect keypoints (:func:`~tiepoint.nn.detection.detect_textured`, whose arguments these are) and
        describe them.

        Returns:
            keypoints: ``(B, K', 2)`` in pixels of ``image``; scores: ``(B, K')``;
            descriptors: ``(B, K', descriptor_dim)`` L2-normalised.
        """
        levels, logits = self.features(image)
        keypoints, scores = detect_textured(logits, image, max_keypoints, nms_radius, threshold, min_contrast)
        return {"keypoints": keypoints, "scores": scores, "descriptors": self.describe(levels, keypoints)}

    # ------------------------------------------------------------------------------------ weights

    @classmethod
    def from_pretrained(cls, size: str = "A48", path: str | Path | None = None) -> CLIDDModel:
        """A model with shipped (or given) weights, in eval mode.

        Raises:
            WeightsError: when no weights ship for ``size``.
            CorruptFileError: when the file is unreadable or does not fit the architecture.
        """
        if size not in SIZES:
            raise OptionError(f"unknown CLIDD size {size!r}; sizes: {', '.join(SIZES)}")
        path = Path(path) if path is not None else weights_path(size)
        shipped = [name for name in SIZES if weights_path(name).is_file()]
        return load_weights(
            path, lambda _: cls(size), f"CLIDD {size}", f"shipped sizes: {', '.join(shipped) or 'none'}"
        )


def weights_path(size: str) -> Path:
    """Where the shipped weights of a size live (``tiepoint/weights/clidd_<size>.pt``)."""
    return WEIGHTS_DIR / f"clidd_{size.lower()}.pt"


def training_record(size: str) -> dict[str, Any]:
    """The JSON training record shipped beside a size's weights (empty when there is none)."""
    path = weights_path(size).with_suffix(".json")
    return json.loads(path.read_text()) if path.is_file() else {}


# --------------------------------------------------------------------------------------------- extractor


class CLIDD(Extractor):
    """CLIDD keypoints and descriptors with shipped weights (see :data:`SIZES`)."""

    name = "clidd"

    @dataclass
    class Config(Extractor.Config):
        size: str = "A48"
        """Which of :data:`SIZES`."""
        weights: str | None = None
        """A weights file to use instead of the shipped one."""
        nms_radius: int = 2
        threshold: float | None = None
        """Minimum detection score (sigmoid); None keeps the ``max_keypoints`` best."""
        min_contrast: float = MIN_CONTRAST
        """No keypoint where the 9x9 window around it is flat: intensity standard deviation below this, on a
        [0, 1] scale (default: one grey level; 0 allows every pixel)."""
        fused_sampler: bool = True
        """Use the fused C++ sampler on CPU (falls back to PyTorch when it cannot be built)."""
        device: str = "cpu"

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.size not in SIZES:
                raise ValueError(f"size must be one of {', '.join(SIZES)}, got {self.size!r}")
            check_fraction(self.min_contrast, "min_contrast")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model = CLIDDModel.from_pretrained(self.config.size, self.config.weights).to(self.config.device)
        self.model.use_fused_sampler = self.config.fused_sampler

    @torch.inference_mode()
    def _extract(self, image: np.ndarray) -> Features:
        c = self.config
        output = self.model(
            gray_input(image, c.device), c.max_keypoints, c.nms_radius, c.threshold, c.min_contrast
        )
        height, width = image.shape[:2]
        return Features(
            keypoints=output["keypoints"][0].cpu().numpy().astype(np.float32),
            scores=output["scores"][0].cpu().numpy().astype(np.float32),
            descriptors=output["descriptors"][0].cpu().numpy().astype(np.float32),
            image_size=(width, height),
        )


def parameter_count(size: str | CLIDDConfig) -> int:
    """Trainable parameters of a size (BatchNorm statistics excluded)."""
    return sum(p.numel() for p in CLIDDModel(size).parameters())

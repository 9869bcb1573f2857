"""Glue: tiepoint's learned context matcher of sparse keypoints, trained here.

The architecture follows LightGlue (Lindenberger, Sarlin and Pollefeys, ICCV 2023; see
:mod:`tiepoint.matchers.lightglue`, whose position encoding and update MLP it reuses), at a width and depth
that suit a CPU, with padding masks so that pairs with different keypoint counts run in one batch:

1. **Input**: descriptors projected from ``input_dim`` to ``dim``; keypoints centred on the image and divided
   by half its longer side.
2. **Positional encoding**: learned Fourier angles that rotate the queries and keys of self-attention.
3. **Layers**: self-attention in each image, then bidirectional cross-attention with a shared query/key
   projection. Padded (and pruned) points are never attended to.
4. **Assignment** after any layer: a double softmax of the similarity of projected points plus the log
   matchability ``log sigmoid(z)`` of both points, so that unmatched points are explicit.
5. **Adaptive computation**: after each layer but the last, a confidence head rates each point; a pair stops
   once more than ``depth_confidence`` of its points are confident, and its confident points that are not
   matchable (at most ``1 - width_confidence``) are pruned. Pairs of a batch stop independently; pruned points
   are dropped from the tensors, so later layers cost less.

Weights are trained per extractor (:data:`SHIPPED`): ``tiepoint/weights/glue_<extractor>.pt`` with a JSON
training record beside it. :class:`GlueMatcher` is the registered descriptor matcher (``clidd-s96+glue``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import OptionError
from ..nn.weights import load_with_architecture
from ..weights import glue_extractors
from .lightglue import (
    NetworkMatcher,
    _FourierEncoding,
    _rotate,
    _update_mlp,
    check_thresholds,
    normalize_keypoints,
    threshold_options,
)

__all__ = ["SHIPPED", "Glue", "GlueConfig", "GlueMatcher", "LayerScores", "mutual_best", "weights_name"]

NEG = -1e9
"""Logit given to pairs involving a padded or pruned point (``exp`` of it is exactly 0 in float32)."""


def weights_name(extractor: str) -> str:
    """The stem of the weights trained on ``extractor``'s descriptors (``glue_clidd_s96``)."""
    return "glue_" + extractor.replace("-", "_")


SHIPPED: tuple[str, ...] = tuple(glue_extractors())
"""Extractors whose Glue weights ship with the package."""


@dataclass(frozen=True)
class GlueConfig:
    """Architecture and inference thresholds.

    Attributes:
        input_dim: descriptor size of the extractor (96 for CLIDD S96, 128 for SIFT).
        dim: width of the network.
        heads: attention heads (``dim / heads`` channels each, even).
        layers: self+cross attention layers.
        depth_confidence: a pair stops once this fraction of its points is confident; ``<= 0``: every layer.
        width_confidence: prune confident points with matchability at most ``1 - width_confidence``;
            ``<= 0``: never prune.
        filter_threshold: keep mutual best pairs whose assignment probability exceeds this (training
            validates at 512 keypoints per image with 0.1; :class:`GlueMatcher` uses less at denser ones).
    """

    input_dim: int = 96
    dim: int = 128
    heads: int = 4
    layers: int = 6
    depth_confidence: float = 0.95
    width_confidence: float = 0.99
    filter_threshold: float = 0.1

    def architecture(self) -> dict[str, int]:
        """The fields that shape the weights (stored with them)."""
        return {"input_dim": self.input_dim, "dim": self.dim, "heads": self.heads, "layers": self.layers}


@dataclass
class LayerScores:
    """What the assignment head says after one layer (training outputs).

    Attributes:
        log_assignment: ``(B, N, M)`` log probability that ``i`` and ``j`` match (padded pairs: about -1e9).
        unmatched0: ``(B, N)`` log probability that a point of image 0 has no match.
        unmatched1: ``(B, M)``.
        confidence0: ``(B, N)`` the confidence head's probability (computed on detached features, so that
            training it does not change the matching); ``None`` after the last layer.
        confidence1: ``(B, M)`` or ``None``.
    """

    log_assignment: Tensor
    unmatched0: Tensor
    unmatched1: Tensor
    confidence0: Tensor | None
    confidence1: Tensor | None


def _gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x`` ``(B, N, ...)`` -> ``(B, K, ...)`` rows ``index`` ``(B, K)`` of each batch item."""
    shape = index.shape + (1,) * (x.dim() - 2)
    return x.gather(1, index.reshape(shape).expand(*index.shape, *x.shape[2:]))


def mutual_best(log_assignment: Tensor, mask0: Tensor, mask1: Tensor, threshold: float):
    """The mutual best pairs of a ``(B, N, M)`` log assignment: for each side, the best column (row) of each
    point, its probability where the pair is mutual (else 0) and whether it is kept (mutual, real and above
    ``threshold``)."""
    best0, best1 = log_assignment.max(2), log_assignment.max(1)
    arange0 = torch.arange(log_assignment.shape[1], device=log_assignment.device)
    arange1 = torch.arange(log_assignment.shape[2], device=log_assignment.device)
    mutual0 = (best1.indices.gather(1, best0.indices) == arange0) & mask0
    mutual1 = (best0.indices.gather(1, best1.indices) == arange1) & mask1
    score0 = torch.where(mutual0, best0.values.exp(), 0.0)
    score1 = torch.where(mutual1, score0.gather(1, best1.indices), 0.0)
    valid0 = mutual0 & (score0 > threshold)
    valid1 = mutual1 & valid0.gather(1, best1.indices)
    return (best0.indices, score0, valid0), (best1.indices, score1, valid1)


def _kept_first(mask: Tensor) -> Tensor:
    """``(B, N)`` -> ``(B, K)`` column order putting each row's unmasked points first (in their order), cut to
    the largest count ``K`` of unmasked points in a row."""
    return torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, : int(mask.sum(1).max())]


def _attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """Softmax attention of ``q`` ``(B, H, N, dh)`` over ``k``, ``v`` ``(B, H, M, dh)`` where ``mask``
    ``(B, M)`` is True -> ``(B, H, N, dh)``. Every row of ``mask`` holds a True (the network drops pairs with
    an empty side)."""
    if torch.jit.is_tracing():  # ONNX export: the exporter cannot take SDPA with a mask; same arithmetic
        sim = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(~mask[:, None, None, :], NEG)
        return sim.softmax(-1) @ v
    # without padding no mask at all, so that the fused (flash) kernel runs
    return F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask.all() else mask[:, None, None, :])


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn = _update_mlp(dim)

    def forward(self, x: Tensor, encoding: tuple[Tensor, Tensor], mask: Tensor) -> Tensor:
        """``x`` ``(B, N, dim)``, ``encoding`` cosines and sines ``(B, 1, N, dim / heads)``, ``mask``
        ``(B, N)`` points that may be attended to -> ``(B, N, dim)``."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # (B, H, N, dh) each
        context = _attention(_rotate(q, encoding), _rotate(k, encoding), v, mask)
        return x + self.ffn(torch.cat([x, self.out(context.transpose(1, 2).flatten(-2))], -1))


class _CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qk = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.ffn = _update_mlp(dim)

    def forward(self, x0: Tensor, x1: Tensor, mask0: Tensor, mask1: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, N, dim)`` and ``(B, M, dim)`` with masks ``(B, N)``, ``(B, M)`` -> both updated by
        messages from the unmasked points of the other image."""

        def split(x: Tensor) -> Tensor:
            return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, H, N, dh)

        qk0, qk1, v0, v1 = split(self.qk(x0)), split(self.qk(x1)), split(self.v(x0)), split(self.v(x1))
        # the similarity is symmetric; two fused attention calls are faster on a CPU than one shared
        # (B, H, N, M) matrix softmaxed along both axes
        message0, message1 = _attention(qk0, qk1, v1, mask1), _attention(qk1, qk0, v0, mask0)
        x0 = x0 + self.ffn(torch.cat([x0, self.out(message0.transpose(1, 2).flatten(-2))], -1))
        x1 = x1 + self.ffn(torch.cat([x1, self.out(message1.transpose(1, 2).flatten(-2))], -1))
        return x0, x1


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = _SelfAttention(dim, heads)
        self.cross_attn = _CrossAttention(dim, heads)

    def forward(self, x0, x1, encoding0, encoding1, mask0, mask1):
        x0, x1 = self.self_attn(x0, encoding0, mask0), self.self_attn(x1, encoding1, mask1)
        return self.cross_attn(x0, x1, mask0, mask1)


class _Assignment(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.matchability = nn.Linear(dim, 1)
        self.project = nn.Linear(dim, dim)

    def forward(self, x0: Tensor, x1: Tensor, mask0: Tensor, mask1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """-> ``(B, N, M)`` log assignment, ``(B, N)`` and ``(B, M)`` matchability logits."""
        scale = x0.shape[-1] ** -0.25  # on both sides before the product: no pass over the (N, M) matrix
        sim = (self.project(x0) * scale) @ (self.project(x1) * scale).transpose(-1, -2)
        # traced (ONNX export), the mask always applies, as in _attention: a test on the data is not traced
        if torch.jit.is_tracing() or not (mask0.all() and mask1.all()):
            sim = sim.masked_fill(~(mask0[:, :, None] & mask1[:, None, :]), NEG)
        z0, z1 = self.matchability(x0).squeeze(-1), self.matchability(x1).squeeze(-1)
        certainty = F.logsigmoid(z0)[:, :, None] + F.logsigmoid(z1)[:, None, :]
        return sim.log_softmax(-1) + sim.log_softmax(-2) + certainty, z0, z1


class Glue(nn.Module):
    """The matcher network; see the module docstring. :meth:`from_pretrained` loads shipped weights."""

    def __init__(self, config: GlueConfig = GlueConfig()) -> None:
        super().__init__()
        c = self.config = config
        if c.dim % c.heads or (c.dim // c.heads) % 2:
            raise OptionError(f"dim {c.dim} must split into {c.heads} heads of an even size")
        self.input_proj = nn.Linear(c.input_dim, c.dim)
        self.posenc = _FourierEncoding(c.dim // c.heads)
        self.layers = nn.ModuleList(_Layer(c.dim, c.heads) for _ in range(c.layers))
        self.assignment = nn.ModuleList(_Assignment(c.dim) for _ in range(c.layers))
        self.confidence = nn.ModuleList(nn.Linear(c.dim, 1) for _ in range(c.layers - 1))
        thresholds = [0.8 + 0.1 * math.exp(-4.0 * i / c.layers) for i in range(c.layers)]
        self.register_buffer("confidence_thresholds", torch.tensor(thresholds), persistent=False)

    @classmethod
    def from_pretrained(
        cls, extractor: str = "clidd-s96", path: str | os.PathLike | None = None, **thresholds: float
    ) -> Glue:
        """The network trained on ``extractor``'s descriptors (shipped weights, or ``path``), in eval mode,
        with inference ``thresholds`` (``depth_confidence``, ...) replacing the defaults.

        Raises:
            WeightsError: no weights ship for ``extractor`` and no ``path`` is given.
            CorruptFileError: the file is unreadable or does not fit the architecture.
        """
        hint = f"Glue weights ship for: {', '.join(SHIPPED) or 'none'}"
        return load_with_architecture(
            cls, lambda **arch: GlueConfig(**arch, **thresholds), path, weights_name(extractor), "Glue", hint
        )

    def _encode(self, keypoints0, keypoints1, descriptors0, descriptors1, image_size0, image_size1):
        c = self.config
        if descriptors0.shape[-1] != c.input_dim or descriptors1.shape[-1] != c.input_dim:
            raise ValueError(
                f"this Glue takes {c.input_dim}-d descriptors, got {descriptors0.shape[-1]} and "
                f"{descriptors1.shape[-1]}"
            )
        x0, x1 = self.input_proj(descriptors0.float()), self.input_proj(descriptors1.float())
        encoding0 = self.posenc(normalize_keypoints(keypoints0.float(), image_size0))
        encoding1 = self.posenc(normalize_keypoints(keypoints1.float(), image_size1))
        return x0, x1, encoding0, encoding1

    @staticmethod
    def _masks(keypoints0: Tensor, keypoints1: Tensor, mask0: Tensor | None, mask1: Tensor | None):
        def full(keypoints: Tensor, mask: Tensor | None) -> Tensor:
            return torch.ones_like(keypoints[..., 0], dtype=torch.bool) if mask is None else mask.bool()

        return full(keypoints0, mask0), full(keypoints1, mask1)

    def layer_scores(
        self, keypoints0: Tensor, keypoints1: Tensor, descriptors0: Tensor, descriptors1: Tensor,
        image_size0: Tensor, image_size1: Tensor, mask0: Tensor | None = None, mask1: Tensor | None = None,
    ) -> list[LayerScores]:  # fmt: skip
        """Run every layer and score the assignment after each (for training with deep supervision).

        Args: as :meth:`forward`.

        Returns:
            One :class:`LayerScores` per layer.
        """
        mask0, mask1 = self._masks(keypoints0, keypoints1, mask0, mask1)
        x0, x1, encoding0, encoding1 = self._encode(
            keypoints0, keypoints1, descriptors0, descriptors1, image_size0, image_size1
        )
        scores = []
        for index, layer in enumerate(self.layers):
            x0, x1 = layer(x0, x1, encoding0, encoding1, mask0, mask1)
            log_assignment, z0, z1 = self.assignment[index](x0, x1, mask0, mask1)
            last = index == len(self.layers) - 1
            confidence0 = None if last else self.confidence[index](x0.detach()).squeeze(-1).sigmoid()
            confidence1 = None if last else self.confidence[index](x1.detach()).squeeze(-1).sigmoid()
            scores.append(
                LayerScores(log_assignment, F.logsigmoid(-z0), F.logsigmoid(-z1), confidence0, confidence1)
            )
        return scores

    @torch.inference_mode()
    def forward(
        self, keypoints0: Tensor, keypoints1: Tensor, descriptors0: Tensor, descriptors1: Tensor,
        image_size0: Tensor, image_size1: Tensor, mask0: Tensor | None = None, mask1: Tensor | None = None,
    ) -> dict[str, Tensor]:  # fmt: skip
        """Match the keypoints of ``B`` image pairs, padded to common counts ``N`` and ``M``.

        Args:
            keypoints0: ``(B, N, 2)`` pixel coordinates ``(x, y)`` in image 0.
            keypoints1: ``(B, M, 2)`` in image 1.
            descriptors0: ``(B, N, input_dim)`` float descriptors.
            descriptors1: ``(B, M, input_dim)``.
            image_size0: ``(B, 2)`` image 0's ``(width, height)`` in the pixels of ``keypoints0``.
            image_size1: ``(B, 2)`` image 1's.
            mask0: ``(B, N)`` bool, True for real keypoints (default: all), False for padding.
            mask1: ``(B, M)`` bool.

        Returns:
            ``matches0`` ``(B, N)`` int64: the keypoint of image 1 matched to each of image 0, or -1;
            ``scores0`` ``(B, N)``: the assignment probability of mutual best pairs (also those below
            ``filter_threshold``), 0 elsewhere; ``matches1`` ``(B, M)`` and ``scores1`` ``(B, M)`` the same
            from image 1; ``layers`` ``(B,)`` int64: layers run per pair; ``kept0`` ``(B, N)`` and ``kept1``
            ``(B, M)`` bool: real points not pruned when the pair stopped.
        """
        c = self.config
        batch, n, m = keypoints0.shape[0], keypoints0.shape[1], keypoints1.shape[1]
        mask0, mask1 = self._masks(keypoints0, keypoints1, mask0, mask1)
        x0, x1, encoding0, encoding1 = self._encode(
            keypoints0, keypoints1, descriptors0, descriptors1, image_size0, image_size1
        )
        device = x0.device
        out = {
            "matches0": torch.full((batch, n), -1, dtype=torch.long, device=device),
            "matches1": torch.full((batch, m), -1, dtype=torch.long, device=device),
            "scores0": x0.new_zeros(batch, n),
            "scores1": x0.new_zeros(batch, m),
            "layers": torch.zeros(batch, dtype=torch.long, device=device),
            "kept0": torch.zeros((batch, n), dtype=torch.bool, device=device),
            "kept1": torch.zeros((batch, m), dtype=torch.bool, device=device),
        }
        # the pairs still running (rows of the full batch) and, per pair, the original index of each column
        rows = torch.arange(batch, device=device)
        index0 = torch.arange(n, device=device).expand(batch, n)
        index1 = torch.arange(m, device=device).expand(batch, m)
        counts = mask0.sum(1) + mask1.sum(1)  # confident fractions are of the real points
        running = (mask0.any(1) & mask1.any(1)).nonzero().squeeze(1)  # an empty side: nothing to match
        state = [t[running] for t in (rows, x0, x1, *encoding0, *encoding1, mask0, mask1, index0, index1)]
        rows, x0, x1, cos0, sin0, cos1, sin1, mask0, mask1, index0, index1 = state
        for layer in range(c.layers):
            if len(rows) == 0:
                break
            x0, x1 = self.layers[layer](x0, x1, (cos0, sin0), (cos1, sin1), mask0, mask1)
            if layer == c.layers - 1:
                self._finish(out, layer, rows, x0, x1, mask0, mask1, index0, index1)
                break
            threshold = self.confidence_thresholds[layer]
            confident0 = self.confidence[layer](x0).squeeze(-1).sigmoid() > threshold
            confident1 = self.confidence[layer](x1).squeeze(-1).sigmoid() > threshold
            stop = torch.zeros(len(rows), dtype=torch.bool, device=device)
            if c.depth_confidence > 0:
                unsure = (~confident0 & mask0).sum(1) + (~confident1 & mask1).sum(1)
                stop = 1.0 - unsure / counts[rows] > c.depth_confidence
                if stop.any():
                    done = stop.nonzero().squeeze(1)
                    finished = (t[done] for t in (x0, x1, mask0, mask1, index0, index1))
                    self._finish(out, layer, rows[done], *finished)
            if c.width_confidence > 0:
                assignment = self.assignment[layer]
                unmatchable0 = assignment.matchability(x0).squeeze(-1).sigmoid() <= 1 - c.width_confidence
                unmatchable1 = assignment.matchability(x1).squeeze(-1).sigmoid() <= 1 - c.width_confidence
                mask0 = mask0 & ~(confident0 & unmatchable0)
                mask1 = mask1 & ~(confident1 & unmatchable1)
                emptied = ~stop & (~mask0.any(1) | ~mask1.any(1))  # everything pruned on a side: no matches
                out["layers"][rows[emptied]] = layer + 1
                stop |= emptied
            keep = (~stop).nonzero().squeeze(1)
            rows, x0, x1, cos0, sin0, cos1, sin1, mask0, mask1, index0, index1 = (
                t[keep] for t in (rows, x0, x1, cos0, sin0, cos1, sin1, mask0, mask1, index0, index1)
            )
            # drop the pruned points: each pair's remaining points first, cut to the longest such list
            if len(rows):
                order0, order1 = _kept_first(mask0), _kept_first(mask1)
                x0, mask0, index0 = (_gather_rows(t, order0) for t in (x0, mask0, index0))
                x1, mask1, index1 = (_gather_rows(t, order1) for t in (x1, mask1, index1))
                cos0, sin0 = (_gather_rows(t[:, 0], order0)[:, None] for t in (cos0, sin0))
                cos1, sin1 = (_gather_rows(t[:, 0], order1)[:, None] for t in (cos1, sin1))
        return out

    def match_every_layer(
        self, keypoints0: Tensor, keypoints1: Tensor, descriptors0: Tensor, descriptors1: Tensor,
        image_size0: Tensor, image_size1: Tensor,
    ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Every layer on every point (no early exit, no pruning, no padding): a graph without control flow
        that depends on the data, for export. Arguments as :meth:`forward`.

        Returns:
            ``matches0`` ``(B, N)`` int64 (-1: none) and ``scores0`` ``(B, N)``, as :meth:`forward`'s.
        """
        mask0, mask1 = self._masks(keypoints0, keypoints1, None, None)
        x0, x1, encoding0, encoding1 = self._encode(
            keypoints0, keypoints1, descriptors0, descriptors1, image_size0, image_size1
        )
        for layer in self.layers:
            x0, x1 = layer(x0, x1, encoding0, encoding1, mask0, mask1)
        log_assignment, _, _ = self.assignment[-1](x0, x1, mask0, mask1)
        (best0, score0, valid0), _ = mutual_best(log_assignment, mask0, mask1, self.config.filter_threshold)
        return torch.where(valid0, best0, -1), score0

    def _finish(self, out, layer, rows, x0, x1, mask0, mask1, index0, index1) -> None:
        """Write the matches of the pairs ``rows`` after ``layer`` into ``out``."""
        log_assignment, _, _ = self.assignment[layer](x0, x1, mask0, mask1)
        (best0, score0, valid0), (best1, score1, valid1) = mutual_best(
            log_assignment, mask0, mask1, self.config.filter_threshold
        )
        match0 = torch.where(valid0, index1.gather(1, best0), -1)
        match1 = torch.where(valid1, index0.gather(1, best1), -1)
        for b, row in enumerate(rows.tolist()):
            real0, real1 = index0[b][mask0[b]], index1[b][mask1[b]]
            out["matches0"][row, real0] = match0[b][mask0[b]]
            out["matches1"][row, real1] = match1[b][mask1[b]]
            out["scores0"][row, real0] = score0[b][mask0[b]]
            out["scores1"][row, real1] = score1[b][mask1[b]]
            out["kept0"][row, real0] = True
            out["kept1"][row, real1] = True
            out["layers"][row] = layer + 1


class GlueMatcher(NetworkMatcher):
    """Glue as a descriptor matcher, with the weights trained for the extractor it is paired with (the
    registry sets ``features`` from the method's name: ``clidd-s96+glue``)."""

    name = "glue"

    @dataclass
    class Config:
        features: str = "clidd-s96"
        """The extractor whose descriptors the weights were trained on (set by the method's name)."""
        depth_confidence: float = 0.95
        """Stop early once this fraction of the points is confident; ``-1``: run every layer."""
        width_confidence: float = 0.99
        """Prune confident unmatchable points (matchability at most ``1 -`` this); ``-1``: never prune."""
        filter_threshold: float = 0.005
        """Keep mutual best pairs with an assignment probability above this. The probabilities spread as
        keypoints get denser: 0.005 was chosen on the held-out rendered scenes at 2048 keypoints per image
        (0.1, the best on the 512-keypoint training pairs, keeps too few matches there)."""
        weights: str | None = None
        """A weights file; default: the shipped ``glue_<features>.pt``."""

        def __post_init__(self) -> None:
            check_thresholds(self)

    def __init__(self, **options) -> None:
        super().__init__(**options)
        c = self.config
        self.net = Glue.from_pretrained(c.features, c.weights, **threshold_options(c))

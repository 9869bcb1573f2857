"""Descriptor matching by nearest neighbours: mutual nearest neighbours, Lowe's ratio test, dual-softmax.

The functions work on batches of similarity matrices ``(B, N, M)`` with optional padding masks, so that
images with different keypoint counts can be matched together (pad descriptors, pass masks). They return
LightGlue/hloc-style assignments: ``matches0[b, i]`` is the index in image 1 matched to keypoint ``i`` of
image 0, or -1, with its score in ``scores0[b, i]``.

Similarity is the cosine of the descriptors: float descriptors are L2-normalised; binary descriptors are
unpacked to ±1 vectors, whose cosine is ``1 - 2 * hamming / bits``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import check_positive, make_config
from ..types import Features


def unpack_bits(descriptors: torch.Tensor) -> torch.Tensor:
    """``(..., K)`` uint8 packed bits to ``(..., 8K)`` float ±1 vectors."""
    shifts = torch.arange(7, -1, -1, device=descriptors.device, dtype=torch.uint8)
    bits = (descriptors.unsqueeze(-1) >> shifts) & 1
    return bits.flatten(-2).float() * 2 - 1


def similarity_matrix(desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of two descriptor sets.

    Args:
        desc0: ``(B, N, D)`` float (L2-normalised) or ``(B, N, K)`` uint8 packed bits.
        desc1: ``(B, M, D)`` of the same kind.

    Returns:
        ``(B, N, M)`` float similarities in ``[-1, 1]``.
    """
    if desc0.dtype != desc1.dtype:
        raise ValueError(f"cannot compare {desc0.dtype} descriptors with {desc1.dtype} descriptors")
    if desc0.dtype == torch.uint8:
        desc0, desc1 = unpack_bits(desc0), unpack_bits(desc1)
        return desc0 @ desc1.transpose(-1, -2) / desc0.shape[-1]
    return desc0.float() @ desc1.float().transpose(-1, -2)


def _masked(sim: torch.Tensor, mask0: torch.Tensor | None, mask1: torch.Tensor | None) -> torch.Tensor:
    """Set similarities of padded keypoints to -inf so that they are never chosen."""
    if mask0 is None and mask1 is None:
        return sim
    valid = torch.ones_like(sim, dtype=torch.bool)
    if mask0 is not None:
        valid &= mask0[:, :, None]
    if mask1 is not None:
        valid &= mask1[:, None, :]
    return sim.masked_fill(~valid, float("-inf"))


def _mutual(score: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mutual best entries of a ``(B, N, M)`` score matrix: ``matches0 (B, N)`` (-1 if none), ``scores0``."""
    batch, n, m = score.shape
    if n == 0 or m == 0:
        empty = torch.full((batch, n), -1, dtype=torch.long, device=score.device)
        return empty, torch.zeros((batch, n), device=score.device)
    best0, nn0 = score.max(dim=2)
    nn1 = score.argmax(dim=1)
    mutual = nn1.gather(1, nn0) == torch.arange(n, device=score.device)[None]
    valid = mutual & torch.isfinite(best0)
    matches0 = torch.where(valid, nn0, torch.full_like(nn0, -1))
    scores0 = torch.where(valid, best0, torch.zeros_like(best0))
    return matches0, scores0


def mutual_nearest_neighbours(
    sim: torch.Tensor,
    mask0: torch.Tensor | None = None,
    mask1: torch.Tensor | None = None,
    min_similarity: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep pairs that are each other's nearest neighbour.

    Args:
        sim: ``(B, N, M)`` similarities.
        mask0: ``(B, N)`` bool, True for real (not padded) keypoints of image 0.
        mask1: ``(B, M)`` bool, the same for image 1.
        min_similarity: also reject pairs less similar than this.

    Returns:
        ``matches0`` ``(B, N)`` int64 (-1 for unmatched) and ``scores0`` ``(B, N)`` (the similarity).
    """
    matches0, scores0 = _mutual(_masked(sim, mask0, mask1))
    if min_similarity is not None:
        reject = scores0 < min_similarity
        matches0 = matches0.masked_fill(reject, -1)
        scores0 = scores0.masked_fill(reject, 0.0)
    return matches0, scores0


def _distance(sim: torch.Tensor, binary: bool) -> torch.Tensor:
    """Descriptor distance from cosine similarity: Euclidean for unit float vectors, Hamming fraction for
    bits."""
    if binary:
        return (1.0 - sim) / 2.0
    return torch.sqrt(torch.clamp(2.0 - 2.0 * sim, min=0.0))


def ratio_test(
    sim: torch.Tensor,
    ratio: float = 0.8,
    binary: bool = False,
    mutual: bool = True,
    mask0: torch.Tensor | None = None,
    mask1: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lowe's ratio test: keep a nearest neighbour when it is clearly closer than the second nearest.

    Distances are Euclidean for float descriptors and Hamming (as a fraction of the bits) for binary ones.

    Args:
        sim: ``(B, N, M)`` similarities.
        ratio: the largest accepted ratio of nearest to second-nearest distance.
        binary: whether the similarities come from binary descriptors.
        mutual: also require the pair to be mutual nearest neighbours.
        mask0, mask1: padding masks as in :func:`mutual_nearest_neighbours`.

    Returns:
        ``matches0`` ``(B, N)`` int64 and ``scores0`` ``(B, N)`` (the similarity of each match).
    """
    sim = _masked(sim, mask0, mask1)
    _, n, m = sim.shape
    if n == 0 or m == 0:
        return _mutual(sim)
    top = sim.topk(min(2, m), dim=2)
    nearest = _distance(top.values[..., 0], binary)
    if m > 1:
        second = _distance(top.values[..., 1], binary)
        passes = nearest <= ratio * second
        passes |= torch.isinf(top.values[..., 1])  # a single real candidate: nothing to compare with
    else:
        passes = torch.ones_like(nearest, dtype=torch.bool)
    passes &= torch.isfinite(top.values[..., 0])
    if mutual:
        matches0, _ = _mutual(sim)
        passes &= matches0 == top.indices[..., 0]
    matches0 = torch.where(passes, top.indices[..., 0], torch.full_like(top.indices[..., 0], -1))
    scores0 = torch.where(passes, top.values[..., 0], torch.zeros_like(nearest))
    return matches0, scores0


def dual_softmax(
    sim: torch.Tensor,
    temperature: float = 0.1,
    threshold: float = 0.0,
    mask0: torch.Tensor | None = None,
    mask1: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual-softmax matching: the product of row and column softmaxes, then mutual nearest neighbours.

    Args:
        sim: ``(B, N, M)`` similarities.
        temperature: softmax temperature (smaller is sharper).
        threshold: reject matches whose dual-softmax probability is below this.
        mask0, mask1: padding masks as in :func:`mutual_nearest_neighbours`.

    Returns:
        ``matches0`` ``(B, N)`` int64 and ``scores0`` ``(B, N)``: the match probability in ``[0, 1]``.
    """
    sim = _masked(sim, mask0, mask1) / temperature
    _, n, m = sim.shape
    if n == 0 or m == 0:
        return _mutual(sim)
    prob = torch.nan_to_num(sim.softmax(dim=1) * sim.softmax(dim=2), nan=0.0)
    prob = prob.masked_fill(torch.isinf(sim), float("-inf"))
    matches0, scores0 = _mutual(prob)
    reject = scores0 < threshold
    return matches0.masked_fill(reject, -1), scores0.masked_fill(reject, 0.0)


class DescriptorMatcher:
    """Base class of matchers that pair two :class:`Features` by their descriptors."""

    name = ""
    supports_binary = True

    @dataclass
    class Config:
        pass

    def __init__(self, **options) -> None:
        self.config = make_config(self.Config, options, f"matcher {self.name!r}")

    def match(self, features0: Features, features1: Features) -> tuple[np.ndarray, np.ndarray]:
        """Match two feature sets.

        Returns:
            ``(K, 2)`` int64 index pairs into ``features0`` and ``features1``, and ``(K,)`` float32 scores.
        """
        if features0.binary != features1.binary:
            raise ValueError("cannot match binary descriptors against float descriptors")
        if features0.binary and not self.supports_binary:
            raise ValueError(
                f"matcher {self.name!r} needs float descriptors; use 'mnn' or 'ratio' for binary ones"
            )
        desc0 = torch.from_numpy(np.ascontiguousarray(features0.descriptors))[None]
        desc1 = torch.from_numpy(np.ascontiguousarray(features1.descriptors))[None]
        if desc0.shape[-1] != desc1.shape[-1]:
            raise ValueError(f"descriptor sizes differ: {desc0.shape[-1]} and {desc1.shape[-1]}")
        with torch.inference_mode():
            matches0, scores0 = self.match_batch(similarity_matrix(desc0, desc1), binary=features0.binary)
        matches0, scores0 = matches0[0].numpy(), scores0[0].numpy()
        index0 = np.flatnonzero(matches0 >= 0)
        indices = np.stack([index0, matches0[index0]], axis=1).astype(np.int64)
        return indices, scores0[index0].astype(np.float32)

    def match_batch(
        self,
        sim: torch.Tensor,
        binary: bool = False,
        mask0: torch.Tensor | None = None,
        mask1: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Match a batch of ``(B, N, M)`` similarity matrices; returns ``matches0`` and ``scores0``
        ``(B, N)``."""
        raise NotImplementedError


class MutualNearestNeighbour(DescriptorMatcher):
    """Mutual nearest neighbours, optionally above a minimum similarity."""

    name = "mnn"

    @dataclass
    class Config:
        min_similarity: float | None = None
        """Also reject pairs whose cosine similarity is below this (in ``[-1, 1]``); ``None``: no minimum."""

        def __post_init__(self) -> None:
            if self.min_similarity is not None and not -1 <= self.min_similarity <= 1:
                raise ValueError(f"min_similarity must be in [-1, 1] or None, got {self.min_similarity!r}")

    def match_batch(self, sim, binary=False, mask0=None, mask1=None):
        return mutual_nearest_neighbours(sim, mask0, mask1, self.config.min_similarity)


class RatioTest(DescriptorMatcher):
    """Lowe's ratio test (mutual by default)."""

    name = "ratio"

    @dataclass
    class Config:
        ratio: float = 0.8
        """The largest accepted ratio of nearest to second-nearest distance, in ``(0, 1]`` (1 accepts every
        nearest neighbour, so a larger value would mean nothing)."""
        mutual: bool = True

        def __post_init__(self) -> None:
            if not 0 < self.ratio <= 1:
                raise ValueError(f"ratio must be in (0, 1], got {self.ratio!r}")

    def match_batch(self, sim, binary=False, mask0=None, mask1=None):
        return ratio_test(sim, self.config.ratio, binary, self.config.mutual, mask0, mask1)


class DualSoftmax(DescriptorMatcher):
    """Dual-softmax with mutual nearest neighbours (float descriptors only)."""

    name = "dualsoftmax"
    supports_binary = False

    @dataclass
    class Config:
        temperature: float = 0.02
        """Sharp enough for RootSIFT, whose cosines crowd near 1; learned descriptors set their own."""
        threshold: float = 0.2
        """Minimum dual-softmax probability of a match."""

        def __post_init__(self) -> None:
            check_positive(self.temperature, "temperature")
            if not 0 <= self.threshold <= 1:
                raise ValueError(f"threshold must be a probability in [0, 1], got {self.threshold!r}")

    def match_batch(self, sim, binary=False, mask0=None, mask1=None):
        return dual_softmax(sim, self.config.temperature, self.config.threshold, mask0, mask1)


def inconsistent_ratio_test(
    sim: torch.Tensor,
    keypoints1: torch.Tensor,
    ratio: float = 0.8,
    radius: float = 10.0,
    binary: bool = False,
    candidates: int = 10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MODS's first-to-second *geometrically inconsistent* nearest-neighbour ratio test (FGINN).

    The second neighbour of Lowe's test is the nearest descriptor among the points of image 1 farther than
    ``radius`` pixels from the first: a point described in several views or at several scales of image 1 is
    no rival of itself, while two different points that look alike still are. Among the ``candidates`` nearest
    neighbours, the first one far enough is the second; when none is, the farthest of them stands in (its
    distance is at most the true second's, so the test is only stricter).

    Args:
        sim: ``(N, M)`` similarities.
        keypoints1: ``(M, 2)`` pixel coordinates of image 1's points.
        ratio: the largest accepted ratio of nearest to second-nearest distance.
        radius: pixels within which a neighbour counts as the same point as the first.
        binary: whether the similarities come from binary descriptors.
        candidates: neighbours searched for the second.

    Returns:
        ``matches0`` ``(N,)`` int64 (-1 for unmatched) and ``scores0`` ``(N,)`` (each match's similarity).
    """
    n, m = sim.shape
    if n == 0 or m == 0:
        return torch.full((n,), -1, dtype=torch.long), torch.zeros(n)
    if m == 1:  # a single candidate: nothing to compare with
        return torch.zeros(n, dtype=torch.long), sim[:, 0]
    top = sim.topk(min(candidates, m), dim=1)
    positions = keypoints1[top.indices]  # (N, k, 2)
    far = (positions - positions[:, :1]).norm(dim=2) > radius
    far[:, -1] = True  # the last candidate stands in when no nearer one is far enough
    second = top.values.gather(1, far.float().argmax(dim=1, keepdim=True))[:, 0]
    nearest = _distance(top.values[:, 0], binary)
    passes = nearest <= ratio * _distance(second, binary)
    matches0 = torch.where(passes, top.indices[:, 0], torch.full_like(top.indices[:, 0], -1))
    return matches0, torch.where(passes, top.values[:, 0], torch.zeros_like(nearest))


class InconsistentRatio(DescriptorMatcher):
    """MODS's first-to-second geometrically inconsistent ratio test (:func:`inconsistent_ratio_test`), made
    symmetric: a match must pass it from image 0 and, from image 1, its point's nearest neighbour in image 0
    must lie within ``radius`` of the match's point (mutual up to duplicates of a point)."""

    name = "fginn"

    @dataclass
    class Config:
        ratio: float = 0.8
        """The largest accepted ratio of nearest to second-nearest inconsistent distance, in ``(0, 1]``."""
        radius: float = 10.0
        """Pixels within which two points count as the same point (MODS's value)."""

        def __post_init__(self) -> None:
            if not 0 < self.ratio <= 1:
                raise ValueError(f"ratio must be in (0, 1], got {self.ratio!r}")
            check_positive(self.radius, "radius")

    def match(self, features0: Features, features1: Features) -> tuple[np.ndarray, np.ndarray]:
        if features0.binary != features1.binary:
            raise ValueError("cannot match binary descriptors against float descriptors")
        desc0 = torch.from_numpy(np.ascontiguousarray(features0.descriptors))[None]
        desc1 = torch.from_numpy(np.ascontiguousarray(features1.descriptors))[None]
        if desc0.shape[-1] != desc1.shape[-1]:
            raise ValueError(f"descriptor sizes differ: {desc0.shape[-1]} and {desc1.shape[-1]}")
        points0 = torch.from_numpy(np.asarray(features0.keypoints, np.float32))
        points1 = torch.from_numpy(np.asarray(features1.keypoints, np.float32))
        with torch.inference_mode():
            sim = similarity_matrix(desc0, desc1)[0]
            matches0, scores0 = inconsistent_ratio_test(
                sim, points1, self.config.ratio, self.config.radius, features0.binary
            )
            index0 = torch.nonzero(matches0 >= 0)[:, 0]
            if len(index0) and sim.shape[0]:
                back = sim[:, matches0[index0]].argmax(dim=0)
                mutual = (points0[back] - points0[index0]).norm(dim=1) <= self.config.radius
                index0 = index0[mutual]
        indices = torch.stack([index0, matches0[index0]], dim=1).numpy().astype(np.int64)
        return indices.reshape(-1, 2), scores0[index0].numpy().astype(np.float32)

    def match_batch(self, sim, binary=False, mask0=None, mask1=None):
        raise NotImplementedError("fginn needs the keypoints: call match(features0, features1)")

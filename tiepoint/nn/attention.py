"""Aggregated attention with 2D rotary position encoding (Efficient LoFTR).

Neighbouring query tokens attend to similar places, and each query's attention falls on a few salient keys,
so attention runs on reduced token sets:

* queries: a strided ``s x s`` depthwise convolution of the query map (``s = 4``: 16 times fewer tokens);
* keys and values: ``s x s`` max-pooling of the source map (the salient tokens);
* vanilla multi-head softmax attention on the reduced tokens, a linear merge of the heads, bilinear upsampling
  to the query map's size, then concatenation with the query map, a two-layer MLP and a residual addition.

Self-attention (source = the same image) rotates queries and keys with a 2D RoPE of their grid positions;
cross-attention has no position encoding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AggregatedAttention", "rope_2d", "rope_angles"]


def rope_angles(
    height: int, width: int, dim: int, device: torch.device | None = None, base: float = 10000.0
) -> tuple[Tensor, Tensor]:
    """Cosines and sines of the 2D RoPE of an ``height x width`` grid.

    Channel block ``k`` (4 channels, ``k = 1..dim/4``) rotates its first pair by ``theta_k * x`` and its
    second pair by ``theta_k * y`` with ``theta_k = base ** (-4k / dim)``, so that ``q_i . k_j`` after
    rotation depends on the offset ``(x_i - x_j, y_i - y_j)`` only.

    Returns:
        ``cos``, ``sin``: ``(height * width, dim)``, tokens in row-major order, each value repeated for the
        two channels of its pair.
    """
    if dim % 4:
        raise ValueError(f"RoPE needs a head dimension divisible by 4, got {dim}")
    k = torch.arange(1, dim // 4 + 1, device=device, dtype=torch.float32)
    theta = base ** (-4.0 * k / dim)  # (dim/4,)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    ax = xs.reshape(-1, 1) * theta  # (N, dim/4)
    ay = ys.reshape(-1, 1) * theta
    angles = torch.stack([ax, ax, ay, ay], dim=-1).reshape(-1, dim)  # block k: [x, x, y, y]
    return angles.cos(), angles.sin()


def rope_2d(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate consecutive channel pairs of ``x`` ``(..., N, dim)`` by the angles behind ``cos``/``sin``
    ``(N, dim)``."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos + rotated * sin


class AggregatedAttention(nn.Module):
    """One aggregated attention layer (self- or cross-attention).

    Args:
        dim: ``C``, the feature width.
        heads: attention heads (``C / heads`` must be divisible by 4 for RoPE).
        aggregation: ``s``, the aggregation kernel and stride.
        rope: rotate queries and keys by their positions (self-attention).

    Shapes:
        x: ``(B, C, H, W)`` the map to update, ``H`` and ``W`` divisible by ``s``;
        source: ``(B, C, H', W')`` keys and values (``x`` itself for self-attention), divisible by ``s``;
        returns ``(B, C, H, W)``.
    """

    def __init__(self, dim: int, heads: int = 4, aggregation: int = 4, rope: bool = False) -> None:
        super().__init__()
        if dim % heads or (rope and (dim // heads) % 4):
            raise ValueError(f"dim {dim} must split into {heads} heads (of a size divisible by 4 with RoPE)")
        self.dim, self.heads, self.aggregation, self.rope = dim, heads, aggregation, rope
        self.aggregate = nn.Conv2d(dim, dim, aggregation, stride=aggregation, groups=dim, bias=False)
        self.pool = nn.MaxPool2d(aggregation, aggregation)
        self.norm_query = nn.LayerNorm(dim)
        self.norm_source = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.merge = nn.Linear(dim, dim, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * dim, 2 * dim, bias=False), nn.GELU(), nn.Linear(2 * dim, dim, bias=False)
        )
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: Tensor, source: Tensor) -> Tensor:
        b, c, h, w = x.shape
        s = self.aggregation
        queries = self.aggregate(x)  # (B, C, h/s, w/s)
        keys = self.pool(source)  # (B, C, h'/s, w'/s)
        qh, qw = queries.shape[-2:]
        kh, kw = keys.shape[-2:]
        queries = self.norm_query(queries.flatten(2).transpose(1, 2))  # (B, Nq, C)
        keys = self.norm_source(keys.flatten(2).transpose(1, 2))  # (B, Nk, C)

        def split(t: Tensor) -> Tensor:  # (B, N, C) -> (B, heads, N, C / heads)
            return t.unflatten(-1, (self.heads, c // self.heads)).transpose(1, 2)

        q, k, v = split(self.query(queries)), split(self.key(keys)), split(self.value(keys))
        if self.rope:
            cos, sin = rope_angles(qh, qw, c // self.heads, x.device)
            q = rope_2d(q, cos.to(q.dtype), sin.to(q.dtype))
            if (kh, kw) != (qh, qw):
                cos, sin = rope_angles(kh, kw, c // self.heads, x.device)
            k = rope_2d(k, cos.to(k.dtype), sin.to(k.dtype))
        attention = torch.softmax(
            q @ k.transpose(-1, -2) / math.sqrt(c // self.heads), dim=-1
        )  # (B, heads, Nq, Nk)
        message = self.merge((attention @ v).transpose(1, 2).flatten(2))  # (B, Nq, C)
        message = message.transpose(1, 2).reshape(b, c, qh, qw)
        if s > 1:
            message = F.interpolate(message, size=(h, w), mode="bilinear", align_corners=False)
        fused = torch.cat([x, message], dim=1).flatten(2).transpose(1, 2)  # (B, HW, 2C)
        update = self.norm_out(self.mlp(fused)).transpose(1, 2).reshape(b, c, h, w)
        return x + update

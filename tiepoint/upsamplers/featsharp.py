"""FeatSharp-style upsampler (Ranzinger et al., 2025): JBU plus tiles.

The image is enlarged ``tiles`` times and run through the backbone as ``tiles x tiles`` tiles of the original
size, giving a map at ``tiles`` times the resolution with local detail. A learnable bias buffer (one per token
position of a backbone run, resized to the run's grid) is subtracted from the low-resolution map and from
every tile, removing the fixed pattern the backbone's position encoding leaves. On the fused grid
(``tiles h x tiles w``), the JBU-upsampled map and the tiled map are concatenated (2C channels) and pass one
local-attention block (windows of ``window x window`` tokens) with a SwiGLU MLP; the first C channels are the
output. Queries between grid cells are bilinear in the fused grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import OptionError
from .base import State, Upsampler, sample
from .jbu import JBU


class LocalBlock(nn.Module):
    """One pre-norm transformer block on ``(B, 2C, H, W)`` with attention inside non-overlapping windows and a
    SwiGLU MLP; it updates and returns the first ``C`` channels ``(B, C, H, W)``."""

    def __init__(self, dim: int, window: int = 8, heads: int = 4, width: int = 64, hidden: int = 64) -> None:
        super().__init__()
        self.dim, self.window, self.heads = dim, window, heads
        self.norm1 = nn.LayerNorm(2 * dim)
        self.qkv = nn.Linear(2 * dim, 3 * width)
        self.out = nn.Linear(width, dim)
        self.norm2 = nn.LayerNorm(2 * dim)
        self.gate = nn.Linear(2 * dim, 2 * hidden)
        self.down = nn.Linear(hidden, dim)
        for layer in (self.out, self.down):  # the block starts as the identity on the JBU channels
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, fused: Tensor) -> Tensor:
        batch, _, height, width = fused.shape
        size = self.window
        pad_h, pad_w = -height % size, -width % size
        tokens = F.pad(fused, (0, pad_w, 0, pad_h)).permute(0, 2, 3, 1)  # (B, Hp, Wp, 2C)
        rows, cols = (height + pad_h) // size, (width + pad_w) // size
        tokens = (
            tokens.reshape(batch, rows, size, cols, size, -1)
            .permute(0, 1, 3, 2, 4, 5)
            .reshape(-1, size * size, 2 * self.dim)
        )
        mask = F.pad(torch.ones(1, 1, height, width, device=fused.device), (0, pad_w, 0, pad_h))
        mask = mask.reshape(1, rows, size, cols, size).permute(0, 1, 3, 2, 4).reshape(-1, size * size).bool()
        mask = mask.repeat(batch, 1)  # (windows, T): real tokens
        q, k, v = self.qkv(self.norm1(tokens)).chunk(3, -1)
        split = lambda t: t.reshape(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)
        attended = F.scaled_dot_product_attention(
            split(q), split(k), split(v), attn_mask=mask[:, None, None, :]
        )
        first = tokens[..., : self.dim] + self.out(attended.transpose(1, 2).flatten(2))
        both = torch.cat([first, tokens[..., self.dim :]], -1)
        value, gate = self.gate(self.norm2(both)).chunk(2, -1)
        first = first + self.down(F.silu(gate) * value)
        first = first.reshape(batch, rows, cols, size, size, self.dim).permute(0, 5, 1, 3, 2, 4)
        return first.reshape(batch, self.dim, rows * size, cols * size)[..., :height, :width]


class FeatSharp(Upsampler):
    """JBU + tiled features fused by one local-attention block, with a learned fixed-pattern bias.

    Args:
        dim: backbone channels ``C``.
        tiles: tiles per side (the fused grid has ``tiles`` times the backbone's resolution).
        bias_size: side of the learned bias grid (resized to each backbone run's token grid).
        window: attention window side on the fused grid.
    """

    name = "featsharp"
    tiles = 2

    def __init__(self, dim: int, tiles: int = 2, bias_size: int = 16, window: int = 8) -> None:
        super().__init__()
        if tiles < 1:
            raise OptionError(f"tiles must be at least 1, got {tiles}")
        self.tiles = tiles
        self.jbu = JBU()
        self.bias = nn.Parameter(torch.zeros(1, dim, bias_size, bias_size))
        self.block = LocalBlock(dim, window)

    def debias(self, features: Tensor, runs: int = 1) -> Tensor:
        """Subtract the learned bias from a map made of ``runs x runs`` backbone runs of equal grids."""
        h, w = features.shape[-2] // runs, features.shape[-1] // runs
        bias = F.interpolate(self.bias, size=(h, w), mode="bilinear", align_corners=False)
        return features - bias.repeat(1, 1, runs, runs)

    def prepare(self, image: Tensor, features: Tensor, tiled: Tensor | None = None) -> State:
        state = super().prepare(image, features, tiled)
        h, w = features.shape[-2:]
        if (
            tiled is None
            or tiled.shape[-2:] != (self.tiles * h, self.tiles * w)
            or tiled.shape[:2] != features.shape[:2]
        ):
            raise OptionError(
                f"tiled must be (B, C, {self.tiles * h}, {self.tiles * w}), "
                f"got {None if tiled is None else tuple(tiled.shape)}"
            )
        clean = self.debias(features)
        jbu_state = self.jbu.prepare(image, clean)
        step = state["stride"] / self.tiles  # pixels per fused cell
        ys = (torch.arange(self.tiles * h, device=image.device) + 0.5) * step - 0.5
        xs = (torch.arange(self.tiles * w, device=image.device) + 0.5) * step - 0.5
        centres = (
            torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)
            .reshape(1, -1, 2)
            .expand(image.shape[0], -1, -1)
        )
        upsampled = (
            self.jbu.query(jbu_state, centres)
            .transpose(1, 2)
            .reshape(features.shape[0], -1, self.tiles * h, self.tiles * w)
        )
        state["fused"] = self.block(torch.cat([upsampled, self.debias(tiled, self.tiles)], 1))
        return state

    def query(self, state: State, points: Tensor) -> Tensor:
        height, width = state["image"].shape[-2:]
        return sample(state["fused"], points, height, width)

"""LoftUp-style coordinate-based upsampler (Huang et al., 2025).

Each output pixel is a query built from its coordinates (Fourier positional encoding) and its RGB (the 3x3
pixel patch). It cross-attends to the ``window x window`` low-resolution cells around it: keys are a
projection of the cell's feature plus its 3x3 patch of cell-mean colours, with a learned bias of the
query-to-cell offset; values are the cells' features themselves, so the output stays in the backbone's feature
space. A low-rank correction (zero at initialisation) lets the model leave that span. The paper's attention is
global with a 4.3M-parameter model; this one is windowed and small (tens of thousands of parameters) so that
it trains on one CPU thread (spec section 8 leaves sizes to implementers).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import State, Upsampler, fourier, neighbourhood, window_sum
from .jbu import cell_patches, mlp, pixel_patches


class LoftUp(Upsampler):
    """Cross-attention from pixel queries to low-resolution cells.

    Args:
        dim: backbone channels ``C``.
        window: side of the attended window of cells.
        heads: attention heads (each with its own weights over the window).
        width: query/key width per head.
        frequencies: Fourier frequencies per coordinate.
        rank: rank of the output correction.
    """

    name = "loftup"

    def __init__(
        self, dim: int, window: int = 5, heads: int = 4, width: int = 16, frequencies: int = 6, rank: int = 16
    ) -> None:
        super().__init__()
        self.window, self.heads, self.width, self.frequencies = window, heads, width, frequencies
        self.query_encoder = mlp(4 * frequencies + 27, 64, heads * width)
        self.key_norm = nn.LayerNorm(dim)
        self.key_features = nn.Linear(dim, heads * width)
        self.key_colours = nn.Linear(27, heads * width, bias=False)
        self.offset_bias = mlp(2, 16, heads)
        self.head_logits = nn.Parameter(torch.zeros(heads))
        self.down = nn.Linear(dim, rank, bias=False)
        self.up = nn.Linear(rank, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def prepare(self, image: Tensor, features: Tensor, tiled: Tensor | None = None) -> State:
        state = super().prepare(image, features, tiled)
        keys = self.key_features(self.key_norm(features.permute(0, 2, 3, 1)))
        keys = keys + self.key_colours(cell_patches(image, state["stride"]).permute(0, 2, 3, 1))
        state["keys"] = keys.permute(0, 3, 1, 2)  # (B, heads*width, h, w)
        return state

    def query(self, state: State, points: Tensor) -> Tensor:
        image, features = state["image"], state["features"]
        height, width = image.shape[-2:]
        unit = points / points.new_tensor([width, height])
        queries = self.query_encoder(
            torch.cat([fourier(unit, self.frequencies), pixel_patches(image, points)], -1)
        )
        keys, offsets, valid, index = neighbourhood(state["keys"], points, state["stride"], self.window)
        batch, count, window = keys.shape[:3]
        keys = keys.reshape(batch, count, window, self.heads, self.width)
        queries = queries.reshape(batch, count, 1, self.heads, self.width)
        logits = (queries * keys).sum(-1) / self.width**0.5 + self.offset_bias(offsets)  # (B, N, K, heads)
        attention = torch.softmax(logits.masked_fill(~valid.unsqueeze(-1), -torch.inf), 2)
        mixed = (attention * torch.softmax(self.head_logits, 0)).sum(-1)  # (B, N, K)
        out = window_sum(features, index, mixed)
        return out + self.up(self.down(out))

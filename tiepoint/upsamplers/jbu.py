"""Learned joint bilateral upsampling (JBU), after FeatUp's JBU (Fu et al., ICLR 2024), in one step.

The feature at pixel ``p`` is a normalised weighted mean of the ``window x window`` low-resolution cells ``n``
around it, with weight ``exp(-|p - c_n|^2 / 2 sigma^2) * exp(-|g(p) - h(n)|^2)``: a spatial Gaussian of the
distance to the cell centre (in cells; sigma learned) times a range kernel between a learned embedding ``g``
of the image's 3x3 pixel patch at ``p`` and an embedding ``h`` of the 3x3 patch of cell-mean colours at ``n``.
FeatUp stacks 2x JBU stages; here one stage goes straight to any resolution, since every output pixel is a
query.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import State, Upsampler, neighbourhood, sample, window_sum


def pixel_patches(image: Tensor, points: Tensor) -> Tensor:
    """The 3x3 pixel patch (bilinear) around each ``(B, N, 2)`` position -> ``(B, N, 27)``."""
    steps = torch.tensor([-1.0, 0.0, 1.0], device=points.device)
    offsets = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), -1).reshape(1, 1, 9, 2)
    height, width = image.shape[-2:]
    values = sample(image, (points.unsqueeze(2) + offsets).flatten(1, 2), height, width)  # (B, N*9, 3)
    return values.reshape(points.shape[0], points.shape[1], 27)


def cell_patches(image: Tensor, stride: int) -> Tensor:
    """Cell-mean colours and their 3x3 neighbours: ``(B, 3, H, W)`` -> ``(B, 27, H / stride, W / stride)``."""
    means = F.avg_pool2d(image, stride)
    return F.unfold(F.pad(means, (1, 1, 1, 1), mode="replicate"), 3).reshape(
        means.shape[0], 27, *means.shape[-2:]
    )


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Two linear layers with a GELU between them."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.GELU(), nn.Linear(hidden, outputs))


class JBU(Upsampler):
    """Learned joint bilateral upsampler (about 3k parameters).

    Args:
        window: side of the window of low-resolution cells each output pixel averages.
        guidance: width of the range-kernel embeddings.
    """

    name = "jbu"

    def __init__(self, window: int = 5, guidance: int = 16) -> None:
        super().__init__()
        self.window = window
        self.pixel_embedding = mlp(27, 32, guidance)
        self.cell_embedding = mlp(27, 32, guidance)
        self.log_sigma = nn.Parameter(torch.tensor(math.log(0.8)))

    def prepare(self, image: Tensor, features: Tensor, tiled: Tensor | None = None) -> State:
        state = super().prepare(image, features, tiled)
        # the range-kernel embedding of every cell, once (the same numbers as embedding each gathered window)
        state["cells"] = self.cell_embedding(
            cell_patches(image, state["stride"]).permute(0, 2, 3, 1)
        ).permute(0, 3, 1, 2)
        return state

    def weights(self, state: State, points: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised bilateral weights ``(B, N, K)`` over the window cells, and their flat indices
        ``(B, N, K)``."""
        neighbours, offsets, valid, index = neighbourhood(
            state["cells"], points, state["stride"], self.window
        )
        spatial = -(offsets**2).sum(-1) / (2 * torch.exp(2 * self.log_sigma))
        pixel = self.pixel_embedding(pixel_patches(state["image"], points))  # (B, N, G)
        distance = ((pixel.unsqueeze(2) - neighbours) ** 2).sum(-1)
        logits = (spatial - distance).masked_fill(~valid, -torch.inf)
        return torch.softmax(logits, -1), index

    def query(self, state: State, points: Tensor) -> Tensor:
        weights, index = self.weights(state, points)
        return window_sum(state["features"], index, weights)

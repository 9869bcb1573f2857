"""The upsampler interface and the interpolation baselines.

An upsampler turns a low-resolution backbone map ``(B, C, h, w)`` of an image ``(B, 3, H, W)`` (``H = s h``,
``W = s w`` for stride ``s``; see :mod:`tiepoint.backbones.base`) into features at any pixel position. It
works by *query*: :meth:`Upsampler.query` returns the ``(B, N, C)`` features at ``(B, N, 2)`` pixel positions
``(x, y)``, and :meth:`Upsampler.forward` assembles a full map of any size from queries made in chunks, so
memory stays bounded by the chunk size, not the image size. Methods that need more than the image and its
low-resolution map (FeatSharp's tiled features) declare ``tiles > 0`` and receive them in :meth:`prepare`.

Pixel ``(x, y)`` has its centre at integer coordinates; feature cell ``(i, j)`` is centred at pixel
``((j + 0.5) s - 0.5, (i + 0.5) s - 0.5)``, the convention of ``align_corners=False`` interpolation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import OptionError

State = dict[str, Any]


class Upsampler(nn.Module):
    """Base class: subclasses implement :meth:`query` (and :meth:`prepare` when they precompute)."""

    name: ClassVar[str] = ""
    tiles: ClassVar[int] = 0
    """> 0: :meth:`prepare` needs ``tiled``, the backbone's map of the image enlarged ``tiles`` times and
    run as ``tiles x tiles`` tiles, assembled to ``(B, C, tiles h, tiles w)``."""

    def prepare(self, image: Tensor, features: Tensor, tiled: Tensor | None = None) -> State:
        """Check the inputs and precompute what queries share.

        Args:
            image: ``(B, 3, H, W)`` float RGB in [0, 1] (the guidance).
            features: ``(B, C, h, w)`` low-resolution map of ``image``; ``H / h == W / w``.
            tiled: see :attr:`tiles`.
        """
        if (
            image.ndim != 4
            or image.shape[1] != 3
            or features.ndim != 4
            or image.shape[0] != features.shape[0]
        ):
            raise OptionError(
                "image must be (B, 3, H, W) and features (B, C, h, w); "
                f"got {tuple(image.shape)} and {tuple(features.shape)}"
            )
        (height, width), (h, w) = image.shape[-2:], features.shape[-2:]
        if height * w != width * h or height % h:
            raise OptionError(f"image {height}x{width} is not an integer multiple of the feature map {h}x{w}")
        if self.tiles and tiled is None:
            raise OptionError(f"upsampler {self.name!r} needs the tiled features (tiles={self.tiles})")
        return {"image": image, "features": features, "stride": height // h}

    def query(self, state: State, points: Tensor) -> Tensor:
        """Features at pixel positions: ``(B, N, 2)`` float ``(x, y)`` -> ``(B, N, C)``."""
        raise NotImplementedError

    def forward(
        self,
        image: Tensor,
        features: Tensor,
        size: tuple[int, int] | None = None,
        tiled: Tensor | None = None,
        chunk: int = 4096,
    ) -> Tensor:
        """The ``(B, C, H_out, W_out)`` map at ``size`` (default: the image's ``(H, W)``), from queries at the
        output pixel centres mapped into the image, ``chunk`` positions at a time."""
        state = self.prepare(image, features, tiled)
        height, width = image.shape[-2:]
        out_h, out_w = size or (height, width)
        if out_h < 1 or out_w < 1:
            raise OptionError(f"size must be positive, got {size}")
        ys = (torch.arange(out_h, dtype=torch.float32) + 0.5) * (height / out_h) - 0.5
        xs = (torch.arange(out_w, dtype=torch.float32) + 0.5) * (width / out_w) - 0.5
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(1, -1, 2).to(image.device)
        grid = grid.expand(image.shape[0], -1, -1)
        parts = [
            self.query(state, grid[:, start : start + chunk]) for start in range(0, grid.shape[1], chunk)
        ]
        return torch.cat(parts, 1).transpose(1, 2).reshape(image.shape[0], -1, out_h, out_w)

    def extra_repr(self) -> str:
        return f"parameters={sum(p.numel() for p in self.parameters())}"


def normalised(points: Tensor, height: int, width: int) -> Tensor:
    """Pixel ``(x, y)`` -> ``grid_sample`` coordinates (``align_corners=False``) of a map covering the
    image."""
    scale = points.new_tensor([2.0 / width, 2.0 / height])
    return (points + 0.5) * scale - 1.0


def sample(maps: Tensor, points: Tensor, height: int, width: int, mode: str = "bilinear") -> Tensor:
    """Sample ``(B, C, h', w')`` (covering the ``height x width`` image) at ``(B, N, 2)`` pixels ->
    ``(B, N, C)``."""
    grid = normalised(points, height, width).unsqueeze(1)
    return F.grid_sample(maps, grid, mode=mode, padding_mode="border", align_corners=False)[
        :, :, 0
    ].transpose(1, 2)


def neighbourhood(
    maps: Tensor, points: Tensor, stride: int, size: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ``size x size`` map cells nearest each pixel position.

    Args:
        maps: ``(B, D, h, w)`` per-cell values (e.g. keys or colours).
        points: ``(B, N, 2)`` pixel ``(x, y)``.
        stride: pixels per cell.
        size: window side (cells).

    Returns:
        values ``(B, N, K, D)`` with ``K = size**2``, offsets ``(B, N, K, 2)`` from the point to each cell
        centre in cells, ``(B, N, K)`` bool ``valid`` (False for cells outside the map) and the cells' flat
        indices ``(B, N, K)`` into ``h * w`` (clamped to the map; see :func:`window_sum`).
    """
    h, w = maps.shape[-2:]
    cell = (points + 0.5) / stride - 0.5  # continuous cell coordinates
    start = torch.floor(cell) - (size - 1) // 2
    steps = torch.arange(size, device=points.device, dtype=points.dtype)
    grid = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), -1).reshape(-1, 2)  # (K, 2) as (dx, dy)
    cells = start.unsqueeze(2) + grid  # (B, N, K, 2)
    valid = (cells[..., 0] >= 0) & (cells[..., 0] < w) & (cells[..., 1] >= 0) & (cells[..., 1] < h)
    index = cells[..., 1].clamp(0, h - 1).long() * w + cells[..., 0].clamp(0, w - 1).long()
    values = gather_cells(maps, index)
    return values, cells - cell.unsqueeze(2), valid, index


def gather_cells(maps: Tensor, index: Tensor) -> Tensor:
    """``(B, D, h, w)`` at flat cell indices ``(B, N, K)`` -> ``(B, N, K, D)``."""
    batch, channels = maps.shape[:2]
    flat = maps.flatten(2).transpose(1, 2)  # (B, h w, D)
    gathered = torch.gather(flat, 1, index.reshape(batch, -1, 1).expand(-1, -1, channels))
    return gathered.reshape(*index.shape, channels)


def window_sum(features: Tensor, index: Tensor, weights: Tensor) -> Tensor:
    """``sum_k weights[b, n, k] * features[b, :, index[b, n, k]]`` -> ``(B, N, C)``.

    With gradients it gathers the ``(B, N, K, C)`` window values; without (inference), a sparse ``(N, h w)``
    weight matrix times the ``(h w, C)`` features gives the same sums without building that tensor.
    """
    if torch.is_grad_enabled() and (features.requires_grad or weights.requires_grad):
        return (weights.unsqueeze(-1) * gather_cells(features, index)).sum(2)
    batch, count, window = index.shape
    flat = features.flatten(2).transpose(1, 2)  # (B, h w, C)
    rows = torch.arange(count, device=index.device).repeat_interleave(window)
    out = []
    for b in range(batch):
        matrix = torch.sparse_coo_tensor(
            torch.stack([rows, index[b].reshape(-1)]),
            weights[b].reshape(-1),
            (count, flat.shape[1]),
            check_invariants=False,
        )
        out.append(torch.sparse.mm(matrix, flat[b]))
    return torch.stack(out)


def fourier(coordinates: Tensor, frequencies: int) -> Tensor:
    """Fourier features of ``(..., D)`` coordinates in [0, 1] -> ``(..., 2 D frequencies)``."""
    scales = (2.0 ** torch.arange(frequencies, device=coordinates.device, dtype=coordinates.dtype)) * torch.pi
    angles = (coordinates.unsqueeze(-1) * scales).flatten(-2)
    return torch.cat([angles.sin(), angles.cos()], -1)


class Interpolation(Upsampler):
    """Bilinear or bicubic interpolation of the low-resolution map (no parameters)."""

    def __init__(self, mode: str = "bilinear") -> None:
        super().__init__()
        if mode not in ("bilinear", "bicubic"):
            raise OptionError(f"mode must be 'bilinear' or 'bicubic', got {mode!r}")
        self.mode = mode

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.mode

    def query(self, state: State, points: Tensor) -> Tensor:
        height, width = state["image"].shape[-2:]
        return sample(state["features"], points, height, width, self.mode)


class Bilinear(Interpolation):
    """Bilinear interpolation (the baseline every learned upsampler is held against)."""

    def __init__(self) -> None:
        super().__init__("bilinear")


class Bicubic(Interpolation):
    """Bicubic interpolation."""

    def __init__(self) -> None:
        super().__init__("bicubic")

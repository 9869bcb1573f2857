"""Layer-independent deformable sampling: read several feature levels at given points and aggregate.

A descriptor head in the style of CLIDD samples every feature level ``l`` at ``M`` points per keypoint
(the keypoint plus learned offsets, in that level's pixels) and aggregates the samples linearly::

    descriptor[b, n] = bias + sum_l sum_m  weight_l[m]^T  bilinear(level_l[b], position_l[b, n, m])

Two implementations compute the same thing:

* :func:`sample_aggregate_reference`: plain PyTorch, ``grid_sample`` per level and then an ``einsum``.
  It builds the ``(B, C_l, N, M)`` tensor of samples of every level before aggregating it.
* :func:`sample_aggregate_fused`: a C++ CPU kernel that samples and projects in one pass per keypoint,
  never building that tensor (forward and backward). It is compiled on first use with
  :func:`torch.utils.cpp_extension.load` (needs a C++ compiler and ``ninja``, a dependency of the
  package) and cached; the first build (about 30 s) prints one line on stderr saying so. When it cannot be
  built, :func:`sample_aggregate` falls back to the reference path with one warning.

Coordinates: ``(x, y)`` in pixels of the level, the centre of its top-left pixel at ``(0, 0)``; points
outside the map read zeros (``grid_sample`` with ``align_corners=True`` and zero padding).
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "fused_available",
    "grid_sample_points",
    "sample_aggregate",
    "sample_aggregate_fused",
    "sample_aggregate_reference",
]

_SOURCE = Path(__file__).with_name("csrc") / "sample_project.cpp"
FUSED_MIN_WIDTH = 64
"""Values read per keypoint (sum over levels of channels x samples) from which the fused kernel is used."""


def grid_sample_points(level: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples of a feature map at points given in its pixels.

    Args:
        level: ``(B, C, H, W)`` feature map.
        points: ``(B, N, M, 2)`` positions ``(x, y)`` in pixels of ``level``.

    Returns:
        ``(B, C, N, M)`` samples (zero outside the map).
    """
    height, width = level.shape[-2:]
    scale = points.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    grid = points * scale - 1.0
    return F.grid_sample(
        level, grid.to(level.dtype), mode="bilinear", padding_mode="zeros", align_corners=True
    )


def sample_aggregate_reference(
    levels: list[Tensor], positions: list[Tensor], weights: list[Tensor], bias: Tensor | None = None
) -> Tensor:
    """Sample every level at its points and aggregate, in plain PyTorch.

    Args:
        levels: per level ``l``, a ``(B, C_l, H_l, W_l)`` feature map.
        positions: per level, ``(B, N, M, 2)`` sampling points in that level's pixels.
        weights: per level, ``(M, C_l, D)`` projection of each sample.
        bias: optional ``(D,)``.

    Returns:
        ``(B, N, D)`` aggregated (not normalised) descriptors.
    """
    _check(levels, positions, weights)
    out = None
    for level, points, weight in zip(levels, positions, weights, strict=True):
        samples = grid_sample_points(level, points)  # (B, C, N, M): the intermediate the fused path avoids
        term = torch.einsum("bcnm,mcd->bnd", samples, weight)
        out = term if out is None else out + term
    return out if bias is None else out + bias


class _SampleProject(torch.autograd.Function):
    """One level of the fused kernel as an autograd function (channels-last feature map)."""

    @staticmethod
    def forward(ctx, feat: Tensor, pos: Tensor, weight: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(feat, pos, weight)
        return _extension().forward(feat, pos, weight)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        feat, pos, weight = ctx.saved_tensors
        grad_feat, grad_pos, grad_weight = _extension().backward(grad_out, feat, pos, weight)
        return grad_feat, grad_pos, grad_weight


def sample_aggregate_fused(
    levels: list[Tensor], positions: list[Tensor], weights: list[Tensor], bias: Tensor | None = None
) -> Tensor:
    """Same as :func:`sample_aggregate_reference`, with the fused C++ kernel (CPU tensors only).

    Raises:
        RuntimeError: when the kernel cannot be compiled (see :func:`fused_available`).
    """
    _check(levels, positions, weights)
    out = None
    for level, points, weight in zip(levels, positions, weights, strict=True):
        dtype = level.dtype
        channels_last = level.permute(0, 2, 3, 1).contiguous()
        term = _SampleProject.apply(
            channels_last, points.to(dtype).contiguous(), weight.to(dtype).contiguous()
        )
        out = term if out is None else out + term
    return out if bias is None else out + bias


def sample_aggregate(
    levels: list[Tensor], positions: list[Tensor], weights: list[Tensor], bias: Tensor | None = None
) -> Tensor:
    """Sample and aggregate with the fused kernel where it applies, else with the reference path.

    The fused kernel is used for float32/float64 CPU tensors outside ``torch.jit``/ONNX tracing when each
    keypoint reads at least :data:`FUSED_MIN_WIDTH` values (channels x samples over the levels): below that
    (CLIDD A48 reads 36) its set-up costs more than the intermediate tensor it saves. See
    :func:`sample_aggregate_reference` for shapes.
    """
    width = sum(level.shape[1] * points.shape[2] for level, points in zip(levels, positions, strict=True))
    usable = (
        width >= FUSED_MIN_WIDTH
        and levels[0].device.type == "cpu"
        and levels[0].dtype in (torch.float32, torch.float64)
        and not torch.jit.is_tracing()
        and not torch.onnx.is_in_onnx_export()
        and fused_available()
    )
    implementation = sample_aggregate_fused if usable else sample_aggregate_reference
    return implementation(levels, positions, weights, bias)


@functools.cache
def fused_available() -> bool:
    """Whether the fused CPU kernel is compiled (or can be); warns once when it cannot.

    The answer is cached: a failed build is tried once per process, not on every call.
    """
    try:
        _extension()
    except Exception as error:  # noqa: BLE001 - any build failure means: use the reference path
        warnings.warn(
            f"tiepoint: fused sampler unavailable, using the PyTorch reference path ({error})",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


_NAME = "tiepoint_sample_project"


@functools.cache
def _extension():
    from torch.utils.cpp_extension import load

    _clear_stale_lock()
    if not _is_built():
        print(
            "tiepoint: compiling the fused CLIDD sampler kernel (first use only, about 30 s; cached after)",
            file=sys.stderr,
            flush=True,
        )
    return load(name=_NAME, sources=[str(_SOURCE)], extra_cflags=["-O3"], verbose=False)


STALE_LOCK_SECONDS = 600.0
"""A build lock older than this was left by a process killed while compiling (a build takes about 30 s)."""


def _build_folder() -> Path | None:
    """PyTorch's extension cache folder of the kernel (``None`` when PyTorch's private helper is missing)."""
    try:
        from torch.utils.cpp_extension import _get_build_directory

        return Path(_get_build_directory(_NAME, verbose=False))
    except Exception:  # noqa: BLE001 - a private helper of PyTorch: when it changes, say that we compile
        return None


def _clear_stale_lock() -> None:
    """Remove the build lock of a process killed while compiling: PyTorch would wait for it forever."""
    folder = _build_folder()
    lock = folder / "lock" if folder is not None else None
    try:
        if lock is not None and time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            warnings.warn(
                f"tiepoint: removing a stale kernel build lock {lock}", RuntimeWarning, stacklevel=3
            )
            lock.unlink(missing_ok=True)
    except FileNotFoundError:
        pass


def _is_built() -> bool:
    """Whether a compiled kernel is already in PyTorch's extension cache (``False`` when unsure)."""
    folder = _build_folder()
    if folder is None:
        return False
    return any(folder.glob(f"{_NAME}*.so")) or any(folder.glob(f"{_NAME}*.pyd"))


def _check(levels: list[Tensor], positions: list[Tensor], weights: list[Tensor]) -> None:
    if not (len(levels) == len(positions) == len(weights)) or not levels:
        raise ValueError(
            f"levels, positions and weights need one entry per level, got {len(levels)}, "
            f"{len(positions)} and {len(weights)}"
        )
    for index, (level, points, weight) in enumerate(zip(levels, positions, weights, strict=True)):
        if level.ndim != 4 or points.ndim != 4 or points.shape[-1] != 2 or weight.ndim != 3:
            raise ValueError(
                f"level {index}: expected (B, C, H, W), (B, N, M, 2) and (M, C, D), got "
                f"{tuple(level.shape)}, {tuple(points.shape)} and {tuple(weight.shape)}"
            )
        if weight.shape[:2] != (points.shape[2], level.shape[1]) or points.shape[0] != level.shape[0]:
            raise ValueError(
                f"level {index}: weight {tuple(weight.shape)} does not fit samples M={points.shape[2]} "
                f"and channels C={level.shape[1]} (batch {level.shape[0]} vs {points.shape[0]})"
            )

"""Speed of the CLIDD descriptor sampler: the fused kernel against the PyTorch reference path.

The feature levels have the shapes a CLIDD size produces on a 640x480 image; keypoints and offsets are
random. Each configuration is timed forward only (inference) and forward + backward (training), as the
median of ``repeats`` runs after a warm-up, on this machine's CPU with the current torch thread count.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from tiepoint.evaluation.runner import environment
from tiepoint.features.clidd import SIZES, STRIDES
from tiepoint.nn.sampler import fused_available, sample_aggregate_fused, sample_aggregate_reference

__all__ = ["benchmark_sampler", "format_sampler_table"]


def _inputs(
    size: str, keypoints: int, height: int, width: int, seed: int = 0
) -> tuple[list, list, list, torch.Tensor]:
    config = SIZES[size]
    generator = torch.Generator().manual_seed(seed)
    levels, positions, weights = [], [], []
    for channels, stride in zip(config.channels, STRIDES, strict=True):
        h, w = -(-height // stride), -(-width // stride)
        levels.append(torch.randn(1, channels, h, w, generator=generator))
        centre = torch.rand(1, keypoints, 1, 2, generator=generator) * torch.tensor([w - 1.0, h - 1.0])
        positions.append(centre + torch.randn(1, keypoints, config.samples, 2, generator=generator))
        weights.append(torch.randn(config.samples, channels, config.descriptor_dim, generator=generator))
    return levels, positions, weights, torch.zeros(config.descriptor_dim)


def _median_ms(function: Callable[[], Any], repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def benchmark_sampler(
    sizes: tuple[str, ...] = ("A48", "S96", "U128"),
    keypoints: tuple[int, ...] = (1000, 4000, 8000),
    image_size: tuple[int, int] = (480, 640),
    repeats: int = 7,
) -> dict[str, Any]:
    """Time both sampler paths.

    Returns:
        ``{"environment": ..., "rows": [{"size", "keypoints", "path", "forward_ms", "forward_backward_ms",
        "intermediate_mb"}, ...]}``; ``intermediate_mb`` is the per-level sample tensor the reference
        path materialises (the fused path does not).
    """
    if not fused_available():
        raise RuntimeError("the fused sampler cannot be compiled here; nothing to compare")
    height, width = image_size
    rows = []
    for size in sizes:
        config = SIZES[size]
        for count in keypoints:
            levels, positions, weights, bias = _inputs(size, count, height, width)
            intermediate = 4 * count * config.samples * sum(config.channels) / 2**20
            for path, function in (
                ("reference", sample_aggregate_reference),
                ("fused", sample_aggregate_fused),
            ):
                with torch.no_grad():
                    forward = _median_ms(
                        lambda f=function, args=(levels, positions, weights, bias): f(*args), repeats
                    )
                trainable = [t.clone().requires_grad_() for t in levels + weights]

                def step(f=function, t=trainable, levels=levels, positions=positions, bias=bias):
                    f(t[: len(levels)], positions, t[len(levels) :], bias).sum().backward()

                backward = _median_ms(step, repeats)
                rows.append(
                    {
                        "size": size,
                        "keypoints": count,
                        "path": path,
                        "forward_ms": round(forward, 3),
                        "forward_backward_ms": round(backward, 3),
                        "intermediate_mb": round(intermediate, 2) if path == "reference" else 0.0,
                    }
                )
    return {
        "environment": environment(),
        "image_size": [width, height],
        "threads": torch.get_num_threads(),
        "rows": rows,
    }


def format_sampler_table(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`benchmark_sampler`'s rows, with the fused/reference speed-up."""
    rows = result["rows"]
    lines = [
        (
            f"{'size':6} {'keypoints':>9} {'path':>9} {'fwd ms':>8} {'fwd+bwd ms':>11} "
            f"{'speed-up':>9} {'interm. MB':>10}"
        )
    ]
    reference = {(r["size"], r["keypoints"]): r for r in rows if r["path"] == "reference"}
    for row in rows:
        base = reference[(row["size"], row["keypoints"])]
        speedup = base["forward_ms"] / row["forward_ms"] if row["forward_ms"] else float("nan")
        lines.append(
            f"{row['size']:6} {row['keypoints']:>9} {row['path']:>9} {row['forward_ms']:>8.2f} "
            f"{row['forward_backward_ms']:>11.2f} {speedup:>8.2f}x {row['intermediate_mb']:>10.2f}"
        )
    return "\n".join(lines)

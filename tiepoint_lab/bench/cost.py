"""Parameters, FLOPs and CPU time of the CLIDD sizes on a 640x480 image.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` over detection and description
(convolutions, matrix products and the reference sampler's ``einsum``; element-wise operations are not
counted), reported as GFLOPs = 1e9 multiply-adds x 2. Time is the median of ``repeats`` runs of the
model (features, detection, description with the fused sampler) after a warm-up.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from tiepoint.evaluation.runner import environment
from tiepoint.features.clidd import SIZES, CLIDDModel, parameter_count

__all__ = ["clidd_costs", "format_cost_table"]


def clidd_costs(
    sizes: tuple[str, ...] = tuple(SIZES),
    image_size: tuple[int, int] = (480, 640),
    max_keypoints: int = 2048,
    repeats: int = 5,
) -> dict[str, Any]:
    """Parameters, GFLOPs and CPU milliseconds of each size (random weights: cost does not depend on them)."""
    height, width = image_size
    image = torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(0))
    rows = []
    for size in sizes:
        torch.manual_seed(0)
        model = CLIDDModel(size).eval()
        with torch.inference_mode():
            model.use_fused_sampler = False  # FLOPs of the reference path: the same arithmetic, countable
            counter = FlopCounterMode(display=False)
            with counter:
                model(image, max_keypoints)
            model.use_fused_sampler = True
            model(image, max_keypoints)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                model(image, max_keypoints)
                times.append(time.perf_counter() - start)
        rows.append(
            {
                "size": size,
                "parameters": parameter_count(size),
                "gflops": round(counter.get_total_flops() / 1e9, 3),
                "cpu_ms": round(1000 * statistics.median(times), 2),
            }
        )
    return {
        "environment": environment(),
        "image_size": [width, height],
        "max_keypoints": max_keypoints,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }


def format_cost_table(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`clidd_costs`."""
    lines = [f"{'size':6} {'parameters':>11} {'GFLOPs':>8} {'CPU ms':>8}"]
    for row in result["rows"]:
        lines.append(f"{row['size']:6} {row['parameters']:>11,} {row['gflops']:>8.2f} {row['cpu_ms']:>8.1f}")
    return "\n".join(lines)

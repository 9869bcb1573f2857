"""Benchmark of the feature upsamplers on each backbone: consistency, correspondence, cost.

* **Multi-view consistency** (held-out photos of the corpus): each photo (longer side ``max_edge``) is warped
  by random mild homographies; at random pixels ``x'`` of the warped image whose preimage ``H^-1 x'`` lies
  inside the photo, the upsampled features of the warped image are compared with the upsampled features of the
  photo at ``H^-1 x'`` (mean cosine similarity; 1 is perfect). The same pixels serve every method.
* **Correspondence**: the ``<backbone>-<upsampler>+mnn`` methods through
  :func:`tiepoint.evaluation.run_benchmarks` on Oxford (MMA@3, MHA@3) and Middlebury (pose AUC@10).
* **Cost** per 640x480 image: backbone time (with FeatSharp's tiles where needed), time of the full 640x480
  upsampled map and of 2048 keypoint descriptors, and the peak resident memory the full map adds, each
  measured in a fresh process.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tiepoint.backbones import image_tensor, pad_to_stride
from tiepoint.errors import OptionError
from tiepoint.evaluation.runner import environment, run_benchmarks
from tiepoint.features.dense import _backbone, _upsampler, backbone_maps
from tiepoint.io.files import write_json
from tiepoint.io.image import load_image
from tiepoint_lab.data.homography import random_homography
from tiepoint_lab.data.photos import list_photos

__all__ = ["consistency", "correspondence", "cost", "format_upsampler_table", "run_upsampler_benchmark"]

METRICS = {"oxford": ("mma@3px", "mha@3px"), "middlebury": ("auc@10deg",)}


def _resized(image: np.ndarray, max_edge: int) -> np.ndarray:
    scale = max_edge / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _query(backbone: str, method: str, image: np.ndarray, points: np.ndarray) -> torch.Tensor:
    network, upsampler = _backbone(backbone), _upsampler(method, backbone)
    padded = pad_to_stride(image_tensor(image), network.stride)
    low, tiled = backbone_maps(backbone, padded, upsampler.tiles)
    with torch.inference_mode():
        return upsampler.query(upsampler.prepare(padded, low, tiled), torch.from_numpy(points).float()[None])[
            0
        ]


def consistency_views(
    photos: Sequence[Path], views: int = 2, max_edge: int = 448, points: int = 1000, seed: int = 0
):
    """The fixed test views: ``(photo, warped, points in warped, preimages in photo)`` tuples."""
    out = []
    for index, path in enumerate(photos):
        photo = _resized(load_image(path), max_edge)
        height, width = photo.shape[:2]
        for view in range(views):
            rng = np.random.default_rng([seed, index, view])
            H = random_homography(
                rng, (width, height), max_rotation_deg=20, scale=(0.8, 1.25), perspective=0.05
            )
            warped = cv2.warpPerspective(photo, H, (width, height), flags=cv2.INTER_LINEAR)
            candidates = rng.uniform([0, 0], [width - 1, height - 1], (20 * points, 2))
            back = cv2.perspectiveTransform(candidates[None], np.linalg.inv(H))[0]
            margin = 8
            inside = (
                (back[:, 0] >= margin)
                & (back[:, 0] <= width - 1 - margin)
                & (back[:, 1] >= margin)
                & (back[:, 1] <= height - 1 - margin)
            )
            keep = np.flatnonzero(inside)[:points]
            out.append((photo, warped, candidates[keep].astype(np.float32), back[keep].astype(np.float32)))
    return out


def consistency(
    backbone: str, methods: Sequence[str], photos: Sequence[Path], **view_options: Any
) -> dict[str, dict[str, float]]:
    """Mean cosine similarity (and its per-view standard error) between the upsampled features of warped views
    and the warped upsampled features, per method."""
    views = consistency_views(photos, **view_options)
    scores: dict[str, dict[str, float]] = {}
    for method in methods:
        per_view = []
        for photo, warped, points, preimages in views:
            a, b = _query(backbone, method, warped, points), _query(backbone, method, photo, preimages)
            per_view.append(float(F.cosine_similarity(a, b, dim=-1).mean()))
        values = np.array(per_view)
        scores[method] = {
            "cosine": float(values.mean()),
            "cosine_sem": float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0,
            "views": len(values),
        }
        print(f"consistency {backbone}-{method}: {scores[method]['cosine']:.4f}", flush=True)
    return scores


def _memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process from /proc, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise OSError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Reset ``VmHWM`` to the current resident size (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def _cost_worker(backbone: str, method: str, image: np.ndarray, keypoints: int, queue: Any) -> None:
    try:
        queue.put(_measure_cost(backbone, method, image, keypoints))
    except Exception as error:  # noqa: BLE001 - any failure is re-raised in the parent
        queue.put(error)


def _measure_cost(backbone: str, method: str, image: np.ndarray, keypoints: int) -> dict[str, float]:
    torch.set_num_threads(1)
    network, upsampler = _backbone(backbone), _upsampler(method, backbone)
    padded = pad_to_stride(image_tensor(image), network.stride)
    rng = np.random.default_rng(0)
    points = torch.from_numpy(
        rng.uniform([0, 0], [image.shape[1] - 1, image.shape[0] - 1], (1, keypoints, 2))
    ).float()
    result: dict[str, float] = {}
    for _ in range(2):  # the second round is timed (the first loads and warms up)
        start = time.perf_counter()
        low = network(padded)
        tiled = None
        if upsampler.tiles:
            from tiepoint.backbones import tiled_features

            tiled = tiled_features(network, padded, upsampler.tiles)
        result["backbone_ms"] = 1000 * (time.perf_counter() - start)
        with torch.inference_mode():
            start = time.perf_counter()
            state = upsampler.prepare(padded, low, tiled)
            upsampler.query(state, points)
            result["keypoints_ms"] = 1000 * (time.perf_counter() - start)
            _reset_peak()
            before = _memory_mb("VmRSS")
            start = time.perf_counter()
            upsampler(padded, low, size=image.shape[:2], tiled=tiled)
            result["full_map_ms"] = 1000 * (time.perf_counter() - start)
            result["full_map_peak_extra_mb"] = _memory_mb("VmHWM") - before
    result["process_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    return result


def cost(backbone: str, method: str, image: np.ndarray, keypoints: int = 2048) -> dict[str, float]:
    """Times and memory of one backbone + upsampler on one image, measured in a fresh process (one thread).

    ``full_map_peak_extra_mb`` is the peak resident memory while building the full map (timed round) above
    the resident memory before it; ``process_peak_mb`` the whole process's peak (models included).
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_cost_worker, args=(backbone, method, image, keypoints, queue))
    process.start()
    result = queue.get(timeout=1800)
    process.join()
    if isinstance(result, Exception):
        raise result
    return result


def correspondence(
    backbones: Sequence[str],
    methods: Sequence[str],
    root: str | Path | None = None,
    output: Path | None = None,
):
    """``<backbone>-<method>+mnn`` on Oxford and Middlebury; returns the results (written to ``output``)."""
    from tiepoint.evaluation.report import write_report

    names = [f"{backbone}-{method}+mnn" for backbone in backbones for method in methods]
    results = run_benchmarks(list(METRICS), names, root=root, progress=False)
    if output is not None:
        write_report(results, output, append=True)
    return results


def run_upsampler_benchmark(
    output: str | Path,
    backbones: Sequence[str] = ("dinov2s", "effl0"),
    methods: Sequence[str] = ("bilinear", "bicubic", "jbu", "loftup", "featsharp"),
    photos: str | Path = "data/photos",
    root: str | Path | None = None,
    parts: Sequence[str] = ("consistency", "cost", "correspondence"),
) -> Path:
    """Run the chosen parts and merge them into ``output/results.json`` (the entries of the methods run are
    replaced, the others kept, so backbones, methods and parts can be run separately); returns the path."""
    import json

    unknown = set(parts) - {"consistency", "cost", "correspondence"}
    if unknown:
        raise OptionError(f"unknown part(s) {sorted(unknown)}; parts are consistency, cost, correspondence")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / "results.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["environment"] = environment()
    val = list_photos(photos, "val")
    for backbone in backbones:
        entry = data.setdefault(backbone, {})
        if "consistency" in parts:
            entry.setdefault("consistency", {}).update(consistency(backbone, methods, val))
            write_json(path, data)
        if "cost" in parts:
            image = cv2.resize(load_image(val[0]), (640, 480), interpolation=cv2.INTER_AREA)
            entry.setdefault("cost", {}).update({method: cost(backbone, method, image) for method in methods})
            write_json(path, data)
    if "correspondence" in parts:
        results = correspondence(backbones, methods, root, output / "correspondence")
        for result in results:
            backbone, method = result.method.split("+")[0].split("-", 1)
            scores = data.setdefault(backbone, {}).setdefault("correspondence", {}).setdefault(method, {})
            scores.update(
                {f"{result.dataset}_{k}": result.summary[k] for k in METRICS.get(result.dataset, ())}
            )
            scores[f"{result.dataset}_extract_ms"] = result.timing["extract_ms_mean"]
        write_json(path, data)
    (output / "table.md").write_text(format_upsampler_table(data) + "\n")
    return path


def format_upsampler_table(data: dict[str, Any]) -> str:
    """A Markdown table of a results.json: one row per backbone and method."""
    header = (
        "| backbone | upsampler | consistency cos | Oxford MMA@3 | Oxford MHA@3 | Middlebury AUC@10 "
        "| backbone ms | full map ms | 2048 kpts ms | full map +MB |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]

    def cell(value: Any, scale: float = 1.0, digits: int = 1) -> str:
        return "-" if value is None else f"{scale * value:.{digits}f}"

    for backbone, entry in data.items():
        if backbone == "environment":
            continue
        methods = list(
            dict.fromkeys(
                [*entry.get("consistency", {}), *entry.get("correspondence", {}), *entry.get("cost", {})]
            )
        )
        for method in methods:
            c = entry.get("consistency", {}).get(method, {})
            m = entry.get("correspondence", {}).get(method, {})
            t = entry.get("cost", {}).get(method, {})
            lines.append(
                f"| {backbone} | {method} | {cell(c.get('cosine'), 1, 4)} "
                f"| {cell(m.get('oxford_mma@3px'), 100)} "
                f"| {cell(m.get('oxford_mha@3px'), 100)} | {cell(m.get('middlebury_auc@10deg'), 100)} "
                f"| {cell(t.get('backbone_ms'), 1, 0)} | {cell(t.get('full_map_ms'), 1, 0)} "
                f"| {cell(t.get('keypoints_ms'), 1, 0)} "
                f"| {cell(t.get('full_map_peak_extra_mb'), 1, 0)} |"
            )
    return "\n".join(lines)

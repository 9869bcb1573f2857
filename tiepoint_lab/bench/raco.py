"""RaCo reports: repeatability against keypoint budget and rotation, covariance calibration, and
covariance-weighted against unweighted estimation.

``run_raco_benchmark(output)`` writes ``results.json`` (every number, the protocol and the hardware), one PNG
per report and ``table.txt``:

* **budget** (``budget.png``): repeatability@3 px on every Oxford pair (img1 against img2..img6) of the
  ``budget`` best keypoints per image, for each detector ordered by its own score, by the ranker alone, and by
  the rank fusion of both (:data:`FUSION_WEIGHT`); the ranker orders a pool of the ``POOL_FACTOR * budget``
  best detections (capped at the largest budget's pool);
* **rotation** (``rotation.png``): repeatability@3 px of ``rotation_budget`` keypoints between a held-out
  photo crop and the same crop rotated about its centre by 0..180 degrees, with fixed photometric changes
  (synthetic, exact homography; :func:`rotation_pairs`);
* **calibration** (``calibration.png``): RaCo keypoints of Oxford pairs paired within 3 px, their errors
  against the propagated predicted covariances (:func:`~tiepoint.evaluation.keypoints.calibration`);
* **estimation**: the same matches (``raco-clidd-t64+mnn``) with the ``"poselib"`` and ``"weighted"``
  estimators, and the weighted estimator's refinement with identity covariances as a control: Oxford
  corner-error AUC@3/5/10 px and Middlebury pose AUC@5/10/20 degrees.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tiepoint.evaluation.datasets import load_dataset
from tiepoint.evaluation.keypoints import calibration, keypoint_pairs, propagated_errors, repeatability
from tiepoint.evaluation.runner import Protocol, environment
from tiepoint.features.base import Extractor
from tiepoint.features.ranker import DETECTOR_WEIGHT, POOL_FACTOR, fused_order, load_ranker, ranker_scores
from tiepoint.io.files import atomic_path, write_json
from tiepoint.io.image import load_image
from tiepoint.types import Features
from tiepoint.weights import WEIGHTS_DIR

__all__ = ["BUDGETS", "DETECTORS", "rotation_pairs", "run_raco_benchmark"]

BUDGETS: tuple[int, ...] = (128, 256, 512, 1024, 2048)
ANGLES: tuple[int, ...] = tuple(range(0, 181, 15))
DETECTORS: tuple[str, ...] = ("raco", "sift", "clidd-t64")
THRESHOLD = 3.0
FUSION_WEIGHT = DETECTOR_WEIGHT
"""Weight of the detector's rank in the fused order (:func:`~tiepoint.features.ranker.fused_order`)."""


def _detector(name: str, max_keypoints: int) -> Extractor:
    if name == "raco":
        from tiepoint.features.raco import RaCo

        return RaCo(max_keypoints=max_keypoints)
    from tiepoint.registry import build_extractor

    return build_extractor(name, max_keypoints=max_keypoints)


MODES: dict[str, float | None] = {"score": None, "ranker": 0.0, "fused": FUSION_WEIGHT}
"""Orderings of the budget report: the detector's score, the ranker alone, and their rank fusion."""


def _ordered(pool: Features, ranker: np.ndarray, budget: int, weight: float | None) -> np.ndarray:
    """The ``budget`` first keypoints of ``pool`` by detector score (``weight`` None) or by the fused order of
    the first ``POOL_FACTOR * budget`` candidates."""
    if weight is None:
        return pool.keypoints[:budget]
    count = min(len(pool), POOL_FACTOR * budget)
    return pool.keypoints[fused_order(ranker[:count], weight)[:budget]]


def budget_report(
    dataset: Any, detectors: Sequence[str], budgets: Sequence[int], progress: Callable[[str], None]
) -> dict:
    """``{detector: {mode: [...]}}``: mean repeatability@3 px per budget over the pairs for each of
    :data:`MODES`."""
    pool_size = POOL_FACTOR * max(budgets)
    report: dict[str, dict[str, list[float]]] = {}
    for name in detectors:
        extractor = _detector(name, pool_size)
        sums = {mode: np.zeros(len(budgets)) for mode in MODES}
        for pair in dataset.pairs:
            i0, i1 = pair.load()
            f0, f1 = extractor.extract(i0), extractor.extract(i1)
            r0, r1 = ranker_scores(i0, f0.keypoints), ranker_scores(i1, f1.keypoints)
            for mode, weight in MODES.items():
                for b, budget in enumerate(budgets):
                    k0, k1 = _ordered(f0, r0, budget, weight), _ordered(f1, r1, budget, weight)
                    sums[mode][b] += repeatability(k0, k1, pair.H, f0.image_size, f1.image_size, THRESHOLD)
        report[name] = {mode: (values / len(dataset.pairs)).tolist() for mode, values in sums.items()}
        progress(
            f"budget {name}: "
            + " | ".join(
                f"{mode} " + " ".join(f"{v:.3f}" for v in values) for mode, values in report[name].items()
            )
        )
    return report


def rotation_pairs(
    photos: Sequence[str | os.PathLike], angle: float, size: int = 320, photometric: bool = True
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(image0, image1, H)``: a centre crop of each photo (shrunk so its shorter side is ``1.5 * size``) and
    the same crop rotated by ``angle`` degrees about its centre (``H`` maps image 0 to image 1). With
    ``photometric``, image 1 also gets the default :class:`~tiepoint_lab.data.homography.Photometric` changes
    drawn from a seed fixed per photo (the same at every angle), so that 0 degrees is not a trivial identical
    pair."""
    import cv2

    from tiepoint_lab.data.homography import Photometric, render

    result = []
    for index, path in enumerate(photos):
        photo = load_image(path)
        scale = 1.5 * size / min(photo.shape[:2])
        cx, cy = (photo.shape[1] - 1) / 2 * scale, (photo.shape[0] - 1) / 2 * scale
        half = (size - 1) / 2
        A0 = np.array([[scale, 0, half - cx], [0, scale, half - cy], [0, 0, 1.0]])
        R = cv2.getRotationMatrix2D((half, half), angle, 1.0)
        H = np.vstack([R, [0, 0, 1.0]])
        image1 = render(photo, H @ A0, (size, size))
        if photometric:
            changed = Photometric()(image1.astype(np.float32) / 255.0, np.random.default_rng([index, 7]))
            image1 = np.round(changed * 255).astype(np.uint8)
        result.append((render(photo, A0, (size, size)), image1, H))
    return result


def mean_repeatability(
    extractor: Extractor, pairs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> float:
    """Mean repeatability@:data:`THRESHOLD` px of ``extractor`` over ``(image0, image1, H_0to1)`` pairs."""
    scores = []
    for image0, image1, H in pairs:
        f0, f1 = extractor.extract(image0), extractor.extract(image1)
        scores.append(repeatability(f0.keypoints, f1.keypoints, H, f0.image_size, f1.image_size, THRESHOLD))
    return float(np.mean(scores))


def rotation_report(
    photos: Sequence[Path],
    detectors: Sequence[str],
    budget: int,
    angles: Sequence[int],
    progress: Callable[[str], None],
) -> dict:
    """``{detector: [mean repeatability@3 px per angle]}`` on rotated held-out photo crops."""
    report = {}
    pairs = {angle: rotation_pairs(photos, angle) for angle in angles}
    for name in detectors:
        extractor = _detector(name, budget)
        report[name] = values = [mean_repeatability(extractor, pairs[angle]) for angle in angles]
        progress(f"rotation {name}: " + " ".join(f"{v:.3f}" for v in values))
    return report


def calibration_report(dataset: Any, budget: int = 1024, radius: float = THRESHOLD) -> dict:
    """Calibration of RaCo's covariances on the pairs of a homography dataset (see the module)."""
    extractor = _detector("raco", budget)
    errors, covariances = [], []
    for pair in dataset.pairs:
        image0, image1 = pair.load()
        f0, f1 = extractor.extract(image0), extractor.extract(image1)
        i0, i1, _, _ = keypoint_pairs(
            f0.keypoints, f1.keypoints, pair.H, f0.image_size, f1.image_size, radius
        )
        e, c = propagated_errors(
            f0.keypoints[i0], f1.keypoints[i1], f0.covariances[i0], f1.covariances[i1], pair.H
        )
        errors.append(e)
        covariances.append(c)
    result = calibration(np.concatenate(errors), np.concatenate(covariances))
    result["radius"] = radius
    return result


def estimation_report(method: str, root: str | os.PathLike | None, progress: Callable[[str], None]) -> dict:
    """AUCs of the ``"poselib"`` and ``"weighted"`` estimators on Oxford and Middlebury: each pair is matched
    once with ``method`` and every estimator fits the same matches (each dataset's default protocol). The
    control ``"refined_unweighted"`` is the ``"weighted"`` estimator with identity covariances, which
    separates the effect of the weights from that of the refinement."""
    from tiepoint.evaluation.metrics import summarize
    from tiepoint.evaluation.runner import estimate_and_score, match_and_check
    from tiepoint.registry import get_method

    report: dict[str, dict[str, Any]] = {}
    for dataset in ("oxford", "middlebury"):
        data = load_dataset(dataset, root)
        protocols = {
            estimator: Protocol.default(data, estimator=estimator) for estimator in ("poselib", "weighted")
        }
        matcher = get_method(method, **protocols["poselib"].method_options())
        protocols["refined_unweighted"] = protocols["weighted"]
        records: dict[str, list] = {estimator: [] for estimator in protocols}
        for pair in data.pairs:
            matches, _, _, precision = match_and_check(pair, matcher, protocols["poselib"])
            for estimator, protocol in protocols.items():
                # the control: the same refinement with identity covariances (the features' are dropped)
                used = (
                    replace(matches, features0=None, features1=None)
                    if estimator == "refined_unweighted"
                    else matches
                )
                records[estimator].append(estimate_and_score(pair, used, protocol, precision))
        for estimator, protocol in protocols.items():
            summary = summarize(records[estimator], protocol.task, protocol.mma_thresholds)
            report.setdefault(dataset, {})[estimator] = {
                key: value
                for key, value in summary.items()
                if key.startswith(("auc", "mha", "mean_inliers", "failures", "median"))
            }
            progress(f"estimation {dataset} {estimator}: {report[dataset][estimator]}")
    return report


BUDGET_CURVES = [
    ("score", "o", "-", "{name} (detector score)"),
    ("ranker", "s", "--", "{name} + ranker"),
    ("fused", "^", ":", "{name} + fused"),
]
"""The curves of a detector in the budget plot: its keypoint order, marker, line style and label."""


def _plots(output: Path, results: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    if "budget" in results:
        figure, axis = plt.subplots(figsize=(6, 4))
        for name, curves in results["budget"].items():
            # the detector's first curve takes the next colour, its other curves the same
            colour: dict[str, Any] = {}
            for order, marker, style, label in BUDGET_CURVES:
                if order in curves:
                    line = axis.plot(
                        results["budgets"],
                        curves[order],
                        marker=marker,
                        linestyle=style,
                        label=label.format(name=name),
                        **colour,
                    )[0]
                    colour = {"color": line.get_color()}
        axis.set(xscale="log")
        axis.set_xticks(results["budgets"], [str(b) for b in results["budgets"]])
        labels = ("keypoints per image", "repeatability@3px", "Oxford: repeatability vs budget")
        paths.append(_save(figure, output / "budget.png", *labels, legend_size=7))
    if "rotation" in results:
        figure, axis = plt.subplots(figsize=(6, 4))
        for name, values in results["rotation"].items():
            axis.plot(results["angles"], values, marker="o", label=name)
        labels = ("in-plane rotation (degrees)", "repeatability@3px", "Held-out photos: rotation")
        paths.append(_save(figure, output / "rotation.png", *labels))
    if results.get("calibration", {}).get("slope") is not None:
        c = results["calibration"]
        figure, axis = plt.subplots(figsize=(4.5, 4.5))
        axis.plot(c["predicted"], c["observed"], "o", label=f"bins (slope {c['slope']:.2f})")
        top = max(max(c["predicted"]), max(c["observed"])) * 1.1
        axis.plot([0, top], [0, top], "k:", label="ideal")
        axis.plot([0, top], [0, c["slope"] * top], "r-", label="fit through 0")
        labels = ("predicted std (px)", "observed RMS error per axis (px)", "RaCo covariance calibration")
        paths.append(_save(figure, output / "calibration.png", *labels))
    return paths


def _save(
    figure: Any, path: Path, xlabel: str, ylabel: str, title: str, legend_size: float | None = None
) -> Path:
    """Label the figure's axes, add their legend and write the figure as a PNG."""
    axis = figure.axes[0]
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axis.legend(fontsize=legend_size)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path


def _table(results: dict) -> str:
    lines = [f"hardware: {results['environment'].get('cpu')}"]
    if "budget" in results:
        lines.append(
            "repeatability@3px on Oxford vs budget " + " ".join(f"{b:>6d}" for b in results["budgets"])
        )
        for name, curves in results["budget"].items():
            for mode in curves:
                label = f"  {name} ({'detector score' if mode == 'score' else mode})"
                lines.append(f"{label:<38}" + " ".join(f"{100 * v:6.1f}" for v in curves[mode]))
    if "rotation" in results:
        lines.append(
            "repeatability@3px vs rotation (deg)  " + " ".join(f"{a:>5d}" for a in results["angles"])
        )
        for name, values in results["rotation"].items():
            lines.append(f"  {name:<36}" + " ".join(f"{100 * v:5.1f}" for v in values))
    if "calibration" in results:
        c = results["calibration"]
        lines.append(f"calibration slope {c['slope']}, whitened {c['whitened']}, pairs {c['count']}")
    if "estimation" in results:
        for dataset, rows in results["estimation"].items():
            for estimator, summary in rows.items():
                lines.append(
                    f"{dataset:<11} {estimator:<9} "
                    + " ".join(f"{k}={v:.4g}" for k, v in summary.items() if isinstance(v, float))
                )
    return "\n".join(lines) + "\n"


DEPENDS: dict[str, tuple[str, ...]] = {
    "budget": ("raco", "raco_ranker", "clidd_t64"),
    "rotation": ("raco", "clidd_t64"),
    "calibration": ("raco",),
    "estimation": ("raco", "clidd_t64"),
}
"""The shipped weights files (``tiepoint/weights/<name>.pt``) each report depends on."""


def _tensor_digest(path: Path) -> str:
    """A short SHA-1 of the tensors of a weights file (names and values, not the file's bytes: saving the same
    weights again gives another zip archive)."""
    digest = hashlib.sha1()
    for name, value in sorted(torch.load(path, map_location="cpu", weights_only=True)["model"].items()):
        digest.update(name.encode())
        digest.update(value.contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def weights_fingerprint() -> dict[str, str]:
    """A digest of the weights of each file in :data:`DEPENDS` (``"missing"`` when absent)."""
    names = sorted({name for files in DEPENDS.values() for name in files})
    paths = {name: WEIGHTS_DIR / f"{name}.pt" for name in names}
    return {name: _tensor_digest(path) if path.is_file() else "missing" for name, path in paths.items()}


def run_raco_benchmark(
    output: str | os.PathLike,
    root: str | os.PathLike | None = None,
    photos: str | os.PathLike = "data/photos",
    reports: Sequence[str] = ("budget", "rotation", "calibration", "estimation"),
    detectors: Sequence[str] = DETECTORS,
    budgets: Sequence[int] = BUDGETS,
    rotation_budget: int = 512,
    method: str = "raco-clidd-t64+mnn",
    progress: Callable[[str], None] = print,
) -> list[Path]:
    """Run the chosen reports and write ``results.json``, ``table.txt`` and the plots into ``output``.

    Reports already in an existing ``results.json`` are kept (rerun a report by deleting its key), so an
    interrupted run resumes; a report whose weights (:data:`DEPENDS`) differ from those the file was made with
    (:func:`weights_fingerprint`) is run again.
    """
    import json

    from tiepoint_lab.data.photos import list_photos

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    fingerprint, previous = weights_fingerprint(), results.get("weights", {})
    for report, files in DEPENDS.items():
        if report in results and any(previous.get(name) != fingerprint.get(name) for name in files):
            progress(f"{path}: the {report} report was made with other weights, running it again")
            del results[report]
    results.update(
        weights=fingerprint,
        environment=environment(),
        budgets=list(budgets),
        angles=list(ANGLES),
        threshold_px=THRESHOLD,
        pool_factor=POOL_FACTOR,
        rotation_budget=rotation_budget,
        estimation_method=method,
    )
    load_ranker()  # fail early when no ranker ships
    oxford = None
    for report in reports:
        if report in results:
            continue
        if report in ("budget", "calibration") and oxford is None:
            oxford = load_dataset("oxford", root)
        if report == "budget":
            results["budget"] = budget_report(oxford, detectors, budgets, progress)
        elif report == "rotation":
            results["rotation"] = rotation_report(
                list_photos(photos, "val"), detectors, rotation_budget, ANGLES, progress
            )
        elif report == "calibration":
            results["calibration"] = calibration_report(oxford)
            progress(f"calibration slope {results['calibration']['slope']}")
        elif report == "estimation":
            results["estimation"] = estimation_report(method, root, progress)
        else:
            raise ValueError(f"unknown report {report!r}; reports: budget, rotation, calibration, estimation")
        write_json(path, results)
    table = output / "table.txt"
    with atomic_path(table) as temporary:
        Path(temporary).write_text(_table(results))
    return [path, table, *_plots(output, results)]

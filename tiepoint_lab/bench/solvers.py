"""Benchmarks of the robust estimators themselves: synthetic sweeps with known answers, and real pairs.

Two parts:

* **Synthetic sweeps** (:func:`make_problem`, :func:`run_sweep`): correspondences drawn from a known
  homography, two-view geometry (fundamental matrix, relative pose) or pure rotation, with Gaussian pixel
  noise and a given share of outliers (uniform in image 1), every draw seeded. Each estimator solves the same
  problems; :func:`run_sweep` records the error against the ground truth and the time of every run, and
  :func:`plot_sweep` draws error and time against outlier rate, noise and number of matches.
* **Real pairs** (:func:`run_real`): a matching method's matches on the Oxford (homography) and Middlebury
  temple (relative pose) benchmarks are computed once per pair, then every estimator fits them and is scored
  with the benchmark's metrics (MHA/AUC), with the certificate rate of the certifiable solver.

:func:`run_solver_benchmark` runs both and writes ``solvers.json``, ``table.txt`` and ``synthetic.png``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from tiepoint import registry
from tiepoint.errors import EstimationError
from tiepoint.evaluation.datasets import load_dataset
from tiepoint.evaluation.metrics import PairRecord, summarize
from tiepoint.evaluation.runner import Protocol, environment, estimate_and_score, jsonable, match_and_check
from tiepoint.geometry.accuracy import (
    homography_corner_error,
    pose_error,
    rotation_error,
    symmetric_epipolar_distance,
)
from tiepoint.geometry.estimate import estimate, rotation_threshold
from tiepoint.geometry.gnc import bearings
from tiepoint.io.files import atomic_path, write_json
from tiepoint.types import Camera

__all__ = [
    "SOLVERS",
    "SweepConfig",
    "SyntheticProblem",
    "format_solver_tables",
    "make_problem",
    "plot_sweep",
    "run_real",
    "run_solver_benchmark",
    "run_sweep",
    "solve_problem",
]

SYNTHETIC_MODELS = ("homography", "fundamental", "relative_pose", "rotation")
"""Models the synthetic generator draws problems for."""

_WIDTH, _HEIGHT, _FOCAL = 640, 480, 500.0
"""Image size and focal length (px) of the synthetic cameras (a 65-degree horizontal field of view)."""


@dataclass
class SyntheticProblem:
    """Correspondences with a known answer.

    Attributes:
        model: one of :data:`SYNTHETIC_MODELS`.
        points0, points1: ``(M, 2)`` float64 pixel coordinates (noisy inliers and outliers, shuffled).
        inliers: ``(M,)`` bool, True for the matches drawn from the true model.
        camera0, camera1: the cameras (640 x 480, focal 500 px).
        H: ``(3, 3)`` true homography (homography and rotation problems), else ``None``.
        R, t: true relative pose ``X1 = R X0 + t`` (``t`` zero for rotation, ``None`` for homography).
        clean0, clean1: ``(K, 2)`` noise-free inlier positions, for scoring a fundamental matrix.
        noise: the pixel noise's standard deviation; ``outlier_rate``: the share of outliers.
        seed: the seed it was drawn with.
    """

    model: str
    points0: np.ndarray
    points1: np.ndarray
    inliers: np.ndarray
    camera0: Camera
    camera1: Camera
    noise: float
    outlier_rate: float
    seed: int
    H: np.ndarray | None = None
    R: np.ndarray | None = None
    t: np.ndarray | None = None
    clean0: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    clean1: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def K(self) -> np.ndarray:
        return self.camera0.K


def _camera() -> Camera:
    return Camera(_FOCAL, _FOCAL, (_WIDTH - 1) / 2, (_HEIGHT - 1) / 2, _WIDTH, _HEIGHT)


def _inside(points: np.ndarray) -> np.ndarray:
    return (
        (points[:, 0] >= 0)
        & (points[:, 0] <= _WIDTH - 1)
        & (points[:, 1] >= 0)
        & (points[:, 1] <= _HEIGHT - 1)
    )


def _project(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    x = X @ K.T
    return x[:, :2] / x[:, 2:]


def _random_rotation(rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    axis = rng.normal(size=3)
    angle = np.radians(rng.uniform(0.3, 1.0) * max_degrees)
    return Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()


def _draw_inliers(model: str, rng: np.random.Generator, count: int, K: np.ndarray) -> dict[str, np.ndarray]:
    """``count`` noise-free correspondences inside both images and the true model."""
    corners = np.array([[0, 0], [_WIDTH - 1, 0], [_WIDTH - 1, _HEIGHT - 1], [0, _HEIGHT - 1]], float)
    truth: dict[str, np.ndarray] = {}
    if model == "homography":
        # Corners moved by up to 20% of the image size: viewpoint changes like Oxford's and HPatches'.
        moved = corners + rng.uniform(-0.2, 0.2, size=(4, 2)) * [_WIDTH, _HEIGHT]
        H = cv2.getPerspectiveTransform(corners.astype(np.float32), moved.astype(np.float32))
        truth["H"] = H / H[2, 2]
    elif model == "rotation":
        R = _random_rotation(rng, 30.0)
        truth.update(R=R, t=np.zeros(3), H=K @ R @ np.linalg.inv(K))
    else:
        # Points 4-8 units in front of camera 0; camera 1 one unit away, turned towards the scene.
        R = _random_rotation(rng, 15.0)
        direction = rng.normal(size=3) * [1.0, 1.0, 0.3]
        truth.update(R=R, t=direction / np.linalg.norm(direction))
    points0, points1 = np.zeros((0, 2)), np.zeros((0, 2))
    while len(points0) < count:
        batch = 4 * (count - len(points0)) + 16
        x0 = rng.uniform([0, 0], [_WIDTH - 1, _HEIGHT - 1], size=(batch, 2))
        rays = np.column_stack([x0, np.ones(batch)]) @ np.linalg.inv(K).T
        if model in ("homography", "rotation"):
            mapped = np.column_stack([x0, np.ones(batch)]) @ truth["H"].T
            x1 = mapped[:, :2] / mapped[:, 2:]
            ok = mapped[:, 2] > 0
        else:
            X0 = rays * rng.uniform(4.0, 8.0, size=(batch, 1))
            X1 = X0 @ truth["R"].T + truth["t"]
            x1 = _project(X1, K)
            ok = X1[:, 2] > 0.5
        ok &= _inside(x1)
        points0, points1 = np.vstack([points0, x0[ok]]), np.vstack([points1, x1[ok]])
    truth["clean0"], truth["clean1"] = points0[:count], points1[:count]
    return truth


def make_problem(
    model: str, num_matches: int = 500, outlier_rate: float = 0.5, noise: float = 1.0, seed: int = 0
) -> SyntheticProblem:
    """Draw a synthetic two-view problem with a known answer.

    Inliers are noise-free correspondences of the true model plus Gaussian noise of ``noise`` px in each
    coordinate of both images; outliers pair a random point of image 0 with an independent random point of
    image 1. Homographies move the image corners by up to 20% of the image size; relative poses turn camera 1
    by 4.5-15 degrees about a random axis and move it by one unit (points 4-8 units away); rotations turn the
    camera by 9-30 degrees.

    Args:
        model: ``"homography"``, ``"fundamental"``, ``"relative_pose"`` or ``"rotation"``.
        num_matches: ``M``, the number of correspondences (inliers and outliers).
        outlier_rate: share of outliers in ``[0, 1)``; at least 8 inliers are kept.
        noise: standard deviation of the pixel noise (``>= 0``).
        seed: seed of the draw; the same arguments give the same problem.

    Returns:
        :class:`SyntheticProblem`.
    """
    if model not in SYNTHETIC_MODELS:
        raise ValueError(f"model must be one of {list(SYNTHETIC_MODELS)}, got {model!r}")
    if not isinstance(num_matches, (int, np.integer)) or num_matches < 10:
        raise ValueError(f"num_matches must be an integer >= 10, got {num_matches!r}")
    if not 0 <= outlier_rate < 1:
        raise ValueError(f"outlier_rate must be in [0, 1), got {outlier_rate!r}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    rng = np.random.default_rng([seed, SYNTHETIC_MODELS.index(model)])
    camera = _camera()
    # num_matches may be a NumPy integer, whose round() result is not a Python int on every NumPy version
    num_inliers = max(8, int(round(num_matches * (1 - outlier_rate))))  # noqa: RUF046
    num_outliers = num_matches - num_inliers
    truth = _draw_inliers(model, rng, num_inliers, camera.K)
    points0 = truth["clean0"] + rng.normal(scale=noise, size=(num_inliers, 2))
    points1 = truth["clean1"] + rng.normal(scale=noise, size=(num_inliers, 2))
    outliers0 = rng.uniform([0, 0], [_WIDTH - 1, _HEIGHT - 1], size=(num_outliers, 2))
    outliers1 = rng.uniform([0, 0], [_WIDTH - 1, _HEIGHT - 1], size=(num_outliers, 2))
    order = rng.permutation(num_matches)
    is_inlier = np.concatenate([np.ones(num_inliers, bool), np.zeros(num_outliers, bool)])
    return SyntheticProblem(
        model=model,
        points0=np.vstack([points0, outliers0])[order],
        points1=np.vstack([points1, outliers1])[order],
        inliers=is_inlier[order],
        camera0=camera,
        camera1=camera,
        noise=float(noise),
        outlier_rate=float(outlier_rate),
        seed=int(seed),
        H=truth.get("H"),
        R=truth.get("R"),
        t=truth.get("t"),
        clean0=truth["clean0"],
        clean1=truth["clean1"],
    )


# ------------------------------------------------------------------------------------- synthetic sweeps

SOLVERS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    model: {
        "poselib": ("poselib", {}),
        "opencv": ("opencv", {}),
        "gnc": ("gnc", {}),
        **({"gnc+seed": ("gnc", {"seed": "poselib"})} if model != "rotation" else {}),
        **({"sdp": ("sdp", {})} if model == "relative_pose" else {}),
        **({"bnb": ("bnb", {})} if model == "rotation" else {}),
    }
    for model in SYNTHETIC_MODELS
}
"""The estimators compared on each model: ``{label: (estimator, options)}``. ``gnc+seed`` is GNC started
from PoseLib's LO-RANSAC model; the rotation baselines fit a homography and take its nearest rotation."""

THRESHOLDS = {"homography": 3.0, "fundamental": 1.0, "relative_pose": 1.0, "rotation": 3.0}
"""Inlier threshold (px) per model in the sweeps (the benchmark protocols' values)."""

SUCCESS = {"homography": 5.0, "fundamental": 2.0, "relative_pose": 5.0, "rotation": 1.0}
"""A run succeeds when its error is at most this: corner error (px), mean epipolar distance of the true
correspondences (px), pose error (degrees), rotation error (degrees)."""


@dataclass
class SweepConfig:
    """Which synthetic problems :func:`run_sweep` draws.

    Three one-dimensional sweeps around a base point (``num_matches``, ``noise``, ``outlier_rate``): the
    outlier rate over ``outlier_rates``, the noise over ``noises`` and the number of matches over ``sizes``;
    each cell is drawn ``trials`` times (seeds ``seed``, ``seed + 1``, ...).
    """

    models: tuple[str, ...] = SYNTHETIC_MODELS
    outlier_rates: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)
    noises: tuple[float, ...] = (0.5, 1.0, 2.0)
    sizes: tuple[int, ...] = (100, 500, 1000, 2000, 5000)
    num_matches: int = 500
    noise: float = 1.0
    outlier_rate: float = 0.5
    trials: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.models) - set(SYNTHETIC_MODELS)
        if unknown:
            raise ValueError(f"sweep models must be among {list(SYNTHETIC_MODELS)}, got {sorted(unknown)}")
        if self.trials < 1:
            raise ValueError(f"sweep trials must be >= 1, got {self.trials}")
        self.models = tuple(self.models)
        self.outlier_rates = tuple(float(r) for r in self.outlier_rates)
        self.noises = tuple(float(n) for n in self.noises)
        self.sizes = tuple(int(n) for n in self.sizes)

    def cells(self) -> list[tuple[str, int, float, float]]:
        """``(sweep, num_matches, noise, outlier_rate)`` of every cell, the base point in each sweep."""
        cells = [("outliers", self.num_matches, self.noise, r) for r in self.outlier_rates]
        cells += [("noise", self.num_matches, n, self.outlier_rate) for n in self.noises]
        cells += [("size", n, self.noise, self.outlier_rate) for n in self.sizes]
        return cells


def problem_error(problem: SyntheticProblem, geometry: Any) -> float:
    """The error of an estimate against the problem's truth (see :data:`SUCCESS` for the units)."""
    if geometry is None:
        return math.inf
    if problem.model == "homography":
        return homography_corner_error(geometry.matrix, problem.H, (_WIDTH, _HEIGHT))
    if problem.model == "fundamental":
        return float(np.mean(symmetric_epipolar_distance(geometry.matrix, problem.clean0, problem.clean1)))
    if problem.model == "relative_pose":
        return pose_error(geometry.R, geometry.t, problem.R, problem.t)
    return rotation_error(geometry.R, problem.R)


def _angular_inliers(problem: SyntheticProblem, R: np.ndarray) -> int:
    """Matches within the rotation threshold's angle of ``R`` (the consensus BnB maximises)."""
    f0, f1 = bearings(problem.points0, problem.camera0), bearings(problem.points1, problem.camera1)
    eps = rotation_threshold(THRESHOLDS["rotation"], problem.camera1)
    return int(np.count_nonzero(np.sum(f1 * (f0 @ R.T), axis=1) >= math.cos(eps)))


def solve_problem(problem: SyntheticProblem, label: str) -> dict[str, Any]:
    """Run one solver of :data:`SOLVERS` on a problem: its error, time, inliers and certificate."""
    estimator, options = SOLVERS[problem.model][label]
    start = time.perf_counter()
    try:
        geometry = estimate(
            (problem.points0, problem.points1), problem.model, problem.camera0, problem.camera1,
            threshold=THRESHOLDS[problem.model], estimator=estimator, **options,
        )  # fmt: skip
        message = ""
    except EstimationError as error:
        geometry, message = None, str(error)
    seconds = time.perf_counter() - start
    run: dict[str, Any] = {
        "solver": label,
        "error": problem_error(problem, geometry),
        "ms": 1000.0 * seconds,
        "inliers": 0 if geometry is None else geometry.num_inliers,
        "true_inliers_found": 0
        if geometry is None
        else int(np.count_nonzero(geometry.inliers & problem.inliers)),
        "message": message,
    }
    if geometry is not None and problem.model == "rotation":
        run["angular_inliers"] = _angular_inliers(problem, geometry.R)
    if geometry is not None and geometry.certificate is not None:
        run["certified"] = bool(geometry.certificate.certified)
        run["bound_gap"] = float(geometry.certificate.gap)
    return run


def run_sweep(
    config: SweepConfig | None = None, progress: bool = True, checkpoint: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Every solver of :data:`SOLVERS` on every synthetic cell of ``config``.

    Args:
        config: the sweep; default :class:`SweepConfig`.
        progress: show a progress bar on stderr.
        checkpoint: a JSON file that finished runs are saved to as they finish; a rerun with the same
            config skips them (resumable). Removed when the sweep completes.

    Returns:
        ``{"config", "runs", "summary"}``: one dict per run (model, sweep, cell, trial, solver, error, ms,
        inliers, ...) and per (model, sweep, cell, solver) the median error, success rate and mean time.
    """
    config = SweepConfig() if config is None else config
    key_config = asdict(config)
    done: dict[str, dict[str, Any]] = {}
    if checkpoint is not None and Path(checkpoint).is_file():
        saved = json.loads(Path(checkpoint).read_text())
        if saved.get("config") == json.loads(json.dumps(key_config)):
            done = saved["runs"]
    jobs = [
        (model, cell, trial)
        for model in config.models
        for cell in config.cells()
        for trial in range(config.trials)
    ]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="synthetic sweep", unit="problem", file=sys.stderr, leave=False)
    runs = []
    for model, (sweep, num, noise, rate), trial in jobs:
        key = f"{model}|{sweep}|{num}|{noise}|{rate}|{trial}"
        if key not in done:
            problem = make_problem(model, num, rate, noise, seed=config.seed + trial)
            cell = {"model": model, "sweep": sweep, "num_matches": num, "noise": noise, "outlier_rate": rate}
            done[key] = [
                {**cell, "trial": trial, **solve_problem(problem, label)} for label in SOLVERS[model]
            ]
            if checkpoint is not None:
                write_json(checkpoint, {"config": key_config, "runs": done})
        runs.extend(done[key])
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    return {"config": key_config, "runs": runs, "summary": summarize_sweep(runs)}


def summarize_sweep(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, sweep, cell, solver): median and 90th-percentile error, success rate, mean time, and for
    rotations how often the solver reached the best angular consensus of any solver on that problem."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    best_consensus: dict[tuple, int] = {}
    for run in runs:
        cell = (run["model"], run["sweep"], run["num_matches"], run["noise"], run["outlier_rate"])
        groups.setdefault((*cell, run["solver"]), []).append(run)
        if "angular_inliers" in run:
            problem = (*cell, run["trial"])
            best_consensus[problem] = max(best_consensus.get(problem, 0), run["angular_inliers"])
    summary = []
    for (model, sweep, num, noise, rate, solver), group in groups.items():
        errors = np.array([r["error"] for r in group], dtype=np.float64)
        row = {
            "model": model, "sweep": sweep, "num_matches": num, "noise": noise, "outlier_rate": rate,
            "solver": solver, "trials": len(group),
            "median_error": float(np.median(errors)),
            "p90_error": float(np.percentile(errors, 90)) if np.isfinite(errors).all() else math.inf,
            "success_rate": float(np.mean(errors <= SUCCESS[model])),
            "mean_ms": float(np.mean([r["ms"] for r in group])),
        }  # fmt: skip
        certified = [r["certified"] for r in group if "certified" in r]
        if certified:
            row["certified_rate"] = float(np.mean(certified))
        if model == "rotation":
            row["best_consensus_rate"] = float(
                np.mean(
                    [
                        r.get("angular_inliers", -1)
                        >= best_consensus[(model, sweep, num, noise, rate, r["trial"])]
                        for r in group
                    ]
                )
            )
        summary.append(row)
    return summary


_UNITS = {"homography": "corner error (px)", "fundamental": "epipolar error (px)",
          "relative_pose": "pose error (deg)", "rotation": "rotation error (deg)"}  # fmt: skip


def plot_sweep(summary: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Draw the sweep: one row per model; median error against outlier rate and noise, and time against
    the number of matches (log scales). Failures (an infinite median) are drawn at the top of the axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(row["model"] for row in summary))
    figure, axes = plt.subplots(len(models), 3, figsize=(15, 3.6 * len(models)), squeeze=False)
    columns = [("outliers", "outlier_rate", "median_error"), ("noise", "noise", "median_error"),
               ("size", "num_matches", "mean_ms")]  # fmt: skip
    for i, model in enumerate(models):
        cap = SUCCESS[model] * 20
        for j, (sweep, x_key, y_key) in enumerate(columns):
            axis = axes[i][j]
            rows = [r for r in summary if r["model"] == model and r["sweep"] == sweep]
            for solver in dict.fromkeys(r["solver"] for r in rows):
                points = sorted((r[x_key], r[y_key]) for r in rows if r["solver"] == solver)
                xs = [p[0] for p in points]
                ys = [min(p[1], cap) if y_key == "median_error" else p[1] for p in points]
                axis.plot(xs, ys, marker="o", label=solver)
            axis.set_yscale("log")
            if sweep == "size":
                axis.set_xscale("log")
            axis.set_xlabel({"outliers": "outlier rate", "noise": "noise (px)", "size": "matches"}[sweep])
            axis.set_ylabel("time (ms)" if y_key == "mean_ms" else "median " + _UNITS[model])
            axis.set_title(f"{model}: {'time' if sweep == 'size' else 'error'} vs {axis.get_xlabel()}")
            axis.grid(True, which="both", alpha=0.3)
            if j == 0:
                axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(Path(path)) as tmp:
        figure.savefig(tmp, dpi=80, format="png")
    plt.close(figure)
    return Path(path)


# ------------------------------------------------------------------------------------------ real pairs

REAL_SOLVERS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "homography": {k: v for k, v in SOLVERS["homography"].items()},
    "relative_pose": {k: v for k, v in SOLVERS["relative_pose"].items()},
}
"""The estimators compared on real pairs, by task."""


def run_real(
    dataset: str,
    method: str = "sift",
    root: str | os.PathLike | None = None,
    max_keypoints: int | None = 2048,
    progress: bool = True,
) -> dict[str, Any]:
    """Every estimator of :data:`REAL_SOLVERS` on a real benchmark's pairs, on the same matches.

    Each pair is matched once with ``method`` under the dataset's default protocol (2048 keypoints, native
    resolution, seeded), then each estimator fits the matches with the protocol's threshold and is scored as
    ``tiepoint bench`` scores it (corner error or pose error; MHA/AUC summaries).

    Returns:
        ``{"dataset", "method", "protocol", "solvers": {label: {"summary", "estimate_ms", "records",
        ...}}}``; for certifying solvers also ``certified_rate`` and per pair ``certified``/``relative_gap``;
        for every solver ``worse_than_poselib_deg`` (relative pose) or ``_px``: the largest per-pair increase
        of its error over PoseLib's.
    """
    data = load_dataset(dataset, root)
    protocol = Protocol.default(data, max_keypoints=max_keypoints)
    matcher = registry.get_method(method, **protocol.method_options())
    solvers = REAL_SOLVERS[data.task]
    records: dict[str, list[PairRecord]] = {label: [] for label in solvers}
    certificates: dict[str, list[dict[str, Any]]] = {label: [] for label in solvers}
    pairs = data.pairs
    if progress:
        from tqdm.auto import tqdm

        pairs = tqdm(
            pairs, desc=f"{data.name} | {method} | solvers", unit="pair", file=sys.stderr, leave=False
        )
    for pair in pairs:
        matches, extract_ms, match_ms, precision = match_and_check(pair, matcher, protocol)
        for label, (estimator, options) in solvers.items():
            pair_protocol = replace(protocol, estimator=estimator, estimator_options=dict(options))
            geometries: list[Any] = []
            records[label].append(
                estimate_and_score(pair, matches, pair_protocol, precision, extract_ms, match_ms, geometries)
            )
            geometry = geometries[0]
            if geometry is not None and geometry.certificate is not None:
                certificates[label].append(
                    {
                        "pair": pair.name,
                        "certified": geometry.certificate.certified,
                        "relative_gap": geometry.certificate.details.get("relative_gap"),
                        "rank_ratio": geometry.certificate.details.get("rank_ratio"),
                    }
                )
    baseline = [r.error for r in records["poselib"]]
    result: dict[str, Any] = {
        "dataset": data.name,
        "task": data.task,
        "method": method,
        "protocol": protocol.to_dict(),
        "solvers": {},
    }
    for label, pair_records in records.items():
        increase = [
            r.error - b
            for r, b in zip(pair_records, baseline, strict=True)
            if math.isfinite(b) or math.isfinite(r.error)
        ]
        entry = {
            "estimator": solvers[label][0],
            "options": solvers[label][1],
            "summary": summarize(pair_records, data.task, protocol.mma_thresholds),
            "estimate_ms": float(np.mean([r.estimate_ms for r in pair_records])),
            "worse_than_poselib": max(increase) if increase else 0.0,
            "records": [r.to_dict() for r in pair_records],
        }
        if certificates[label]:
            entry["certificates"] = certificates[label]
            entry["certified_rate"] = float(np.mean([c["certified"] for c in certificates[label]]))
        result["solvers"][label] = entry
    return result


def format_solver_tables(synthetic: dict[str, Any] | None, real: list[dict[str, Any]]) -> str:
    """Text tables: per real dataset one row per solver; per synthetic model the outlier sweep."""
    lines: list[str] = []
    for result in real:
        homography = result["task"] == "homography"
        names = (["mha@1px", "mha@3px", "mha@5px", "auc@3px", "auc@5px", "auc@10px"] if homography
                 else ["auc@5deg", "auc@10deg", "auc@20deg"])  # fmt: skip
        lines.append(f"{result['dataset']} ({result['task']}, {result['method']} matches): "
                     f"{Protocol.from_dict(result['protocol']).describe()}")  # fmt: skip
        header = f"{'solver':<10}{'#inliers':>9}" + "".join(f"{n:>11}" for n in names)
        header += f"{'fail':>6}{'ms/pair':>9}{'certified':>10}"
        lines += [header, "-" * len(header)]
        for label, entry in result["solvers"].items():
            s = entry["summary"]
            row = f"{label:<10}{s['mean_inliers']:>9.0f}" + "".join(f"{100 * s[n]:>11.1f}" for n in names)
            certified = f"{100 * entry['certified_rate']:.0f}%" if "certified_rate" in entry else "-"
            lines.append(row + f"{s['failures']:>6}{entry['estimate_ms']:>9.1f}{certified:>10}")
        lines.append("")
    if synthetic:
        for model in dict.fromkeys(r["model"] for r in synthetic["summary"]):
            rows = [r for r in synthetic["summary"] if r["model"] == model and r["sweep"] == "outliers"]
            rates = sorted(dict.fromkeys(r["outlier_rate"] for r in rows))
            lines.append(f"synthetic {model}: median {_UNITS[model]} / success rate (error <= "
                         f"{SUCCESS[model]:g}) / mean ms, by outlier rate "
                         f"({rows[0]['num_matches']} matches, noise {rows[0]['noise']:g} px, "
                         f"{rows[0]['trials']} trials)")  # fmt: skip
            header = f"{'solver':<10}" + "".join(f"{f'{100 * r:.0f}%':>20}" for r in rates)
            lines += [header, "-" * len(header)]
            for solver in dict.fromkeys(r["solver"] for r in rows):
                cells = []
                for rate in rates:
                    (r,) = [x for x in rows if x["solver"] == solver and x["outlier_rate"] == rate]
                    cells.append(f"{r['median_error']:.2f}/{100 * r['success_rate']:.0f}%/{r['mean_ms']:.0f}")
                lines.append(f"{solver:<10}" + "".join(f"{c:>20}" for c in cells))
            lines.append("")
            size_rows = [r for r in synthetic["summary"] if r["model"] == model and r["sweep"] == "size"]
            sizes = sorted(dict.fromkeys(r["num_matches"] for r in size_rows))
            lines.append(f"synthetic {model}: mean ms by number of matches (outlier rate "
                         f"{100 * size_rows[0]['outlier_rate']:.0f}%)")  # fmt: skip
            header = f"{'solver':<10}" + "".join(f"{n:>10}" for n in sizes)
            lines += [header, "-" * len(header)]
            for solver in dict.fromkeys(r["solver"] for r in size_rows):
                times = {r["num_matches"]: r["mean_ms"] for r in size_rows if r["solver"] == solver}
                lines.append(f"{solver:<10}" + "".join(f"{times[n]:>10.1f}" for n in sizes))
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def run_solver_benchmark(
    output_dir: str | os.PathLike,
    datasets: tuple[str, ...] = ("oxford", "middlebury"),
    method: str = "sift",
    root: str | os.PathLike | None = None,
    sweep: SweepConfig | None = None,
    synthetic: bool = True,
    progress: bool = True,
) -> list[Path]:
    """Run the synthetic sweep and the real-data comparison and write the results into ``output_dir``.

    Files (written atomically): ``solvers.json`` (environment, sweep config, every synthetic run and its
    summary, every real pair's record per solver), ``table.txt`` (:func:`format_solver_tables`) and
    ``synthetic.png`` (:func:`plot_sweep`). The sweep checkpoints into ``synthetic.partial.json`` so an
    interrupted run resumes.

    Returns:
        The paths written.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    sweep_result = (
        run_sweep(sweep, progress=progress, checkpoint=output_dir / "synthetic.partial.json")
        if synthetic
        else None
    )
    real = [run_real(name, method, root, progress=progress) for name in datasets]
    written = [
        write_json(
            output_dir / "solvers.json",
            jsonable({"environment": environment(), "synthetic": sweep_result, "real": real}),
        )
    ]
    with atomic_path(output_dir / "table.txt") as tmp:
        tmp.write_text(format_solver_tables(sweep_result, real))
    written.append(output_dir / "table.txt")
    if sweep_result is not None:
        written.append(plot_sweep(sweep_result["summary"], output_dir / "synthetic.png"))
    return written

"""Running a method on a benchmark dataset under a fixed protocol.

:func:`run_benchmark` matches every pair of a dataset with one method, estimates the geometry with the
protocol's robust estimator, scores it against the ground truth (:mod:`tiepoint.evaluation.metrics`) and times
each stage. Everything random is seeded before each pair (NumPy, Python, torch, OpenCV; PoseLib is seeded by
:func:`tiepoint.estimate`), so two runs give identical accuracy numbers; only the times differ.

Example:
    >>> from tiepoint.evaluation import run_benchmark, format_table
    >>> result = run_benchmark("oxford", "sift+ratio")  # doctest: +SKIP
    >>> print(format_table([result]))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .. import registry
from ..errors import EstimationError, OptionError
from ..geometry.accuracy import homography_corner_error, pose_error
from ..geometry.estimate import estimate
from .datasets import Dataset, Pair, dataset_task, load_dataset
from .metrics import (
    MMA_THRESHOLDS,
    PairRecord,
    epipolar_match_errors,
    finite_or_none,
    homography_match_errors,
    match_precision,
    precision_curve,
    summarize,
)

DEFAULT_THRESHOLDS = {"homography": 3.0, "relative_pose": 1.0}
"""Inlier threshold (px) of the robust estimator, by task."""

MODELS = {"homography": "homography", "relative_pose": "relative_pose"}
"""The model :func:`tiepoint.estimate` fits, by task."""

UNRELIABLE_POLICY = "scored as estimated"
"""How the benchmark treats a model that fails the significance test: it scores it like any other (the test
changes no accuracy number) and records ``reliable`` and the reason with the pair."""


@dataclass
class Protocol:
    """How a benchmark is run; recorded with every result so that numbers are only compared like for like.

    Attributes:
        task: ``"homography"`` or ``"relative_pose"``.
        estimator: the robust estimator of :func:`tiepoint.estimate` (``"poselib"`` or ``"opencv"``).
        threshold: its inlier threshold in pixels.
        max_keypoints: passed to the method as ``max_keypoints`` (``None``: the method's own default).
        resize: passed to the method as ``resize``, the longest image side it works at (``None``: native
            resolution). Keypoints come back in original pixels, so the ground truth is unchanged.
        mma_thresholds: pixel thresholds of the per-match precision (MMA) curve.
        seed: the seed set before each pair.
        warmup: pairs matched (and discarded) before timing starts, so one-off start-up costs are not timed.
        estimator_options: further options of the estimator (e.g. ``{"max_iterations": 10000}``), the
            options of its significance test (``min_inliers``, ``max_nfa``, ``min_inlier_ratio``) included.
        unreliable: how a model that fails the significance test (:attr:`tiepoint.types.Geometry.reliable`)
            is treated; the only policy is :data:`UNRELIABLE_POLICY`, ``"scored as estimated"``: its error is
            measured like any other's (so no number depends on the test), and its record says
            ``reliable=False`` with the reason, counted by the summary's ``unreliable``.
    """

    task: str
    estimator: str = "poselib"
    threshold: float = 3.0
    max_keypoints: int | None = 2048
    resize: int | None = None
    mma_thresholds: tuple[float, ...] = MMA_THRESHOLDS
    seed: int = 0
    warmup: int = 1
    estimator_options: dict[str, Any] = field(default_factory=dict)
    unreliable: str = "scored as estimated"

    def __post_init__(self) -> None:
        if self.task not in MODELS:
            raise ValueError(f"protocol task must be one of {sorted(MODELS)}, got {self.task!r}")
        if self.unreliable != UNRELIABLE_POLICY:
            raise ValueError(f"protocol unreliable must be {UNRELIABLE_POLICY!r}, got {self.unreliable!r}")
        if not (
            isinstance(self.threshold, (int, float)) and self.threshold > 0 and math.isfinite(self.threshold)
        ):
            raise ValueError(
                f"protocol threshold must be a positive number of pixels, got {self.threshold!r}"
            )
        self.threshold = float(self.threshold)
        self.mma_thresholds = tuple(float(t) for t in self.mma_thresholds)
        if not self.mma_thresholds or any(not t > 0 for t in self.mma_thresholds):
            raise ValueError(f"protocol mma_thresholds must be positive, got {self.mma_thresholds}")
        if self.warmup < 0:
            raise ValueError(f"protocol warmup must be >= 0, got {self.warmup}")

    @classmethod
    def default(
        cls,
        dataset: str | Dataset,
        estimator: str | None = None,
        threshold: float | None = None,
        max_keypoints: int | None | str = "default",
        **overrides: Any,
    ) -> Protocol:
        """The fixed protocol of a dataset (a name or a :class:`Dataset`), with optional overrides.

        Homography datasets (oxford, hpatches, synthetic): PoseLib, 3 px; relative-pose datasets
        (middlebury, pairs files): PoseLib, 1 px; 2048 keypoints and each method's own working resolution
        (its ``resize``) for both. ``None``
        for ``estimator`` or ``threshold`` keeps the default; ``max_keypoints=None`` means the method's own.
        """
        task = dataset_task(dataset)
        protocol = cls(task=task, threshold=DEFAULT_THRESHOLDS[task], **overrides)
        if estimator is not None:
            protocol = replace(protocol, estimator=estimator)
        if threshold is not None:
            protocol = replace(protocol, threshold=threshold)
        if max_keypoints != "default":
            protocol = replace(protocol, max_keypoints=max_keypoints)
        return protocol

    def method_options(self) -> dict[str, Any]:
        """The options the protocol passes to the method."""
        options: dict[str, Any] = {}
        if self.max_keypoints is not None:
            options["max_keypoints"] = self.max_keypoints
        if self.resize is not None:
            options["resize"] = self.resize
        return options

    def describe(self) -> str:
        """One line, e.g. ``"estimator poselib, threshold 3 px, max 2048 keypoints, method's own
        resolution"``."""
        keypoints = (
            "method's own keypoint limit"
            if self.max_keypoints is None
            else f"max {self.max_keypoints} keypoints"
        )
        size = "method's own resolution" if self.resize is None else f"resized to {self.resize} px"
        return f"estimator {self.estimator}, threshold {self.threshold:g} px, {keypoints}, {size}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mma_thresholds"] = list(self.mma_thresholds)
        data["estimator_options"] = jsonable(self.estimator_options)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Protocol:
        data = dict(data)
        data["mma_thresholds"] = tuple(data.get("mma_thresholds", MMA_THRESHOLDS))
        return cls(**data)


@dataclass
class BenchmarkResult:
    """One method on one dataset.

    Attributes:
        dataset: the dataset's name.
        description: the dataset's one-line description.
        method: the method name as given.
        method_options: the options the method was built with (besides the protocol's), a preset's included.
        protocol: the :class:`Protocol`.
        records: one :class:`~tiepoint.evaluation.metrics.PairRecord` per pair, in dataset order.
        summary: aggregate metrics (:func:`~tiepoint.evaluation.metrics.summarize`), fractions in ``[0, 1]``.
        timing: ``{extract,match,estimate}_ms_{mean,median}`` and ``pair_ms_mean`` (two extractions plus
            matching), in milliseconds; ``None`` where the method does not report a stage.
        environment: the machine and library versions (:func:`environment`).
        created: when the run finished (ISO 8601, UTC).
    """

    dataset: str
    description: str
    method: str
    method_options: dict[str, Any]
    protocol: Protocol
    records: list[PairRecord]
    summary: dict[str, float]
    timing: dict[str, float | None]
    environment: dict[str, Any]
    created: str = ""

    @property
    def task(self) -> str:
        return self.protocol.task

    def mma_curve(self) -> tuple[list[float], list[float]]:
        """``(thresholds, values)`` of the per-match precision curve (MMA for homography datasets)."""
        return precision_curve(self.summary, self.task, self.protocol.mma_thresholds)

    def accuracy(self) -> dict[str, Any]:
        """The accuracy part only: summary and per-pair records without times (equal across repeated runs)."""
        records = [
            {k: v for k, v in record.to_dict().items() if k not in ("extract_ms", "match_ms", "estimate_ms")}
            for record in self.records
        ]
        return {"summary": jsonable(self.summary), "records": records}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: plain Python types only; non-finite numbers (the error of a failed pair, a
        median error when most pairs failed) are written as ``null``; each record's ``failed`` tells
        failures apart."""
        return {
            "dataset": self.dataset,
            "description": self.description,
            "task": self.task,
            "method": self.method,
            "method_options": jsonable(self.method_options),
            "protocol": self.protocol.to_dict(),
            "summary": jsonable(self.summary),
            "timing": jsonable(self.timing),
            "environment": jsonable(self.environment),
            "created": self.created,
            "records": [record.to_dict() for record in self.records],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkResult:
        """Rebuild a result from :meth:`to_dict` (``null`` numbers become ``inf``)."""
        summary = {k: (math.inf if v is None else v) for k, v in data["summary"].items()}
        return cls(
            dataset=data["dataset"],
            description=data.get("description", ""),
            method=data["method"],
            method_options=dict(data.get("method_options", {})),
            protocol=Protocol.from_dict(data["protocol"]),
            records=[PairRecord.from_dict(r) for r in data["records"]],
            summary=summary,
            timing=dict(data.get("timing", {})),
            environment=dict(data.get("environment", {})),
            created=data.get("created", ""),
        )


def jsonable(value: Any) -> Any:
    """``value`` with NumPy types turned into Python ones and non-finite floats into ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return finite_or_none(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)


# --- environment and seeding --------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        imported = __import__(module)
    except Exception:  # noqa: BLE001 - a missing or broken optional package is reported as None
        return None
    return str(getattr(imported, "__version__", None))


def environment() -> dict[str, Any]:
    """The machine and library versions a run was made with (recorded in every result)."""
    import torch

    from .. import __version__

    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tiepoint": __version__,
        "torch": torch.__version__,
        "opencv": _version("cv2"),
        "poselib": _version("poselib"),
        "numpy": np.__version__,
    }


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, torch and OpenCV."""
    import cv2
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    cv2.setRNGSeed(seed)


# --- running ------------------------------------------------------------------------------------------------


def _stat(values: Sequence[float | None], how: str) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return float(np.mean(present) if how == "mean" else np.median(present))


def _evaluate_pair(pair: Pair, matcher: Any, protocol: Protocol) -> PairRecord:
    matches, extract_ms, match_ms, precision = match_and_check(pair, matcher, protocol)
    return estimate_and_score(pair, matches, protocol, precision, extract_ms, match_ms)


def match_and_check(
    pair: Pair, matcher: Any, protocol: Protocol
) -> tuple[Any, float | None, float | None, list[float]]:
    """Match one pair (after seeding) and score every match against the ground truth.

    Returns:
        ``(matches, extract_ms, match_ms, precision)``: the :class:`~tiepoint.types.Matches`, the mean
        extraction time per image and the matching time (``None`` where the method does not report them),
        and the per-threshold match precision of the protocol.
    """
    seed_everything(protocol.seed)
    image0, image1 = pair.load()
    matches = matcher.match(image0, image1)
    timings = matches.timings
    extract = [timings[k] * 1000.0 for k in ("extract0", "extract1") if k in timings]
    extract_ms = float(np.mean(extract)) if extract else None
    match_ms = timings["match"] * 1000.0 if "match" in timings else None

    if protocol.task == "homography":
        match_errors = homography_match_errors(pair.H, matches.keypoints0, matches.keypoints1)
    else:
        match_errors = epipolar_match_errors(
            pair.R, pair.t, pair.camera0, pair.camera1, matches.keypoints0, matches.keypoints1
        )
    return matches, extract_ms, match_ms, match_precision(match_errors, protocol.mma_thresholds)


def estimate_and_score(
    pair: Pair,
    matches: Any,
    protocol: Protocol,
    precision: list[float],
    extract_ms: float | None = None,
    match_ms: float | None = None,
    geometry_out: list | None = None,
) -> PairRecord:
    """Estimate the geometry of a matched pair with the protocol's estimator and score it (a
    :class:`PairRecord`); the :class:`~tiepoint.types.Geometry` (or ``None``) is appended to
    ``geometry_out`` when given."""
    start = time.perf_counter()
    message = ""
    try:
        geometry = estimate(
            matches,
            model=MODELS[protocol.task],
            camera0=pair.camera0,
            camera1=pair.camera1,
            threshold=protocol.threshold,
            estimator=protocol.estimator,
            **protocol.estimator_options,
        )
    except EstimationError as error:
        geometry, message = None, str(error) or type(error).__name__
    estimate_ms = (time.perf_counter() - start) * 1000.0
    if geometry_out is not None:
        geometry_out.append(geometry)

    if geometry is None:
        error, inliers = math.inf, 0
    elif protocol.task == "homography":
        error = homography_corner_error(geometry.matrix, pair.H, matches.image_size0)
        inliers = geometry.num_inliers
    else:
        error = pose_error(geometry.R, geometry.t, pair.R, pair.t)
        inliers = geometry.num_inliers
    return PairRecord(
        name=pair.name,
        group=pair.group,
        num_matches=len(matches),
        num_inliers=int(inliers),
        error=float(error),
        failed=geometry is None,
        precision=precision,
        extract_ms=extract_ms,
        match_ms=match_ms,
        estimate_ms=estimate_ms,
        message=message,
        reliable=geometry is not None and geometry.reliable,
        reason=message if geometry is None else geometry.reason,
    )


def run_benchmark(
    dataset: str | Dataset,
    method: str,
    root: str | os.PathLike | None = None,
    protocol: Protocol | None = None,
    progress: bool = True,
    **method_options: Any,
) -> BenchmarkResult:
    """Run one method on one dataset.

    Args:
        dataset: a dataset name for :func:`~tiepoint.evaluation.datasets.load_dataset` (``"oxford"``,
            ``"middlebury"``, ``"pairs:<file>"`` ...) or a :class:`Dataset`.
        method: a registered method name (``"sift+ratio"``, see ``tiepoint.methods()``).
        root: where the dataset is (see :func:`load_dataset`); ignored for a :class:`Dataset`.
        protocol: how to run it; default :meth:`Protocol.default` of the dataset.
        progress: show a progress bar on stderr.
        **method_options: further options of the method (e.g. ``ratio=0.9``); keypoint count and image size
            belong to the protocol.

    Returns:
        :class:`BenchmarkResult` with per-pair records, summary metrics, timing and environment.

    Raises:
        DatasetError: the dataset cannot be found or read.
        UnknownMethodError, OptionError: bad method name or options, or options the protocol sets.
        ValueError: the protocol's task is not the dataset's.
    """
    data = load_dataset(dataset, root)
    protocol = Protocol.default(data) if protocol is None else protocol
    if protocol.task != data.task:
        raise ValueError(
            f"protocol is for {protocol.task!r} but dataset {data.name!r} is a {data.task!r} benchmark"
        )
    clash = sorted(set(method_options) & {"max_keypoints", "resize"})
    if clash:
        raise OptionError(
            f"method option(s) {clash} are fixed by the benchmark protocol; set them in Protocol "
            "(max_keypoints=, resize=) so that they are recorded with the results"
        )
    matcher = registry.get_method(method, **protocol.method_options(), **method_options)

    for pair in data.pairs[: protocol.warmup]:
        seed_everything(protocol.seed)
        matcher.match(*pair.load())

    records = []
    pairs = data.pairs
    if progress:
        from tqdm.auto import tqdm

        pairs = tqdm(pairs, desc=f"{data.name} | {method}", unit="pair", file=sys.stderr, leave=False)
    for pair in pairs:
        records.append(_evaluate_pair(pair, matcher, protocol))

    summary = summarize(records, protocol.task, protocol.mma_thresholds)
    extract = [r.extract_ms for r in records]
    match = [r.match_ms for r in records]
    estimation = [r.estimate_ms for r in records]
    pair_ms = [None if r.match_ms is None else 2 * (r.extract_ms or 0.0) + r.match_ms for r in records]
    timing = {
        "extract_ms_mean": _stat(extract, "mean"),
        "extract_ms_median": _stat(extract, "median"),
        "match_ms_mean": _stat(match, "mean"),
        "match_ms_median": _stat(match, "median"),
        "estimate_ms_mean": _stat(estimation, "mean"),
        "estimate_ms_median": _stat(estimation, "median"),
        "pair_ms_mean": _stat(pair_ms, "mean"),
    }
    return BenchmarkResult(
        dataset=data.name,
        description=data.description,
        method=method,
        method_options={**registry.preset_options(method), **method_options},
        protocol=protocol,
        records=records,
        summary=summary,
        timing=timing,
        environment=environment(),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )


def run_benchmarks(
    datasets: Sequence[str | Dataset],
    methods: Sequence[str],
    root: str | os.PathLike | None = None,
    estimator: str | None = None,
    threshold: float | None = None,
    max_keypoints: int | None | str = "default",
    resize: int | None = None,
    progress: bool = True,
    method_options: Mapping[str, Any] | None = None,
) -> list[BenchmarkResult]:
    """Every method on every dataset, each under its dataset's default protocol with the given overrides.

    A convenience for command lines: ``run_benchmarks(["oxford", "middlebury"], ["sift", "orb"])``.
    ``root`` applies to every dataset given by name. ``method_options`` go to every method, as one mapping: a
    method option may share its name with a protocol setting here (Efficient LoFTR's match ``threshold`` and
    the estimator's inlier ``threshold``).
    """
    results = []
    for dataset in datasets:
        data = load_dataset(dataset, root)
        protocol = Protocol.default(
            data, estimator=estimator, threshold=threshold, max_keypoints=max_keypoints, resize=resize
        )
        for method in methods:
            results.append(
                run_benchmark(data, method, protocol=protocol, progress=progress, **(method_options or {}))
            )
    return results


__all__ = [
    "UNRELIABLE_POLICY",
    "BenchmarkResult",
    "Protocol",
    "environment",
    "estimate_and_score",
    "jsonable",
    "match_and_check",
    "run_benchmark",
    "run_benchmarks",
    "seed_everything",
]

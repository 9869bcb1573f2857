"""Results tables of ``docs/*.md`` and ``README.md``, generated from the committed benchmark records.

A table sits between ``<!-- table:NAME -->`` and ``<!-- /table -->``; :data:`TABLES` maps each NAME to the
function that builds it from the JSON files under ``benchmarks/``. ``tiepoint-lab docs`` rewrites the tables;
``tiepoint-lab docs --check`` (and the test suite) fails when one of them is stale.

    python -m tiepoint_lab.docs [--check]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tiepoint.geometry.accuracy import auc

from .paths import REPOSITORY

__all__ = [
    "TABLES",
    "Column",
    "Row",
    "bench_table",
    "main",
    "markdown",
    "render",
    "speed_table",
    "stale_files",
]

MARKER = re.compile(r"<!-- table:(?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- /table -->", re.DOTALL)
"""A generated table: its name, then everything up to the closing marker."""

FENCE = re.compile(r"(^```.*?^```[^\n]*$)", re.DOTALL | re.MULTILINE)
"""A fenced code block (kept as it is)."""

Builder = Callable[[Path], str]
"""Builds a table (Markdown, ending with a newline) from the ``benchmarks/`` folder it is given."""


# -------------------------------------------------------------------------------------------- formatting


def markdown(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1, numeric_to: int | None = None
) -> str:
    """A Markdown table; the columns from ``numeric_from`` up to ``numeric_to`` (the last by default) are the
    numbers, right-aligned."""
    end = len(header) if numeric_to is None else numeric_to
    rules = ["--:" if numeric_from <= i < end else "---" for i in range(len(header))]
    lines = [header, rules, *rows]
    return "".join("| " + " | ".join(str(cell) for cell in line) + " |\n" for line in lines)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(value: float | None) -> str:
    """A share in [0, 1] as a percentage with one decimal, ``-`` when absent."""
    return "-" if _missing(value) else f"{100.0 * value:.1f}"


def number(value: float | None, digits: int = 0) -> str:
    """A number with ``digits`` decimals and thousands separators, ``-`` when absent."""
    return "-" if _missing(value) else f"{value:,.{digits}f}"


def _load(benchmarks: Path, path: str) -> Any:
    file = benchmarks / path
    if not file.is_file():
        raise FileNotFoundError(f"benchmark record {file} is missing")
    return json.loads(file.read_text())


def _link(path: str) -> str:
    """A link from a page in ``docs/`` to a benchmark record."""
    return f"[{Path(path).parent.name or path}](../benchmarks/{path})"


# ------------------------------------------------------------------------------- benchmark-result tables


def _options_key(options: Mapping[str, Any] | None) -> str:
    return json.dumps(options or {}, sort_keys=True)


def find_result(
    benchmarks: Path, path: str, dataset: str, method: str, options: Mapping | None = None
) -> dict | None:
    """The result of ``method`` with exactly these options on ``dataset`` in a ``results.json``, or None."""
    wanted = _options_key(json.loads(json.dumps(options or {})))
    for result in _load(benchmarks, path)["results"]:
        same = result["method"] == method and _options_key(result.get("method_options")) == wanted
        if same and result["dataset"] == dataset:
            return result
    return None


@dataclass(frozen=True)
class Row:
    """One row of a benchmark table: a label and the run it shows (in a ``results.json``)."""

    label: str
    path: str
    method: str
    options: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Column:
    """One column: the dataset it reads and how a result becomes a cell."""

    header: str
    dataset: str
    cell: Callable[[dict], str]


def summary(name: str, kind: str = "percent") -> Callable[[dict], str]:
    """A cell from a result's summary (``kind``: ``percent`` or ``count``)."""

    def cell(result: dict) -> str:
        value = result["summary"].get(name)
        return percent(value) if kind == "percent" else number(value)

    return cell


def timing(name: str) -> Callable[[dict], str]:
    """A cell from a result's timing, in ms."""
    return lambda result: number(result["timing"].get(name))


def records_auc(result: dict, keep: Callable[[dict], bool], threshold: float) -> str:
    """AUC of the errors of a result's per-pair records that ``keep`` chooses (a failed pair counts as a
    miss), ``-`` when it chooses none."""
    errors = [
        math.inf if record["error"] is None else record["error"]
        for record in result["records"]
        if keep(record)
    ]
    if not errors:
        return "-"
    return percent(auc(np.asarray(errors, float), [threshold])[0])


def group_auc(groups: Sequence[str], threshold: float = 3.0) -> Callable[[dict], str]:
    """Corner-error AUC over the pairs of some sequences (``benchmarks/group_auc.py`` computes the same)."""
    return lambda result: records_auc(result, lambda record: record["group"] in groups, threshold)


def bench_table(benchmarks: Path, rows: Sequence[Row], columns: Sequence[Column], source: bool = True) -> str:
    """A table of ``tiepoint bench`` results: one row per run, one column per metric; ``-`` where a run has
    no result on a column's dataset. With ``source``, a last column links each row's record."""
    body = []
    for row in rows:
        results = {
            dataset: find_result(benchmarks, row.path, dataset, row.method, row.options)
            for dataset in {column.dataset for column in columns}
        }
        if not any(results.values()):
            raise KeyError(f"no result of {row.method} {dict(row.options or {})} in benchmarks/{row.path}")
        cells = [
            column.cell(results[column.dataset]) if results[column.dataset] else "-" for column in columns
        ]
        body.append([row.label, *cells, *([_link(row.path)] if source else [])])
    header = ["method", *(column.header for column in columns), *(["record"] if source else [])]
    return markdown(header, body, numeric_to=len(columns) + 1)


# ----------------------------------------------------------------------------------------- speed tables


def speed_table(benchmarks: Path, path: str, methods: Sequence[tuple[str, str]] | None = None) -> str:
    """Time per pair from a ``match_speed.py`` record, with the ratio to SIFT's time in the same run.

    ``methods``: (label, method spec as recorded) pairs; all recorded methods when None.
    """
    record = _load(benchmarks, path)
    timings = record["methods"]
    chosen = methods or [(f"`{name}`", name) for name in timings]
    sift = timings.get("sift", {}).get("median_ms")
    rows = []
    for label, name in chosen:
        if name not in timings:
            raise KeyError(f"{name} is not timed in benchmarks/{path}")
        ms = timings[name]["median_ms"]
        ratio = "-" if sift is None else f"{ms / sift:.2f}"
        rows.append([label, number(ms), ratio, number(timings[name].get("matches"))])
    return markdown(["method", "ms per pair", "× SIFT", "matches"], rows)


def speed_grid(benchmarks: Path, files: Sequence[tuple[str, str]], methods: Sequence[tuple[str, str]]) -> str:
    """Time per pair (ms) of several methods on several pairs: one record per column, ``-`` where untimed."""
    records = [(header, _load(benchmarks, path)["methods"]) for header, path in files]
    rows = []
    for label, name in methods:
        cells = [number(timings[name]["median_ms"]) if name in timings else "-" for _, timings in records]
        if all(cell == "-" for cell in cells):
            raise KeyError(f"{name} is timed in none of {[path for _, path in files]}")
        rows.append([label, *cells])
    return markdown(["ms per pair", *(header for header, _ in files)], rows)


# ------------------------------------------------------------------------------------------- the tables

OXFORD, TEMPLE = "oxford", "middlebury"
BASE = "baselines/results.json"
CLIDD = "clidd/results.json"
PYRAMID = "clidd/pyramid/results.json"
VIEWS = "views/results.json"
DEFAULT = "views/default/results.json"
EPIPOLAR = "views/eloftr_accept_epipolar/results.json"
ELOFTR = "eloftr/results.json"

S3 = {"scales": [1, 0.5, 0.25]}
ROT = {"rotations": [0, 90, 180, 270]}
S3R = {"scales": [1, 0.5, 0.25], "rotations": [0, 90, 180, 270]}
SEARCH = {"rotations": [0, 90, 180, 270], "zooms": [1, 0.5, 2], "accept": 0.5}
DEFAULT_OPTIONS = {"align": "ratio", "scales": [1, 0.5, 0.25]}
EXTREME_OPTIONS = {"tilts": [1.4142, 2.0, 2.8284, 4.0], "both_tilts": [1.4142, 2.0], "align": True}
"""The options the ``extreme`` preset is recorded with."""

MHA3 = Column("Oxford MHA@3", OXFORD, summary("mha@3px"))
MHA5 = Column("MHA@5", OXFORD, summary("mha@5px"))
AUC3 = Column("AUC@3", OXFORD, summary("auc@3px"))
MMA3 = Column("MMA@3", OXFORD, summary("mma@3px"))
GRAF = Column("graf AUC@3", OXFORD, group_auc(["graf"]))
WALL = Column("wall AUC@3", OXFORD, group_auc(["wall"]))
T5 = Column("temple AUC@5°", TEMPLE, summary("auc@5deg"))
T10 = Column("temple AUC@10°", TEMPLE, summary("auc@10deg"))
T20 = Column("temple AUC@20°", TEMPLE, summary("auc@20deg"))
SIFT_ROW = Row("`sift` (`sift+ratio`)", BASE, "sift")
SIFT_TIMED, ELOFTR_TIMED = ("`sift`", "sift"), ("`eloftr`", "eloftr")
"""Rows of the speed tables: a label and the method spec as the timing record holds it."""
ELOFTR_SEARCH = "eloftr:rotations=(0,90,180,270);zooms=(1,0.5,2);accept=0.5"
"""The timed spec of Efficient LoFTR with the view search (:data:`SEARCH`)."""


def readme_methods(benchmarks: Path) -> str:
    """The README's methods table: one headline number (Oxford MHA@3) per family, with its page."""
    upsamplers = _load(benchmarks, "upsamplers/results.json")
    raco = _load(benchmarks, "raco/results.json")

    def bench(path: str, method: str, options: Mapping | None = None) -> str:
        result = find_result(benchmarks, path, OXFORD, method, options)
        if result is None:
            raise KeyError(f"no Oxford result of {method} in benchmarks/{path}")
        return percent(result["summary"]["mha@3px"])

    rows = [
        [
            "`clidd` (default)",
            "CLIDD S96, 3-level pyramid, aligned second pass",
            bench(DEFAULT, "clidd", DEFAULT_OPTIONS),
            "[clidd](docs/clidd.md)",
        ],
        [
            "`sift`, `orb`, `akaze`",
            "OpenCV features (SIFT shown)",
            bench(BASE, "sift"),
            "[classical](docs/classical.md)",
        ],
        [
            "`aliked-n16+lightglue` (also `aliked-n32`, `disk`)",
            "pretrained peers: ALIKED and DISK with LightGlue, at their authors' 1024 px (ALIKED-N16 shown)",
            bench(f"{COMPARE_RECORDS}/real/results.json", "aliked-n16+lightglue"),
            "[comparison](docs/comparison.md)",
        ],
        [
            "`clidd-a48`, `-t64`, `-s96`",
            "CLIDD sizes trained here, one level (S96 shown)",
            bench(CLIDD, "clidd-s96+mnn"),
            "[clidd](docs/clidd.md)",
        ],
        [
            "`clidd-s96+glue`, `sift+glue`",
            "CLIDD S96 or SIFT matched by Glue, the context matcher trained here (CLIDD shown)",
            bench(f"{GLUE_RECORDS}/real/results.json", "clidd-s96+glue"),
            "[glue](docs/glue.md)",
        ],
        [
            "`raco-clidd-t64` (also `-a48`, `-s96`)",
            "RaCo keypoints with covariances, CLIDD descriptors",
            percent(raco["estimation"]["oxford"]["poselib"]["mha@3px"]),
            "[raco](docs/raco.md)",
        ],
        [
            "`eloftr`, `eloftr-opt`",
            "Efficient LoFTR, semi-dense, trained here",
            bench(ELOFTR, "eloftr"),
            "[eloftr](docs/eloftr.md)",
        ],
        [
            "`eloftr` + turns, zooms, `align=True`",
            "view search and aligned second pass",
            bench(VIEWS, "eloftr", {**SEARCH, "align": True}),
            "[view search](docs/view-search.md)",
        ],
        [
            "`effl0-featsharp` (and 9 more)",
            "SIFT keypoints, upsampled backbone features",
            percent(upsamplers["effl0"]["correspondence"]["featsharp"]["oxford_mha@3px"]),
            "[dense features](docs/dense-features.md)",
        ],
    ]
    return markdown(["method", "what", "Oxford MHA@3 (%)", "docs"], rows, numeric_from=2, numeric_to=3)


def classical_oxford(benchmarks: Path) -> str:
    rows = [Row(f"`{name}`", BASE, name) for name in ["sift", "orb", "akaze", "aliked-n16", "aliked-n32"]]
    columns = [
        Column("#matches", OXFORD, summary("mean_matches", "count")),
        Column("MHA@1", OXFORD, summary("mha@1px")),
        Column("MHA@3", OXFORD, summary("mha@3px")),
        Column("MHA@5", OXFORD, summary("mha@5px")),
        AUC3,
        Column("AUC@10", OXFORD, summary("auc@10px")),
        MMA3,
        Column("fail", OXFORD, summary("failures", "count")),
        Column("extract ms", OXFORD, timing("extract_ms_mean")),
    ]
    return bench_table(benchmarks, rows, columns, source=False)


def classical_temple(benchmarks: Path) -> str:
    rows = [Row(f"`{name}`", BASE, name) for name in ["sift", "orb", "akaze", "aliked-n16", "aliked-n32"]]
    columns = [
        Column("#matches", TEMPLE, summary("mean_matches", "count")),
        Column("AUC@5°", TEMPLE, summary("auc@5deg")),
        Column("AUC@10°", TEMPLE, summary("auc@10deg")),
        Column("AUC@20°", TEMPLE, summary("auc@20deg")),
        Column("P@1px", TEMPLE, summary("precision@1px")),
        Column("P@3px", TEMPLE, summary("precision@3px")),
        Column("fail", TEMPLE, summary("failures", "count")),
        Column("extract ms (640×480)", TEMPLE, timing("extract_ms_mean")),
    ]
    return bench_table(benchmarks, rows, columns, source=False)


def clidd_sizes(benchmarks: Path) -> str:
    from tiepoint.features.clidd import SIZES, weights_path

    record = {row["size"]: row for row in _load(benchmarks, "clidd/sizes.json")["rows"]}
    rows = []
    for name, config in SIZES.items():
        measured = record.get(name, {})
        rows.append(
            [
                name,
                ", ".join(map(str, config.channels)),
                ",".join(map(str, config.blocks)),
                str(config.descriptor_dim),
                str(config.samples),
                number(measured.get("parameters")),
                number(measured.get("gflops"), 2),
                number(measured.get("cpu_ms")),
                "yes" if weights_path(name).is_file() else "",
            ]
        )
    header = ["size", "channels", "blocks", "C_desc", "M", "parameters", "GFLOPs", "CPU ms", "shipped"]
    return markdown(header, rows, numeric_from=5, numeric_to=8)


def clidd_sampler(benchmarks: Path) -> str:
    rows: dict[tuple[str, int], dict[str, dict]] = {}
    for row in _load(benchmarks, "clidd/sampler.json")["rows"]:
        rows.setdefault((row["size"], row["keypoints"]), {})[row["path"]] = row
    body = []
    for (size, keypoints), paths in rows.items():
        reference, fused = paths["reference"], paths["fused"]
        body.append(
            [
                size,
                number(keypoints),
                number(reference["forward_ms"], 2),
                number(fused["forward_ms"], 2),
                f"{reference['forward_ms'] / fused['forward_ms']:.1f}×",
                f"{reference['forward_backward_ms'] / fused['forward_backward_ms']:.1f}×",
                number(reference["intermediate_mb"], 1),
            ]
        )
    header = ["size", "keypoints", "reference ms", "fused ms", "speed-up", "fwd+bwd speed-up", "reference MB"]
    return markdown(header, body)


def clidd_results(benchmarks: Path) -> str:
    rows = [
        SIFT_ROW,
        Row("`orb` (`orb+mnn`)", BASE, "orb"),
        Row("`aliked-n32+mnn` (the teacher)", BASE, "aliked-n32"),
        Row("`clidd-a48+mnn`", CLIDD, "clidd-a48+mnn"),
        Row("`clidd-t64+mnn`", CLIDD, "clidd-t64+mnn"),
        Row("`clidd-t64+dualsoftmax`", CLIDD, "clidd-t64+dualsoftmax"),
        Row("`clidd-s96+mnn`", CLIDD, "clidd-s96+mnn"),
        Row("`clidd-s96+dualsoftmax`", CLIDD, "clidd-s96+dualsoftmax"),
        Row("`clidd-t64+mnn`, pyramid", PYRAMID, "clidd-t64+mnn", S3),
        Row("`clidd-t64+dualsoftmax`, pyramid", PYRAMID, "clidd-t64+dualsoftmax", S3),
        Row("`clidd-s96+mnn`, pyramid", PYRAMID, "clidd-s96+mnn", S3),
        Row("`clidd-s96+dualsoftmax`, pyramid", PYRAMID, "clidd-s96+dualsoftmax", S3),
        Row("`clidd-s96+mnn`, pyramid + turns", VIEWS, "clidd-s96+mnn", S3R),
        Row("`clidd-s96+mnn`, pyramid + `align=ratio` (= `clidd`)", DEFAULT, "clidd", DEFAULT_OPTIONS),
        Row(
            "`clidd-s96+mnn`, pyramid + turns + `align=ratio`",
            VIEWS,
            "clidd-s96+mnn",
            {**S3R, "align": "ratio"},
        ),
        Row(
            "`clidd-a48+mnn`, pyramid + turns + `align=ratio`",
            VIEWS,
            "clidd-a48+mnn",
            {**S3R, "align": "ratio"},
        ),
    ]
    return bench_table(benchmarks, rows, [MHA3, MHA5, AUC3, MMA3, T10])


def clidd_default(benchmarks: Path) -> str:
    rows = [Row("`clidd`", DEFAULT, "clidd", DEFAULT_OPTIONS), Row("`sift`", DEFAULT, "sift")]
    return bench_table(benchmarks, rows, [MHA3, MHA5, AUC3, MMA3, GRAF, WALL, T5, T10, T20], source=False)


def clidd_default_speed(benchmarks: Path) -> str:
    files = [
        ("temple 01/02 (640×480)", "views/speed_default_temple.json"),
        ("boat 1-2 (850×680)", "views/speed_default_boat.json"),
    ]
    methods = [
        SIFT_TIMED,
        ("`clidd-s96+mnn` (one level)", "clidd-s96+mnn"),
        ("`clidd-s96+mnn`, pyramid", "clidd-s96+mnn:scales=(1,0.5,0.25)"),
        ("`clidd` (pyramid + `align=ratio`)", "clidd-s96+mnn:scales=(1,0.5,0.25);align=ratio"),
        ("the same with dual-softmax", "clidd-s96+dualsoftmax:scales=(1,0.5,0.25);align=ratio"),
        ("`clidd` + four turns", "clidd-s96+mnn:scales=(1,0.5,0.25);rotations=(0,90,180,270);align=ratio"),
        ("`clidd-a48+mnn`, pyramid + `align=ratio`", "clidd-a48+mnn:scales=(1,0.5,0.25);align=ratio"),
    ]
    return speed_grid(benchmarks, files, methods)


def views_turns(benchmarks: Path) -> str:
    rows = [
        Row("`clidd-s96+mnn`, pyramid", PYRAMID, "clidd-s96+mnn", S3),
        Row("`clidd-s96+mnn`, pyramid + turns", VIEWS, "clidd-s96+mnn", S3R),
        Row("`clidd-s96+dualsoftmax`, pyramid + turns", VIEWS, "clidd-s96+dualsoftmax", S3R),
        Row("`clidd-s96+ratio`, pyramid + turns", VIEWS, "clidd-s96+ratio", {**S3R, "ratio": 0.8}),
        Row("the same, `ratio=0.9`", VIEWS, "clidd-s96+ratio", {**S3R, "ratio": 0.9}),
        Row("`clidd-t64+mnn`, pyramid + turns", VIEWS, "clidd-t64+mnn", S3R),
        Row("`clidd-a48+mnn`", CLIDD, "clidd-a48+mnn"),
        Row("`clidd-a48+mnn` + turns", CLIDD, "clidd-a48+mnn", ROT),
        Row("`eloftr`", ELOFTR, "eloftr"),
        Row("`eloftr` + turns", VIEWS, "eloftr", ROT),
        Row("`eloftr` + turns + `zooms=(0.5,1,2)`", VIEWS, "eloftr", {**ROT, "zooms": [0.5, 1, 2]}),
        Row("`eloftr` + turns + `zooms=(1,0.5,2)` + `accept=0.5`", EPIPOLAR, "eloftr", SEARCH),
        SIFT_ROW,
    ]
    return bench_table(benchmarks, rows, [MHA3, MHA5, AUC3, MMA3, T10])


def views_align(benchmarks: Path) -> str:
    rows = [
        Row("`clidd-s96+mnn`, pyramid + turns", VIEWS, "clidd-s96+mnn", S3R),
        Row("the same + `align=ratio`", VIEWS, "clidd-s96+mnn", {**S3R, "align": "ratio"}),
        Row(
            "`clidd-s96+dualsoftmax`, pyramid + turns + `align=ratio`",
            VIEWS,
            "clidd-s96+dualsoftmax",
            {**S3R, "align": "ratio"},
        ),
        Row("`clidd` (pyramid + `align=ratio`, no turns)", DEFAULT, "clidd", DEFAULT_OPTIONS),
        Row(
            "`clidd-s96+ratio`, pyramid + turns + `align=True`",
            VIEWS,
            "clidd-s96+ratio",
            {**S3R, "align": True, "ratio": 0.8},
        ),
        Row(
            "`clidd-a48+mnn`, pyramid + turns + `align=ratio`",
            VIEWS,
            "clidd-a48+mnn",
            {**S3R, "align": "ratio"},
        ),
        Row(
            "the same + `zooms=(1,0.5,2)`",
            VIEWS,
            "clidd-a48+mnn",
            {**S3R, "zooms": [1, 0.5, 2], "align": "ratio"},
        ),
        Row(
            "`clidd-a48+mnn`, pyramid + turns + `align=ratio:ratio=0.9`",
            VIEWS,
            "clidd-a48+mnn",
            {**S3R, "align": "ratio:ratio=0.9"},
        ),
        Row("`eloftr`", ELOFTR, "eloftr"),
        Row("`eloftr` + `align=True`", VIEWS, "eloftr", {"align": True}),
        Row(
            "`eloftr` + turns + zooms + `accept=0.5` + `align=True`",
            VIEWS,
            "eloftr",
            {**SEARCH, "align": True},
        ),
        SIFT_ROW,
    ]
    return bench_table(benchmarks, rows, [MHA3, MHA5, AUC3, MMA3, GRAF, WALL, T10])


def views_speed(benchmarks: Path) -> str:
    files = [
        ("temple 01/02 (640×480)", "views/speed_zooms_temple_after_speedup.json"),
        ("boat 1-2 (850×680, easy)", "views/speed_zooms_boat_after_speedup.json"),
        ("bark 1-4 (2.5× zoom, turned)", "views/speed_zooms_bark.json"),
    ]
    methods = [
        SIFT_TIMED,
        ELOFTR_TIMED,
        ("`eloftr` + four turns", "eloftr:rotations=(0,90,180,270)"),
        ("`eloftr` + four turns × three zooms", "eloftr:rotations=(0,90,180,270);zooms=(0.5,1,2)"),
        (
            "the same, `zooms=(1,0.5,2)` and `accept=0.5`",
            ELOFTR_SEARCH,
        ),
    ]
    return speed_grid(benchmarks, files, methods)


def views_speed_epipolar(benchmarks: Path) -> str:
    methods = [
        SIFT_TIMED,
        ELOFTR_TIMED,
        (
            "`eloftr` + turns + zooms + `accept=0.5`",
            ELOFTR_SEARCH,
        ),
    ]
    return speed_table(benchmarks, "views/speed_accept_epipolar_temple.json", methods)


def views_speed_align(benchmarks: Path) -> str:
    files = [("temple 01/02", "views/speed_align_temple.json"), ("boat 1-2", "views/speed_align_boat.json")]
    methods = [
        SIFT_TIMED,
        ("`clidd-s96+mnn`, pyramid + turns", "clidd-s96+mnn:scales=(1,0.5,0.25);rotations=(0,90,180,270)"),
        (
            "the same + `align=ratio`",
            "clidd-s96+mnn:scales=(1,0.5,0.25);rotations=(0,90,180,270);align=ratio",
        ),
        (
            "`clidd-a48+mnn`, pyramid + turns + `align=ratio`",
            "clidd-a48+mnn:scales=(1,0.5,0.25);rotations=(0,90,180,270);align=ratio",
        ),
    ]
    return speed_grid(benchmarks, files, methods)


def views_speed_align_eloftr(benchmarks: Path) -> str:
    files = [
        ("temple 01/02", "views/speed_align_eloftr_temple.json"),
        ("boat 1-2", "views/speed_align_eloftr_boat.json"),
    ]
    methods = [
        SIFT_TIMED,
        ELOFTR_TIMED,
        ("`eloftr` + `align=True`", "eloftr:align=True"),
        (
            "`eloftr` + turns + zooms + `accept=0.5` + `align=True`",
            f"{ELOFTR_SEARCH};align=True",
        ),
    ]
    return speed_grid(benchmarks, files, methods)


def views_parallax(benchmarks: Path) -> str:
    record = _load(benchmarks, "views/parallax_shares.json")
    rows = []
    for spec, datasets in record.items():
        oxford = np.array(list(datasets["oxford"].values()), float)
        temple = np.array(list(datasets["middlebury"].values()), float)
        rows.append(
            [
                f"`{spec}`",
                f"{np.median(oxford):.2f}",
                f"{np.sort(oxford)[-2]:.2f}",
                f"{oxford.max():.2f}",
                f"{temple.min():.2f}",
                f"{np.median(temple):.2f}",
            ]
        )
    header = [
        "method",
        "Oxford median",
        "Oxford 2nd largest",
        "Oxford largest",
        "temple smallest",
        "temple median",
    ]
    return markdown(header, rows)


def eloftr_oxford(benchmarks: Path) -> str:
    rows = [Row(f"`{name}`", ELOFTR, name) for name in ["sift", "eloftr", "eloftr-opt"]]
    columns = [
        Column("MHA@3", OXFORD, summary("mha@3px")),
        AUC3,
        Column("AUC@5", OXFORD, summary("auc@5px")),
        Column("AUC@10", OXFORD, summary("auc@10px")),
        MMA3,
        GRAF,
        WALL,
    ]
    return bench_table(benchmarks, rows, columns, source=False)


def eloftr_temple(benchmarks: Path) -> str:
    rows = [Row(f"`{name}`", ELOFTR, name) for name in ["sift", "eloftr", "eloftr-opt"]]
    columns = [
        Column("AUC@5°", TEMPLE, summary("auc@5deg")),
        Column("AUC@10°", TEMPLE, summary("auc@10deg")),
        Column("AUC@20°", TEMPLE, summary("auc@20deg")),
        Column("P@1px", TEMPLE, summary("precision@1px")),
        Column("#matches", TEMPLE, summary("mean_matches", "count")),
    ]
    return bench_table(benchmarks, rows, columns, source=False)


def eloftr_settings(benchmarks: Path) -> str:
    upsample = "eloftr/upsample/results.json"
    rows = [
        Row("`eloftr`", ELOFTR, "eloftr"),
        Row("`upsample=1.25`", upsample, "eloftr", {"upsample": 1.25}),
        Row("`upsample=1.5`", upsample, "eloftr", {"upsample": 1.5}),
        Row("`upsample=2`", upsample, "eloftr", {"upsample": 2}),
        Row("`threshold=0.001`", "eloftr/threshold/results.json", "eloftr", {"threshold": 0.001}),
        Row("turns + `zooms=(1,0.5,2)` + `accept=0.5`", EPIPOLAR, "eloftr", SEARCH),
        Row("`upsample=1.5` + turns + zooms + `accept=0.5`", VIEWS, "eloftr", {"upsample": 1.5, **SEARCH}),
        Row("`align=True`", VIEWS, "eloftr", {"align": True}),
        Row("turns + zooms + `accept=0.5` + `align=True`", VIEWS, "eloftr", {**SEARCH, "align": True}),
        SIFT_ROW,
    ]
    return bench_table(benchmarks, rows, [MHA3, AUC3, MMA3, GRAF, WALL, T5, T10])


def eloftr_speed(benchmarks: Path) -> str:
    methods = [
        SIFT_TIMED,
        ELOFTR_TIMED,
        ("`eloftr-opt`", "eloftr-opt"),
        ("`eloftr`, flat-cell gate off (`min_contrast=0`)", "eloftr:min_contrast=0"),
        (
            "`eloftr` + turns + zooms + `accept=0.5`",
            ELOFTR_SEARCH,
        ),
        ("`clidd` (for comparison)", "clidd-s96+mnn:scales=(1,0.5,0.25);align=ratio"),
    ]
    return speed_table(benchmarks, "eloftr/speed.json", methods)


def eloftr_speed_upsample(benchmarks: Path) -> str:
    methods = [SIFT_TIMED, ELOFTR_TIMED]
    methods += [(f"`upsample={factor}`", f"eloftr:upsample={factor}") for factor in ["1.25", "1.5", "2"]]
    return speed_table(benchmarks, "eloftr/speed_upsample.json", methods)


def raco_budget(benchmarks: Path) -> str:
    record = _load(benchmarks, "raco/results.json")
    names = {"raco": "RaCo", "sift": "SIFT", "clidd-t64": "CLIDD T64"}
    orders = {"score": "detector score", "ranker": "ranker", "fused": "fused"}
    rows = [
        [
            f"{names.get(detector, detector)}, {orders[order]}",
            *map(percent, record["budget"][detector][order]),
        ]
        for detector in record["budget"]
        for order in orders
    ]
    return markdown(["detector, order", *map(str, record["budgets"])], rows)


def raco_rotation(benchmarks: Path) -> str:
    record = _load(benchmarks, "raco/results.json")
    shown = [0, 15, 45, 90, 135, 180]
    index = [record["angles"].index(angle) for angle in shown]
    names = {"raco": "RaCo", "sift": "SIFT", "clidd-t64": "CLIDD T64"}
    rows = [
        [names.get(name, name), *(percent(values[i]) for i in index)]
        for name, values in record["rotation"].items()
    ]
    return markdown(["detector", *(f"{angle}°" for angle in shown)], rows)


def raco_calibration(benchmarks: Path) -> str:
    calibration = _load(benchmarks, "raco/results.json")["calibration"]
    rows = [
        [
            number(calibration["count"]),
            f"{calibration['slope']:.2f}",
            f"{calibration['affine_slope']:.2f}",
            f"{calibration['whitened']:.2f}",
        ]
    ]
    header = ["keypoint pairs", "slope through 0", "slope with intercept", "E[eᵀC⁻¹e]/2"]
    return markdown(header, rows, numeric_from=0)


def raco_estimation(benchmarks: Path) -> str:
    estimation = _load(benchmarks, "raco/results.json")["estimation"]
    estimators = ["poselib", "refined_unweighted", "weighted"]
    rows = [
        ["Oxford corner AUC@3 px", *(percent(estimation["oxford"][name]["auc@3px"]) for name in estimators)],
        ["Oxford MHA@3 px", *(percent(estimation["oxford"][name]["mha@3px"]) for name in estimators)],
        [
            "temple pose AUC@10°",
            *(percent(estimation["middlebury"][name]["auc@10deg"]) for name in estimators),
        ],
    ]
    return markdown(["`raco-clidd-t64+mnn`", "poselib", "refined, identity covariances", "weighted"], rows)


def upsamplers(benchmarks: Path) -> str:
    record = _load(benchmarks, "upsamplers/results.json")
    rows = []
    for backbone in ["effl0", "dinov2s"]:
        for method, consistency in record[backbone]["consistency"].items():
            match = record[backbone]["correspondence"][method]
            cost = record[backbone]["cost"][method]
            rows.append(
                [
                    backbone,
                    method,
                    f"{consistency['cosine']:.3f}",
                    percent(match["oxford_mma@3px"]),
                    percent(match["oxford_mha@3px"]),
                    percent(match["middlebury_auc@10deg"]),
                    number(cost["backbone_ms"]),
                    number(cost["full_map_ms"]),
                    number(cost["keypoints_ms"]),
                    number(cost["full_map_peak_extra_mb"]),
                ]
            )
    header = [
        "backbone",
        "upsampler",
        "consistency",
        "Oxford MMA@3",
        "Oxford MHA@3",
        "temple AUC@10°",
        "backbone ms",
        "full map ms",
        "2048 keypoints ms",
        "full map +MB",
    ]
    return markdown(header, rows, numeric_from=2)


def _solver_label(name: str) -> str:
    return {
        "gnc+seed": "gnc, `seed=poselib`",
        "poselib": "poselib (LO-RANSAC)",
        "opencv": "opencv (MAGSAC++)",
    }.get(name, name)


def solvers_real(benchmarks: Path) -> str:
    real = {entry["dataset"]: entry["solvers"] for entry in _load(benchmarks, "solvers/solvers.json")["real"]}
    oxford, temple = real[OXFORD], real[TEMPLE]
    rows = []
    for name in dict.fromkeys([*oxford, *temple]):
        o, t = oxford.get(name), temple.get(name)
        certified = "-"
        if t and "certificates" in t:
            certified = f"{sum(c['certified'] for c in t['certificates'])}/{len(t['certificates'])}"
        rows.append(
            [
                _solver_label(name),
                percent(o["summary"]["mha@3px"]) if o else "-",
                percent(o["summary"]["auc@10px"]) if o else "-",
                number(o["summary"]["failures"]) if o else "-",
                number(o["estimate_ms"], 1) if o else "-",
                percent(t["summary"]["auc@10deg"]) if t else "-",
                number(t["summary"]["failures"]) if t else "-",
                number(t["estimate_ms"], 1) if t else "-",
                certified,
            ]
        )
    header = [
        "solver",
        "Oxford MHA@3",
        "Oxford AUC@10",
        "fail",
        "ms per pair",
        "temple AUC@10°",
        "fail",
        "ms per pair",
        "certified",
    ]
    return markdown(header, rows)


def solvers_synthetic(benchmarks: Path) -> str:
    synthetic = _load(benchmarks, "solvers/solvers.json")["synthetic"]
    rates = synthetic["config"]["outlier_rates"]
    cells: dict[tuple[str, str], dict[float, float]] = {}
    for entry in synthetic["summary"]:
        if entry["sweep"] == "outliers":
            cells.setdefault((entry["model"], entry["solver"]), {})[entry["outlier_rate"]] = entry[
                "median_error"
            ]
    units = {"homography": "px", "fundamental": "px", "relative_pose": "°", "rotation": "°"}
    rows = [
        [
            f"{model.replace('_', ' ')} ({units.get(model, '')})",
            _solver_label(solver),
            *(number(errors.get(rate), 2) for rate in rates),
        ]
        for (model, solver), errors in cells.items()
    ]
    return markdown(["model (error)", "solver", *(f"{rate:.0%}" for rate in rates)], rows, numeric_from=2)


def solvers_size(benchmarks: Path) -> str:
    synthetic = _load(benchmarks, "solvers/solvers.json")["synthetic"]
    sizes = synthetic["config"]["sizes"]
    times: dict[str, dict[int, float]] = {}
    for entry in synthetic["summary"]:
        if entry["sweep"] == "size" and entry["model"] == "rotation":
            times.setdefault(entry["solver"], {})[entry["num_matches"]] = entry["mean_ms"]
    rows = [
        [_solver_label(solver), *(number(values.get(size), 1) for size in sizes)]
        for solver, values in times.items()
    ]
    return markdown(["rotation, ms per problem", *(f"{size:,} matches" for size in sizes)], rows)


def _variant_cells(variant: dict) -> list[str]:
    errors = variant.get("errors") or {}
    rotation = errors.get("rotation_error_deg") or {}
    centre = errors.get("centre_error_percent") or {}
    return [
        f"{variant['num_verified_pairs']} / {variant['num_pairs']}",
        f"{variant['registered_images']} / {variant['num_images']}",
        number(rotation.get("median"), 2),
        number(centre.get("median"), 1),
    ]


VARIANTS = {
    "exhaustive": "exhaustive, intrinsics unknown",
    "exhaustive-single-camera": "exhaustive, `--single-camera`",
    "exhaustive-known-K": "exhaustive, true K (`PINHOLE`, fixed)",
    "retrieval-5": "`retrieval:5`, intrinsics unknown",
    "true-neighbours-4-known-K": "each view with its 4 truly closest, true K",
}


def reconstruction_temple(benchmarks: Path) -> str:
    variants = _load(benchmarks, "reconstruction/temple.json")["variants"]
    rows = []
    for name, variant in variants.items():
        rotation = variant["errors"]["rotation_error_deg"]
        centre = variant["errors"]["centre_error_percent"]
        rows.append(
            [
                VARIANTS.get(name, name),
                f"{variant['num_verified_pairs']} / {variant['num_pairs']}",
                f"{variant['registered_images']}/{variant['num_images']}",
                number(variant["num_points3D"]),
                number(variant["mean_track_length"], 2),
                number(variant["mean_reprojection_error_px"], 3),
                f"{rotation['median']:.2f} / {rotation['max']:.2f}",
                f"{centre['median']:.2f} / {centre['max']:.2f}",
            ]
        )
    header = [
        "variant",
        "verified pairs",
        "registered",
        "3D points",
        "track length",
        "reproj. px",
        "rotation ° median / max",
        "centre % median / max",
    ]
    return markdown(header, rows)


def reconstruction_times(benchmarks: Path) -> str:
    variants = _load(benchmarks, "reconstruction/temple.json")["variants"]
    stages = ["extract", "pairs", "match", "verify", "database", "map"]
    rows = [
        [
            VARIANTS.get(name, name),
            *(number(variant["timings_s"].get(stage), 1) for stage in stages),
            number(variant["total_s"], 1),
        ]
        for name, variant in variants.items()
    ]
    return markdown(["variant (seconds)", *stages, "total"], rows)


def reconstruction_retrieval(benchmarks: Path) -> str:
    retrieval = _load(benchmarks, "reconstruction/temple.json")["retrieval"]
    ks = list(retrieval["vlad"])
    rows = [
        [label, *(f"{retrieval[key][k]:.3f}" for k in ks)]
        for label, key in [
            ("VLAD (64 words)", "vlad"),
            ("mean-pooled descriptors", "mean"),
            ("chance", "random_expected"),
        ]
    ]
    return markdown(["pairs by", *(f"precision@{k}" for k in ks)], rows)


def reconstruction_methods(benchmarks: Path) -> str:
    runs = [
        ("`sift+glue` (default)", "reconstruction/sift-glue/temple.json"),
        ("`sift`", "reconstruction/temple.json"),
        ("`clidd`", "reconstruction/default_method/temple_clidd_floor.json"),
        ("`eloftr`", "reconstruction/eloftr-gate/temple.json"),
    ]
    rows = []
    for label, path in runs:
        for name, variant in _load(benchmarks, path)["variants"].items():
            rows.append([label, VARIANTS.get(name, name), *_variant_cells(variant), _link(path)])
    header = [
        "method",
        "variant",
        "verified pairs",
        "registered",
        "rotation error ° (median)",
        "centre error % (median)",
        "record",
    ]
    return markdown(header, rows, numeric_from=2, numeric_to=6)


def reconstruction_rings(benchmarks: Path) -> str:
    """Default settings on the temple ring and on its runs of 6 views, per method and mapper
    (``tiepoint-lab bench reconstruction --run rings``)."""
    rows = []
    for file in sorted((benchmarks / "reconstruction" / "rings").glob("temple_*.json")):
        record = json.loads(file.read_text())
        for mapper, target in record["mappers"].items():
            full, totals = target["full"], target["totals"]
            rows.append(
                [
                    "COLMAP's own pipeline" if record["method"] == "colmap" else f"`{record['method']}`",
                    mapper,
                    full["status"],
                    f"{full['registered_images']}/{full['num_images']}",
                    number(full.get("rotation_error_deg", {}).get("median"), 2),
                    number(full.get("centre_error_percent", {}).get("median"), 1),
                    f"{totals['windows_all_registered']}/{totals['windows']}",
                    f"{totals['registered_views']}/{totals['views']}",
                    number(totals["median_relative_rotation_error_deg"], 2),
                    *_ring_stage_times(full),
                    _link(f"reconstruction/rings/{file.name}"),
                ]
            )
    header = [
        "method",
        "mapper",
        "ring: status",
        "registered",
        "rotation ° (median)",
        "centre % (median)",
        "6-view runs: all registered",
        "views registered",
        "relative rotation ° (median)",
        "ring s: features",
        "matching",
        "mapping",
        "record",
    ]
    return markdown(header, rows, numeric_from=3, numeric_to=12)


def _ring_stage_times(run: dict[str, Any]) -> list[str]:
    """Seconds of a ring run in three stages comparable between ``reconstruct`` and COLMAP's pipeline:
    features, matching (pairs, matching, verification, database) and mapping."""
    times = run.get("timings_s")
    if not times:
        return ["-", "-", "-"]
    matching = sum(times.get(k, 0.0) for k in ("pairs", "match", "verify", "database"))
    return [number(times.get("extract"), 1), number(matching, 1), number(times.get("map"), 1)]


def reconstruction_ring_options(benchmarks: Path) -> str:
    """Mapper options on the synthetic turntable rings (``benchmarks/ring_mapper_options.py``)."""
    record = _load(benchmarks, "reconstruction/rings/mapper_options.json")
    rows = [[name, *_ring_total_cells(t)] for name, t in record["totals"].items()]
    return markdown(["mapper options", *RING_TOTAL_COLUMNS], rows)


RING_TOTAL_COLUMNS = [
    "ring views registered",
    "rings all registered",
    "6-view run views",
    "runs all registered",
    "relative rotation ° (median)",
    "runs with an error > 5°",
]
"""The columns of :func:`_ring_total_cells`."""


def _ring_total_cells(t: dict[str, Any]) -> list[str]:
    """The cells of one variant's totals on the synthetic rings (``tiepoint_lab.bench.rings.ring_totals``)."""
    return [
        f"{t['ring_views_registered']}/{t['ring_views']}",
        f"{t['rings_all_registered']}/{t['rings']}",
        f"{t['window_views_registered']}/{t['window_views']}",
        f"{t['windows_all_registered']}/{t['windows']}",
        number(t["median_relative_rotation_error_deg"], 2),
        str(t["runs_with_error_over_5_deg"]),
    ]


def _ring_pipeline_name(name: str) -> str:
    """``tiepoint METHOD BUDGET`` as ``reconstruct``, `METHOD`, BUDGET keypoints; COLMAP's as it is."""
    parts = name.split()
    if parts[0] != "tiepoint":
        return name
    return f"`reconstruct`, `{parts[1]}`, {int(parts[2]):,} keypoints"


def reconstruction_ring_pipelines(benchmarks: Path) -> str:
    """``reconstruct`` at two SIFT budgets beside COLMAP's own pipeline on the synthetic turntable rings
    (``benchmarks/ring_pipelines.py``)."""
    record = _load(benchmarks, "reconstruction/rings/pipelines.json")
    rows = []
    for name, t in record["totals"].items():
        pipeline, mapper = name.rsplit(", ", 1)
        times = t["ring_times_s"]
        rows.append(
            [
                _ring_pipeline_name(pipeline),
                mapper,
                *_ring_total_cells(t),
                number(times["features"], 1),
                number(times["matching"], 1),
                number(times["mapping"], 1),
            ]
        )
    header = [
        "pipeline",
        "mapper",
        *RING_TOTAL_COLUMNS,
        "ring s: features",
        "matching",
        "mapping",
    ]
    return markdown(header, rows, numeric_from=2)


def reconstruction_localize(benchmarks: Path) -> str:
    """The temple localization protocol (``tiepoint-lab bench reconstruction --run localize``)."""
    rows = []
    for file in sorted((benchmarks / "reconstruction" / "rings").glob("localize_temple_*.json")):
        record = json.loads(file.read_text())
        model = record["model"]
        for run, entries in record["runs"].items():
            for name, entry in entries.items():
                rows.append(
                    [
                        f"`{record['method']}`",
                        f"{model['registered_images']}/{model['num_images']}",
                        "half size" if run.endswith("half") else "full size",
                        name,
                        entry["status"],
                        str(entry.get("num_inliers", "-")),
                        number(entry.get("rotation_error_deg"), 2),
                        number(entry.get("centre_error_percent"), 2),
                    ]
                )
    header = [
        "method",
        "model views registered",
        "queries",
        "query",
        "status",
        "inliers",
        "rotation °",
        "centre % of radius",
    ]
    return markdown(header, rows, numeric_from=5)


def reconstruction_scaling(benchmarks: Path) -> str:
    runs = _load(benchmarks, "reconstruction/scaling.json")["runs"]
    rows = [
        [
            f"{run['backend']}, {run['workers']} worker{'s' if run['workers'] > 1 else ''}",
            number(run["images_per_s"], 1),
            number(run["pairs_per_s"], 1),
            number(run["ray_start_s"], 1),
        ]
        for run in runs.values()
    ]
    return markdown(["backend", "extraction, images/s", "matching, pairs/s", "Ray start s"], rows)


# ---------------------------------------------------------------------------------------- scenes.md

SCENE_RECORDS = "scenes"
"""The hard-pair records of docs/scenes.md (``benchmarks/scenes/run.sh``)."""

SCENE_WEIGHTS = {
    "`clidd` as shipped (S96 trained on homographies)": "runs/clidd_s96_before.pt",
    "`clidd`, S96 fine-tuned on the mix, 1250 steps, lr 2e-4 (not shipped)": "runs/clidd_s96_mix_step1250.pt",
}
"""Rows: the CLIDD S96 weights each row was measured with (``--option weights=...``)."""

_PLAIN = [f"{band}-plain" for band in ("easy", "medium", "hard")]
_CHANGED = [f"{band}-changed" for band in ("easy", "medium", "hard")]
SCENE_COLUMNS = [
    ("Oxford MHA@3", "real", "oxford", summary("mha@3px")),
    ("relit Oxford MHA@3", "relit-oxford", "oxford", summary("mha@3px")),
    ("temple-32 AUC@10°", "real", "middlebury:1,2", summary("auc@10deg")),
    ("relit temple-32 AUC@10°", "relit-temple", "pairs:pairs.txt", summary("auc@10deg")),
    ("scenes plain AUC@10°", "held-out", "pairs:pairs.txt", group_auc(_PLAIN, 10.0)),
    ("scenes changed AUC@10°", "held-out", "pairs:pairs.txt", group_auc(_CHANGED, 10.0)),
    ("hard changed AUC@10°", "held-out", "pairs:pairs.txt", group_auc(["hard-changed"], 10.0)),
]
"""Columns: header, record folder under ``benchmarks/scenes/``, dataset, cell."""


def hard_sets_table(
    benchmarks: Path, folder: str, rows: Sequence[tuple[str, str, Mapping[str, Any]]], times: bool = False
) -> str:
    """One row per ``(label, method, options)`` on every hard-pair set recorded under ``folder`` (written by
    ``benchmarks/hard_sets.sh``); ``-`` where a set was not run. With ``times``, the median extraction and
    matching time per image and pair on the held-out scenes (640x480) close the row."""
    columns = [column[0] for column in SCENE_COLUMNS]
    if times:
        columns += ["extract ms/image", "match ms/pair"]
    body = []
    for label, method, options in rows:
        found = {}
        for set_folder in {column[1] for column in SCENE_COLUMNS}:
            path = f"{folder}/{set_folder}/results.json"
            if (benchmarks / path).is_file():
                for dataset in {column[2] for column in SCENE_COLUMNS if column[1] == set_folder}:
                    found[set_folder, dataset] = find_result(benchmarks, path, dataset, method, options)
        results = [found.get((set_folder, dataset)) for _, set_folder, dataset, _ in SCENE_COLUMNS]
        cells = [
            column[3](result) if result else "-"
            for column, result in zip(SCENE_COLUMNS, results, strict=True)
        ]
        if times:
            held_out = found.get(("held-out", "pairs:pairs.txt"))
            cells += [
                timing(name)(held_out) if held_out else "-"
                for name in ("extract_ms_median", "match_ms_median")
            ]
        body.append([label, *cells])
    return markdown(["method", *columns], body)


def scenes_results(benchmarks: Path) -> str:
    """Before and after the retraining on every hard-pair set; ``-`` where a set was not run."""
    rows = [
        (label, "clidd", {**DEFAULT_OPTIONS, "weights": weights}) for label, weights in SCENE_WEIGHTS.items()
    ]
    return hard_sets_table(benchmarks, SCENE_RECORDS, rows)


# ------------------------------------------------------------------------------------------ glue.md

GLUE_RECORDS = "glue"
"""The hard-pair records of docs/glue.md (``bash benchmarks/hard_sets.sh benchmarks/glue --methods ...``)."""

GLUE_ROWS = [
    ("CLIDD S96 + mutual NN", "clidd-s96+mnn", {}),
    ("CLIDD S96 + Glue (trained here), first threshold 0.1", "clidd-s96+glue", {"filter_threshold": 0.1}),
    ("CLIDD S96 + Glue (trained here), threshold 0.005", "clidd-s96+glue", {}),
    ("SIFT + ratio test", "sift+ratio", {}),
    ("SIFT + Glue (trained here)", "sift+glue", {}),
    ("ALIKED-N16 + LightGlue (peer)", "aliked-n16+lightglue", {}),
    ("XFeat + LighterGlue (peer)", "xfeat+lighterglue", {}),
]
"""Rows of the Glue comparison: label, method and options."""


def recorded_rows(
    benchmarks: Path, folder: str, rows: Sequence[tuple[str, str, Mapping[str, Any]]]
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """The ``(label, method, options)`` rows of :func:`hard_sets_table` with a result on Oxford or the
    held-out scenes under ``folder``; the others have not been run yet."""
    return [
        (label, method, options)
        for label, method, options in rows
        if any(
            find_result(benchmarks, path, dataset, method, options)
            for path in (f"{folder}/{set_folder}/results.json" for set_folder in ("real", "held-out"))
            if (benchmarks / path).is_file()
            for dataset in ("oxford", "pairs:pairs.txt")
        )
    ]


def glue_results(benchmarks: Path) -> str:
    """Glue beside mutual NN on the same features, SIFT and the pretrained peers, on every hard-pair set."""
    return hard_sets_table(benchmarks, GLUE_RECORDS, recorded_rows(benchmarks, GLUE_RECORDS, GLUE_ROWS), True)


EXTREME_RECORD = "extreme/results.json"
"""The record of ``benchmarks/extreme.py``."""
EXTREME_HARDEST = ("graf/1-5", "graf/1-6", "wall/1-5", "wall/1-6")


def _extreme_runs(benchmarks: Path) -> dict[str, dict[str, dict]]:
    """The runs of the extreme benchmark by method, then by dataset."""
    runs: dict[str, dict[str, dict]] = {}
    for result in _load(benchmarks, EXTREME_RECORD)["results"]:
        runs.setdefault(result["method"], {})[result["dataset"]] = result
    return runs


def _seconds(value: float | None) -> str:
    return "-" if _missing(value) else f"{value:.2f}"


def extreme_results(benchmarks: Path) -> str:
    """Success, corner AUC and time per pair on the synthetic extreme pairs and on Oxford."""
    body = []
    for method, runs in _extreme_runs(benchmarks).items():
        synthetic, oxford = (
            runs.get("extreme", {}).get("summary", {}),
            runs.get("oxford", {}).get("summary", {}),
        )
        body.append(
            [
                f"`{method}`",
                percent(synthetic.get("solved")),
                *(percent(synthetic.get(f"auc@{t}px")) for t in (3, 5, 10)),
                _seconds(synthetic.get("seconds_median")),
                _seconds(synthetic.get("seconds_mean")),
                percent(oxford.get("mha@3px")),
                percent(oxford.get("auc@10px")),
                _seconds(oxford.get("seconds_median")),
                _seconds(oxford.get("seconds_mean")),
            ]
        )
    header = ["method", "solved", "AUC@3", "AUC@5", "AUC@10", "s median", "s mean"]
    header += ["Oxford MHA@3", "Oxford AUC@10", "Oxford s median", "Oxford s mean"]
    return markdown(header, body)


def extreme_bands(benchmarks: Path) -> str:
    """Solved pairs per difficulty band of the synthetic pairs, and the corner error of the hardest Oxford
    pairs."""
    runs = _extreme_runs(benchmarks)
    bands = next(iter(runs.values()))["extreme"]["groups"]
    body = []
    for method, run in runs.items():
        groups = run["extreme"]["groups"]
        errors = {pair["name"]: pair["error"] for pair in run.get("oxford", {}).get("pairs", [])}
        cells = [percent(groups[band]["solved"]) for band in bands]
        if "oxford" not in run:
            cells += ["-"] * len(EXTREME_HARDEST)
        else:
            cells += [
                "fail" if errors.get(name) is None else f"{errors[name]:.1f}" for name in EXTREME_HARDEST
            ]
        body.append([f"`{method}`", *cells])
    return markdown(["method", *bands, *(f"{name} px" for name in EXTREME_HARDEST)], body)


def extreme_stages(benchmarks: Path) -> str:
    """Where matching on demand stopped: pairs per stage and their median time, solved or not."""
    body = []
    for method, runs in _extreme_runs(benchmarks).items():
        for dataset, run in runs.items():
            pairs = [pair for pair in run["pairs"] if "stage" in pair]
            if not pairs:
                continue
            cells = []
            for stage in ("plain", "turns", "tilts0", "tilts1", "tilts01", "unsolved"):
                chosen = [
                    pair
                    for pair in pairs
                    if (
                        not pair["solved"]
                        if stage == "unsolved"
                        else pair["solved"] and pair["stage"] == stage
                    )
                ]
                median = float(np.median([pair["seconds"] for pair in chosen])) if chosen else None
                cells.append(f"{len(chosen)} ({_seconds(median)} s)" if chosen else "0")
            body.append([f"`{method}`", dataset, *cells])
    header = ["method", "pairs", "plain", "turns", "tilts of 0", "tilts of 1", "tilts of both", "unsolved"]
    return markdown(header, body, numeric_from=2)


def extreme_speed(benchmarks: Path) -> str:
    """Seconds per pair from ``benchmarks/extreme_speed.py`` (interleaved), with the ratio to the first
    method."""
    record = _load(benchmarks, "extreme/speed.json")
    methods = list(next(iter(record["pairs"].values())))
    body = []
    for name, times in record["pairs"].items():
        first = times[methods[0]]["seconds"]
        cells = []
        for method in methods:
            stage = times[method]["stage"]
            ratio = f" (×{times[method]['seconds'] / first:.2f})" if method != methods[0] else ""
            cells.append(f"{times[method]['seconds']:.2f}{ratio}" + (f", {stage}" if stage else ""))
        body.append([name, *cells])
    return markdown(["pair", *(f"`{method}` s" for method in methods)], body)


def glue_pair_speed(benchmarks: Path) -> str:
    """Whole-pair time of Glue beside SIFT and the same features with mutual NN (``match_speed.py``)."""
    return speed_table(benchmarks, f"{GLUE_RECORDS}/pair_speed.json")


def glue_matcher_speed(benchmarks: Path) -> str:
    """Matcher time alone on the same features (``glue_speed.py``), with the layers Glue ran."""
    record = _load(benchmarks, f"{GLUE_RECORDS}/speed.json")
    layers = ", ".join(f"{count} pairs after {n}" for n, count in record["layers"].items())
    rows = [[f"`{name}`", number(ms, 1)] for name, ms in record["median_ms"].items()]
    rows[1][0] += f" (stopped: {layers} of {record['layers_total']} layers)"
    return markdown([f"matcher, {record['mean_keypoints']:.0f} keypoints per image", "ms per pair"], rows)


def glue_threshold(benchmarks: Path) -> str:
    """Glue's filter threshold and early exit on the held-out scenes (where the threshold was chosen)."""
    body = []
    for result in _load(benchmarks, f"{GLUE_RECORDS}/threshold/results.json")["results"]:
        options = result["method_options"]
        depth = options.get("depth_confidence", 0.95)
        cells = [
            "-" if result["method"] != "clidd-s96+glue" else str(options.get("filter_threshold", 0.005)),
            "-" if result["method"] != "clidd-s96+glue" else ("every layer" if depth <= 0 else str(depth)),
            number(result["summary"]["mean_matches"]),
            number(result["summary"]["failures"]),
            group_auc(_PLAIN, 10.0)(result),
            group_auc(_CHANGED, 10.0)(result),
            summary("auc@10deg")(result),
            timing("match_ms_median")(result),
        ]
        body.append([f"`{result['method']}`", *cells])
    header = ["method", "filter threshold", "early exit", "#matches", "fail", "plain AUC@10°"]
    header += ["changed AUC@10°", "all AUC@10°", "match ms/pair"]
    return markdown(header, body, numeric_from=3)


# ------------------------------------------------------------------------------------ comparison.md

COMPARE_RECORDS = "compare"
"""The records of docs/comparison.md (``bash benchmarks/compare/run.sh``)."""

COMPARE_OURS = [
    ("`clidd` (default)", "clidd", DEFAULT_OPTIONS),
    ("`clidd-a48+mnn`", "clidd-a48+mnn", {}),
    ("`clidd-t64+mnn`", "clidd-t64+mnn", {}),
    ("`raco-clidd-s96+mnn`", "raco-clidd-s96+mnn", {}),
    ("`clidd-s96+glue`", "clidd-s96+glue", {}),
    ("`sift+glue`", "sift+glue", {}),
    ("`eloftr`", "eloftr", {}),
    ("`effl0-featsharp+mnn`", "effl0-featsharp+mnn", {}),
    ("`dinov2s-featsharp+mnn`", "dinov2s-featsharp+mnn", {}),
    ("`extreme` (SIFT, matching on demand)", "extreme", EXTREME_OPTIONS),
    ("`sift` (OpenCV, ratio test)", "sift", {}),
]
COMPARE_PEERS = [
    ("`aliked-n16+lightglue` (peer)", "aliked-n16+lightglue", {}),
    ("`aliked-n32+lightglue` (peer)", "aliked-n32+lightglue", {}),
    ("`disk+lightglue` (peer)", "disk+lightglue", {}),
    ("`raco-aliked+lightglue` (peer descriptor and matcher)", "raco-aliked+lightglue", {}),
    ("`xfeat` (peer)", "xfeat", {}),
    ("`xfeat+lighterglue` (peer)", "xfeat+lighterglue", {}),
    ("`xfeat-star` (peer)", "xfeat-star", {}),
]
"""Rows of the comparison (label, method, the options it was recorded with): ours, then the pretrained
peers."""


UPRIGHT_DEG = 30.0
"""Held-out scene pairs whose cameras turn less than this are "upright" in the comparison."""


def compare_results(benchmarks: Path) -> str:
    """Every compared method that has been run, on every hard-pair set."""
    rows = recorded_rows(benchmarks, COMPARE_RECORDS, COMPARE_OURS + COMPARE_PEERS)
    return hard_sets_table(benchmarks, COMPARE_RECORDS, rows)


def compare_rotation(benchmarks: Path) -> str:
    """Pose AUC on the held-out scene pairs split by the rotation between the cameras: upright methods fail
    on the rotated ones, which are most of the set."""
    angles = _load(benchmarks, f"{COMPARE_RECORDS}/scene_rotations.json")["angle_deg"]
    path = f"{COMPARE_RECORDS}/held-out/results.json"
    upright = sum(angle < UPRIGHT_DEG for angle in angles.values())
    body = []
    for label, method, options in COMPARE_OURS + COMPARE_PEERS:
        result = find_result(benchmarks, path, "pairs:pairs.txt", method, options)
        if result is None:
            continue
        cells = []
        for under in (True, False):
            keep = lambda record, under=under: (angles[record["name"]] < UPRIGHT_DEG) == under
            cells += [records_auc(result, keep, threshold) for threshold in (5.0, 10.0)]
        body.append([label, *cells])
    header = [
        "method",
        f"under {UPRIGHT_DEG:.0f}° ({upright} pairs) AUC@5°",
        "AUC@10°",
        f"{UPRIGHT_DEG:.0f}° or more ({len(angles) - upright} pairs) AUC@5°",
        "AUC@10°",
    ]
    return markdown(header, body)


COMPARE_UPRIGHT_CANDIDATES = [
    ("`sift`, `align=ratio`", "sift", {"align": "ratio"}),
    ("`sift+glue`, `align=ratio`", "sift+glue", {"align": "ratio"}),
]
"""Extra rows of the upright table: SIFT-based candidates for the default, with the aligned second pass."""


def compare_upright(benchmarks: Path) -> str:
    """Pose AUC on the upright held-out scenes (cameras rolled by at most 10 degrees), for the methods run."""
    path = f"{COMPARE_RECORDS}/upright/results.json"
    body = []
    for label, method, options in COMPARE_OURS + COMPARE_UPRIGHT_CANDIDATES + COMPARE_PEERS:
        result = find_result(benchmarks, path, "pairs:pairs.txt", method, options)
        if result is not None:
            cells = [group_auc(groups, 10.0)(result) for groups in (_PLAIN, _CHANGED, ["hard-changed"])]
            cells += [summary("auc@5deg")(result), summary("auc@10deg")(result)]
            body.append([label, *cells, number(result["summary"]["failures"])])
    header = ["method", "plain AUC@10°", "changed AUC@10°", "hard changed AUC@10°", "all AUC@5°", "AUC@10°"]
    return markdown([*header, "fail"], body)


def compare_oxford(benchmarks: Path) -> str:
    """Oxford in detail (the peers' published behaviour is stated there), for the methods run on it."""
    path = f"{COMPARE_RECORDS}/real/results.json"
    rows = [
        Row(label, path, method, options)
        for label, method, options in COMPARE_OURS + COMPARE_PEERS
        if find_result(benchmarks, path, OXFORD, method, options)
    ]
    columns = [
        Column("#matches", OXFORD, summary("mean_matches", "count")),
        Column("#inliers", OXFORD, summary("mean_inliers", "count")),
        Column("MHA@1", OXFORD, summary("mha@1px")),
        Column("MHA@3", OXFORD, summary("mha@3px")),
        Column("MHA@5", OXFORD, summary("mha@5px")),
        Column("MMA@1", OXFORD, summary("mma@1px")),
        MMA3,
        Column("fail", OXFORD, summary("failures", "count")),
        Column("extract ms/image", OXFORD, timing("extract_ms_median")),
        Column("match ms/pair", OXFORD, timing("match_ms_median")),
    ]
    return bench_table(benchmarks, rows, columns, source=False)


def compare_pair_speed(benchmarks: Path) -> str:
    """Whole-pair time of every compared method on one 640x480 pair, in one run (``match_speed.py``)."""
    return speed_table(benchmarks, f"{COMPARE_RECORDS}/pair_speed.json")


TABLES: dict[str, Builder] = {
    "readme-methods": readme_methods,
    "classical-oxford": classical_oxford,
    "classical-temple": classical_temple,
    "clidd-sizes": clidd_sizes,
    "clidd-sampler": clidd_sampler,
    "clidd-results": clidd_results,
    "clidd-default": clidd_default,
    "clidd-default-speed": clidd_default_speed,
    "views-turns": views_turns,
    "views-align": views_align,
    "views-speed": views_speed,
    "views-speed-epipolar": views_speed_epipolar,
    "views-speed-align": views_speed_align,
    "views-speed-align-eloftr": views_speed_align_eloftr,
    "views-parallax": views_parallax,
    "eloftr-oxford": eloftr_oxford,
    "eloftr-temple": eloftr_temple,
    "eloftr-settings": eloftr_settings,
    "eloftr-speed": eloftr_speed,
    "eloftr-speed-upsample": eloftr_speed_upsample,
    "raco-budget": raco_budget,
    "raco-rotation": raco_rotation,
    "raco-calibration": raco_calibration,
    "raco-estimation": raco_estimation,
    "upsamplers": upsamplers,
    "solvers-real": solvers_real,
    "solvers-synthetic": solvers_synthetic,
    "solvers-size": solvers_size,
    "reconstruction-temple": reconstruction_temple,
    "reconstruction-times": reconstruction_times,
    "reconstruction-retrieval": reconstruction_retrieval,
    "reconstruction-methods": reconstruction_methods,
    "reconstruction-scaling": reconstruction_scaling,
    "reconstruction-rings": reconstruction_rings,
    "reconstruction-ring-options": reconstruction_ring_options,
    "reconstruction-ring-pipelines": reconstruction_ring_pipelines,
    "reconstruction-localize": reconstruction_localize,
    "scenes.results": scenes_results,
    "extreme-results": extreme_results,
    "extreme-bands": extreme_bands,
    "extreme-stages": extreme_stages,
    "extreme-speed": extreme_speed,
    "glue.results": glue_results,
    "glue.pair-speed": glue_pair_speed,
    "glue.matcher-speed": glue_matcher_speed,
    "glue.threshold": glue_threshold,
    "compare.results": compare_results,
    "compare.oxford": compare_oxford,
    "compare.rotation": compare_rotation,
    "compare.upright": compare_upright,
    "compare.pair-speed": compare_pair_speed,
}
"""Every generated table by name."""


# --------------------------------------------------------------------------------------------- the driver


def render(
    text: str, benchmarks: Path, tables: Mapping[str, Builder] = TABLES, changed: list[str] | None = None
) -> str:
    """The text with every marked table rebuilt; the names of the tables that changed are appended to
    ``changed``. An unknown table name is an error."""

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in tables:
            raise KeyError(f"unknown table {name!r}; tables: {', '.join(tables)}")
        body = tables[name](benchmarks)
        if body != match["body"] and changed is not None:
            changed.append(name)
        return f"<!-- table:{name} -->\n{body}<!-- /table -->"

    # Markers inside fenced code blocks are examples, not tables: only the text between fences is rendered.
    parts = FENCE.split(text)
    return "".join(part if i % 2 else MARKER.sub(replace, part) for i, part in enumerate(parts))


def pages(root: Path) -> list[Path]:
    """The files whose tables are generated: ``README.md`` and every ``docs/*.md``."""
    return [path for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if path.is_file()]


def stale_files(
    root: Path, tables: Mapping[str, Builder] = TABLES, write: bool = False
) -> dict[Path, list[str]]:
    """The pages whose generated tables differ from the records under ``root/benchmarks``, with the names of
    those tables; the pages are rewritten when ``write``."""
    stale = {}
    for path in pages(root):
        text = path.read_text()
        changed: list[str] = []
        updated = render(text, root / "benchmarks", tables, changed)
        if updated != text:
            stale[path] = changed
            if write:
                path.write_text(updated)
    return stale


def main(check: bool = False, root: Path | None = None, tables: Mapping[str, Builder] = TABLES) -> int:
    """Regenerate the tables (``check``: write nothing, only report). Returns 1 when ``check`` finds a stale
    table, else 0."""
    root = REPOSITORY if root is None else Path(root)
    stale = stale_files(root, tables, write=not check)
    for path, names in stale.items():
        relative = path.relative_to(root)
        print(f"{relative}: {'stale' if check else 'regenerated'}: {', '.join(names)}")
    if check and stale:
        print("run `tiepoint-lab docs` to regenerate them from benchmarks/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Regenerate the results tables of README.md and docs/*.md.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a table is stale")
    sys.exit(main(check=parser.parse_args().check))

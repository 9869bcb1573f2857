"""The fault suite of issue 26 ("pipelines that never lie"): the real ``tiepoint`` command on a small
synthetic scene, given bad files, run twice at once, killed (SIGKILL) at points of each stage and run
again, given corrupted outputs, changed inputs and odd image names.

Each case ends in one outcome (see ``FAULT_OUTCOMES`` in ``conftest.py``): *clear error* (exit status not 0
and a one-line message naming the file or parameter), *traceback* (or an error message that does not say what
is wrong), *silent wrong* (exit 0 with a wrong or incomplete result), *data loss* (results of an earlier run
destroyed) or *OK* (the result of a clean run). Each test asserts its case's expected outcome, and the table
of counts is printed at the end of the session (the "fault suite" section).

The commands run in this process (``tiepoint.cli.main``), except where a second process is the point: the
kills and the concurrent runs. The kill delays are drawn once from a seeded generator.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tiepoint.cli import main
from tiepoint.io.h5 import list_feature_names, read_features, read_group, read_matches
from tiepoint.pipeline.pairs import exhaustive_pairs, read_pairs, sequential_pairs
from tiepoint.pipeline.reconstruct import read_models

from .test_locks import dead_pid

pytestmark = pytest.mark.slow

SEED = 26
CLEAR, TRACEBACK, WRONG, LOSS, OK = "clear error", "traceback", "silent wrong", "data loss", "OK"
VIEWS = [f"view{i}.png" for i in range(6)]
METHOD = ["--method", "sift"]


# --- running the command and judging the outcome ------------------------------------------------------------


@dataclass
class Run:
    status: int
    out: str
    err: str
    raised: BaseException | None = None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if ": error:" in line]


def tiepoint(capsys, *args) -> Run:
    """Run ``tiepoint ARGS`` in this process; its exit status and what it printed (only this run's)."""
    capsys.readouterr()
    raised = None
    try:
        status = main([str(arg) for arg in args])
    except SystemExit as error:  # argparse
        status = error.code if isinstance(error.code, int) else 2
    except Exception as error:  # noqa: BLE001 - escaped main: a traceback
        status, raised = 2, error
    captured = capsys.readouterr()
    _last[:] = [Run(status, captured.out, captured.err, raised)]
    return _last[0]


_last: list[Run] = []  # the latest run, shown when a case fails


def judge(run: Run, mentions=(), correct=True, lost=False) -> str:
    """The outcome of a run: ``mentions`` are what a clear error names (a file, a parameter), ``correct``
    whether the result is the clean run's (a bool, or a function called only when the run succeeded), ``lost``
    whether earlier results were destroyed."""
    if lost:
        return LOSS
    if run.raised is not None or "Traceback" in run.err or "error: unexpected" in run.err:
        return TRACEBACK
    if run.status != 0:
        text = run.out + run.err if run.status == 1 else "\n".join(run.error_lines)
        one_line = run.status == 1 or len(run.error_lines) == 1
        return CLEAR if one_line and all(str(m) in text for m in mentions) else TRACEBACK
    if callable(correct):
        correct = correct()
    return OK if correct else WRONG


@pytest.fixture
def check(fault_log, request):
    """``check(outcome, expected)``: record the case's outcome in the tally and assert it."""

    def verdict(outcome: str, expected: str = OK) -> None:
        fault_log(request.node.name, outcome)
        last = _last[0] if _last else None
        shown = "" if last is None else f"last run: exit {last.status}, {last.raised!r}\n{last.out}{last.err}"
        assert outcome == expected, shown[-3000:]

    return verdict


# --- the scene and the results of clean runs ------------------------------------------------------------


def copy_views(scene, folder: Path, indices=range(6), rename=None) -> Path:
    """Views of the corner scene copied into ``folder`` (``rename``: index -> name)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in indices:
        name = (rename or {}).get(i, f"view{i}.png")
        shutil.copyfile(scene.folder / f"view{i}.png", folder / name)
    return folder


def features_of(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: _arrays(read_features(path, name)) for name in list_feature_names(path)}


def _arrays(features) -> tuple[np.ndarray, np.ndarray]:
    return features.keypoints, features.descriptors


def matches_of(path: Path, pairs) -> dict[tuple[str, str], np.ndarray]:
    return {pair: read_matches(path, *pair)[0] for pair in pairs}


def geometries_of(path: Path, pairs) -> dict[tuple[str, str], np.ndarray]:
    found = {}
    for a, b in pairs:
        group = read_group(path, f"{a}/{b}", ("inlier_matches",), "geometry")
        found[(a, b)] = group["inlier_matches"]
    return found


def same(found: dict, expected: dict) -> bool:
    """Whether two dicts of arrays (or tuples of arrays) hold the same keys and equal arrays."""
    if set(found) != set(expected):
        return False
    for key, value in expected.items():
        values = value if isinstance(value, tuple) else (value,)
        others = found[key] if isinstance(found[key], tuple) else (found[key],)
        if any(not np.array_equal(a, b) for a, b in zip(values, others, strict=True)):
            return False
    return True


def registered(output: Path) -> set[str]:
    """The images registered in the largest model of a reconstruction folder."""
    models = read_models(output / "sparse")
    model = models[0]
    return {model.image(i).name for i in model.reg_image_ids()}


def leftovers(folder: Path) -> list[str]:
    """``.partial`` and ``.lock`` files (and folders) a finished run should not leave."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".partial", ".lock", ".old")))


@dataclass
class Clean:
    images: Path
    features: Path
    pairs: Path
    matches: Path
    geometries: Path
    reconstruction: Path
    feature_arrays: dict
    match_arrays: dict
    geometry_arrays: dict
    reversed_match_arrays: dict

    def features_as(self, names: dict[str, str]) -> dict:
        """The clean features of ``names`` (stored name -> clean view name)."""
        return {name: self.feature_arrays[view] for name, view in names.items()}

    def matches_as(self, pairs, names: dict[str, str] | None = None) -> dict:
        """The clean matches of ``pairs`` (stored names, mapped to clean view names by ``names``)."""
        names = names or {}
        arrays = {**self.match_arrays, **self.reversed_match_arrays}
        return {(a, b): arrays[(names.get(a, a), names.get(b, b))] for a, b in pairs}


@pytest.fixture(scope="module")
def clean(corner_scene, tmp_path_factory) -> Clean:
    """The stage commands and reconstruct on the six views, run once, undisturbed."""
    root = tmp_path_factory.mktemp("clean")
    images = copy_views(corner_scene, root / "images")
    f, p, m, g = (root / name for name in ("features.h5", "pairs.txt", "matches.h5", "geometries.h5"))
    assert main(["extract", str(images), str(f), *METHOD]) == 0
    assert main(["pairs", str(f), str(p)]) == 0
    assert main(["match-pairs", str(f), str(p), str(m), *METHOD]) == 0
    assert main(["verify", str(f), str(p), str(m), str(g)]) == 0
    reconstruction = root / "reconstruction"
    assert main(["reconstruct", str(images), str(reconstruction), *METHOD, "--quiet"]) == 0
    pairs = read_pairs(p)
    assert pairs == exhaustive_pairs(VIEWS)
    # and each pair matched the other way round (renamed images are paired in another order)
    backwards = [(b, a) for a, b in pairs]
    (root / "backwards.txt").write_text("".join(f"{a} {b}\n" for a, b in backwards))
    assert (
        main(["match-pairs", str(f), str(root / "backwards.txt"), str(root / "backwards.h5"), *METHOD]) == 0
    )
    result = Clean(
        images,
        f,
        p,
        m,
        g,
        reconstruction,
        features_of(f),
        matches_of(m, pairs),
        geometries_of(g, pairs),
        matches_of(root / "backwards.h5", backwards),
    )
    # reconstruct runs the same stages: its files are the stage commands'
    assert same(features_of(reconstruction / "features.h5"), result.feature_arrays)
    assert same(matches_of(reconstruction / "matches.h5", pairs), result.match_arrays)
    assert registered(reconstruction) == set(VIEWS)
    return result


def stage_files(clean: Clean, folder: Path, upto: str) -> dict[str, Path]:
    """Copies of the clean stage files up to the input of stage ``upto`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    order = ["features", "pairs", "matches", "geometries"]
    files = {kind: folder / getattr(clean, kind).name for kind in order}
    for kind in order[: order.index(upto)]:
        shutil.copyfile(getattr(clean, kind), files[kind])
    return files


def reconstruction_ok(output: Path, names) -> bool:
    """A complete reconstruction of ``names``: all registered, summary.json says so."""
    summary = json.loads((output / "summary.json").read_text())
    return (
        summary["status"] == "complete"
        and summary["registered_images"] == len(names)
        and registered(output) == set(names)
    )


def garbage(path: Path, size: int = 4096, seed: int = SEED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


# --- bad files ----------------------------------------------------------------------------------------------


def test_extract_with_an_unreadable_image(clean, corner_scene, tmp_path, capsys, check):
    images = copy_views(corner_scene, tmp_path / "images", range(3))
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not a picture")
    run = tiepoint(capsys, "extract", images, tmp_path / "f.h5", *METHOD)
    expected = {f"view{i}.png": clean.feature_arrays[f"view{i}.png"] for i in range(3)}
    outcome = judge(run, mentions=["broken.png"])
    if outcome == CLEAR and not same(features_of(tmp_path / "f.h5"), expected):
        outcome = WRONG  # the good images must be there all the same
    check(outcome, CLEAR)


def test_reconstruct_with_an_unreadable_image(clean, corner_scene, tmp_path, capsys, check):
    images = copy_views(corner_scene, tmp_path / "images", range(4))
    (images / "broken.jpg").write_bytes(b"")
    output = tmp_path / "out"
    run = tiepoint(capsys, "reconstruct", images, output, *METHOD, "--quiet")
    outcome = judge(run, mentions=["broken.jpg"])
    if outcome == CLEAR:
        summary = json.loads((output / "summary.json").read_text())
        skipped = [s["name"] for s in summary["skipped_images"]]
        everyone_else = registered(output) == {f"view{i}.png" for i in range(4)}
        if summary["status"] != "incomplete" or skipped != ["broken.jpg"] or not everyone_else:
            outcome = WRONG
    check(outcome, CLEAR)


# garbage as a stage's input: (command, the kind of the garbage file)
GARBAGE_INPUTS = [
    ("pairs", "features"),
    ("match-pairs", "features"),
    ("match-pairs", "pairs"),
    ("verify", "matches"),
    ("verify", "features"),
    ("map", "geometries"),
    ("map", "matches"),
    ("map", "database"),
]


def stage_command(command: str, files: dict[str, Path], images: Path, out: Path) -> list:
    if command == "pairs":
        return ["pairs", files["features"], files["pairs"]]
    if command == "match-pairs":
        return ["match-pairs", files["features"], files["pairs"], files["matches"], *METHOD]
    if command == "verify":
        return ["verify", files["features"], files["pairs"], files["matches"], files["geometries"]]
    if "database" in files:
        return ["map", images, out, "--database", files["database"]]
    pairs_files = ["--features", files["features"], "--pairs", files["pairs"], "--matches", files["matches"]]
    return ["map", images, out, *pairs_files, "--geometries", files["geometries"]]


@pytest.mark.parametrize(("command", "kind"), GARBAGE_INPUTS, ids=lambda value: value)
def test_garbage_input(clean, tmp_path, capsys, check, command, kind):
    upto = {"pairs": "pairs", "match-pairs": "matches", "verify": "geometries", "map": "geometries"}[command]
    files = stage_files(clean, tmp_path, upto)
    if command == "map":
        shutil.copyfile(clean.geometries, files["geometries"])
    if kind == "database":
        files["database"] = tmp_path / "database.db"
    garbage(files[kind])
    run = tiepoint(capsys, *stage_command(command, files, clean.images, tmp_path / "model"))
    outcome = judge(run, mentions=[files[kind].name])
    if command == "map" and (tmp_path / "model" / "sparse").exists():
        outcome = WRONG if outcome == OK else outcome
    check(outcome, CLEAR)


# garbage as the output a stage resumes: (command, kind of its output)
GARBAGE_OUTPUTS = [("extract", "features"), ("match-pairs", "matches"), ("verify", "geometries")]


@pytest.mark.parametrize(("command", "kind"), GARBAGE_OUTPUTS, ids=[c for c, _ in GARBAGE_OUTPUTS])
def test_garbage_output_to_resume(clean, tmp_path, capsys, check, command, kind):
    files = stage_files(clean, tmp_path, kind)
    garbage(files[kind])
    if command == "extract":
        args = ["extract", clean.images, files["features"], *METHOD]
    else:
        args = stage_command(command, files, clean.images, tmp_path)
    run = tiepoint(capsys, *args)
    expected = {"features": clean.feature_arrays, "matches": clean.match_arrays}.get(kind)
    reader = {"features": features_of, "matches": lambda p: matches_of(p, read_pairs(clean.pairs))}.get(kind)
    correct = expected is None or (lambda: same(reader(files[kind]), expected))
    outcome = judge(run, mentions=[files[kind].name], correct=correct)
    # refusing is right (the file may be someone's work); so is replacing it with the right result
    check(outcome, CLEAR if outcome != OK else OK)


# garbage in a reconstruction folder that is run again
GARBAGE_IN_OUTPUT = ["features.h5", "pairs.txt", "matches.h5", "geometries.h5", "database.db", "summary.json"]


@pytest.mark.parametrize("name", GARBAGE_IN_OUTPUT)
def test_garbage_in_a_reconstruction_to_resume(clean, tmp_path, capsys, check, name):
    output = tmp_path / "out"
    shutil.copytree(clean.reconstruction, output)
    garbage(output / name)
    run = tiepoint(capsys, "reconstruct", clean.images, output, *METHOD, "--quiet")
    outcome = judge(run, mentions=[name], correct=lambda: reconstruction_ok(output, VIEWS))
    if outcome == OK and name in ("features.h5", "matches.h5"):
        reader = {"features.h5": features_of, "matches.h5": lambda p: matches_of(p, read_pairs(clean.pairs))}
        expected = {"features.h5": clean.feature_arrays, "matches.h5": clean.match_arrays}
        outcome = OK if same(reader[name](output / name), expected[name]) else WRONG
    check(outcome, CLEAR if outcome == CLEAR else OK)


# --- concurrent runs ----------------------------------------------------------------------------------------


def start(args, cwd: Path, log: Path) -> subprocess.Popen:
    """``tiepoint ARGS`` in another process, its output into ``log``."""
    command = [sys.executable, "-m", "tiepoint.cli", *(str(a) for a in args)]
    with open(log, "wb") as sink:
        return subprocess.Popen(command, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Wait until ``path`` exists (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        if process.poll() is not None:
            return path.exists()
        time.sleep(0.002)
    process.kill()
    raise AssertionError(f"{path} did not appear within {timeout} s")


def test_two_extracts_on_one_output(clean, corner_scene, tmp_path, capsys, check):
    images = copy_views(corner_scene, tmp_path / "images")
    copy_views(corner_scene, images / "more")  # twelve images: the first run is still at work
    output = tmp_path / "features.h5"
    first = start(["extract", images, output, *METHOD], tmp_path, tmp_path / "first.log")
    try:
        assert wait_for(output.with_name("features.h5.lock"), first)
        second = tiepoint(capsys, "extract", images, output, *METHOD)
    finally:
        first.wait(120)
    outcome = judge(second, mentions=[f"PID {first.pid}", output.name])
    expected = {
        **clean.feature_arrays,
        **{f"more/{name}": value for name, value in clean.feature_arrays.items()},
    }
    if first.returncode != 0 or not same(features_of(output), expected):
        outcome = LOSS if outcome in (CLEAR, OK) else outcome  # the first run's work was spoilt
    check(outcome, CLEAR)


def test_reconstruct_while_another_maps_the_same_output(clean, tmp_path, capsys, check):
    output = tmp_path / "out"
    shutil.copytree(clean.reconstruction, output)
    shutil.rmtree(output / "sparse")  # everything is there but the model: the first run maps at once
    first = start(["reconstruct", clean.images, output, *METHOD, "--quiet"], tmp_path, tmp_path / "first.log")
    try:
        mapping = wait_for(output / "sparse.partial", first)
        second = tiepoint(capsys, "reconstruct", clean.images, output, *METHOD, "--quiet")
    finally:
        first.wait(120)
    log = (tmp_path / "first.log").read_text(errors="replace")
    assert mapping, log[-2000:]
    outcome = judge(second, mentions=[f"PID {first.pid}"], correct=lambda: reconstruction_ok(output, VIEWS))
    if first.returncode != 0 or not reconstruction_ok(output, VIEWS):
        outcome = TRACEBACK if "Traceback" in log else LOSS
    check(outcome, CLEAR)


# --- kill -9 at points of each stage, then run again --------------------------------------------------------

_rng = random.Random(SEED)
KILLS = [
    (stage, round(_rng.uniform(0.0, span), 3))
    for stage, span in (("extract", 0.5), ("match-pairs", 0.4), ("verify", 0.4), ("reconstruct", 2.5))
    for _ in range(3)
]


def stage_output_is_clean(clean, stage: str, output: Path) -> bool:
    """Whether a stage's output file holds what the clean run's does."""
    if stage == "extract":
        return same(features_of(output), clean.feature_arrays)
    pairs = read_pairs(clean.pairs)
    if stage == "match-pairs":
        return same(matches_of(output, pairs), clean.match_arrays)
    return same(geometries_of(output, pairs), clean.geometry_arrays)


def kill_after(args, cwd: Path, started: Path, delay: float) -> bool:
    """Run ``tiepoint ARGS`` in another process and SIGKILL it ``delay`` s after ``started`` appears;
    whether it was still running then."""
    process = start(args, cwd, cwd / "killed.log")
    try:
        wait_for(started, process)
        time.sleep(delay)
        running = process.poll() is None
        if running:
            os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(120)
    return running


@pytest.mark.parametrize(("stage", "delay"), KILLS, ids=[f"{s}-{d}s" for s, d in KILLS])
def test_killed_and_run_again(clean, tmp_path, capsys, check, stage, delay):
    work = tmp_path / "work"
    if stage == "reconstruct":
        output = work / "out"
        args = ["reconstruct", clean.images, output, *METHOD, "--quiet"]
        started = output / "features.h5.lock"
    else:
        kind = {"extract": "features", "match-pairs": "matches", "verify": "geometries"}[stage]
        files = stage_files(clean, work, kind)
        if stage == "extract":
            args = ["extract", clean.images, files["features"], *METHOD]
        else:
            args = stage_command(stage, files, clean.images, work)
        output = files[kind]
        started = output.with_name(output.name + ".lock")
    kill_after(args, tmp_path, started, delay)
    run = tiepoint(capsys, *args)

    def correct() -> bool:
        pairs = read_pairs(clean.pairs)
        if stage == "reconstruct":
            return (
                reconstruction_ok(output, VIEWS)
                and same(features_of(output / "features.h5"), clean.feature_arrays)
                and same(matches_of(output / "matches.h5", pairs), clean.match_arrays)
                and same(geometries_of(output / "geometries.h5", pairs), clean.geometry_arrays)
                and not leftovers(output)
            )
        return stage_output_is_clean(clean, stage, output) and not leftovers(work)

    check(judge(run, correct=correct))


# --- localize: killed and run again, a garbage log --------------------------------------------------------

LOCALIZE_KILLS = [round(_rng.uniform(0.0, 3.0), 3) for _ in range(3)]


@pytest.fixture(scope="module")
def clean_poses(clean, corner_scene, tmp_path_factory) -> tuple[Path, str]:
    """Two views localized against the clean reconstruction, undisturbed: the query folder and the poses."""
    root = tmp_path_factory.mktemp("clean-localize")
    queries = copy_views(corner_scene, root / "queries", (1, 4))
    assert (
        main(
            [
                "localize",
                str(clean.reconstruction),
                str(queries),
                "--output",
                str(root / "poses.txt"),
                "--quiet",
            ]
        )
        == 0
    )
    return queries, (root / "poses.txt").read_text()


@pytest.mark.parametrize("delay", LOCALIZE_KILLS, ids=[f"localize-{d}s" for d in LOCALIZE_KILLS])
def test_localize_killed_and_run_again(clean, clean_poses, tmp_path, capsys, check, delay):
    queries, poses = clean_poses
    output = tmp_path / "work" / "poses.txt"
    args = ["localize", clean.reconstruction, queries, "--output", output, "--quiet"]
    kill_after(args, tmp_path, output.with_name(output.name + ".lock"), delay)
    run = tiepoint(capsys, *args)
    check(judge(run, correct=lambda: output.read_text() == poses and not leftovers(output.parent)))


def test_localize_with_a_garbage_log(clean, clean_poses, tmp_path, capsys, check):
    queries, poses = clean_poses
    output = tmp_path / "poses.txt"
    garbage(output.with_name("poses.txt.log.json"))
    run = tiepoint(capsys, "localize", clean.reconstruction, queries, "--output", output, "--quiet")
    check(judge(run, correct=lambda: output.read_text() == poses))


# --- corrupted outputs --------------------------------------------------------------------------------------


def overwrite_middle(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as file:
        file.seek(size // 2)
        file.write(np.random.default_rng(SEED).integers(0, 256, 256, dtype=np.uint8).tobytes())


def truncate(path: Path) -> None:
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size // 2)


CORRUPTIONS = [
    (stage, how) for stage in ("extract", "match-pairs", "verify") for how in ("truncated", "overwritten")
]


@pytest.mark.parametrize(("stage", "how"), CORRUPTIONS, ids=[f"{s}-{h}" for s, h in CORRUPTIONS])
def test_corrupted_output_then_run_again(clean, tmp_path, capsys, check, stage, how):
    kind = {"extract": "features", "match-pairs": "matches", "verify": "geometries"}[stage]
    files = stage_files(clean, tmp_path, kind)
    shutil.copyfile(getattr(clean, kind), files[kind])
    (truncate if how == "truncated" else overwrite_middle)(files[kind])
    if stage == "extract":
        args = ["extract", clean.images, files["features"], *METHOD]
    else:
        args = stage_command(stage, files, clean.images, tmp_path)
    run = tiepoint(capsys, *args)

    def correct() -> bool:
        return stage_output_is_clean(clean, stage, files[kind])

    outcome = judge(run, mentions=[files[kind].name], correct=correct)
    check(outcome, CLEAR if outcome == CLEAR else OK)


@pytest.mark.parametrize("name", ["sparse/0/images.bin", "reconstruction.png"])
def test_corrupted_reconstruction_file_then_run_again(clean, tmp_path, capsys, check, name):
    output = tmp_path / "out"
    shutil.copytree(clean.reconstruction, output)
    truncate(output / name)
    run = tiepoint(capsys, "reconstruct", clean.images, output, *METHOD, "--quiet")
    outcome = judge(run, mentions=[Path(name).name], correct=lambda: reconstruction_ok(output, VIEWS))
    check(outcome, CLEAR if outcome == CLEAR else OK)


# what a run killed at each point of its last steps leaves in a finished reconstruction folder
SCRATCH = {
    "summary": lambda out: out / f".summary.json.{socket.gethostname()}.{dead_pid()}.partial",
    "figure": lambda out: out / f".reconstruction.png.{socket.gethostname()}.{dead_pid()}.partial",
    "model-swap": lambda out: out / "sparse.old",
}


@pytest.mark.parametrize("killed_in", SCRATCH)
def test_scratch_of_a_killed_run_is_cleared(clean, tmp_path, capsys, check, killed_in):
    output = tmp_path / "out"
    shutil.copytree(clean.reconstruction, output)
    left = SCRATCH[killed_in](output)
    if killed_in == "model-swap":
        shutil.copytree(output / "sparse", left)
    else:
        left.write_bytes(b"half")
    run = tiepoint(capsys, "reconstruct", clean.images, output, *METHOD, "--quiet")
    check(judge(run, correct=lambda: reconstruction_ok(output, VIEWS) and not leftovers(output)))


# --- changed inputs -----------------------------------------------------------------------------------------


def four_view_reconstruction(corner_scene, tmp_path, capsys) -> tuple[Path, Path]:
    images = copy_views(corner_scene, tmp_path / "images", range(4))
    output = tmp_path / "out"
    assert tiepoint(capsys, "reconstruct", images, output, *METHOD, "--quiet").status == 0
    return images, output


def reconstruction_of(clean: Clean, output: Path, names: dict[str, str], pairs) -> bool:
    """``output`` is the clean result for the images ``names`` (name -> clean view) and ``pairs``."""
    features = {name: value for name, value in features_of(output / "features.h5").items() if name in names}
    return (
        reconstruction_ok(output, names)
        and read_pairs(output / "pairs.txt") == pairs
        and same(features, clean.features_as(names))
        and same(matches_of(output / "matches.h5", pairs), clean.matches_as(pairs, names))
    )


def test_image_replaced(clean, corner_scene, tmp_path, capsys, check):
    images, output = four_view_reconstruction(corner_scene, tmp_path, capsys)
    shutil.copyfile(corner_scene.folder / "view4.png", images / "view3.png")
    run = tiepoint(capsys, "reconstruct", images, output, *METHOD, "--quiet")
    names = {"view0.png": "view0.png", "view1.png": "view1.png", "view2.png": "view2.png"}
    names["view3.png"] = "view4.png"
    pairs = exhaustive_pairs(sorted(names))
    check(judge(run, correct=lambda: reconstruction_of(clean, output, names, pairs)))


def test_image_added(clean, corner_scene, tmp_path, capsys, check):
    images, output = four_view_reconstruction(corner_scene, tmp_path, capsys)
    copy_views(corner_scene, images, [4])
    run = tiepoint(capsys, "reconstruct", images, output, *METHOD, "--quiet")
    names = {name: name for name in VIEWS[:5]}
    check(judge(run, correct=lambda: reconstruction_of(clean, output, names, exhaustive_pairs(VIEWS[:5]))))


def test_image_removed(clean, corner_scene, tmp_path, capsys, check):
    images, output = four_view_reconstruction(corner_scene, tmp_path, capsys)
    (images / "view3.png").unlink()
    run = tiepoint(capsys, "reconstruct", images, output, *METHOD, "--quiet")
    names = {name: name for name in VIEWS[:3]}

    def correct() -> bool:
        summary = json.loads((output / "summary.json").read_text())
        return (
            reconstruction_of(clean, output, names, exhaustive_pairs(VIEWS[:3]))
            and summary["num_images"] == 3
        )

    check(judge(run, correct=correct))


def test_pairs_option_changed(clean, corner_scene, tmp_path, capsys, check):
    images, output = four_view_reconstruction(corner_scene, tmp_path, capsys)
    run = tiepoint(capsys, "reconstruct", images, output, *METHOD, "--pairs", "sequential:1", "--quiet")
    names = {name: name for name in VIEWS[:4]}
    pairs = sequential_pairs(VIEWS[:4], 1)

    def correct() -> bool:
        summary = json.loads((output / "summary.json").read_text())
        return reconstruction_of(clean, output, names, pairs) and summary["num_pairs"] == 3

    check(judge(run, correct=correct))


def test_extract_after_an_image_is_replaced(clean, corner_scene, tmp_path, capsys, check):
    images = copy_views(corner_scene, tmp_path / "images", range(4))
    output = tmp_path / "features.h5"
    assert tiepoint(capsys, "extract", images, output, *METHOD).status == 0
    shutil.copyfile(corner_scene.folder / "view4.png", images / "view3.png")
    run = tiepoint(capsys, "extract", images, output, *METHOD)
    names = {f"view{i}.png": f"view{i}.png" for i in range(3)} | {"view3.png": "view4.png"}
    check(judge(run, correct=lambda: same(features_of(output), clean.features_as(names))))


def stage_chain(clean, images: Path, folder: Path) -> tuple[dict[str, Path], list[list]]:
    """The files of the stage commands in ``folder`` and the commands from ``extract`` to ``verify``."""
    files = {
        kind: folder / getattr(clean, kind).name for kind in ("features", "pairs", "matches", "geometries")
    }
    chain = [
        ["extract", images, files["features"], *METHOD],
        ["pairs", files["features"], files["pairs"]],
        stage_command("match-pairs", files, images, folder),
        stage_command("verify", files, images, folder),
    ]
    return files, chain


@pytest.mark.parametrize("stage", ["match-pairs", "verify"])
def test_stage_after_its_input_changed(clean, corner_scene, tmp_path, capsys, check, stage):
    """An image replaced after its pairs were matched (and verified): the next run of the stage redoes its
    pairs, from the new features (and matches)."""
    images = copy_views(corner_scene, tmp_path / "images", range(4))
    files, chain = stage_chain(clean, images, tmp_path)
    for args in chain:
        assert tiepoint(capsys, *args).status == 0
    shutil.copyfile(corner_scene.folder / "view4.png", images / "view3.png")
    assert tiepoint(capsys, *chain[0]).status == 0
    if stage == "verify":
        assert tiepoint(capsys, *chain[2]).status == 0
    run = tiepoint(capsys, *(chain[2] if stage == "match-pairs" else chain[3]))
    names = {f"view{i}.png": f"view{i}.png" for i in range(3)} | {"view3.png": "view4.png"}
    pairs = exhaustive_pairs(sorted(names))

    def correct() -> bool:
        if stage == "match-pairs":
            return same(matches_of(files["matches"], pairs), clean.matches_as(pairs, names))
        expected = {}
        for a, b in pairs:
            clean_pair = (names[a], names[b])
            expected[(a, b)] = clean.geometry_arrays[clean_pair]
        return same(geometries_of(files["geometries"], pairs), expected)

    check(judge(run, correct=correct))


# --- odd names ----------------------------------------------------------------------------------------------

ODD_NAMES = {0: "ünïcödé.png", 1: "#hash.png", 2: "it's.png", 3: '"q".png'}


def test_odd_names_through_reconstruct(clean, corner_scene, tmp_path, capsys, check):
    images = copy_views(corner_scene, tmp_path / "images", range(4), rename=ODD_NAMES)
    output = tmp_path / "out"
    run = tiepoint(capsys, "reconstruct", images, output, *METHOD, "--quiet")
    names = {name: f"view{i}.png" for i, name in ODD_NAMES.items()}
    pairs = exhaustive_pairs(sorted(names))

    def correct() -> bool:
        database = json.loads((output / "database.db.json").read_text())
        return (
            reconstruction_of(clean, output, names, pairs)
            and sorted(database["made_from"]["images"]) == sorted(names)
            and len((output / "pairs.txt").read_text().splitlines()) == len(pairs)
        )

    check(judge(run, correct=correct))


def test_odd_names_through_the_stage_commands(clean, corner_scene, tmp_path, capsys, check):
    images = copy_views(corner_scene, tmp_path / "images", range(4), rename=ODD_NAMES)
    files, chain = stage_chain(clean, images, tmp_path)
    chain.append(stage_command("map", files, images, tmp_path / "model"))
    runs = [tiepoint(capsys, *args) for args in chain]
    run = next((r for r in runs if r.status != 0), runs[-1])
    names = {name: f"view{i}.png" for i, name in ODD_NAMES.items()}
    pairs = exhaustive_pairs(sorted(names))

    def correct() -> bool:
        return (
            read_pairs(files["pairs"]) == pairs
            and same(features_of(files["features"]), clean.features_as(names))
            and same(matches_of(files["matches"], pairs), clean.matches_as(pairs, names))
            and registered(tmp_path / "model") == set(names)
        )

    check(judge(run, correct=correct))


def test_odd_names_in_an_image_list(clean, corner_scene, tmp_path, capsys, check):
    images = copy_views(corner_scene, tmp_path / "images", range(4), rename=ODD_NAMES)
    listing = images / "list.txt"
    listing.write_text("".join(f"{name}\n" for name in ODD_NAMES.values()))
    run = tiepoint(capsys, "extract", listing, tmp_path / "f.h5", *METHOD)
    names = {name: f"view{i}.png" for i, name in ODD_NAMES.items()}
    outcome = judge(
        run,
        mentions=["#hash.png"],
        correct=lambda: same(features_of(tmp_path / "f.h5"), clean.features_as(names)),
    )
    check(outcome, CLEAR if outcome == CLEAR else OK)


def test_a_space_in_a_name_is_refused(corner_scene, tmp_path, capsys, check):
    images = copy_views(corner_scene, tmp_path / "images", range(3), rename={1: "view 1.png"})
    run = tiepoint(capsys, "reconstruct", images, tmp_path / "out", *METHOD, "--quiet")
    outcome = judge(run, mentions=["'view 1.png'"])
    if outcome == CLEAR and (tmp_path / "out").exists():
        outcome = WRONG  # refused before any work
    check(outcome, CLEAR)


def test_a_space_in_a_name_is_refused_by_pairs(corner_scene, tmp_path, capsys, check):
    images = copy_views(corner_scene, tmp_path / "images", range(3), rename={1: "view 1.png"})
    assert tiepoint(capsys, "extract", images, tmp_path / "f.h5", *METHOD).status == 0
    run = tiepoint(capsys, "pairs", tmp_path / "f.h5", tmp_path / "pairs.txt")
    outcome = judge(run, mentions=["'view 1.png'"])
    if outcome == CLEAR and (tmp_path / "pairs.txt").exists():
        outcome = WRONG
    check(outcome, CLEAR)

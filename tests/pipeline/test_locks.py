"""One writer per output: a second run on the same output is refused, naming the first; stale locks are taken
over; a run never touches another live run's ``.partial``, and reports only what its output holds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tiepoint.cli import main
from tiepoint.errors import CorruptFileError, TiepointError
from tiepoint.io.files import OutputLockedError, atomic_path, lock_path, output_lock
from tiepoint.io.h5 import list_feature_names, open_for_update, write_group
from tiepoint.pipeline import extract as extract_module
from tiepoint.pipeline import extract_features
from tiepoint.pipeline.dense import merge_dense

from .test_extract import write_image

HOLD = """
import sys
from tiepoint.io.files import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "images"
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        write_image(root / name, i)
    return root


@pytest.fixture
def other_run(tmp_path):
    """Start another process that holds the lock on a path until the test ends (or kills it)."""
    processes = []

    def start(path: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout.readline().strip() == "locked"
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_second_run_is_refused_and_leaves_the_first_runs_partial(folder, tmp_path, other_run):
    output = tmp_path / "features.h5"
    partial = output.with_name("features.h5.partial")
    partial.write_bytes(b"the other run's work in progress")  # not HDF5 yet: a first run would delete it
    process = other_run(output)
    with pytest.raises(OutputLockedError) as info:
        extract_features(folder, output, method="orb", progress=False)
    message = str(info.value)
    assert f"PID {process.pid}" in message and str(output) in message and "wait for it" in message
    assert "\n" not in message and isinstance(info.value, TiepointError)
    assert partial.read_bytes() == b"the other run's work in progress"
    assert not output.exists()

    process.stdin.close()  # the first run ends: its lock goes
    process.wait()
    partial.unlink()
    summary = extract_features(folder, output, method="orb", progress=False)
    assert summary.extracted == ["a.png", "b.png", "c.png"]
    assert not lock_path(output).exists()


def test_the_cli_refuses_a_second_run_in_one_line(folder, tmp_path, other_run, capsys):
    output = tmp_path / "features.h5"
    process = other_run(output)
    assert main(["extract", str(folder), str(output), "--method", "orb"]) == 2
    error = capsys.readouterr().err
    assert f"PID {process.pid}" in error and error.count("\n") == 1
    assert not output.exists()


def test_a_stale_lock_is_taken_over(folder, tmp_path, other_run):
    output = tmp_path / "features.h5"
    process = other_run(output)
    process.kill()  # dies holding the lock: the lock file stays, its flock goes with the process
    process.wait()
    assert json.loads(lock_path(output).read_text())["pid"] == process.pid
    summary = extract_features(folder, output, method="orb", progress=False)
    assert summary.extracted == ["a.png", "b.png", "c.png"]
    assert not lock_path(output).exists()

    lock_path(output).write_text(json.dumps({"pid": 999999, "host": "gone"}))  # left by a dead process
    assert extract_features(folder, output, method="orb", progress=False).skipped == summary.extracted


def test_the_lock_names_its_holder_and_is_released(tmp_path):
    output = tmp_path / "out.h5"
    with output_lock(output) as lock:
        info = json.loads(lock.read_text())
        assert info["pid"] == os.getpid() and info["host"] and info["output"] == str(output)
        with (
            pytest.raises(OutputLockedError, match="already being written by this process"),
            output_lock(output),
        ):
            pass
    assert not lock.exists()
    with pytest.raises(ValueError), output_lock(output):
        raise ValueError  # released on errors too
    assert not lock.exists()


def test_atomic_path_can_lock(tmp_path, other_run):
    target = tmp_path / "table.txt"
    other_run(target)
    with pytest.raises(OutputLockedError, match="table.txt"), atomic_path(target, locked=True) as tmp:
        tmp.write_text("x")
    assert not target.exists()
    with atomic_path(target) as tmp:  # unlocked by default, as before
        tmp.write_text("x")
    assert target.read_text() == "x"


def dead_pid() -> int:
    """The PID of a process that has ended."""
    command = [sys.executable, "-c", "import os; print(os.getpid())"]
    ended = subprocess.run(command, check=True, capture_output=True)
    return int(ended.stdout)


def test_atomic_path_sweeps_what_killed_runs_left(tmp_path):
    target = tmp_path / "summary.json"
    dead = dead_pid()
    host = socket.gethostname()
    left = tmp_path / f".summary.json.{host}.{dead}.partial"  # a run killed while writing
    live = tmp_path / f".summary.json.{host}.{os.getppid()}.partial"  # a live process: not ours to delete
    elsewhere = tmp_path / ".summary.json.another-host.1.partial"  # cannot be checked from here
    other = tmp_path / f".other.json.{host}.{dead}.partial"  # another output's
    for path in (left, live, elsewhere, other):
        path.write_text("{")
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
    assert target.read_text() == "{}"
    assert not left.exists() and live.exists() and elsewhere.exists() and other.exists()


def test_merge_dense_locks_its_outputs(tmp_path, other_run):
    dense = tmp_path / "dense.h5"
    rng = np.random.default_rng(0)
    with h5py.File(dense, "w") as file:
        points = (rng.random((5, 2)) * 50).astype(np.float32)
        datasets = {
            "keypoints0": points,
            "keypoints1": points + 1,
            "scores": np.ones(5, np.float32),
            "image_size0": np.array([64, 64]),
            "image_size1": np.array([64, 64]),
        }
        write_group(file, "a.png/b.png", datasets, attrs={"method": "{}"})
    process = other_run(tmp_path / "matches.h5")
    with pytest.raises(OutputLockedError, match=f"PID {process.pid}"):
        merge_dense([("a.png", "b.png")], dense, tmp_path / "features.h5", tmp_path / "matches.h5")
    assert not (tmp_path / "features.h5").exists()
    process.kill()
    process.wait()
    totals = merge_dense([("a.png", "b.png")], dense, tmp_path / "features.h5", tmp_path / "matches.h5")
    assert totals["images"] == 2 and totals["matches"] == 5


def test_a_replaced_partial_is_not_renamed_into_place(tmp_path):
    path = tmp_path / "features.h5"
    partial = path.with_name("features.h5.partial")
    with pytest.raises(CorruptFileError, match="deleted or replaced"), open_for_update(path):
        partial.unlink()  # what a second run used to do, then write its own
        with h5py.File(partial, "w"):
            pass
    assert not path.exists()


def test_success_is_reported_only_for_what_the_file_holds(folder, tmp_path, monkeypatch):
    output = tmp_path / "features.h5"
    summary = extract_features(folder, output, method="orb", progress=False)
    assert list_feature_names(output) == summary.extracted  # the count reported is the file's

    real_write = extract_module.write_features

    def lossy_write(file, name, *args, **kwargs):  # a writer that loses an image
        if name != "b.png":
            real_write(file, name, *args, **kwargs)

    monkeypatch.setattr(extract_module, "write_features", lossy_write)
    with pytest.raises(CorruptFileError, match=r"holds 2 of the 3 images.*b\.png"):
        extract_features(folder, tmp_path / "second.h5", method="orb", progress=False)

"""localize: query images registered against a model of the corner scene, checked against the true poses;
failures named; resuming; the poses file format. The temple protocol of issue 30 is a slow test."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pycolmap
import pytest

from tiepoint.errors import OptionError
from tiepoint.evaluation.poses import model_poses, query_pose_errors
from tiepoint.pipeline import localize as localize_module
from tiepoint.pipeline.localize import (
    LocalizationOptions,
    localize,
    log_path,
    read_poses,
    write_poses,
)
from tiepoint.pipeline.reconstruct import reconstruct


def rotation_matrix(qvec: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rotation of an hloc quaternion ``w x y z`` (pycolmap takes ``x y z w``)."""
    w, x, y, z = qvec
    return np.asarray(pycolmap.Rotation3d(np.array([x, y, z, w])).matrix())


def query_errors(model, poses: dict, truth: dict) -> dict:
    """Per query, rotation error (degrees) and centre error (percent of the truth's radius), the queries
    moved by the similarity that aligns the model's cameras to the truth."""
    queries = {n: (rotation_matrix(q), t) for n, (q, t) in poses.items()}
    return query_pose_errors(model_poses(model), queries, truth)


@pytest.fixture(scope="module")
def corner_model(corner_scene, tmp_path_factory):
    """A model of views 0, 1, 2, 4, 5 of the corner scene, and a folder with view 3 as the query."""
    root = tmp_path_factory.mktemp("localize")
    images, queries = root / "images", root / "queries"
    images.mkdir()
    queries.mkdir()
    for i in (0, 1, 2, 4, 5):
        shutil.copyfile(corner_scene.folder / f"view{i}.png", images / f"view{i}.png")
    shutil.copyfile(corner_scene.folder / "view3.png", queries / "view3.png")
    result = reconstruct(images, root / "model", progress=False)
    assert result.summary["registered_images"] == 5
    return root / "model", queries, result.models[0]


def test_localizes_a_query_within_a_degree(corner_model, corner_scene, tmp_path):
    model_dir, queries, model = corner_model
    # a second query, the same view at half the size: another camera, its focal length estimated
    image = cv2.imread(str(queries / "view3.png"))
    half = tmp_path / "queries"
    half.mkdir()
    shutil.copyfile(queries / "view3.png", half / "view3.png")
    shutil.copyfile(queries / "view3.png", half / "view3_again.png")
    cv2.imwrite(str(half / "view3_half.png"), cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA))
    output = tmp_path / "poses.txt"
    result = localize(model_dir, half, output, progress=False)
    assert result.exit_status == 0, result.failed
    assert set(result.poses) == {"view3.png", "view3_again.png", "view3_half.png"}
    # one query does not change the next one's camera: the same image, the same pose
    lines = dict(line.split(" ", 1) for line in output.read_text().splitlines())
    assert lines["view3.png"] == lines["view3_again.png"]
    truth = {n: corner_scene.poses["view3.png"] for n in result.poses} | corner_scene.poses
    for name, error in query_errors(model, read_poses(output), truth).items():
        assert error["rotation_error_deg"] < 1.0, (name, error)
        assert error["centre_error_percent"] < 2.0, (name, error)
    log = json.loads(log_path(output).read_text())["queries"]
    assert log["view3.png"]["camera_source"].startswith("model camera")
    assert log["view3_half.png"]["camera_source"].startswith("focal length estimated")
    assert log["view3.png"]["num_inliers"] >= 30
    assert "localized 3 of 3 queries" in result.report()


def test_a_query_that_fails_is_named_and_resuming_skips_done_queries(corner_model, tmp_path, monkeypatch):
    model_dir, queries, _ = corner_model
    folder = tmp_path / "queries"
    shutil.copytree(queries, folder)
    noise = np.random.default_rng(0).integers(0, 256, (60, 80), dtype=np.uint8)
    cv2.imwrite(str(folder / "noise.png"), cv2.resize(noise, (320, 240)))
    (folder / "broken.png").write_bytes(b"not a png")
    output = tmp_path / "poses.txt"
    result = localize(model_dir, folder, output, progress=False)
    assert set(result.poses) == {"view3.png"} and result.exit_status == 1
    assert set(result.failed) == {"noise.png", "broken.png"}
    # too few 2D-3D correspondences, or too few of them agree on a pose: either way the reason says so
    assert "correspondences" in result.failed["noise.png"]
    assert result.failed["broken.png"].startswith("skipped file: ")
    assert "noise.png: FAILED: " in result.report()
    assert [line.split()[0] for line in output.read_text().splitlines()] == ["view3.png"]

    # a rerun computes nothing again and gives the same files
    before = output.read_text()
    monkeypatch.setattr(localize_module, "_localize_one", lambda *a, **k: pytest.fail("computed again"))
    again = localize(model_dir, folder, output, progress=False)
    assert output.read_text() == before and again.failed == result.failed
    # other options: computed again
    with pytest.raises(pytest.fail.Exception, match="computed again"):
        localize(model_dir, folder, output, LocalizationOptions(num_retrieved=2), progress=False)


def test_refuses_what_it_cannot_localize_against(tmp_path, corner_model):
    _, queries, _ = corner_model
    with pytest.raises(FileNotFoundError, match="summary.json"):
        localize(tmp_path, queries, tmp_path / "poses.txt", progress=False)
    (tmp_path / "dense").mkdir()
    (tmp_path / "dense" / "summary.json").write_text(json.dumps({"method": "eloftr"}))
    with pytest.raises(OptionError, match="sparse method"):
        localize(tmp_path / "dense", queries, tmp_path / "poses.txt", progress=False)
    with pytest.raises(OptionError, match="num_retrieved"):
        LocalizationOptions(num_retrieved=0)


def test_poses_file_round_trip(tmp_path):
    poses = {
        "b.jpg": (np.array([1.0, 0, 0, 0]), np.array([1.0, 2, 3])),
        "a.jpg": (np.ones(4) / 2, np.zeros(3)),
    }
    path = write_poses(tmp_path / "poses.txt", poses)
    assert path.read_text().splitlines()[0] == "a.jpg 0.5 0.5 0.5 0.5 0 0 0"
    again = read_poses(path)
    assert set(again) == set(poses)
    for name, (q, t) in poses.items():
        assert np.allclose(again[name][0], q) and np.allclose(again[name][1], t)
    (tmp_path / "bad.txt").write_text("a.jpg 1 0 0\n")
    with pytest.raises(OptionError, match="bad.txt:1"):
        read_poses(tmp_path / "bad.txt")


def test_the_localize_command(corner_model, tmp_path, capsys):
    from tiepoint.cli import main

    model_dir, queries, _ = corner_model
    output = tmp_path / "poses.txt"
    assert main(["localize", str(model_dir), str(queries), "--output", str(output), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "localized 1 of 1 queries" in printed and "view3.png: " in printed
    assert output.read_text().split()[0] == "view3.png" and len(output.read_text().split()) == 8
    assert (
        main(["localize", str(model_dir), str(queries), "--output", str(output), "--num-retrieved", "0"]) == 2
    )
    assert "num_retrieved" in capsys.readouterr().err

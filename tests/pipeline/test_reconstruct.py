"""reconstruct: the whole pipeline on a small synthetic scene with known cameras, resuming, bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tiepoint.errors import CorruptFileError, OptionError
from tiepoint.io.colmap import CameraOptions, database_problem, database_verified_pairs
from tiepoint.pipeline.pairs import read_pairs
from tiepoint.pipeline.reconstruct import FILES, MapperOptions, map_database, read_models, reconstruct
from tiepoint_lab.bench.reconstruction import model_poses, pose_errors


@pytest.mark.slow
def test_reconstructs_the_corner_scene(corner_scene, tmp_path):
    output = tmp_path / "scene"
    result = reconstruct(corner_scene.folder, output, progress=False)
    summary = result.summary
    assert summary["registered_images"] == 6 and summary["unregistered"] == []
    assert summary["mean_reprojection_error_px"] < 0.5
    assert summary["num_points3D"] > 300 and summary["mean_track_length"] > 2.5
    assert set(summary["timings_s"]) == {"extract", "pairs", "match", "verify", "database", "map"}
    for kind in FILES:
        assert (output / FILES[kind]).exists(), kind
    assert json.loads((output / "summary.json").read_text())["registered_images"] == 6
    # the cameras are right: after a similarity alignment to the truth, within a degree and 2% of the arc
    errors = pose_errors(model_poses(result.models[0]), corner_scene.poses)
    assert errors["rotation_error_deg"]["max"] < 1.0
    assert errors["centre_error_percent"]["max"] < 2.0
    assert len(read_models(output / "sparse")[0].reg_image_ids()) == 6
    verified = database_verified_pairs(output / "database.db")
    assert (
        len(verified) == 15
        and sum(count >= 15 for count in verified.values()) == summary["num_verified_pairs"]
    )
    assert summary["unregistered_images"] == []

    # a rerun does nothing new: it reuses every file, database and model included
    database_time = (output / "database.db").stat().st_mtime_ns
    again = reconstruct(corner_scene.folder, output, progress=False)
    assert (output / "database.db").stat().st_mtime_ns == database_time
    assert again.summary["registered_images"] == 6
    assert not list(output.glob("*.partial"))


def test_refuses_bad_input_before_working(corner_scene, tmp_path):
    with pytest.raises(OptionError, match="pairs"):
        reconstruct(corner_scene.folder, tmp_path / "a", pairs="nearby", progress=False)
    with pytest.raises(OptionError, match="camera"):
        reconstruct(
            corner_scene.folder, tmp_path / "b", camera=CameraOptions("PINHOLE", (1, 2)), progress=False
        )
    with pytest.raises(OptionError, match="backend"):
        reconstruct(corner_scene.folder, tmp_path / "c", backend="spark", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


@pytest.mark.slow
def test_stage_commands_chain(corner_scene, tmp_path, capsys):
    from tiepoint.cli import main

    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        (images / f"view{i}.png").write_bytes((corner_scene.folder / f"view{i}.png").read_bytes())
    out = tmp_path / "out"
    assert main(["extract", str(images), str(out / "f.h5")]) == 0
    assert main(["pairs", str(out / "f.h5"), str(out / "pairs.txt"), "--pairs", "retrieval:2"]) == 0
    assert main(["match-pairs", str(out / "f.h5"), str(out / "pairs.txt"), str(out / "m.h5")]) == 0
    files = [str(out / "f.h5"), str(out / "pairs.txt"), str(out / "m.h5")]
    assert main(["verify", *files, str(out / "g.h5"), "--single-camera"]) == 0
    stage_files = [
        "--features",
        files[0],
        "--pairs",
        files[1],
        "--matches",
        files[2],
        "--geometries",
        str(out / "g.h5"),
    ]
    assert main(["map", str(images), str(out / "model"), *stage_files, "--single-camera"]) == 0
    printed = capsys.readouterr().out
    assert "4 images, 1 cameras" in printed and "registered 4 of 4 images" in printed
    assert (out / "model" / "sparse" / "0").is_dir() and (out / "model" / "reconstruction.png").is_file()
    assert (out / "model" / "database.db").is_file()
    # the database alone, then mapped as an existing database
    database = ["--database", str(out / "db.db")]
    assert (
        main(
            [
                "map",
                str(images),
                str(out / "db"),
                *stage_files,
                *database,
                "--database-only",
                "--single-camera",
            ]
        )
        == 0
    )
    assert "4 images, 1 cameras" in capsys.readouterr().out
    assert (out / "db.db").is_file() and not (out / "db").exists()
    assert main(["map", str(images), str(out / "again"), *database]) == 0
    assert "registered 4 of 4 images" in capsys.readouterr().out

    assert main(["verify", *files, str(out / "g.h5")]) == 2  # other cameras than the stored geometries
    assert "already holds two-view geometries" in capsys.readouterr().err
    assert main(["reconstruct", str(images), str(tmp_path / "r"), "--pairs", "nearby"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "unknown strategy 'nearby'" in error


def _copy_views(scene, folder, indices, rename=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i in indices:
        name = (rename or {}).get(i, f"view{i}.png")
        (folder / name).write_bytes((scene.folder / f"view{i}.png").read_bytes())
    return folder


@pytest.mark.slow
def test_rerun_follows_the_images_and_the_pairs_option(corner_scene, tmp_path):
    images = _copy_views(corner_scene, tmp_path / "images", range(3), rename={0: "#view0.png"})
    output = tmp_path / "out"
    first = reconstruct(images, output, progress=False)
    assert first.summary["registered_images"] == 3 and first.exit_status == 0
    # hloc's format: the '#' name is a name, and there is no header line
    text = (output / "pairs.txt").read_text()
    assert text.splitlines()[0] == "#view0.png view1.png" and len(text.splitlines()) == 3
    assert read_pairs(output / "pairs.txt")[0] == ("#view0.png", "view1.png")
    assert json.loads((output / "pairs.txt.json").read_text())["made_from"]["strategy"] == "exhaustive"

    # a rerun reuses everything, the '#' image's pairs included
    database_time = (output / "database.db").stat().st_mtime_ns
    again = reconstruct(images, output, progress=False)
    assert (output / "database.db").stat().st_mtime_ns == database_time
    assert again.summary["registered_images"] == 3 and again.summary["num_pairs"] == 3

    # an image added to the folder gets pairs, matches and a place in the model
    (images / "view3.png").write_bytes((corner_scene.folder / "view3.png").read_bytes())
    added = reconstruct(images, output, progress=False)
    assert added.summary["num_pairs"] == 6 and added.summary["registered_images"] == 4
    assert added.summary["unregistered"] == [] and added.exit_status == 0

    # another --pairs remakes the pairs file, and the summary records what was used
    sequential = reconstruct(images, output, pairs="sequential:1", progress=False)
    assert read_pairs(output / "pairs.txt") == [
        ("#view0.png", "view1.png"),
        ("view1.png", "view2.png"),
        ("view2.png", "view3.png"),
    ]
    assert sequential.summary["pairs"] == "sequential:1" and sequential.summary["num_pairs"] == 3
    assert json.loads((output / "database.db.json").read_text())["made_from"]["images"] == [
        "#view0.png",
        "view1.png",
        "view2.png",
        "view3.png",
    ]

    # a mapping that registers nothing keeps the previous model and fails
    model = (output / "sparse" / "0" / "images.bin").read_bytes()
    failed = reconstruct(
        images, output, pairs="sequential:1", mapper=MapperOptions(min_num_matches=100_000), progress=False
    )
    assert failed.summary["status"] == "failed" and failed.exit_status == 1 and failed.models == []
    assert "kept" in failed.summary["problems"][0]
    assert (output / "sparse" / "0" / "images.bin").read_bytes() == model
    assert json.loads((output / "summary.json").read_text())["status"] == "failed"

    # a truncated database is found out and rebuilt
    with open(output / "database.db", "r+b") as file:
        file.truncate(4096)
    assert database_problem(output / "database.db") is not None
    with pytest.raises(CorruptFileError, match="database"):
        map_database(output / "database.db", images, tmp_path / "mapped")
    rebuilt = reconstruct(images, output, pairs="sequential:1", progress=False)
    assert database_problem(output / "database.db") is None
    assert rebuilt.summary["registered_images"] == 4 and rebuilt.exit_status == 0

    # a refusal to resume gives advice that works for reconstruct (it has no overwrite option)
    with pytest.raises(OptionError) as refused:
        reconstruct(images, output, pairs="sequential:1", max_keypoints=300, progress=False)
    assert "overwrite" not in str(refused.value) and "delete" in str(refused.value)


@pytest.mark.slow
def test_skipped_images_and_empty_models_fail(corner_scene, tmp_path, capsys):
    from tiepoint.cli import main

    images = _copy_views(corner_scene, tmp_path / "images", range(3))
    (images / "broken.png").write_bytes(b"not a png at all")
    assert main(["reconstruct", str(images), str(tmp_path / "out"), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "registered 3 of 3" in printed and "not registered: broken.png: skipped file: " in printed
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "incomplete"
    assert [s["name"] for s in summary["skipped_images"]] == ["broken.png"]
    assert summary["skipped_images"][0]["reason"]
    assert [(u["name"], u["kind"]) for u in summary["unregistered_images"]] == [("broken.png", "skipped")]

    # three unrelated images: nothing registers, and that is a failure
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    for seed in range(3):
        noise = np.random.default_rng(seed).integers(0, 256, (60, 80), dtype=np.uint8)
        cv2.imwrite(str(unrelated / f"noise{seed}.png"), cv2.resize(noise, (160, 120)))
    assert main(["reconstruct", str(unrelated), str(tmp_path / "none"), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "registered 0 of 3" in printed and "FAILED: mapping registered no image" in printed
    summary = json.loads((tmp_path / "none" / "summary.json").read_text())
    assert summary["status"] == "failed"
    # each is named with its reason, in summary.json and in the printed report
    assert {u["kind"] for u in summary["unregistered_images"]} == {"no verified pair"}
    assert [u["name"] for u in summary["unregistered_images"]] == [f"noise{seed}.png" for seed in range(3)]
    assert "not registered: noise0.png: no verified pair: none of its 2 pair(s) kept 15 inliers" in printed


def test_refuses_unusable_names_and_pairs_before_working(corner_scene, tmp_path):
    with pytest.raises(OptionError, match="at least 1"):
        reconstruct(corner_scene.folder, tmp_path / "a", pairs="retrieval:0", progress=False)
    images = _copy_views(corner_scene, tmp_path / "images", range(2), rename={1: "view 1.png"})
    with pytest.raises(OptionError, match="'view 1.png'"):
        reconstruct(images, tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_implausible_intrinsics_make_an_unreliable_run(tmp_path):
    from tiepoint.pipeline.reconstruct import ReconstructionResult, _status

    camera = {
        "camera_id": 3,
        "images": ["a.png"],
        "num_images": 1,
        "corner_distortion": 0.31,
        "reason": "radial distortion -7.37 moves the image corners by 31% (plausible: up to 20%)",
    }
    status = _status([], [object()], tmp_path, [camera])
    assert status["status"] == "unreliable"
    assert "--camera-mode single" in status["problems"][0] and "--camera-params" in status["problems"][0]
    assert _status([], [object()], tmp_path, [])["status"] == "complete"
    assert (
        _status([{"name": "b.png", "reason": "x"}], [object()], tmp_path, [camera])["status"] == "incomplete"
    )
    result = ReconstructionResult(tmp_path, summary={**status, "implausible_cameras": [camera]})
    assert result.exit_status == 1
    report = result.report()
    assert "implausible camera 3 (1 image(s), a.png): radial distortion" in report and "UNRELIABLE:" in report


def test_camera_mode_option():
    from tiepoint.cli import build_parser
    from tiepoint.cliutil import camera_options
    from tiepoint.errors import TiepointError

    parser = build_parser()
    for command in (["reconstruct", "images", "out"], ["map", "images", "out"]):
        assert camera_options(parser.parse_args(command)).mode == "auto"
        assert camera_options(parser.parse_args([*command, "--camera-mode", "per-image"])).mode == "per_image"
        assert camera_options(parser.parse_args([*command, "--single-camera"])).single
        with pytest.raises(TiepointError, match="contradict"):
            camera_options(parser.parse_args([*command, "--single-camera", "--camera-mode", "per-image"]))


def test_a_garbage_summary_is_named(tmp_path):
    from tiepoint.pipeline.reconstruct import load_summary

    (tmp_path / FILES["summary"]).write_text("{not json")
    with pytest.raises(CorruptFileError, match="summary.json: not valid JSON"):
        load_summary(tmp_path)


@pytest.mark.slow
def test_global_mapper(corner_scene, tmp_path):
    K = corner_scene.K
    known = CameraOptions("PINHOLE", (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), single=True, refine=False)
    output = tmp_path / "scene"
    result = reconstruct(
        corner_scene.folder, output, camera=known, mapper=MapperOptions(kind="global"), progress=False
    )
    assert result.summary["status"] == "complete" and result.summary["registered_images"] == 6
    assert result.summary["mapper"]["kind"] == "global"
    errors = pose_errors(model_poses(result.models[0]), corner_scene.poses)
    assert errors["rotation_error_deg"]["max"] < 1.0

    # without any focal length prior the global mapper's model is not to be trusted: said so, exit 1
    guessed = reconstruct(
        corner_scene.folder, tmp_path / "guessed", mapper=MapperOptions(kind="global"), progress=False
    )
    assert guessed.summary["registered_images"] == 6
    assert guessed.summary["status"] == "unreliable" and guessed.exit_status == 1
    assert any("global mapper ran without any focal length prior" in p for p in guessed.summary["problems"])
    with pytest.raises(OptionError, match="mapper 'glomap'"):
        MapperOptions(kind="glomap")

"""reconstruct: the whole pipeline on a small synthetic scene with known cameras, resuming, bad input."""

from __future__ import annotations

import json

import pytest

from tiepoint.errors import OptionError
from tiepoint.io.colmap import CameraOptions
from tiepoint.pipeline.reconstruct import FILES, read_models, reconstruct
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

"""The command line: each command runs, writes what it says, and fails with a message, not a traceback."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest

from tiepoint.cli import main


def test_methods(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "sift+ratio" in out and "orb+mnn" in out and "default method" in out


def test_demo_prints_scores_and_writes_figure(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "inliers" in out and "pose error" in out and "within 1 px" in out
    assert (tmp_path / "matches.png").stat().st_size > 10_000


def test_match_writes_figure_files_and_summary(tmp_path, stereo_pair, capsys):
    assert main(["match", str(stereo_pair.path0), str(stereo_pair.path1), "--model", "fundamental",
                 "--max-keypoints", "512", "--output", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["geometry"]["model"] == "fundamental" and summary["num_matches"] > 100
    with h5py.File(tmp_path / "features.h5") as features:
        assert features["motorcycle_left.png/keypoints"].shape[0] <= 512
    assert (tmp_path / "matches.h5").exists() and (tmp_path / "matches.png").exists()
    assert "inliers" in capsys.readouterr().out


def test_match_reports_the_view_a_search_kept(tmp_path, stereo_pair, capsys):
    zoomed_out = tmp_path / "zoomed_out.png"
    cv2.imwrite(str(zoomed_out), cv2.resize(stereo_pair.image0[..., ::-1], None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA))
    assert main(["match", str(stereo_pair.path0), str(zoomed_out), "--method", "eloftr", "--option", "zooms=(1,0.3)",
                 "--output", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["zoom1"] == 0.3
    assert "image 1 zoomed 0.3x" in capsys.readouterr().out


def test_match_reports_an_aligned_pass(tmp_path, stereo_pair, capsys):
    # a planar pair: the left image and a perspective warp of it (on the 3D stereo pair the parallax check
    # keeps the first matches)
    H = np.array([[0.9, 0.15, 30.0], [-0.1, 0.95, 20.0], [0.0002, 0.0001, 1.0]])
    warped = cv2.warpPerspective(stereo_pair.image0, H, stereo_pair.image0.shape[1::-1])
    cv2.imwrite(str(tmp_path / "warped.png"), warped[..., ::-1])
    assert main(["match", str(stereo_pair.path0), str(tmp_path / "warped.png"), "--option", "align=True",
                 "--output", str(tmp_path / "planar")]) == 0
    assert json.loads((tmp_path / "planar" / "summary.json").read_text())["aligned"] is True
    assert "warped onto image 0" in capsys.readouterr().out
    assert main(["match", str(stereo_pair.path0), str(stereo_pair.path1), "--option", "align=True",
                 "--output", str(tmp_path / "stereo")]) == 0
    assert json.loads((tmp_path / "stereo" / "summary.json").read_text())["aligned"] is False


def test_extract_over_a_folder(tmp_path, stereo_pair, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), stereo_pair.image0[..., ::-1])
    cv2.imwrite(str(folder / "b.png"), stereo_pair.image1[..., ::-1])
    (folder / "broken.png").write_bytes(b"not an image")
    command = ["extract", str(folder), str(tmp_path / "feats.h5"), "--method", "orb", "--max-keypoints", "100"]
    assert main(command) == 1  # some images failed: the others are saved, and scripts can tell
    out = capsys.readouterr().out
    assert "2 extracted" in out and "1 failed" in out and "broken.png" in out
    (folder / "broken.png").unlink()
    assert main(command) == 0
    assert "2 already there" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["match", "missing0.png", "missing1.png"], "not found"),
        (["demo", "--method", "nonexistent"], "unknown method"),
        (["match", "a.png", "b.png", "--option", "novalue"], "KEY=VALUE"),
    ],
)
def test_errors_are_one_line_messages(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_ship_names_a_corrupt_benchmark_file(tmp_path, capsys):
    scores = tmp_path / "scores.json"
    scores.write_text("{not json")
    # the scores are read before anything is shipped, so the package's weights are never touched
    assert main(["train", "ship", str(tmp_path / "run"), "--size", "A48", "--benchmark", str(scores)]) == 2
    error = capsys.readouterr().err
    assert "--benchmark" in error and "scores.json" in error and "Traceback" not in error


def test_pair_commands_default_to_clidd_and_feature_file_pipelines_to_sift():
    from tiepoint import DEFAULT_METHOD, RECONSTRUCTION_METHOD
    from tiepoint.cli import build_parser

    parser = build_parser()
    assert (DEFAULT_METHOD, RECONSTRUCTION_METHOD) == ("clidd", "sift")
    for command in (["match", "a.png", "b.png"], ["demo"]):
        assert parser.parse_args(command).method == DEFAULT_METHOD
    assert parser.parse_args(["bench"]).methods == [DEFAULT_METHOD]
    for command in (["extract", "photos", "f.h5"], ["reconstruct", "photos", "out"], ["match-pairs", "f.h5", "p.txt", "m.h5"],
                    ["bench-reconstruction"]):
        assert parser.parse_args(command).method == RECONSTRUCTION_METHOD

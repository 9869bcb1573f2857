"""The command line: each command runs, writes what it says, and fails with a message, not a traceback."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from tiepoint.cli import build_parser, main
from tiepoint.cliutil import is_verbose

USER_COMMANDS = [
    "demo",
    "methods",
    "match",
    "extract",
    "pairs",
    "match-pairs",
    "verify",
    "map",
    "reconstruct",
    "localize",
    "bench",
    "export",
]


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
    assert (
        main(
            [
                "match",
                str(stereo_pair.path0),
                str(stereo_pair.path1),
                "--model",
                "fundamental",
                "--max-keypoints",
                "512",
                "--output",
                str(tmp_path),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["geometry"]["model"] == "fundamental" and summary["num_matches"] > 100
    with h5py.File(tmp_path / "features.h5") as features:
        assert features["motorcycle_left.png/keypoints"].shape[0] <= 512
    assert (tmp_path / "matches.h5").exists() and (tmp_path / "matches.png").exists()
    assert "inliers" in capsys.readouterr().out


def test_match_reports_the_view_a_search_kept(tmp_path, stereo_pair, capsys):
    zoomed_out = tmp_path / "zoomed_out.png"
    cv2.imwrite(
        str(zoomed_out),
        cv2.resize(stereo_pair.image0[..., ::-1], None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA),
    )
    assert (
        main(
            [
                "match",
                str(stereo_pair.path0),
                str(zoomed_out),
                "--method",
                "eloftr",
                "--option",
                "zooms=(1,0.3)",
                "--output",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "summary.json").read_text())["zoom1"] == 0.3
    assert "image 1 zoomed 0.3x" in capsys.readouterr().out


def test_match_reports_an_aligned_pass(tmp_path, stereo_pair, capsys):
    # a planar pair: the left image and a perspective warp of it (on the 3D stereo pair the parallax check
    # keeps the first matches)
    H = np.array([[0.9, 0.15, 30.0], [-0.1, 0.95, 20.0], [0.0002, 0.0001, 1.0]])
    warped = cv2.warpPerspective(stereo_pair.image0, H, stereo_pair.image0.shape[1::-1])
    cv2.imwrite(str(tmp_path / "warped.png"), warped[..., ::-1])
    assert (
        main(
            [
                "match",
                str(stereo_pair.path0),
                str(tmp_path / "warped.png"),
                "--option",
                "align=True",
                "--output",
                str(tmp_path / "planar"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "planar" / "summary.json").read_text())["aligned"] is True
    assert "warped onto image 0" in capsys.readouterr().out
    assert (
        main(
            [
                "match",
                str(stereo_pair.path0),
                str(stereo_pair.path1),
                "--option",
                "align=True",
                "--output",
                str(tmp_path / "stereo"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "stereo" / "summary.json").read_text())["aligned"] is False


def test_extract_over_a_folder(tmp_path, stereo_pair, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), stereo_pair.image0[..., ::-1])
    cv2.imwrite(str(folder / "b.png"), stereo_pair.image1[..., ::-1])
    (folder / "broken.png").write_bytes(b"not an image")
    command = [
        "extract",
        str(folder),
        str(tmp_path / "feats.h5"),
        "--method",
        "orb",
        "--max-keypoints",
        "100",
    ]
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


def test_pair_commands_default_to_clidd_and_feature_file_pipelines_to_sift_glue():
    from tiepoint import DEFAULT_METHOD, RECONSTRUCTION_METHOD

    parser = build_parser()
    assert (DEFAULT_METHOD, RECONSTRUCTION_METHOD) == ("clidd", "sift+glue")
    for command in (["match", "a.png", "b.png"], ["demo"]):
        assert parser.parse_args(command).method == DEFAULT_METHOD
    assert parser.parse_args(["bench"]).methods == [DEFAULT_METHOD]
    for command in (
        ["extract", "photos", "f.h5"],
        ["reconstruct", "photos", "out"],
        ["match-pairs", "f.h5", "p.txt", "m.h5"],
    ):
        assert parser.parse_args(command).method == RECONSTRUCTION_METHOD


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_help_lists_at_most_twelve_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    listed = re.findall(r"^    (\S+)", capsys.readouterr().out, re.MULTILINE)
    assert listed == list(_commands(build_parser())) == USER_COMMANDS
    assert len(listed) <= 12


def test_the_old_maintainer_commands_are_gone(capsys):
    for command in ("match-dense", "merge-dense", "colmap-import", "bench-solvers", "train", "data"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "match", "a.png", "b.png"],
        ["match", "a.png", "b.png", "-v"],
        ["--verbose", "map", "images", "out"],
        ["map", "images", "--verbose", "out"],
        ["-v", "bench", "--dataset", "oxford"],
        ["bench", "--dataset", "oxford", "-v"],
    ],
)
def test_verbose_works_before_and_after_the_command(argv):
    assert is_verbose(build_parser().parse_args(argv))


def test_verbose_is_off_unless_given():
    assert not is_verbose(build_parser().parse_args(["match", "a.png", "b.png"]))


def test_verbose_before_or_after_the_command_shows_the_traceback(capsys):
    from tiepoint.errors import ImageError

    assert main(["match", "missing0.png", "missing1.png"]) == 2
    with pytest.raises(ImageError):
        main(["match", "missing0.png", "missing1.png", "-v"])
    with pytest.raises(ImageError):
        main(["-v", "match", "missing0.png", "missing1.png"])


def test_the_core_command_line_stays_out_of_the_lab():
    import tiepoint.cli
    import tiepoint.cliutil

    for module in (tiepoint.cli, tiepoint.cliutil):
        text = Path(module.__file__).read_text()
        for word in ("tiepoint_lab", "../shared", "apt-get", "dpkg", "benchmarks/"):
            assert word not in text, f"{module.__name__} names {word}"
    assert build_parser().parse_args(["bench"]).output == Path("bench_out")
    assert build_parser().parse_args(["bench"]).root is None


def test_options_are_passed_through_as_strings(monkeypatch, tmp_path):
    from tiepoint.pipeline import match as module

    seen = {}

    def match_pair(image0, image1, **kwargs):
        seen.update(kwargs)
        raise OSError("stop here")

    monkeypatch.setattr(module, "match_pair", match_pair)
    argv = ["match", "a.png", "b.png", "--option", "extractor.threshold=0.2", "--option", "ratio=0.9"]
    assert main([*argv, "--max-keypoints", "100"]) == 2
    assert seen["extractor.threshold"] == 0.2 and seen["ratio"] == 0.9 and seen["max_keypoints"] == 100


@pytest.fixture
def pairs_file(tmp_path):
    from tiepoint.pipeline.pairs import write_pairs

    return write_pairs(tmp_path / "pairs.txt", [("a.png", "b.png")])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "eloftr"], "--images"),  # a dense method matches from the images
        (["--option", "rotations=(0,90)"], "--images"),  # so does a view search of a sparse method
        (["--images", "photos"], "is sparse"),  # a sparse method reads the feature file, not the images
    ],
)
def test_match_pairs_chooses_between_the_feature_file_and_the_images(
    tmp_path, pairs_file, extra, message, capsys
):
    argv = ["match-pairs", str(tmp_path / "f.h5"), str(pairs_file), str(tmp_path / "m.h5"), *extra]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "m.h5").exists()


def test_match_pairs_keeps_extracted_features_from_a_dense_merge(tmp_path, pairs_file, capsys):
    from tiepoint.io.h5 import write_features
    from tiepoint.types import Features

    features = tmp_path / "f.h5"
    with h5py.File(features, "w") as file:
        write_features(file, "a.png", Features(np.zeros((3, 2)), np.ones(3), np.ones((3, 8)), (10, 10)))
    argv = ["match-pairs", str(features), str(pairs_file), str(tmp_path / "m.h5"), "--method", "eloftr"]
    assert main([*argv, "--images", str(tmp_path)]) == 2
    assert "holds extracted features" in capsys.readouterr().err
    assert not (tmp_path / "dense_m.h5").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "--database DB alone"),
        (["--database-only", "--database", "x.db"], "--database DB alone"),
        (["--features", "f.h5"], "--pairs, --matches"),
        (["--features", "f.h5", "--pairs", "p.txt", "--matches", "m.h5"], "file not found"),
    ],
)
def test_map_needs_the_stage_files_or_a_database(tmp_path, pairs_file, extra, message, capsys):
    extra = [str(pairs_file) if value == "p.txt" else value for value in extra]
    assert main(["map", str(tmp_path), str(tmp_path / "out"), *extra]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


# --- issue 26: one line for every error, quiet on a closed pipe, large images announced


def test_a_closed_output_pipe_ends_quietly_with_141():
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "tiepoint.cli", "methods"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # the reader goes away before the command writes, as `| head` does
    error = process.stderr.read().decode()
    assert process.wait() == 141
    assert error == ""


def test_an_unexpected_error_is_one_line_and_the_traceback_comes_with_v(monkeypatch, capsys, tmp_path):
    from tiepoint.pipeline import match as module

    def match_pair(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "match_pair", match_pair)
    assert main(["match", "a.png", "b.png"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "tiepoint match: error: unexpected RuntimeError: boom" in error and "run with -v" in error
    for argv in (["match", "a.png", "b.png", "-v"], ["-v", "match", "a.png", "b.png"]):
        with pytest.raises(RuntimeError, match="boom"):
            main(argv)


def test_large_images_are_announced_with_time_memory_and_resize(tmp_path, textured_image, monkeypatch):
    import tiepoint.io.image as image_module
    from tiepoint.cli import announce_large_images

    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), textured_image)
    images = [tmp_path / "a.png", tmp_path / "b.png"]
    assert announce_large_images(images, "sift", {}) is None  # small images: nothing to say
    monkeypatch.setattr(image_module, "LARGE_PIXELS", 10_000)
    line = announce_large_images(images, "sift", {})
    assert "a.png is 160x120 (0.0 MP)" in line and "full resolution" in line
    assert "GB of memory" in line and "--option resize=2048" in line
    assert announce_large_images(images, "sift", {"resize": 64}) is None  # works at 64 px: small
    cv2.imwrite(str(tmp_path / "big.png"), cv2.resize(textured_image, (1000, 750)))
    monkeypatch.setattr(image_module, "LARGE_PIXELS", 500_000)
    assert "1000x750" in announce_large_images([tmp_path / "big.png"], "sift", {})
    assert announce_large_images([tmp_path / "big.png"], "eloftr", {}) is None  # matches at 640 px

"""``match_pair`` and ``tiepoint match`` say when the model they found is not reliable, and exit 1."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tiepoint.cli import main
from tiepoint.pipeline.match import match_pair

SIZE = (320, 240)
H = np.array([[0.95, 0.1, 10.0], [-0.05, 1.0, 5.0], [1e-4, 0.0, 1.0]])


def texture(seed: int) -> np.ndarray:
    """A grey 320x240 multi-scale blob texture that SIFT finds hundreds of keypoints in."""
    rng = np.random.default_rng(seed)
    image = np.zeros(SIZE[::-1], np.float32)
    for cells in (8, 16, 32, 64):
        noise = rng.random((cells * 3 // 4, cells)).astype(np.float32)
        image += cv2.resize(noise, SIZE, interpolation=cv2.INTER_CUBIC) / cells**0.3
    image -= image.min()
    return (255 * image / image.max()).astype(np.uint8)


@pytest.fixture
def images(tmp_path):
    """Two unrelated textures, and the first one warped by a homography."""
    paths = {name: tmp_path / f"{name}.png" for name in ("a", "b", "warped")}
    cv2.imwrite(str(paths["a"]), texture(1))
    cv2.imwrite(str(paths["b"]), texture(2))
    cv2.imwrite(str(paths["warped"]), cv2.warpPerspective(texture(1), H, SIZE))
    return paths


def test_an_unrelated_pair_gives_no_reliable_homography(images, tmp_path, capsys):
    output = tmp_path / "unrelated"
    argv = ["match", str(images["a"]), str(images["b"]), "--method", "sift+ratio", "--output", str(output)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    summary = json.loads((output / "summary.json").read_text())
    geometry = summary["geometry"]
    assert geometry["reliable"] is False and summary["reliable"] is False
    count = f"{geometry['num_inliers']} inliers of {summary['num_matches']}"
    assert f"no reliable homography ({count})" in out and "[[" not in out  # no matrix printed
    assert geometry["reason"].startswith(count)


@pytest.mark.parametrize("method", ["sift+mnn", "orb+mnn"])
def test_many_random_matches_are_not_reliable_either(images, method):
    # mutual nearest neighbours without a ratio test: hundreds of matches, all wrong
    result = match_pair(images["a"], images["b"], method=method, output_dir=None)
    assert len(result.matches) > 100
    assert result.reliable is False and result.exit_status == 1
    assert not result.geometry.reliable and "no reliable homography" in result.summary()
    fundamental = match_pair(images["a"], images["b"], method=method, model="fundamental", output_dir=None)
    assert fundamental.reliable is False and "no reliable fundamental matrix" in fundamental.summary()


def test_a_true_pair_is_reliable(images, tmp_path, capsys):
    output = tmp_path / "warped"
    argv = [
        "match",
        str(images["a"]),
        str(images["warped"]),
        "--method",
        "sift+ratio",
        "--output",
        str(output),
    ]
    assert main(argv) == 0
    assert "homography (poselib, 3 px)" in capsys.readouterr().out
    summary = json.loads((output / "summary.json").read_text())
    assert summary["reliable"] is True and summary["geometry"]["reliable"] is True
    assert summary["geometry"]["log10_nfa"] < -100 and "NFA" in summary["geometry"]["reason"]


def test_matches_only_have_no_verdict(images):
    result = match_pair(images["a"], images["b"], method="sift+ratio", model=None, output_dir=None)
    assert result.reliable is None and result.exit_status == 0
    assert result.to_dict()["reliable"] is None and result.to_dict()["geometry"] is None


def test_orientation_exif_matches_what_a_viewer_shows(tmp_path):
    """A copy stored turned 90 degrees, with an EXIF tag saying so, matches its original when read upright."""
    from PIL import Image

    upright = texture(3)
    Image.fromarray(upright).save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored pixels must be turned 90 degrees clockwise to be upright
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(
        tmp_path / "tagged.jpg", exif=exif, quality=95
    )

    common = {"method": "sift", "model": "homography", "output_dir": tmp_path / "out"}
    stored = match_pair(tmp_path / "upright.png", tmp_path / "tagged.jpg", **common)
    turned = match_pair(tmp_path / "upright.png", tmp_path / "tagged.jpg", orientation="exif", **common)
    assert turned.reliable
    assert np.allclose(turned.geometry.matrix / turned.geometry.matrix[2, 2], np.eye(3), atol=0.05)
    assert not (stored.reliable and np.allclose(stored.geometry.matrix, turned.geometry.matrix, atol=0.05))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["orientation"] == "exif"
    assert (
        main(
            [
                "match",
                str(tmp_path / "upright.png"),
                str(tmp_path / "tagged.jpg"),
                "--method",
                "sift",
                "--orientation",
                "exif",
                "--output",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )


def test_matching_on_demand_says_how_it_solved_the_pair(images):
    result = match_pair(images["a"], images["warped"], method="extreme", output_dir=None)
    on_demand = result.to_dict()["on_demand"]
    assert on_demand["solved"] and on_demand["stage"] == "plain" and on_demand["stages_tried"] == ["plain"]
    assert "matching on demand: solved at stage plain by the inliers of image 0: plain (" in result.summary()


def test_matching_on_demand_says_when_no_stage_solved_the_pair(images):
    result = match_pair(images["a"], images["b"], method="sift+fginn", output_dir=None, tilts=(4.0,))
    assert not result.to_dict()["on_demand"]["solved"] and result.exit_status == 1
    assert "matching on demand: no stage solved the pair (plain, tilts0, tilts1)" in result.summary()

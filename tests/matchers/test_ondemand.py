"""Matching on demand: stages stop at the first that passes, duplicates go, the preset solves real pairs."""

import cv2
import numpy as np
import pytest

from tiepoint import registry
from tiepoint.errors import OptionError
from tiepoint.geometry.accuracy import homography_corner_error
from tiepoint.io.image import load_image, resize_to_max_edge
from tiepoint.matchers.ondemand import OnDemand, spread, unique_matches, verify
from tiepoint.matchers.synthesis import AffineView, warp_view
from tiepoint.types import Matches


def test_unique_matches_drop_duplicates_and_one_to_many():
    keypoints0 = np.array([[10, 10], [11, 10], [10.5, 10], [100, 100], [200, 50]], np.float32)
    keypoints1 = np.array([[50, 50], [50, 51], [300, 300], [80, 80], [81, 80]], np.float32)
    scores = np.array([0.9, 0.95, 0.5, 0.8, 0.7], np.float32)
    # 0 and 1 are one match seen twice (1 is kept, the more similar); 2 ties point 0 to another point of
    # image 1 (one-to-many, the weaker goes); 4 ties another point of image 0 to 3's point of image 1
    assert unique_matches(keypoints0, keypoints1, scores, radius=2.0).tolist() == [1, 3]


def test_spread_is_the_hull_share():
    square = np.array([[0, 0], [50, 0], [50, 50], [0, 50], [25, 25]], np.float32)
    assert spread(square, (100, 100)) == pytest.approx(0.25)
    assert spread(square[:2], (100, 100)) == 0.0


@pytest.fixture(scope="module")
def graf(data_root):
    image, _ = resize_to_max_edge(load_image(data_root / "oxford_affine/graf/img1.png"), 400)
    return image


@pytest.fixture(scope="module")
def sift_on_demand():
    return OnDemand(registry.build_method("sift+fginn", max_keypoints=1024), tilts=(4.0,), both_tilts=(2.0,))


def _corner_error(matches: Matches, H: np.ndarray) -> float:
    geometry = verify(matches).geometry
    return homography_corner_error(geometry.matrix, H, matches.image_size0)


def test_an_easy_pair_stops_at_the_plain_stage(graf, sift_on_demand):
    height, width = graf.shape[:2]
    H = np.vstack([cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), 15, 0.9), [0, 0, 1]])
    turned = cv2.warpPerspective(graf, H, (width, height))
    matches = sift_on_demand.match(graf, turned)
    assert matches.info["stages_tried"] == ["plain"] and matches.info["stage"] == "plain"
    assert matches.info["solved"] and matches.info["views1"] == {
        "plain": pytest.approx(len(matches), rel=0.5)
    }
    assert _corner_error(matches, H) < 2.0


def test_a_strong_tilt_stops_at_the_tilt_stage(graf, sift_on_demand):
    tilted, _, A = warp_view(graf, AffineView(5.0, 0.0))  # the plane seen at 78 degrees
    H = np.vstack([A, [0, 0, 1]])
    plain = sift_on_demand.method.match(graf, tilted)
    assert not verify(plain).passed  # SIFT alone fails here
    matches = sift_on_demand.match(graf, tilted)
    assert matches.info["stages_tried"] == ["plain", "tilts0"] and matches.info["solved"]
    assert max(matches.info["views0"], key=matches.info["views0"].get) == "t=4 phi=0"
    assert _corner_error(matches, H) < 3.0


def test_an_unrelated_pair_tries_every_stage_and_says_it_failed(graf, sift_on_demand):
    noise = cv2.resize(
        np.random.default_rng(0).random((40, 50)), graf.shape[1::-1], interpolation=cv2.INTER_CUBIC
    )
    other = np.repeat((np.clip(noise, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
    matches = sift_on_demand.match(graf, other)
    assert matches.info["stages_tried"] == ["plain", "tilts0", "tilts1", "tilts01"]
    assert not matches.info["solved"] and "homography" in matches.info["verdict"]


def test_the_options_build_it_and_refuse_what_does_not_fit():
    method = registry.build_method("extreme")
    assert isinstance(method, OnDemand)
    assert [stage.name for stage in method.stages] == ["plain", "tilts0", "tilts1", "tilts01"]
    turns = registry.build_method("sift", tilts=(2,), rotations=(0, 180))
    assert [stage.name for stage in turns.stages] == ["plain", "turns", "tilts0", "tilts1"]
    with pytest.raises(OptionError, match="sparse method"):
        registry.build_method("eloftr", tilts=(2,))
    with pytest.raises(OptionError, match="accept"):
        registry.build_method("sift", tilts=(2,), rotations=(0, 90), accept=0.5)
    with pytest.raises(OptionError, match="give tilts too"):
        registry.build_method("sift", both_tilts=(2,))


def test_the_preset_matches_an_oxford_pair(graf_1_2):
    image0, image1, H = graf_1_2
    matches = registry.build_method("extreme").match(image0, image1)
    assert matches.info["stage"] == "plain" and matches.info["solved"]
    assert _corner_error(matches, H) < 3.0


@pytest.mark.slow
def test_the_preset_solves_graf_1_6(data_root):
    folder = data_root / "oxford_affine/graf"
    matches = registry.build_method("extreme").match(folder / "img1.png", folder / "img6.png")
    assert (
        matches.info["stage"] in ("tilts0", "tilts1") and matches.info["solved"] and matches.info["aligned"]
    )
    assert _corner_error(matches, np.loadtxt(folder / "H1to6p")) < 5.0


@pytest.mark.slow
def test_a_learned_extractor_runs_inside(graf):
    method = registry.build_method("clidd-a48+fginn", max_keypoints=1024, tilts=(4.0,))
    tilted, _, A = warp_view(graf, AffineView(5.0, 90.0))  # turned too: CLIDD is not rotation invariant
    matches = method.match(graf, tilted)
    assert matches.info["stage"] == "tilts0" and matches.info["solved"]
    assert max(matches.info["views0"], key=matches.info["views0"].get) == "t=4 phi=90"
    assert _corner_error(matches, np.vstack([A, [0, 0, 1]])) < 3.0

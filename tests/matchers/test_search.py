"""View search: exact coordinate bookkeeping of turns and zooms, option checks, and the right view found."""

import numpy as np
import pytest

from tiepoint import registry
from tiepoint.errors import OptionError
from tiepoint.io.image import image_size, load_image, resize_by_factor, resize_to_max_edge
from tiepoint.matchers.base import PairMatcher
from tiepoint.matchers.eloftr import weights_path
from tiepoint.matchers.rotation import (
    RIGHT_ANGLES,
    check_rotations,
    rotate_image,
    unrotate_features,
    unrotate_points,
)
from tiepoint.matchers.search import VERIFY_ITERATIONS, View, ViewSearch, check_zooms, epipolar_iterations
from tiepoint.types import Features, Matches


@pytest.mark.parametrize("angle", RIGHT_ANGLES)
def test_points_of_a_turned_image_map_back_to_the_same_pixel(angle):
    image = np.zeros((5, 8), np.uint8)
    for value, (x, y) in enumerate([(1, 3), (6, 0), (7, 4), (0, 0)], start=1):
        image[y, x] = value
    turned = rotate_image(image, angle)
    for value in range(1, 5):
        y_turned, x_turned = np.argwhere(turned == value)[0]
        x, y = unrotate_points(np.array([[x_turned, y_turned]]), angle, image_size(image))[0]
        assert image[int(y), int(x)] == value


def test_turns_are_counter_clockwise_on_screen():
    image = np.zeros((4, 6), np.uint8)
    image[0, 5] = 1  # top-right corner
    assert rotate_image(image, 90)[0, 0] == 1  # a quarter turn counter-clockwise brings it to the top left
    assert rotate_image(image, 270)[5, 3] == 1  # a quarter turn clockwise: bottom right


def test_covariances_turn_with_the_keypoints():
    features = Features(
        keypoints=np.array([[2.0, 1.0]], np.float32),
        scores=np.ones(1, np.float32),
        descriptors=np.ones((1, 4), np.float32),
        image_size=(5, 3),  # of the turned image: the original is 3 wide and 5 high
        covariances=np.array([[[4.0, 1.0], [1.0, 1.0]]], np.float32),
    )
    back = unrotate_features(features, 90, (3, 5))
    assert back.image_size == (3, 5)
    np.testing.assert_allclose(back.keypoints, [[1.0, 2.0]])
    np.testing.assert_allclose(back.covariances, [[[1.0, -1.0], [-1.0, 4.0]]])


@pytest.mark.parametrize("bad", [(), (45,), (0, 90, 90), 90, (0, 360), "0,90"])
def test_bad_rotations_are_rejected_naming_the_option(bad):
    with pytest.raises(OptionError, match="rotations"):
        check_rotations(bad)


def test_method_option_wraps_any_method():
    method = registry.build_method("sift+ratio", rotations=(0, 180), max_keypoints=512)
    assert isinstance(method, ViewSearch) and method.rotations == (0, 180) and method.zooms == (1.0,)
    assert method.method.extractor.config.max_keypoints == 512
    zoomed = registry.build_method("sift+ratio", zooms=(0.5, 1))
    assert isinstance(zoomed, ViewSearch) and zoomed.rotations == (0,) and zoomed.zooms == (0.5, 1.0)
    with pytest.raises(OptionError, match="rotations.*zooms"):
        registry.build_method("sift+ratio", rotation=(0, 180))  # a typo lists the valid options


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_search_finds_the_turn_that_undoes_an_upside_down_or_sideways_image(data_root, turn):
    image, _ = resize_to_max_edge(load_image(data_root / "oxford_affine/graf/img1.png"), 320)
    clockwise = (360 - turn) % 360
    turned = rotate_image(image, clockwise)  # image 1 is image 0 turned clockwise by `turn`
    matches = registry.build_method("sift+ratio", rotations=RIGHT_ANGLES).match(image, turned)
    assert matches.info["rotation1_deg"] == turn
    assert matches.image_size1 == image_size(turned) and matches.features1.image_size == image_size(turned)
    # matches are in image 1's own pixels: turned back, they land on their image-0 points
    back = unrotate_points(matches.keypoints1, clockwise, image_size(image))
    correct = np.linalg.norm(back - matches.keypoints0, axis=1) < 1.0
    assert len(matches) > 100 and correct.mean() > 0.9
    np.testing.assert_allclose(matches.features1.keypoints[matches.indices[:, 1]], matches.keypoints1)
    assert {"extract0", "extract1", "match", "verify"} <= set(matches.timings)


@pytest.mark.skipif(not weights_path("small").is_file(), reason="no shipped eloftr_small weights")
def test_dense_methods_are_searched_too(stereo_pair):
    upside_down = rotate_image(stereo_pair.image1, 180)
    matches = registry.build_method("eloftr", rotations=(0, 180), resize=320).match(
        stereo_pair.image0, upside_down
    )
    assert (
        matches.info["rotation1_deg"] == 180
        and len(matches) > 50
        and matches.image_size1 == image_size(upside_down)
    )
    height, width = upside_down.shape[:2]
    upright = unrotate_points(
        matches.keypoints1, 180, image_size(upside_down)
    )  # where they are in the upright image
    assert (upright[:, 0] > -1).all() and (upright[:, 0] < width).all() and (upright[:, 1] < height).all()
    # a rectified stereo pair: the upright matches lie on the same rows
    assert np.median(np.abs(upright[:, 1] - matches.keypoints0[:, 1])) < 2.0


@pytest.mark.parametrize("bad", [(), (0,), (0.5, 0.5), 2, (1, 20), "1,2", (1, float("nan"))])
def test_bad_zooms_are_rejected_naming_the_option(bad):
    with pytest.raises(OptionError, match="zooms"):
        check_zooms(bad)


def test_a_zoom_below_one_shrinks_image_0_and_above_one_image_1():
    assert (View(0, 0.5).shrink0, View(0, 0.5).shrink1) == (0.5, 1.0)
    assert (View(0, 4.0).shrink0, View(0, 4.0).shrink1) == (1.0, 0.25)
    assert (View(90, 1.0).shrink0, View(90, 1.0).shrink1) == (1.0, 1.0)


class _Centroid(PairMatcher):
    """A toy method: the intensity centroid of each image as its one match (exact under area shrinking by 2
    and under turns)."""

    name = "centroid"

    def match(self, image0, image1):
        def centroid(image):
            weight = image.sum(axis=-1).astype(np.float64)
            ys, xs = np.indices(weight.shape)
            return [(xs * weight).sum() / weight.sum(), (ys * weight).sum() / weight.sum()]

        return Matches(
            np.array([centroid(image0)], np.float32),
            np.array([centroid(image1)], np.float32),
            np.ones(1, np.float32),
            image_size(image0),
            image_size(image1),
            self.name,
        )


@pytest.mark.parametrize("view", [View(0, 0.5), View(90, 0.5), View(270, 2.0), View(180, 1.0)])
def test_matches_of_a_shrunk_and_turned_view_map_back_to_the_original_pixels(view):
    image0 = np.zeros((60, 80, 3), np.uint8)
    image1 = np.zeros((40, 100, 3), np.uint8)
    image0[20:24, 40:44] = 255  # a 4-pixel block: its centre (41.5, 21.5) survives shrinking by 2
    image1[10:14, 60:64] = 255
    matches = ViewSearch(_Centroid(), rotations=(view.angle,), zooms=(view.zoom,)).match(image0, image1)
    assert (matches.info["rotation1_deg"], matches.info["zoom1"]) == (view.angle, view.zoom)
    assert matches.image_size0 == (80, 60) and matches.image_size1 == (100, 40)
    np.testing.assert_allclose(matches.keypoints0, [[41.5, 21.5]], atol=1e-4)
    np.testing.assert_allclose(matches.keypoints1, [[61.5, 11.5]], atol=1e-4)


def test_sparse_views_extract_each_shrink_and_turn_once(monkeypatch):
    method = registry.build_method("sift+ratio", rotations=(0, 90), zooms=(0.5, 1, 2))
    calls = []
    extract = method.method.extractor.extract
    monkeypatch.setattr(
        method.method.extractor, "extract", lambda image: calls.append(image.shape) or extract(image)
    )
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    method.match(image, image)
    # image 0 at shrinks 0.5 and 1; image 1 at shrinks 1 and 0.5, each at two turns:
    # 2 + 3 * 2 views of image 1
    assert sorted(calls) == sorted(
        [(32, 48, 3), (64, 96, 3)] + [(64, 96, 3), (96, 64, 3)] * 2 + [(32, 48, 3), (48, 32, 3)]
    )


@pytest.mark.skipif(not weights_path("small").is_file(), reason="no shipped eloftr_small weights")
def test_search_finds_the_zoom_of_a_zoomed_out_image(data_root):
    image0, _ = resize_to_max_edge(load_image(data_root / "oxford_affine/boat/img1.png"), 480)
    image1, resize = resize_by_factor(image0, 0.3)  # image 1 shows the scene 0.3 times as large
    matches = registry.build_method("eloftr", zooms=(1, 0.3)).match(image0, image1)
    assert matches.info["zoom1"] == 0.3 and matches.image_size0 == image_size(image0)
    expected = (matches.keypoints0 + 0.5) / np.array([resize.scale_x, resize.scale_y]) - 0.5
    correct = np.linalg.norm(matches.keypoints1 - expected, axis=1) < 1.0
    assert len(matches) > 50 and correct.mean() > 0.8


def test_accept_stops_at_the_first_view_good_enough(data_root, monkeypatch):
    image, _ = resize_to_max_edge(load_image(data_root / "oxford_affine/graf/img1.png"), 320)
    sideways = rotate_image(image, 90)
    for accept, expected_views in [(None, 4), (0.5, 2)]:  # the right turn (90) is the second listed
        # A48 learned no invariance to large turns: about 10 of 380 matches are inliers at a wrong turn
        method = registry.build_method("clidd-a48+mnn", rotations=(0, 90, 180, 270), accept=accept)
        calls = []
        extract = method.method.extractor.extract
        monkeypatch.setattr(
            method.method.extractor,
            "extract",
            lambda image, calls=calls, extract=extract: calls.append(1) or extract(image),
        )
        matches = method.match(sideways, image)
        assert matches.info["rotation1_deg"] == 90 and len(calls) == 1 + expected_views


@pytest.mark.skipif(not weights_path("small").is_file(), reason="no shipped eloftr_small weights")
def test_accept_takes_a_3d_view_whose_matches_fit_an_epipolar_geometry(data_root, monkeypatch):
    # neighbouring temple views: ELoFTR's upright matches fit no homography well (0.40 of them within 8 px)
    # but a fundamental matrix (0.71 within 4 px); at a wrong turn 0.25 at most
    folder = data_root / "middlebury/templeSparseRing"
    image0, image1 = load_image(folder / "templeSR0007.png"), load_image(folder / "templeSR0008.png")
    method = registry.build_method("eloftr", rotations=(0, 90, 180, 270), accept=0.5)
    calls = []
    match = method.method.match
    monkeypatch.setattr(method.method, "match", lambda a, b: calls.append(1) or match(a, b))
    assert method.match(image0, image1).info["rotation1_deg"] == 0 and len(calls) == 1
    assert method.match(rotate_image(image0, 90), image1).info["rotation1_deg"] == 90 and len(calls) == 1 + 2


def test_epipolar_iterations_find_an_all_inlier_sample_at_the_accepted_share():
    assert epipolar_iterations(0.5) == 1000 and epipolar_iterations(1.0) == 1000  # the floor
    assert epipolar_iterations(0.4) == 2809  # log(0.01) / log(1 - 0.4^7)
    assert epipolar_iterations(0.2) == VERIFY_ITERATIONS  # the cap


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, "half"])
def test_bad_accept_is_rejected_naming_the_option(bad):
    with pytest.raises(OptionError, match="accept"):
        registry.build_method("sift+ratio", rotations=(0, 90), accept=bad)
    with pytest.raises(OptionError, match="accept"):
        registry.build_method("sift+ratio", accept=0.5)  # nothing to search


def test_a_zoom_that_shrinks_an_image_below_the_minimum_is_an_error_naming_it(textured_image):
    small = textured_image[:64, :64]
    with pytest.raises(OptionError, match=r"zoom 0.1 shrinks image0 \(64x64\) to 6x6"):
        registry.build_method("sift+ratio", zooms=(1, 0.1)).match(small, small)
    # checked before any matching, so also for a view that `accept` might never reach
    with pytest.raises(OptionError, match=r"zoom 8 shrinks image1 \(64x64\) to 8x8"):
        registry.build_method("sift+ratio", zooms=(1, 8), accept=0.01).match(
            textured_image, textured_image[:64, :64]
        )

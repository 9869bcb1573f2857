"""Rotation search: exact coordinate bookkeeping of right-angle turns, option checks, and the right turn found."""

import numpy as np
import pytest

from tiepoint import registry
from tiepoint.errors import OptionError
from tiepoint.io.image import image_size, load_image, resize_to_max_edge
from tiepoint.matchers.eloftr import weights_path
from tiepoint.matchers.rotation import (
    RIGHT_ANGLES,
    RotationSearch,
    check_rotations,
    rotate_image,
    unrotate_features,
    unrotate_points,
)
from tiepoint.types import Features


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
    assert isinstance(method, RotationSearch) and method.rotations == (0, 180)
    assert method.method.extractor.config.max_keypoints == 512
    with pytest.raises(OptionError, match="rotations"):
        registry.build_method("sift+ratio", rotation=(0, 180))  # a typo lists the valid options


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_search_finds_the_turn_that_undoes_an_upside_down_or_sideways_image(data_root, turn):
    image, _ = resize_to_max_edge(load_image(data_root / "oxford_affine/graf/img1.png"), 320)
    clockwise = (360 - turn) % 360
    turned = rotate_image(image, clockwise)  # image 1 is image 0 turned clockwise by `turn`
    matches = registry.build_method("sift+ratio", rotations=RIGHT_ANGLES).match(image, turned)
    assert matches.rotation1 == turn
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
    matches = registry.build_method("eloftr", rotations=(0, 180), resize=320).match(stereo_pair.image0, upside_down)
    assert matches.rotation1 == 180 and len(matches) > 50 and matches.image_size1 == image_size(upside_down)
    height, width = upside_down.shape[:2]
    upright = unrotate_points(matches.keypoints1, 180, image_size(upside_down))  # where they are in the upright image
    assert (upright[:, 0] > -1).all() and (upright[:, 0] < width).all() and (upright[:, 1] < height).all()
    # a rectified stereo pair: the upright matches lie on the same rows
    assert np.median(np.abs(upright[:, 1] - matches.keypoints0[:, 1])) < 2.0

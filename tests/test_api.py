"""The public API end to end on real images, and its behaviour on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tiepoint
from tiepoint.errors import ImageError, NotEnoughMatchesError, UnknownMethodError


def test_match_accepts_paths_arrays_and_tensors(stereo_pair):
    by_path = tiepoint.match(stereo_pair.path0, stereo_pair.path1, method="sift+ratio")
    by_array = tiepoint.match(stereo_pair.image0, stereo_pair.image1, method="sift+ratio")
    tensor0 = torch.from_numpy(stereo_pair.image0).permute(2, 0, 1).float() / 255
    tensor1 = torch.from_numpy(stereo_pair.image1).permute(2, 0, 1).float()[None] / 255
    by_tensor = tiepoint.match(tensor0, tensor1, method="sift+ratio")
    np.testing.assert_array_equal(by_path.keypoints0, by_array.keypoints0)
    assert abs(len(by_tensor) - len(by_array)) <= 0.02 * len(by_array)  # float round trip may move a few
    for m in (by_path, by_tensor):
        assert m.keypoints0.shape == m.keypoints1.shape == (len(m), 2) and m.scores.shape == (len(m),)
        assert m.image_size0 == m.image_size1 == (741, 500)


@pytest.mark.parametrize(
    "method, min_matches, min_accuracy",
    [("sift+ratio", 600, 0.85), ("orb+ratio", 300, 0.75), ("akaze+ratio", 600, 0.85)],
)
def test_matches_are_correct_on_real_ground_truth(stereo_pair, method, min_matches, min_accuracy):
    """Regression thresholds on the bundled pair (measured 2026-11-21; see README for the values)."""
    matches = tiepoint.match(stereo_pair.image0, stereo_pair.image1, method=method)
    errors = np.linalg.norm(stereo_pair.true_positions(matches.keypoints0) - matches.keypoints1, axis=1)
    known = errors[np.isfinite(errors)]
    assert len(matches) >= min_matches
    assert np.mean(known <= 3) >= min_accuracy


def test_extract_and_estimate_relative_pose(stereo_pair):
    features = tiepoint.extract(stereo_pair.image0, method="sift", max_keypoints=500)
    assert len(features) == 500
    matches = tiepoint.match(stereo_pair.image0, stereo_pair.image1)
    geometry = tiepoint.estimate(matches, "relative_pose", stereo_pair.camera0, stereo_pair.camera1)
    assert geometry.inliers.shape == (len(matches),) and geometry.num_inliers > 0.5 * len(matches)
    from tiepoint.geometry.accuracy import pose_error

    assert pose_error(geometry.R, geometry.t, stereo_pair.R, stereo_pair.t) < 1.0


def test_images_of_very_different_sizes(stereo_pair):
    import cv2

    small = cv2.resize(stereo_pair.image1, (370, 250), interpolation=cv2.INTER_AREA)
    matches = tiepoint.match(stereo_pair.image0, small, method="sift+ratio")
    assert matches.image_size1 == (370, 250) and len(matches) > 50
    assert np.all(matches.keypoints1 <= [369.5, 249.5])


def test_pair_without_matches_is_empty_not_an_error(textured_image):
    blank = np.full((120, 160, 3), 90, np.uint8)
    matches = tiepoint.match(textured_image, blank, method="sift+ratio")
    assert len(matches) == 0 and matches.keypoints0.shape == (0, 2)
    with pytest.raises(NotEnoughMatchesError, match="0"):
        tiepoint.estimate(matches, "homography")


def test_bad_input_through_the_api(tmp_path, textured_image):
    with pytest.raises(UnknownMethodError, match="available"):
        tiepoint.match(textured_image, textured_image, method="superglue")
    with pytest.raises(ImageError, match="nope.png"):
        tiepoint.match(tmp_path / "nope.png", textured_image)
    with pytest.raises(ImageError, match="image1"):
        tiepoint.match(textured_image, np.zeros((1, 1), np.uint8))


def test_the_default_method_on_the_bundled_pair_is_pinned(stereo_pair):
    """The default method's and SIFT's match counts on the bundled pair, pinned: how methods and their options
    are composed must not change what they find. The preset is the same as its method with its options spelt
    out."""
    matches = tiepoint.match(stereo_pair.image0, stereo_pair.image1)
    assert len(matches) == 1406 and matches.info == {"rotation1_deg": 0, "zoom1": 1.0, "aligned": False}
    spelt_out = tiepoint.match(
        stereo_pair.image0,
        stereo_pair.image1,
        "clidd-s96+mnn",
        extractor={"scales": (1, 0.5, 0.25)},
        search={"align": "ratio"},
    )
    np.testing.assert_array_equal(spelt_out.keypoints0, matches.keypoints0)
    np.testing.assert_array_equal(spelt_out.scores, matches.scores)
    assert len(tiepoint.match(stereo_pair.image0, stereo_pair.image1, method="sift")) == 809

"""The OpenCV extractors: output contract, keypoint budget, resizing, blank images, options."""

from __future__ import annotations

import numpy as np
import pytest

from tiepoint.errors import OptionError
from tiepoint.features.opencv import AKAZE, ORB, SIFT


@pytest.mark.parametrize(
    "extractor_class, dim, dtype", [(SIFT, 128, np.float32), (ORB, 32, np.uint8), (AKAZE, 61, np.uint8)]
)
def test_output_contract(extractor_class, dim, dtype, stereo_pair):
    features = extractor_class(max_keypoints=300).extract(stereo_pair.image0)
    assert 100 < len(features) <= 300
    assert features.keypoints.dtype == np.float32 and features.descriptors.shape == (len(features), dim)
    assert features.descriptors.dtype == dtype and features.binary == (dtype == np.uint8)
    assert np.all(np.diff(features.scores) <= 0), "sorted by decreasing score"
    width, height = features.image_size
    assert (width, height) == (741, 500)
    assert np.all((features.keypoints >= -0.5) & (features.keypoints <= [width - 0.5, height - 0.5]))
    if dtype == np.float32:
        np.testing.assert_allclose(np.linalg.norm(features.descriptors, axis=1), 1, atol=1e-5)


def test_resize_returns_original_coordinates(stereo_pair):
    full = SIFT(max_keypoints=200).extract(stereo_pair.image0)
    half = SIFT(max_keypoints=200, resize=370).extract(stereo_pair.image0)
    assert half.image_size == full.image_size
    # strong keypoints found at half resolution lie on keypoints of the full image (within ~2 px)
    distances = np.linalg.norm(half.keypoints[:50, None] - full.keypoints[None], axis=2).min(axis=1)
    assert np.median(distances) < 2.0


@pytest.mark.parametrize("extractor_class", [SIFT, ORB, AKAZE])
def test_blank_image_gives_empty_features(extractor_class):
    features = extractor_class().extract(np.full((64, 64, 3), 128, np.uint8))
    assert len(features) == 0 and features.descriptors.ndim == 2


def test_invalid_options_are_named():
    with pytest.raises(OptionError, match="max_keypoint.*valid options"):
        SIFT(max_keypoint=10)
    with pytest.raises(OptionError, match="max_keypoints must be a positive"):
        ORB(max_keypoints=0)
    with pytest.raises(OptionError, match="resize"):
        SIFT(resize=4)

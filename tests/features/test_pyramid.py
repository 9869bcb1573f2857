"""Multi-scale extraction (the pyramid wrapper, the ``scales`` option of every extractor): levels,
coordinates, budget, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tiepoint.errors import ImageError, OptionError
from tiepoint.features.base import concatenate
from tiepoint.features.opencv import SIFT
from tiepoint.features.pyramid import Pyramid
from tiepoint.features.raco import RaCo
from tiepoint.io.image import resize_by_factor
from tiepoint.registry import build_extractor


def test_a_level_is_the_shrunk_image_in_original_pixels(textured_image):
    """scales=(0.5,) is extraction from the half-size image, keypoints and covariances mapped back."""
    pyramid = Pyramid(RaCo(max_keypoints=60), scales=(0.5,)).extract(textured_image)
    half, _ = resize_by_factor(textured_image, 0.5)
    direct = RaCo(max_keypoints=60).extract(half)
    assert pyramid.image_size == (160, 120) and len(pyramid) == len(direct) > 10
    np.testing.assert_allclose(pyramid.keypoints, (direct.keypoints + 0.5) * 2 - 0.5, atol=1e-4)
    np.testing.assert_allclose(pyramid.covariances, 4 * direct.covariances, rtol=1e-5)
    np.testing.assert_array_equal(pyramid.scores, direct.scores)


def test_levels_are_pooled_and_cut_to_the_budget(stereo_pair):
    extractor = Pyramid(SIFT(max_keypoints=300), scales=(1, 0.5))
    pooled = extractor.extract(stereo_pair.image0)
    full = SIFT(max_keypoints=300).extract(stereo_pair.image0)
    half = Pyramid(SIFT(max_keypoints=300), scales=(0.5,)).extract(stereo_pair.image0)
    assert len(pooled) == 300 and np.all(np.diff(pooled.scores) <= 0)
    candidates = concatenate([full, half])
    best = np.sort(candidates.scores)[::-1][:300]
    np.testing.assert_allclose(pooled.scores, best)
    from_half = np.isin(pooled.scores, half.scores) & ~np.isin(pooled.scores, full.scores)
    assert from_half.any(), "the half-size level contributes keypoints"


def test_one_level_is_no_pyramid(textured_image):
    assert isinstance(build_extractor("sift", scales=(1, 0.5)), Pyramid)
    assert (
        type(build_extractor("sift", scales=(1,))) is SIFT
        and type(build_extractor("sift", scales=1.0)) is SIFT
    )
    default = RaCo(max_keypoints=50).extract(textured_image)
    explicit = Pyramid(RaCo(max_keypoints=50), scales=(1.0,)).extract(textured_image)
    np.testing.assert_array_equal(default.keypoints, explicit.keypoints)


def test_levels_below_the_smallest_image_are_skipped(textured_image):
    small = Pyramid(RaCo(max_keypoints=50), scales=(1, 0.05)).extract(
        textured_image
    )  # the 0.05 level is 8x6 px
    np.testing.assert_array_equal(small.keypoints, RaCo(max_keypoints=50).extract(textured_image).keypoints)
    with pytest.raises(ImageError, match="scales .* smaller than 16"):
        Pyramid(RaCo(), scales=(0.05,)).extract(textured_image)


@pytest.mark.parametrize("scales", [(), (0,), (1.5,), (1, -0.5)])
def test_invalid_scales_are_named(scales):
    with pytest.raises(OptionError, match="scales"):
        build_extractor("sift", scales=scales)
    with pytest.raises(OptionError, match="scales"):
        Pyramid(SIFT(), scales=scales)


def test_ranker_and_pyramid_are_exclusive():
    with pytest.raises(OptionError, match="ranker"):
        build_extractor("raco-clidd-t64", ranker=True, scales=(1, 0.5))


def test_the_wrapped_extractor_keeps_its_own_options():
    pyramid = build_extractor("sift", max_keypoints=100, scales=(1, 0.5), **{"extractor.resize": 320})
    assert pyramid.name == "sift" and not pyramid.binary and pyramid.wrapper_config.scales == (1.0, 0.5)
    assert pyramid.config is pyramid.extractor.config and pyramid.config.max_keypoints == 100
    assert pyramid.settings()["scales"] == (1.0, 0.5) and pyramid.settings()["resize"] == 320
    assert not hasattr(pyramid.config, "scales"), "the base extractor's options know nothing of pyramids"

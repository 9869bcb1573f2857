"""Method names resolve to the right parts; unknown names and options give errors that list the valid ones."""

from __future__ import annotations

import numpy as np
import pytest

import tiepoint
from tiepoint import registry
from tiepoint.errors import OptionError, UnknownMethodError


def test_methods_lists_compatible_combinations():
    names = {m.name for m in tiepoint.methods()}
    assert {"sift+mnn", "sift+ratio", "sift+dualsoftmax", "orb+mnn", "orb+ratio", "akaze+mnn"} <= names
    assert "orb+dualsoftmax" not in names, "dual-softmax needs float descriptors"
    assert all(m.kind in ("sparse", "dense") and m.summary for m in tiepoint.methods())


def test_method_names_and_options_are_routed():
    method = registry.build_method("sift+ratio", max_keypoints=100, ratio=0.7)
    assert method.name == "sift+ratio"
    assert method.extractor.config.max_keypoints == 100 and method.matcher.config.ratio == 0.7
    default = registry.build_method("orb")
    assert default.name == "orb+mnn"


@pytest.mark.parametrize("name", ["siftt", "sift+nope", "orb+dualsoftmax", "", None])
def test_unknown_methods(name):
    with pytest.raises(UnknownMethodError):
        registry.build_method(name)


def test_unknown_option_lists_valid_ones():
    with pytest.raises(OptionError, match="valid options are .*max_keypoints.*ratio"):
        registry.build_method("sift+ratio", treshold=3)


def test_get_method_reuses_instances():
    assert registry.get_method("sift", max_keypoints=64) is registry.get_method("sift", max_keypoints=64)
    assert registry.get_method("sift", max_keypoints=64) is not registry.get_method("sift", max_keypoints=65)


def test_preset_options_are_fixed_by_the_name():
    registry.register_extractor("sift-plain-test", "tiepoint.features.opencv:SIFT", "SIFT without RootSIFT", preset={"root": False})
    try:
        assert registry.build_extractor("sift-plain-test").config.root is False
        assert registry.build_method("sift-plain-test+mnn", max_keypoints=10).extractor.config.root is False
        with pytest.raises(OptionError, match="fixes option"):
            registry.build_extractor("sift-plain-test", root=True)
        with pytest.raises(OptionError, match="unknown option"):
            registry.build_method("sift-plain-test+mnn", root=True)
    finally:
        del registry._EXTRACTORS["sift-plain-test"]


def test_the_default_method_is_a_preset_of_clidd_with_the_aligned_pass():
    from tiepoint.matchers.search import ViewSearch

    assert tiepoint.DEFAULT_METHOD == "clidd"
    assert registry.split_method_name("clidd") == ("clidd-s96", "mnn")
    method = registry.build_method("clidd")
    assert isinstance(method, ViewSearch) and method.aligner is not None
    assert method.method.extractor.config.scales == (1, 0.5, 0.25)
    listed = {m.name: m for m in tiepoint.methods()}
    assert listed["clidd"].kind == "sparse" and "clidd-s96+mnn with" in listed["clidd"].summary


def test_options_given_with_a_preset_override_its_own():
    plain = registry.build_method("clidd", align=False, scales=(1,))
    assert plain.name == "clidd-s96+mnn" and plain.extractor.config.scales == (1,)
    turned = registry.build_method("clidd", rotations=(0, 180), max_keypoints=256)
    assert turned.rotations == (0, 180) and turned.aligner is not None
    assert turned.method.extractor.config.max_keypoints == 256


def test_a_preset_gives_each_part_only_its_own_options():
    assert registry.preset_options("clidd") == {"align": "ratio", "scales": (1, 0.5, 0.25)}
    assert registry.preset_options("clidd", "extractor") == {"scales": (1, 0.5, 0.25)}
    assert registry.preset_options("clidd", "matcher") == {}
    assert registry.preset_options("sift+ratio") == {}
    with pytest.raises(ValueError, match="part"):
        registry.preset_options("clidd", "search")
    image = np.random.default_rng(0).integers(0, 255, (192, 256), np.uint8)
    features = tiepoint.extract(image, "clidd", max_keypoints=256)
    pyramid = tiepoint.extract(image, "clidd-s96", max_keypoints=256, scales=(1, 0.5, 0.25))
    plain = tiepoint.extract(image, "clidd-s96", max_keypoints=256)
    np.testing.assert_array_equal(features.keypoints, pyramid.keypoints)
    assert features.keypoints.shape != plain.keypoints.shape or not np.array_equal(features.keypoints, plain.keypoints)


def test_a_preset_must_name_a_registered_method():
    with pytest.raises(UnknownMethodError):
        registry.register_preset("broken-test", "sift+nope", {}, "no such matcher")
    assert "broken-test" not in {m.name for m in tiepoint.methods()}

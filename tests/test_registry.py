"""Method names resolve to the right parts; unknown names and options give errors that list the valid ones."""

from __future__ import annotations

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

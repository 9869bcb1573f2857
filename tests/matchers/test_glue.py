"""Glue, the learned context matcher: batching with padding, adaptive depth and width, weights files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tiepoint.errors import OptionError, WeightsError
from tiepoint.matchers.glue import Glue, GlueConfig, GlueMatcher
from tiepoint.types import Features

COUNTS = [(40, 31), (25, 40), (7, 12), (40, 40)]
"""Keypoints per image of the test pairs (padded to 40 in a batch)."""


def _net(**thresholds) -> Glue:
    torch.manual_seed(0)
    net = Glue(
        GlueConfig(input_dim=16, dim=16, heads=2, layers=4, **{"filter_threshold": 0.01, **thresholds})
    )
    with torch.no_grad():
        for head in net.confidence:  # confident about half of the points, so that adaptivity acts
            head.bias.fill_(1.8)
        net.input_proj.weight.copy_(torch.eye(16))  # lean on the descriptors, so that pairs match
        for assignment in net.assignment:
            assignment.matchability.bias.fill_(0.0)
            assignment.project.weight.copy_(4 * torch.eye(16))
    return net.eval()


def _pairs(seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """Pairs whose image 1 shows image 0's points moved a little, with a few extra points."""
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for n, m in COUNTS:
        keypoints0 = torch.rand(n, 2, generator=generator) * torch.tensor([64.0, 48.0])
        descriptors0 = torch.nn.functional.normalize(torch.randn(n, 16, generator=generator), dim=-1)
        shared = min(n, m)
        keypoints1 = torch.rand(m, 2, generator=generator) * torch.tensor([64.0, 48.0])
        keypoints1[:shared] = keypoints0[:shared] + 1.0
        descriptors1 = torch.nn.functional.normalize(torch.randn(m, 16, generator=generator), dim=-1)
        descriptors1[:shared] = torch.nn.functional.normalize(
            descriptors0[:shared] + 0.3 * torch.randn(shared, 16, generator=generator), dim=-1
        )
        pairs.append((keypoints0, keypoints1, descriptors0, descriptors1))
    return pairs


def _padded(pairs):
    def pad(tensors):
        length = max(len(t) for t in tensors)
        out = torch.zeros(len(tensors), length, tensors[0].shape[1])
        mask = torch.zeros(len(tensors), length, dtype=torch.bool)
        for row, t in enumerate(tensors):
            out[row, : len(t)], mask[row, : len(t)] = t, True
        return out, mask

    (k0, mask0), (k1, mask1) = pad([p[0] for p in pairs]), pad([p[1] for p in pairs])
    (d0, _), (d1, _) = pad([p[2] for p in pairs]), pad([p[3] for p in pairs])
    size = torch.tensor([[64.0, 48.0]]).expand(len(pairs), 2)
    return k0, k1, d0, d1, size, size, mask0, mask1


@pytest.mark.parametrize(
    "thresholds",
    [
        {"depth_confidence": -1, "width_confidence": -1},
        {"depth_confidence": 0.88, "width_confidence": -1},
        {"depth_confidence": -1, "width_confidence": 0.5},
        {"depth_confidence": 0.88, "width_confidence": 0.5},
    ],
    ids=["full", "early-exit", "pruning", "both"],
)
def test_a_padded_batch_matches_like_pairs_one_by_one(thresholds):
    net, pairs = _net(**thresholds), _pairs()
    batched = net(*_padded(pairs))
    size = torch.tensor([[64.0, 48.0]])
    for row, (k0, k1, d0, d1) in enumerate(pairs):
        single = net(k0[None], k1[None], d0[None], d1[None], size, size)
        n, m = len(k0), len(k1)
        assert torch.equal(batched["matches0"][row, :n], single["matches0"][0])
        assert torch.equal(batched["matches1"][row, :m], single["matches1"][0])
        torch.testing.assert_close(batched["scores0"][row, :n], single["scores0"][0], atol=1e-5, rtol=1e-4)
        assert batched["layers"][row] == single["layers"][0]
        assert torch.equal(batched["kept0"][row, :n], single["kept0"][0])
        assert not batched["kept0"][row, n:].any() and (batched["matches0"][row, n:] == -1).all()


def test_adaptive_computation_stops_early_and_prunes():
    net = _net(depth_confidence=0.88, width_confidence=-1)
    output = net(*_padded(_pairs()))
    assert (output["layers"] < 4).any(), "with confident heads some pair must stop before the last layer"
    full = _net(depth_confidence=-1, width_confidence=0.5)(*_padded(_pairs()))
    assert (full["layers"] == 4).all()
    assert not full["kept0"][0].all(), "unmatchable confident points must be pruned"


def test_matches_are_mutual_and_above_the_threshold():
    output = _net(depth_confidence=-1, width_confidence=-1, filter_threshold=0.05)(*_padded(_pairs()))
    for row in range(len(COUNTS)):
        matches0, matches1 = output["matches0"][row], output["matches1"][row]
        for i in torch.nonzero(matches0 >= 0).flatten():
            assert matches1[matches0[i]] == i
            assert output["scores0"][row, i] > 0.05


def test_an_empty_side_gives_no_matches_and_runs_no_layer():
    net = _net()
    k0, k1, d0, d1, s0, s1, mask0, mask1 = _padded(_pairs())
    mask1[1] = False
    output = net(k0, k1, d0, d1, s0, s1, mask0, mask1)
    assert output["layers"][1] == 0 and (output["matches0"][1] == -1).all()
    assert output["layers"][0] > 0


def test_descriptor_size_is_checked():
    with pytest.raises(ValueError, match="16-d descriptors"):
        _net()(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), torch.zeros(1, 3, 8), torch.zeros(1, 3, 8),
               torch.ones(1, 2), torch.ones(1, 2))  # fmt: skip


def test_weights_round_trip_with_their_architecture(tmp_path):
    net = _net()
    path = tmp_path / "glue.pt"
    architecture = {"input_dim": 16, "dim": 16, "heads": 2, "layers": 4}
    torch.save({"model": net.state_dict(), "config": architecture}, path)
    loaded = Glue.from_pretrained("clidd-s96", path, depth_confidence=-1)
    assert loaded.config.layers == 4 and loaded.config.depth_confidence == -1
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_matcher_names_missing_weights_and_wrong_descriptors(tmp_path):
    with pytest.raises(WeightsError, match="Glue"):
        GlueMatcher(features="clidd-s96", weights=str(tmp_path / "none.pt"))
    path = tmp_path / "glue.pt"
    torch.save(
        {"model": _net().state_dict(), "config": {"input_dim": 16, "dim": 16, "heads": 2, "layers": 4}}, path
    )
    matcher = GlueMatcher(weights=str(path))
    features = Features(
        keypoints=np.zeros((3, 2), np.float32),
        descriptors=np.zeros((3, 8), np.float32),
        scores=np.ones(3, np.float32),
        image_size=(64, 48),
    )
    with pytest.raises(OptionError, match="16-d float"):
        matcher.match(features, features)
    with pytest.raises(ValueError, match="depth_confidence"):
        GlueMatcher(weights=str(path), depth_confidence=2)


@pytest.mark.slow
@pytest.mark.parametrize(
    "method, at_least, within_1px, within_3px",
    [
        # measured: 1470 matches, 79.2 % within 1 px of the true epipolar line, 89.1 % within 3 px, pose 0.19°
        ("clidd-s96+glue", 1200, 0.75, 0.85),
        # measured: 1091 matches, 72.9 % and 79.1 %, pose 0.45° (sift, ratio test: 809, 90.7 %, 97.2 %)
        ("sift+glue", 900, 0.68, 0.75),
    ],
)
def test_shipped_weights_on_the_demo_pair(stereo_pair, method, at_least, within_1px, within_3px):
    import tiepoint
    from tiepoint.geometry.accuracy import fundamental_from_pose, pose_error, symmetric_epipolar_distance
    from tiepoint.geometry.estimate import estimate

    matches = tiepoint.match(stereo_pair.image0, stereo_pair.image1, method)
    F = fundamental_from_pose(stereo_pair.R, stereo_pair.t, stereo_pair.camera0.K, stereo_pair.camera1.K)
    distance = symmetric_epipolar_distance(F, matches.keypoints0, matches.keypoints1)
    assert len(matches) > at_least
    assert (distance < 1).mean() > within_1px and (distance < 3).mean() > within_3px
    geometry = estimate(matches, "relative_pose", stereo_pair.camera0, stereo_pair.camera1)
    assert pose_error(geometry.R, geometry.t, stereo_pair.R, stereo_pair.t) < 1.0

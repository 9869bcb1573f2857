"""Batches of stream pairs: collation across sources, correspondences over a batch, the reversed pair."""

from __future__ import annotations

import pytest
import torch

from tiepoint_lab.data.batching import (
    collate_pairs,
    correspond_batch,
    correspond_rows,
    homography_jacobian,
    invert_pose,
    jacobian_batch,
    reverse_pair,
)
from tiepoint_lab.data.homography import HomographyPairs
from tiepoint_lab.data.mix import correspond, make_stream

SIZE = (48, 48)


@pytest.fixture
def mixed(photos):
    """Two items of each source of the ``mix`` stream."""
    stream = make_stream("mix", photos, size=SIZE, seed=0, length=64)
    chosen = {}
    for index in range(len(stream)):
        chosen.setdefault(stream.source_of(index), [])
        if len(chosen[stream.source_of(index)]) < 2:
            chosen[stream.source_of(index)].append(stream[index])
    assert set(chosen) == {"homography", "relit", "scenes"}
    return chosen


def _points(count: int, items: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(items, count, 2, generator=generator) * (SIZE[1] - 1)


def test_a_mixed_batch_collates(mixed):
    items = [mixed["homography"][0], mixed["scenes"][0], mixed["relit"][0], mixed["scenes"][1]]
    batch = collate_pairs(items)
    assert batch["image0"].shape == batch["image1"].shape == (4, 3, *SIZE)
    assert batch["source"] == ["homography", "scenes", "relit", "scenes"]
    assert batch["index"].tolist() == [item["index"] for item in items]
    assert "H_0to1" not in batch and "depth0" not in batch and "valid1" not in batch  # not every item has it
    assert [sorted(truth) for truth in batch["truth"]] == [
        ["H_0to1"],
        ["K0", "K1", "T_0to1", "depth0", "depth1"],
        ["H_0to1"],
        ["K0", "K1", "T_0to1", "depth0", "depth1"],
    ]
    loader = torch.utils.data.DataLoader(items, batch_size=2, collate_fn=collate_pairs)
    assert [len(b["truth"]) for b in loader] == [2, 2]


def test_a_batch_of_one_kind_batches_its_ground_truth_too(mixed, photos):
    scenes = collate_pairs(mixed["scenes"])
    assert scenes["depth0"].shape == (2, *SIZE) and scenes["T_0to1"].shape == (2, 4, 4)
    pairs = HomographyPairs(photos, size=SIZE, seed=0)
    items = [pairs[0], pairs[1]]
    default = torch.utils.data.default_collate(items)
    batch = collate_pairs(items)
    assert set(batch) == {*default, "truth"}
    for key, value in default.items():
        assert torch.equal(batch[key], value), key  # the homography-only batch as before


@pytest.mark.parametrize("kinds", [("homography", "relit"), ("scenes",), ("homography", "scenes", "relit")])
def test_correspond_batch_equals_correspond_per_item(mixed, kinds):
    items = [item for kind in kinds for item in mixed[kind]]
    batch = collate_pairs(items)
    points0 = _points(100, len(items))
    points1, visible = correspond_batch(batch, points0)
    assert points1.shape == points0.shape and visible.shape == points0.shape[:2]
    for index, item in enumerate(items):
        expected, seen = correspond(item, points0[index])
        torch.testing.assert_close(points1[index], expected, atol=1e-4, rtol=1e-5)
        assert torch.equal(visible[index], seen)
    assert visible.any()
    rows = torch.tensor([len(items) - 1, 0, len(items) - 1])  # rows of points of chosen pairs
    mapped, seen = correspond_rows(batch, rows, points0[rows])
    torch.testing.assert_close(mapped, points1[rows], atol=1e-4, rtol=1e-5)
    assert torch.equal(seen, visible[rows])


def test_the_default_collate_of_homographies_takes_the_fast_path(photos):
    pairs = HomographyPairs(photos, size=SIZE, seed=0)
    default = torch.utils.data.default_collate([pairs[0], pairs[1]])
    points0 = _points(50, 2)
    points1, visible = correspond_batch(default, points0)
    for index in range(2):
        expected, seen = correspond(pairs[index], points0[index])
        torch.testing.assert_close(points1[index], expected)
        assert torch.equal(visible[index], seen)


@pytest.mark.parametrize("kinds", [("homography",), ("scenes",), ("homography", "scenes", "relit")])
def test_the_reversed_pair_maps_visible_points_back(mixed, kinds):
    items = [item for kind in kinds for item in mixed[kind]]
    batch = collate_pairs(items)
    points0 = _points(200, len(items), seed=1)
    points1, visible = correspond_batch(batch, points0)
    back, seen = correspond_batch(reverse_pair(batch), points1)
    both = visible & seen
    assert both.sum() > 0.9 * visible.sum() > 0
    assert float((back - points0).norm(dim=-1)[both].max()) < 0.5  # scenes: depth of the nearest pixel
    for index, item in enumerate(items):  # an item reverses as its batch does
        mapped, _ = correspond(reverse_pair(item), points1[index])
        torch.testing.assert_close(mapped, back[index], atol=1e-3, rtol=1e-4)
    reversed_ = reverse_pair(batch)
    assert torch.equal(reversed_["image0"], batch["image1"]) and "clean1" not in reversed_


def test_invert_pose():
    angle = torch.tensor(0.3)
    T = torch.eye(4)
    T[:3, :3] = torch.tensor(
        [[torch.cos(angle), -torch.sin(angle), 0], [torch.sin(angle), torch.cos(angle), 0], [0, 0, 1]]
    )
    T[:3, 3] = torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(invert_pose(T) @ T, torch.eye(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        invert_pose(T[None].repeat(2, 1, 1)), torch.linalg.inv(T)[None].repeat(2, 1, 1)
    )


def test_jacobians_predict_small_moves(mixed):
    items = [*mixed["homography"], *mixed["scenes"]]
    batch = collate_pairs(items)
    points0 = _points(200, len(items), seed=2)
    jacobian, reliable = jacobian_batch(batch, points0)
    H = torch.stack([item["H_0to1"] for item in mixed["homography"]])
    torch.testing.assert_close(jacobian[:2], homography_jacobian(points0[:2], H))
    assert reliable[:2].all() and reliable[2:].any()
    step = torch.tensor([0.3, -0.2])
    points1, _ = correspond_batch(batch, points0)
    moved, _ = correspond_batch(batch, points0 + step)
    predicted = points1 + jacobian @ step
    assert float((moved - predicted).norm(dim=-1)[reliable].median()) < 0.1

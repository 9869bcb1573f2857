"""Known answers for the nearest-neighbour matchers, batching with padding masks, binary descriptors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tiepoint.matchers.nearest import (
    DualSoftmax,
    MutualNearestNeighbour,
    RatioTest,
    dual_softmax,
    mutual_nearest_neighbours,
    ratio_test,
    similarity_matrix,
)
from tiepoint.registry import build_matcher
from tiepoint.types import Features


def _features(descriptors: np.ndarray) -> Features:
    n = len(descriptors)
    return Features(np.zeros((n, 2), np.float32), np.ones(n, np.float32), descriptors, (64, 64))


def test_mutual_nearest_neighbours_known_answer():
    sim = torch.tensor([[[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.0, 0.1, 0.7]]])
    matches0, scores0 = mutual_nearest_neighbours(sim)
    # row 1 prefers column 0, but column 0 prefers row 0: not mutual
    assert matches0.tolist() == [[0, -1, 2]]
    assert scores0[0, 0].item() == pytest.approx(0.9) and scores0[0, 1].item() == 0
    matches0, _ = mutual_nearest_neighbours(sim, min_similarity=0.8)
    assert matches0.tolist() == [[0, -1, -1]]


def test_ratio_test_rejects_ambiguous_neighbours():
    # unit vectors: keypoint 0 has one clear neighbour, keypoint 1 two almost equal ones
    desc0 = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    desc1 = torch.nn.functional.normalize(
        torch.tensor([[[1.0, 0.05, 0.0], [0.1, 1.0, 0.9], [-0.1, 1.0, -0.9]]]), dim=-1
    )
    sim = similarity_matrix(desc0, desc1)
    matches0, _ = ratio_test(sim, ratio=0.8)
    assert matches0.tolist() == [[0, -1]]
    matches0, _ = ratio_test(sim, ratio=1.0, mutual=False)
    assert matches0[0, 0] == 0 and matches0[0, 1] in (1, 2)


def test_dual_softmax_recovers_a_permutation():
    rng = np.random.default_rng(0)
    desc = torch.nn.functional.normalize(
        torch.from_numpy(rng.normal(size=(1, 50, 32)).astype(np.float32)), dim=-1
    )
    permutation = torch.from_numpy(rng.permutation(50))
    noisy = torch.nn.functional.normalize(
        desc[:, permutation] + 0.05 * torch.randn(1, 50, 32, generator=torch.Generator().manual_seed(0)),
        dim=-1,
    )
    matches0, scores0 = dual_softmax(similarity_matrix(desc, noisy), temperature=0.1, threshold=0.1)
    inverse = torch.argsort(permutation)
    assert torch.equal(matches0[0], inverse)
    assert torch.all((scores0 > 0.1) & (scores0 <= 1))


@pytest.mark.parametrize("matcher", [MutualNearestNeighbour(), RatioTest(), DualSoftmax()])
def test_batched_with_masks_equals_one_by_one(matcher):
    rng = np.random.default_rng(1)
    sizes = [(30, 20), (12, 25)]
    descs = [
        [
            torch.nn.functional.normalize(
                torch.from_numpy(rng.normal(size=(n, 16)).astype(np.float32)), dim=-1
            )
            for n in pair
        ]
        for pair in sizes
    ]
    n_max, m_max = max(s[0] for s in sizes), max(s[1] for s in sizes)
    desc0 = torch.zeros(2, n_max, 16)
    desc1 = torch.zeros(2, m_max, 16)
    mask0 = torch.zeros(2, n_max, dtype=torch.bool)
    mask1 = torch.zeros(2, m_max, dtype=torch.bool)
    for b, (d0, d1) in enumerate(descs):
        desc0[b, : len(d0)], desc1[b, : len(d1)] = d0, d1
        mask0[b, : len(d0)], mask1[b, : len(d1)] = True, True
    batched, batched_scores = matcher.match_batch(similarity_matrix(desc0, desc1), mask0=mask0, mask1=mask1)
    for b, (d0, d1) in enumerate(descs):
        single, single_scores = matcher.match_batch(similarity_matrix(d0[None], d1[None]))
        assert torch.equal(batched[b, : len(d0)], single[0])
        torch.testing.assert_close(batched_scores[b, : len(d0)], single_scores[0])
        assert torch.all(batched[b, len(d0) :] == -1)


def test_binary_similarity_is_hamming():
    rng = np.random.default_rng(2)
    bits0 = rng.integers(0, 256, (5, 32), dtype=np.uint8)
    bits1 = rng.integers(0, 256, (7, 32), dtype=np.uint8)
    sim = similarity_matrix(torch.from_numpy(bits0)[None], torch.from_numpy(bits1)[None])[0].numpy()
    for i in range(5):
        for j in range(7):
            hamming = cv2.norm(bits0[i], bits1[j], cv2.NORM_HAMMING)
            assert sim[i, j] == pytest.approx(1 - 2 * hamming / 256)


def test_matchers_on_features_and_edge_cases():
    rng = np.random.default_rng(3)
    desc = rng.normal(size=(40, 8)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    indices, scores = MutualNearestNeighbour().match(_features(desc), _features(desc[::-1].copy()))
    assert len(indices) == 40 and np.all(indices[:, 1] == 39 - indices[:, 0])
    assert scores.dtype == np.float32 and np.allclose(scores, 1, atol=1e-5)
    empty = _features(np.zeros((0, 8), np.float32))
    for matcher in (MutualNearestNeighbour(), RatioTest(), DualSoftmax()):
        indices, scores = matcher.match(empty, _features(desc))
        assert indices.shape == (0, 2) and scores.shape == (0,)
        indices, _ = matcher.match(_features(desc[:1]), _features(desc[:1]))
        assert indices.tolist() == [[0, 0]]
    binary = _features(rng.integers(0, 256, (10, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="float descriptors"):
        DualSoftmax().match(binary, binary)
    with pytest.raises(ValueError, match="binary descriptors against float"):
        MutualNearestNeighbour().match(binary, _features(desc))
    with pytest.raises(ValueError, match="sizes differ"):
        MutualNearestNeighbour().match(_features(desc), _features(desc[:, :4].copy()))


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("ratio", {"ratio": 1.5}, r"ratio must be in \(0, 1\]"),
        ("ratio", {"ratio": -0.1}, r"ratio must be in \(0, 1\]"),
        ("ratio", {"mutual": 1}, "'mutual' must be True or False"),
        ("mnn", {"min_similarity": 2.0}, r"min_similarity must be in \[-1, 1\]"),
        ("dualsoftmax", {"threshold": 1.5}, r"threshold must be a probability in \[0, 1\]"),
        ("dualsoftmax", {"temperature": 0}, "temperature must be a positive number"),
    ],
)
def test_matcher_options_out_of_range_are_refused(name, options, message):
    from tiepoint.errors import OptionError
    from tiepoint.registry import build_matcher

    with pytest.raises(OptionError, match=message):
        build_matcher(name, **options)


def test_matcher_options_at_their_limits_pass():
    from tiepoint.registry import build_matcher

    build_matcher("ratio", ratio=1.0)
    build_matcher("mnn", min_similarity=-1.0)
    build_matcher("dualsoftmax", threshold=0.0)


def _placed(points, descriptors) -> Features:
    descriptors = np.asarray(descriptors, np.float32)
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    return Features(
        keypoints=np.asarray(points, np.float32),
        scores=np.ones(len(points), np.float32),
        descriptors=descriptors,
        image_size=(640, 480),
    )


def test_inconsistent_ratio_keeps_a_point_seen_twice_that_the_ratio_test_drops():
    # image 1 holds point A twice (two synthesised views, 1 px apart, nearly equal descriptors) and a
    # different point B; the query is A. Lowe's second neighbour is A's duplicate, FGINN's is B.
    query = _placed([[50, 50]], [[1.0, 0.0, 0.0]])
    image1 = _placed([[300, 200], [301, 200], [10, 400]], [[1.0, 0.05, 0.0], [1.0, 0.06, 0.0], [0, 1.0, 0]])
    assert len(build_matcher("ratio").match(query, image1)[0]) == 0
    indices, _ = build_matcher("fginn").match(query, image1)
    assert indices.tolist() == [[0, 0]]


def test_inconsistent_ratio_still_drops_a_look_alike_elsewhere():
    # the same descriptor at two places 100 px apart: a true ambiguity, rejected
    query = _placed([[50, 50]], [[1.0, 0.0, 0.0]])
    image1 = _placed([[300, 200], [400, 200], [10, 400]], [[1.0, 0.05, 0.0], [1.0, 0.06, 0.0], [0, 1.0, 0]])
    assert len(build_matcher("fginn").match(query, image1)[0]) == 0
    # within the radius they count as one point
    assert len(build_matcher("fginn", radius=150.0).match(query, image1)[0]) == 1


def test_inconsistent_ratio_is_mutual_up_to_duplicates():
    # two queries claim the same point of image 1; its nearest neighbour in image 0 is the first, so the
    # second query's match is dropped
    queries = _placed([[50, 50], [500, 400]], [[1.0, 0.0, 0.0], [1.0, 0.2, 0.0]])
    image1 = _placed([[300, 200], [10, 400]], [[1.0, 0.01, 0.0], [0, 0, 1.0]])
    indices, _ = build_matcher("fginn").match(queries, image1)
    assert indices.tolist() == [[0, 0]]

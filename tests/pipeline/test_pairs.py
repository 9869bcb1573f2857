"""Pair selection: strategies, retrieval by VLAD, pairs files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tiepoint.errors import OptionError
from tiepoint.io.h5 import write_features
from tiepoint.pipeline.pairs import (
    PairStrategy,
    exhaustive_pairs,
    global_descriptors,
    kmeans,
    make_pairs,
    parse_strategy,
    read_pairs,
    retrieval_pairs,
    select_pairs,
    sequential_pairs,
    write_pairs,
)
from tiepoint.types import Features


def test_parse_strategy(tmp_path):
    assert parse_strategy("exhaustive") == PairStrategy("exhaustive")
    assert parse_strategy("sequential:3") == PairStrategy("sequential", 3)
    assert parse_strategy("retrieval:10") == PairStrategy("retrieval", 10)
    listed = tmp_path / "pairs.txt"
    listed.write_text("a.png b.png\n")
    assert parse_strategy(str(listed)) == PairStrategy("file", path=listed)
    for bad in ("retrieval", "retrieval:x", "sequential:0", "everything", "exhaustive:3"):
        with pytest.raises(OptionError, match="pairs"):
            parse_strategy(bad)


def test_exhaustive_and_sequential():
    names = ["a", "b", "c", "d"]
    assert exhaustive_pairs(names) == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert sequential_pairs(names, 1) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert sequential_pairs(names, 2) == [("a", "b"), ("a", "c"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert sequential_pairs(names, 10) == exhaustive_pairs(names)


def test_retrieval_pairs_union_of_neighbours():
    # 0 and 1 are close, 2 and 3 are close, the two groups orthogonal
    descriptors = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0.1], [0, 0.9, 0.2]], np.float64)
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    assert retrieval_pairs(list("abcd"), descriptors, 1) == [("a", "b"), ("c", "d")]
    assert len(retrieval_pairs(list("abcd"), descriptors, 3)) == 6  # k capped at N - 1
    with pytest.raises(ValueError, match="descriptors"):
        retrieval_pairs(list("abc"), descriptors, 1)


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    points = np.concatenate([c + rng.normal(0, 0.5, (100, 2)) for c in centres]).astype(np.float32)
    found = kmeans(points, 3, seed=1)
    distances = np.linalg.norm(found[:, None] - centres[None], axis=2)
    assert np.all(distances.min(axis=0) < 0.3)
    assert np.array_equal(found, kmeans(points, 3, seed=1))  # deterministic


def _features_file(path, groups: dict[str, int], binary: bool = False, seed: int = 0):
    """Images of several scenes (``groups``: image name -> scene): each scene has 300 points with their own
    descriptor, and each image sees a random 200 of its scene's points, with descriptor noise."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(max(groups.values()) + 1, 300, 32))
    with h5py.File(path, "w") as file:
        for name, group in groups.items():
            local = points[group][rng.choice(300, 200, replace=False)] + 0.3 * rng.normal(size=(200, 32))
            if binary:
                descriptors = np.packbits(local > 0, axis=1)
            else:
                descriptors = (local / np.linalg.norm(local, axis=1, keepdims=True)).astype(np.float32)
            keypoints = rng.random((200, 2)).astype(np.float32) * 100
            write_features(file, name, Features(keypoints, np.ones(200, np.float32), descriptors, (100, 100)))
    return path


@pytest.mark.parametrize("binary", [False, True])
def test_retrieval_pairs_images_of_the_same_scene(tmp_path, binary):
    groups = {"s0/a.png": 0, "s0/b.png": 0, "s0/c.png": 0, "s1/a.png": 1, "s1/b.png": 1, "s1/c.png": 1}
    features = _features_file(tmp_path / "f.h5", groups, binary=binary)
    pairs = select_pairs(features, "retrieval:2")
    assert sorted(pairs) == [
        ("s0/a.png", "s0/b.png"),
        ("s0/a.png", "s0/c.png"),
        ("s0/b.png", "s0/c.png"),
        ("s1/a.png", "s1/b.png"),
        ("s1/a.png", "s1/c.png"),
        ("s1/b.png", "s1/c.png"),
    ]
    vlad = global_descriptors(features, sorted(groups), num_words=4)
    assert vlad.shape == (6, 4 * 32)
    np.testing.assert_allclose(np.linalg.norm(vlad, axis=1), 1, atol=1e-5)
    assert global_descriptors(features, sorted(groups), aggregation="mean").shape == (6, 32)
    with pytest.raises(OptionError, match="aggregation"):
        global_descriptors(features, sorted(groups), aggregation="max")


def test_pairs_files_round_trip(tmp_path):
    pairs = [("a.png", "b.png"), ("dir/with space.png", "c.png")]
    path = write_pairs(tmp_path / "pairs.txt", pairs, header="test")
    assert path.read_text().splitlines()[0] == "# test"
    assert read_pairs(path) == pairs
    (tmp_path / "hloc.txt").write_text("a.png b.png\n\n# comment\nc.png d.png extra fields\n")
    assert read_pairs(tmp_path / "hloc.txt") == [("a.png", "b.png"), ("c.png", "d.png")]
    (tmp_path / "bad.txt").write_text("lonely.png\n")
    with pytest.raises(OptionError, match="line 1"):
        read_pairs(tmp_path / "bad.txt")


def test_make_pairs_reuses_its_file_and_checks_pair_files(tmp_path):
    features = _features_file(tmp_path / "f.h5", {"a.png": 0, "b.png": 0, "c.png": 1})
    output = tmp_path / "pairs.txt"
    assert make_pairs(features, output, "sequential:1") == [("a.png", "b.png"), ("b.png", "c.png")]
    assert make_pairs(features, output, "exhaustive") == [("a.png", "b.png"), ("b.png", "c.png")]  # reused
    assert len(make_pairs(features, output, "exhaustive", overwrite=True)) == 3
    (tmp_path / "other.txt").write_text("a.png missing.png\n")
    with pytest.raises(OptionError, match="missing.png"):
        select_pairs(features, str(tmp_path / "other.txt"))

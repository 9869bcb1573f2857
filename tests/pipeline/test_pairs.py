"""Pair selection: strategies, retrieval by VLAD, pairs files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from tiepoint.errors import OptionError
from tiepoint.io.h5 import feature_fingerprint, write_features
from tiepoint.pipeline.pairs import (
    PairStrategy,
    exhaustive_pairs,
    global_descriptors,
    kmeans,
    make_pairs,
    parse_strategy,
    provenance_path,
    read_pairs,
    read_provenance,
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
    pairs = [("a.png", "b.png"), ("dir/#1.png", "#c.png"), ("#", "d.png")]
    path = write_pairs(tmp_path / "pairs.txt", pairs, header="test")
    # hloc's format: two names per line and nothing else; the description goes beside the file
    assert path.read_text() == "a.png b.png\ndir/#1.png #c.png\n# d.png\n"
    assert read_pairs(path) == pairs  # names starting with '#' are names, not comments
    assert read_provenance(path)["description"] == "test"
    (tmp_path / "hloc.txt").write_text("a.png b.png\n\n  \nc.png\td.png  \n")
    assert read_pairs(tmp_path / "hloc.txt") == [("a.png", "b.png"), ("c.png", "d.png")]
    for bad, line in (
        ("lonely.png\n", 1),
        ("a b\nc.png d.png extra\n", 2),
        ("# pairs: exhaustive\na b\n", 1),
    ):
        (tmp_path / "bad.txt").write_text(bad)
        with pytest.raises(OptionError, match=f"line {line}"):
            read_pairs(tmp_path / "bad.txt")
    with pytest.raises(OptionError, match="header"):
        read_pairs(tmp_path / "bad.txt")  # an earlier tiepoint's header line: the message says what to do
    for name in ("with space.png", "tab\t.png", "", "new\nline.png"):
        with pytest.raises(OptionError, match="cannot go in a pairs file"):
            write_pairs(tmp_path / "spaces.txt", [(name, "b.png")])
    assert not (tmp_path / "spaces.txt").exists()


def _hloc_parse_retrieval(path):
    """hloc's ``utils.parsers.parse_retrieval`` restated (cvg/Hierarchical-Localization): the text less its
    trailing newlines, split on newlines, empty lines skipped, each other line unpacked from ``split()``
    into exactly two names; pairs grouped by their first name."""
    retrieval = {}
    for line in Path(path).read_text().rstrip("\n").split("\n"):
        if len(line) == 0:
            continue
        query, reference = line.split()  # ValueError unless exactly two names
        retrieval.setdefault(query, []).append(reference)
    return retrieval


def _hloc_import_matches_pairs(path):
    """How hloc's ``triangulation.import_matches`` (used by ``reconstruction.main``) reads pairs: every line
    of ``readlines()`` unpacked from ``split()`` into exactly two names, no line skipped."""
    pairs = []
    for line in Path(path).read_text().splitlines(keepends=True):
        name0, name1 = line.split()
        pairs.append((name0, name1))
    return pairs


def test_pairs_files_parse_by_hlocs_rules(tmp_path):
    features = _features_file(tmp_path / "f.h5", {"#0.png": 0, "a/b.png": 0, "c.png": 1, "#": 1})
    for strategy in ("exhaustive", "sequential:2", "retrieval:1"):
        output = tmp_path / f"{strategy.replace(':', '')}.txt"
        pairs = make_pairs(features, output, strategy)
        assert _hloc_import_matches_pairs(output) == pairs
        expected = {}
        for name0, name1 in pairs:
            expected.setdefault(name0, []).append(name1)
        assert _hloc_parse_retrieval(output) == expected
        assert read_pairs(output) == pairs


def test_hloc_reads_our_files(tmp_path):
    """With hloc installed (it is not on PyPI: pip install git+https://github.com/cvg/Hierarchical-Localization),
    its own readers take tiepoint's pairs, feature and match files."""
    parsers = pytest.importorskip("hloc.utils.parsers")
    from tiepoint.io.h5 import write_matches

    features = _features_file(tmp_path / "f.h5", {"#0.png": 0, "a/b.png": 0, "c.png": 1})
    pairs = make_pairs(features, tmp_path / "pairs.txt", "exhaustive")
    retrieval = parsers.parse_retrieval(tmp_path / "pairs.txt")
    assert sorted((q, r) for q, refs in retrieval.items() for r in refs) == sorted(pairs)
    with h5py.File(tmp_path / "m.h5", "w") as file:
        for name0, name1 in pairs:
            indices = np.stack([np.arange(200)] * 2, axis=1)
            write_matches(file, name0, name1, indices, np.ones(200, np.float32), 200)
    with h5py.File(features, "r") as feature_file, h5py.File(tmp_path / "m.h5", "r") as match_file:
        for name0, name1 in pairs:
            assert feature_file[name0]["keypoints"].shape == (200, 2)
            assert match_file[parsers.names_to_pair(name0, name1)]["matches0"].shape == (200,)


def test_make_pairs_records_and_checks_its_provenance(tmp_path):
    features = _features_file(tmp_path / "f.h5", {"a.png": 0, "b.png": 0, "c.png": 1})
    output = tmp_path / "pairs.txt"
    assert make_pairs(features, output, "sequential:1") == [("a.png", "b.png"), ("b.png", "c.png")]
    record = json.loads(provenance_path(output).read_text())
    assert record["made_from"] == {"strategy": "sequential:1", "images": ["a.png", "b.png", "c.png"]}
    assert record["num_pairs"] == 2 and record["features"] == str(features)
    written = output.stat().st_mtime_ns
    assert make_pairs(features, output, "sequential:1") == [("a.png", "b.png"), ("b.png", "c.png")]
    assert output.stat().st_mtime_ns == written  # reused: same strategy, same images
    assert len(make_pairs(features, output, "exhaustive")) == 3  # another strategy: made again
    assert read_provenance(output)["made_from"]["strategy"] == "exhaustive"
    assert make_pairs(features, output, "exhaustive", names=["a.png", "c.png"]) == [("a.png", "c.png")]
    assert len(make_pairs(features, output, "exhaustive", overwrite=True)) == 3
    # a record that does not describe the file's contents is no record
    output.write_text("a.png b.png\n")
    assert read_provenance(output) is None
    with pytest.raises(OptionError, match="overwrite"):
        make_pairs(features, output, "exhaustive")
    assert len(make_pairs(features, output, "exhaustive", overwrite=True)) == 3
    # a pairs file as the strategy: its contents are part of the provenance
    listed = tmp_path / "listed.txt"
    listed.write_text("a.png b.png\n")
    assert make_pairs(features, output, str(listed)) == [("a.png", "b.png")]
    listed.write_text("a.png c.png\n")
    assert make_pairs(features, output, str(listed)) == [("a.png", "c.png")]
    (tmp_path / "other.txt").write_text("a.png missing.png\n")
    with pytest.raises(OptionError, match="missing.png"):
        select_pairs(features, str(tmp_path / "other.txt"))


def test_retrieval_pairs_are_made_again_when_features_change(tmp_path):
    groups = {"s0/a.png": 0, "s0/b.png": 0, "s1/a.png": 1, "s1/b.png": 1}
    features = _features_file(tmp_path / "f.h5", groups)
    output = tmp_path / "pairs.txt"
    make_pairs(features, output, "retrieval:1")
    written = output.stat().st_mtime_ns
    make_pairs(features, output, "retrieval:1")
    assert output.stat().st_mtime_ns == written  # same features: reused
    with h5py.File(features, "a") as file:  # one image extracted again, differently
        del file["s1/b.png"]
        rng = np.random.default_rng(9)
        descriptors = rng.standard_normal((50, 32)).astype(np.float32)
        descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
        keypoints = (rng.random((50, 2)) * 100).astype(np.float32)
        write_features(
            file, "s1/b.png", Features(keypoints, np.ones(50, np.float32), descriptors, (100, 100))
        )
    make_pairs(features, output, "retrieval:1")
    assert output.stat().st_mtime_ns != written
    assert read_provenance(output)["made_from"]["features"]["s1/b.png"] == feature_fingerprint(
        features, "s1/b.png"
    )

"""match_pairs: matching pairs from a feature file, resuming, failed chunks, refusals."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tiepoint import registry
from tiepoint.errors import OptionError
from tiepoint.io.h5 import read_features, read_matches
from tiepoint.pipeline import matching
from tiepoint.pipeline.matching import match_pairs, unique_pairs
from tiepoint.pipeline.pairs import exhaustive_pairs

NAMES = [f"view{i}.png" for i in range(4)]


def test_matches_equal_direct_matching(corner_features, tmp_path):
    pairs = exhaustive_pairs(NAMES)
    summary = match_pairs(
        pairs, corner_features, tmp_path / "matches.h5", method="sift+ratio", progress=False, chunk_size=4
    )
    assert sorted(summary.done) == sorted(pairs) and not summary.failed and not summary.skipped
    method = registry.build_method("sift+ratio")
    for name0, name1 in pairs:
        expected = method.match_features(
            read_features(corner_features, name0), read_features(corner_features, name1)
        )
        indices, _scores = read_matches(tmp_path / "matches.h5", name0, name1)
        np.testing.assert_array_equal(indices, expected.indices[np.argsort(expected.indices[:, 0])])
        assert len(indices) > 50  # neighbouring views of a textured scene
    rerun = match_pairs(pairs, corner_features, tmp_path / "matches.h5", method="sift+ratio", progress=False)
    assert rerun.done == [] and sorted(rerun.skipped) == sorted(pairs)


def test_failed_chunks_are_reported_and_resumed(corner_features, tmp_path, monkeypatch):
    real = matching.match_chunk
    calls = []

    def flaky(pairs, *args):
        calls.append(pairs)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real(pairs, *args)

    monkeypatch.setattr(matching, "match_chunk", flaky)
    pairs = exhaustive_pairs(NAMES)
    output = tmp_path / "matches.h5"
    summary = match_pairs(pairs, corner_features, output, progress=False, chunk_size=2)
    assert len(summary.failed) == 2 and "worker lost" in summary.failed[0][1]
    assert len(summary.done) == 4 and output.exists()
    assert not output.with_name("matches.h5.partial").exists()
    monkeypatch.setattr(matching, "match_chunk", real)
    rerun = match_pairs(pairs, corner_features, output, progress=False)
    assert sorted(rerun.done) == sorted(p for p, _ in summary.failed) and len(rerun.skipped) == 4


def test_refusals(corner_features, tmp_path):
    pairs = [("view0.png", "view1.png")]
    match_pairs(pairs, corner_features, tmp_path / "m.h5", method="sift+ratio", progress=False)
    with pytest.raises(OptionError, match="already holds matches"):
        match_pairs(pairs, corner_features, tmp_path / "m.h5", method="sift+ratio", ratio=0.9, progress=False)
    with pytest.raises(OptionError, match="'orb'"):
        match_pairs(pairs, corner_features, tmp_path / "o.h5", method="orb", progress=False)
    with pytest.raises(OptionError, match="unknown"):
        match_pairs(pairs, corner_features, tmp_path / "o.h5", method="sift", colour=True, progress=False)
    with pytest.raises(FileNotFoundError):
        match_pairs(pairs, tmp_path / "missing.h5", tmp_path / "o.h5", progress=False)
    with pytest.raises(KeyError, match="nowhere.png"):
        match_pairs([("view0.png", "nowhere.png")], corner_features, tmp_path / "k.h5", progress=False)


def test_unique_pairs():
    assert unique_pairs([("a", "b"), ("b", "a"), ("a", "a"), ("a", "c")]) == [("a", "b"), ("a", "c")]


def test_overwrite_rematches(corner_features, tmp_path):
    features = tmp_path / "features.h5"
    shutil.copy(corner_features, features)
    pairs = [("view0.png", "view1.png")]
    match_pairs(pairs, features, tmp_path / "m.h5", progress=False)
    again = match_pairs(pairs, features, tmp_path / "m.h5", progress=False, overwrite=True)
    assert again.done == pairs and again.skipped == []

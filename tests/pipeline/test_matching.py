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


def test_invalid_stored_matches_are_computed_again(corner_features, corner_matches, tmp_path, caplog):
    import h5py

    from tiepoint.errors import CorruptFileError
    from tiepoint.io.h5 import pair_key

    pairs, original = corner_matches
    output = tmp_path / "matches.h5"
    shutil.copy(original, output)
    bad, garbled = pairs[0], pairs[1]
    with h5py.File(output, "r+") as file:
        del file[pair_key(*bad) + "/matches0"]  # too short for its image's keypoints
        file[pair_key(*bad) + "/matches0"] = np.zeros(3, np.int32)
        file[pair_key(*garbled) + "/matches0"][:5] = 10**6  # indices beyond image 1's keypoints
    counts = (len(read_features(corner_features, bad[0])), len(read_features(corner_features, bad[1])))
    with pytest.raises(CorruptFileError, match="3 entries but image 0 has"):
        read_matches(output, *bad, num_keypoints=counts)
    with caplog.at_level("WARNING", logger="tiepoint"):
        summary = match_pairs(pairs, corner_features, output, progress=False)
    assert summary.invalid == [bad, garbled] and sorted(summary.done) == sorted([bad, garbled])
    assert "invalid in the file" in str(summary) and bad[0] in caplog.text
    for pair in (bad, garbled):
        np.testing.assert_array_equal(read_matches(output, *pair)[0], read_matches(original, *pair)[0])
    assert match_pairs(pairs, corner_features, output, progress=False).invalid == []


def _extract_again(features, name: str, seed: int = 0) -> None:
    """Store other features for ``name`` with as many keypoints (as extracting a replaced image with
    ``max_keypoints`` would): its own, shuffled."""
    import h5py

    from tiepoint.io.h5 import write_features

    old = read_features(features, name)
    order = np.random.default_rng(seed).permutation(len(old))
    new = type(old)(old.keypoints[order], old.scores[order], old.descriptors[order], old.image_size)
    with h5py.File(features, "r+") as file:
        method = file[name].attrs["method"]
        write_features(file, name, new, attrs={"method": method})


def test_matches_of_features_extracted_again_are_computed_again(corner_features, tmp_path, caplog):
    import h5py

    from tiepoint.io.h5 import feature_fingerprint, pair_key

    features = tmp_path / "features.h5"
    shutil.copy(corner_features, features)
    pairs = exhaustive_pairs(NAMES)
    output = tmp_path / "matches.h5"
    match_pairs(pairs, features, output, progress=False)
    with h5py.File(output, "r") as file:
        group = file[pair_key("view0.png", "view1.png")]
        assert group.attrs["features_fingerprint0"] == feature_fingerprint(features, "view0.png")
        assert group.attrs["features_fingerprint1"] == feature_fingerprint(features, "view1.png")
        assert len(group.attrs["fingerprint"]) == 32
    count = len(read_features(features, "view1.png"))
    _extract_again(features, "view1.png")
    assert len(read_features(features, "view1.png")) == count  # the keypoint counts cannot tell
    with caplog.at_level("INFO", logger="tiepoint"):
        summary = match_pairs(pairs, features, output, progress=False)
    changed = [pair for pair in pairs if "view1.png" in pair]
    assert summary.changed == changed and sorted(summary.done) == sorted(changed) and not summary.invalid
    assert sorted(summary.skipped) == sorted(set(pairs) - set(changed))
    assert "3 with changed inputs" in str(summary) and "extracted again" in caplog.text
    clean = tmp_path / "clean.h5"
    match_pairs(pairs, features, clean, progress=False)
    for pair in pairs:
        np.testing.assert_array_equal(read_matches(output, *pair)[0], read_matches(clean, *pair)[0])
    assert match_pairs(pairs, features, output, progress=False).done == []


def test_matches_without_a_record_of_their_features_are_kept(corner_features, tmp_path):
    import h5py

    from tiepoint.io.h5 import FINGERPRINT, pair_key

    features = tmp_path / "features.h5"
    shutil.copy(corner_features, features)
    pairs = [("view0.png", "view1.png"), ("view1.png", "view2.png")]
    output = tmp_path / "matches.h5"
    match_pairs(pairs, features, output, progress=False)
    with h5py.File(output, "r+") as file:  # as hloc or an older tiepoint writes them
        for pair in pairs:
            for key in ("features_fingerprint0", "features_fingerprint1", FINGERPRINT):
                del file[pair_key(*pair)].attrs[key]
    before = read_matches(output, *pairs[0])[0]
    _extract_again(features, "view1.png")
    summary = match_pairs(pairs, features, output, progress=False)
    assert summary.done == [] and summary.changed == [] and sorted(summary.skipped) == sorted(pairs)
    np.testing.assert_array_equal(read_matches(output, *pairs[0])[0], before)


def test_features_without_a_fingerprint_are_hashed_on_read(corner_features, tmp_path):
    import h5py

    from tiepoint.io.h5 import FINGERPRINT, feature_fingerprint, pair_key

    features = tmp_path / "features.h5"
    shutil.copy(corner_features, features)
    with h5py.File(features, "r+") as file:  # as hloc writes them
        for name in NAMES:
            del file[name].attrs[FINGERPRINT]
    pairs = [("view0.png", "view1.png"), ("view1.png", "view2.png")]
    output = tmp_path / "matches.h5"
    match_pairs(pairs, features, output, progress=False)
    with h5py.File(output, "r") as file, h5py.File(corner_features, "r") as original:
        assert (
            file[pair_key(*pairs[0])].attrs["features_fingerprint1"]
            == original["view1.png"].attrs[FINGERPRINT]
        )
    assert match_pairs(pairs, features, output, progress=False).skipped == pairs
    _extract_again(features, "view2.png")
    with h5py.File(features, "r+") as file:
        del file["view2.png"].attrs[FINGERPRINT]
    assert feature_fingerprint(features, "view2.png") != feature_fingerprint(corner_features, "view2.png")
    summary = match_pairs(pairs, features, output, progress=False)
    assert summary.changed == [pairs[1]] and summary.skipped == [pairs[0]]


def test_reconstruct_after_an_image_is_replaced_equals_a_clean_run(tmp_path):
    """An image replaced under the same name: features, matches and geometries of its pairs are made again,
    with the keypoint counts capped so that they cannot tell; the result is that of a clean run."""
    import h5py

    from tiepoint.io.h5 import list_feature_names, pair_key
    from tiepoint.pipeline.reconstruct import reconstruct

    from .conftest import make_scene

    images = make_scene(tmp_path / "images", count=5).folder
    other = make_scene(tmp_path / "other", count=5, seed=1).folder
    options = {"method": "sift", "max_keypoints": 400, "progress": False}
    first = reconstruct(images, tmp_path / "out", **options)
    assert first.exit_status == 0
    out = tmp_path / "out"
    count = len(read_features(out / "features.h5", "view2.png"))
    shutil.copy(other / "view2.png", images / "view2.png")  # another picture under the same name
    rerun = reconstruct(images, out, **options)
    assert len(read_features(out / "features.h5", "view2.png")) == count == 400
    clean = reconstruct(images, tmp_path / "clean", **options)
    names = list_feature_names(out / "features.h5")
    for name in names:
        np.testing.assert_array_equal(
            read_features(out / "features.h5", name).keypoints,
            read_features(tmp_path / "clean" / "features.h5", name).keypoints,
        )
    pairs = exhaustive_pairs(names)
    for pair in pairs:
        indices, _ = read_matches(out / "matches.h5", *pair)
        np.testing.assert_array_equal(indices, read_matches(tmp_path / "clean" / "matches.h5", *pair)[0])
    with (
        h5py.File(out / "geometries.h5", "r") as a,
        h5py.File(tmp_path / "clean" / "geometries.h5", "r") as b,
    ):
        for pair in pairs:
            key = pair_key(*pair) if pair_key(*pair) in a else pair_key(*pair[::-1])
            np.testing.assert_array_equal(a[key]["inlier_matches"][()], b[key]["inlier_matches"][()])
            assert a[key].attrs["config"] == b[key].attrs["config"]
    assert rerun.summary["num_verified_pairs"] == clean.summary["num_verified_pairs"]
    assert rerun.summary["registered_images"] == clean.summary["registered_images"]

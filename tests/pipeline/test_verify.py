"""verify_pairs: two-view geometries of matched pairs, stored resumably and repeatably."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tiepoint.errors import OptionError
from tiepoint.geometry.accuracy import rotation_error
from tiepoint.io.colmap import CameraOptions, read_two_view_geometry
from tiepoint.io.h5 import read_features
from tiepoint.pipeline.verify import VerificationOptions, verify_pairs


def test_verified_geometry_is_right_and_repeatable(corner_scene, corner_features, corner_matches, tmp_path):
    pairs, matches = corner_matches
    K = corner_scene.K
    camera = CameraOptions("PINHOLE", (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    summary = verify_pairs(pairs, corner_features, matches, tmp_path / "g.h5", camera=camera, progress=False)
    assert sorted(summary.done) == sorted(pairs) and not summary.failed
    with h5py.File(tmp_path / "g.h5", "r") as file:
        for name0, name1 in pairs:
            record = read_two_view_geometry(file, name0, name1)
            # CALIBRATED, or PLANAR_OR_PANORAMIC where most matches lie on the floor; never DEGENERATE
            assert record["config"] in (2, 6)
            inliers = record["inlier_matches"]
            assert len(inliers) > 40
            # the verified inliers satisfy the true epipolar geometry
            (R0, t0), (R1, t1) = corner_scene.poses[name0], corner_scene.poses[name1]
            R, t = R1 @ R0.T, t1 - R1 @ R0.T @ t0
            E = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]]) @ R
            F = np.linalg.inv(K).T @ E @ np.linalg.inv(K)
            x0 = read_features(corner_features, name0).keypoints[inliers[:, 0]]
            x1 = read_features(corner_features, name1).keypoints[inliers[:, 1]]
            h0, h1 = np.c_[x0, np.ones(len(x0))], np.c_[x1, np.ones(len(x1))]
            lines = h0 @ F.T
            distance = np.abs(np.sum(h1 * lines, 1)) / np.linalg.norm(lines[:, :2], axis=1)
            assert np.median(distance) < 0.5
            if record["cam2_from_cam1"] is not None:
                assert rotation_error(record["cam2_from_cam1"][:, :3], R) < 2
    again = verify_pairs(pairs, corner_features, matches, tmp_path / "h.h5", camera=camera, progress=False)
    with h5py.File(tmp_path / "g.h5", "r") as first, h5py.File(tmp_path / "h.h5", "r") as second:
        for pair in pairs:
            np.testing.assert_array_equal(
                read_two_view_geometry(first, *pair)["inlier_matches"],
                read_two_view_geometry(second, *pair)["inlier_matches"],
            )
    assert not again.failed
    rerun = verify_pairs(pairs, corner_features, matches, tmp_path / "g.h5", camera=camera, progress=False)
    assert rerun.done == [] and len(rerun.skipped) == len(pairs)
    with pytest.raises(OptionError, match="already holds two-view geometries"):
        verify_pairs(pairs, corner_features, matches, tmp_path / "g.h5", progress=False)


def test_options_are_checked(corner_features, corner_matches, tmp_path):
    with pytest.raises(OptionError, match="max_error"):
        VerificationOptions(max_error=0)
    with pytest.raises(OptionError, match="min_num_inliers"):
        VerificationOptions(min_num_inliers=2)
    pairs, _matches = corner_matches
    with pytest.raises(FileNotFoundError):
        verify_pairs(pairs, corner_features, tmp_path / "missing.h5", tmp_path / "g.h5", progress=False)


def test_unrelated_images_are_stored_without_inliers(corner_features, tmp_path):
    import shutil

    from tiepoint.io.h5 import open_for_update, write_matches

    features = tmp_path / "features.h5"
    shutil.copy(corner_features, features)
    count = len(read_features(features, "view0.png"))
    rng = np.random.default_rng(0)
    indices = np.stack([np.arange(60), rng.permutation(60)], 1)  # 60 random matches: no geometry
    with open_for_update(tmp_path / "m.h5") as file:
        write_matches(file, "view0.png", "view5.png", indices, np.ones(60, np.float32), count)
    summary = verify_pairs(
        [("view0.png", "view5.png")], features, tmp_path / "m.h5", tmp_path / "g.h5", progress=False
    )
    assert summary.done == [("view0.png", "view5.png")]
    with h5py.File(tmp_path / "g.h5", "r") as file:
        record = read_two_view_geometry(file, "view0.png", "view5.png")
    assert len(record["inlier_matches"]) < 15


def test_pairs_with_few_inliers_for_their_matches_fail(corner_features, corner_matches, tmp_path):
    """100 of a pair's true matches among four times as many random ones: COLMAP's test alone passes the pair
    on the true matches, the default inlier-ratio floor (0.25, as GLOMAP) marks it degenerate."""
    from tiepoint.io.h5 import open_for_update, read_matches, write_matches

    pairs, matches = corner_matches
    pair = pairs[0]
    true, _ = read_matches(matches, *pair)
    rng = np.random.default_rng(0)
    true = true[rng.choice(len(true), 100, replace=False)]
    count0, count1 = (
        len(read_features(corner_features, pair[0])),
        len(read_features(corner_features, pair[1])),
    )
    free0 = rng.permutation(np.setdiff1d(np.arange(count0), true[:, 0]))
    free1 = rng.permutation(np.setdiff1d(np.arange(count1), true[:, 1]))
    indices = np.concatenate([true, np.stack([free0[:400], free1[:400]], 1)])
    with open_for_update(tmp_path / "m.h5") as file:
        write_matches(file, *pair, indices, np.ones(len(indices), np.float32), count0)

    def verified(output, **options):
        verify_pairs(
            [pair],
            corner_features,
            tmp_path / "m.h5",
            tmp_path / output,
            options=VerificationOptions(**options),
            progress=False,
        )
        with h5py.File(tmp_path / output, "r") as file:
            return read_two_view_geometry(file, *pair)

    alone = verified("colmap.h5", min_inlier_ratio=0)
    assert len(true) * 0.8 <= len(alone["inlier_matches"]) < 0.25 * len(indices)
    floored = verified("floored.h5")
    assert floored["config"] == 1 and len(floored["inlier_matches"]) == 0  # DEGENERATE
    assert floored["F"] is None and floored["E"] is None and floored["H"] is None
    with pytest.raises(OptionError, match="min_inlier_ratio"):
        VerificationOptions(min_inlier_ratio=1.0)


def test_invalid_stored_geometries_are_verified_again(corner_features, corner_matches, tmp_path):
    from tiepoint.io.h5 import pair_key

    pairs, matches = corner_matches
    output = tmp_path / "g.h5"
    first = verify_pairs(pairs[:2], corner_features, matches, output, progress=False)
    assert not first.failed
    with h5py.File(output, "r+") as file:
        file[pair_key(*pairs[0]) + "/inlier_matches"][0, 0] = 10**6  # beyond the image's keypoints
        if "F" in file[pair_key(*pairs[1])]:
            file[pair_key(*pairs[1]) + "/F"][0, 0] = np.nan
        else:
            del file[pair_key(*pairs[1])].attrs["config"]
    summary = verify_pairs(pairs[:2], corner_features, matches, output, progress=False)
    assert summary.invalid == pairs[:2] and sorted(summary.done) == sorted(pairs[:2])
    with h5py.File(output, "r") as file:
        assert read_two_view_geometry(file, *pairs[0])["inlier_matches"].max() < 10**6


def test_geometries_of_changed_matches_or_features_are_verified_again(corner_features, tmp_path, caplog):
    import shutil

    from tiepoint.io.h5 import feature_fingerprint, matches_fingerprint, pair_key, write_features
    from tiepoint.pipeline.matching import StaleInputError, match_pairs
    from tiepoint.pipeline.pairs import exhaustive_pairs

    features, matches, output = tmp_path / "features.h5", tmp_path / "matches.h5", tmp_path / "g.h5"
    shutil.copy(corner_features, features)
    pairs = exhaustive_pairs([f"view{i}.png" for i in range(4)])
    match_pairs(pairs, features, matches, progress=False)
    verify_pairs(pairs, features, matches, output, progress=False)
    with h5py.File(output, "r") as file:
        attrs = file[pair_key("view1.png", "view2.png")].attrs
        assert attrs["matches_fingerprint"] == matches_fingerprint(matches, "view1.png", "view2.png")
        assert attrs["features_fingerprint0"] == feature_fingerprint(features, "view1.png")
        assert attrs["features_fingerprint1"] == feature_fingerprint(features, "view2.png")
    # view2 extracted again, as many keypoints (its own, shuffled)
    old = read_features(features, "view2.png")
    order = np.random.default_rng(0).permutation(len(old))
    new = type(old)(old.keypoints[order], old.scores[order], old.descriptors[order], old.image_size)
    with h5py.File(features, "r+") as file:
        write_features(file, "view2.png", new, attrs={"method": file["view2.png"].attrs["method"]})
    with pytest.raises(StaleInputError, match="match-pairs"):  # its old matches with its new keypoints
        verify_pairs(pairs, features, matches, output, progress=False)
    match_pairs(pairs, features, matches, progress=False)
    with caplog.at_level("INFO", logger="tiepoint"):
        summary = verify_pairs(pairs, features, matches, output, progress=False)
    changed = [pair for pair in pairs if "view2.png" in pair]
    assert summary.changed == changed and sorted(summary.done) == sorted(changed) and not summary.invalid
    assert "with changed inputs" in str(summary)
    clean = tmp_path / "clean.h5"
    verify_pairs(pairs, features, matches, clean, progress=False)
    with h5py.File(output, "r") as first, h5py.File(clean, "r") as second:
        for pair in pairs:
            a, b = read_two_view_geometry(first, *pair), read_two_view_geometry(second, *pair)
            np.testing.assert_array_equal(a["inlier_matches"], b["inlier_matches"])
            assert a["config"] == b["config"]
    # matches computed again alone (another matcher's, into a copy) also make their pairs verified again
    assert verify_pairs(pairs, features, matches, output, progress=False).done == []
    with h5py.File(matches, "r+") as file:
        group = file[pair_key("view0.png", "view1.png")]
        group["matches0"][:10] = -1
        del group.attrs["fingerprint"]  # as another tool would leave it: hashed on read
    again = verify_pairs(pairs, features, matches, output, progress=False)
    assert again.changed == [("view0.png", "view1.png")] and again.done == again.changed
    # geometries without a record (an older tiepoint's) are kept
    with h5py.File(output, "r+") as file:
        for pair in pairs:
            for key in ("matches_fingerprint", "features_fingerprint0", "features_fingerprint1"):
                del file[pair_key(*pair)].attrs[key]
    with h5py.File(matches, "r+") as file:
        file[pair_key("view0.png", "view1.png")]["matches0"][10:20] = -1
    assert verify_pairs(pairs, features, matches, output, progress=False).skipped == pairs

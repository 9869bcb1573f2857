"""COLMAP databases written through pycolmap: cameras, images, keypoints, matches, two-view geometries."""

from __future__ import annotations

import h5py
import numpy as np
import pycolmap
import pytest

from tiepoint.errors import OptionError
from tiepoint.io.colmap import CameraOptions, camera_descriptions, two_view_geometry, write_database
from tiepoint.io.h5 import open_for_update, write_features, write_group, write_matches
from tiepoint.types import Features


def test_camera_options():
    default = CameraOptions().describe((640, 480))
    assert default == {
        "model": "SIMPLE_RADIAL",
        "width": 640,
        "height": 480,
        "params": [768.0, 320.0, 240.0, 0.0],
        "prior_focal": False,
    }
    known = CameraOptions("PINHOLE", (1500, 1510, 300, 240)).describe((640, 480))
    assert (
        known["params"] == [1500, 1510, 300.5, 240.5] and known["prior_focal"]
    )  # +0.5: COLMAP's pixel centres
    with pytest.raises(OptionError, match="takes 4 parameters"):
        CameraOptions("PINHOLE", (1500, 300, 240))
    with pytest.raises(OptionError, match="FISHEYE"):
        CameraOptions("FISHEYE")
    cameras, index = camera_descriptions({"a": (640, 480), "b": (640, 480)}, CameraOptions(single=True))
    assert len(cameras) == 1 and index == {"a": 0, "b": 0}
    cameras, index = camera_descriptions({"a": (640, 480), "b": (320, 240)}, CameraOptions())
    assert [c["width"] for c in cameras] == [640, 320] and index == {"a": 0, "b": 1}
    with pytest.raises(OptionError, match="single camera"):
        camera_descriptions({"a": (640, 480), "b": (320, 240)}, CameraOptions(single=True))


def _files(tmp_path):
    rng = np.random.default_rng(0)
    features, matches, geometries = tmp_path / "f.h5", tmp_path / "m.h5", tmp_path / "g.h5"
    keypoints = {
        name: (rng.random((n, 2)) * 100).astype(np.float32)
        for name, n in [("a.png", 30), ("d/b.png", 40), ("c.png", 20)]
    }
    with h5py.File(features, "w") as file:
        for name, points in keypoints.items():
            n = len(points)
            write_features(
                file, name, Features(points, np.ones(n, np.float32), np.zeros((n, 8), np.float32), (120, 100))
            )
    pair_matches = {
        ("a.png", "d/b.png"): np.stack([np.arange(20), np.arange(20) + 5], 1),
        ("c.png", "a.png"): np.stack([np.arange(10), np.arange(10)], 1),
    }
    with open_for_update(matches) as file:
        for (n0, n1), indices in pair_matches.items():
            write_matches(file, n0, n1, indices, np.ones(len(indices), np.float32), len(keypoints[n0]))
    with open_for_update(geometries) as file:
        inliers = pair_matches[("a.png", "d/b.png")][:15].astype(np.int32)
        write_group(
            file,
            "a.png/d-b.png",
            {"inlier_matches": inliers, "F": np.eye(3)},
            {"config": 3, "config_name": "UNCALIBRATED"},
        )
    return features, matches, geometries, keypoints, pair_matches


def test_write_database_round_trip(tmp_path):
    features, matches, geometries, keypoints, pair_matches = _files(tmp_path)
    summary = write_database(
        tmp_path / "database.db",
        features,
        matches,
        list(pair_matches),
        geometries=geometries,
        camera=CameraOptions(single=True),
    )
    assert (summary.num_cameras, summary.num_matched_pairs, summary.num_verified_pairs) == (1, 2, 1)
    database = pycolmap.Database.open(str(tmp_path / "database.db"))
    try:
        assert database.num_images() == 3 and database.num_cameras() == 1
        for name, image_id in summary.image_ids.items():
            assert database.read_image(image_id).name == name
            np.testing.assert_allclose(
                database.read_keypoints(image_id)[:, :2], keypoints[name] + 0.5, atol=1e-5
            )
        ids = summary.image_ids
        stored = database.read_matches(ids["a.png"], ids["d/b.png"])
        np.testing.assert_array_equal(stored, pair_matches[("a.png", "d/b.png")])
        stored = database.read_matches(ids["c.png"], ids["a.png"])
        np.testing.assert_array_equal(stored, pair_matches[("c.png", "a.png")])
        geometry = database.read_two_view_geometry(ids["a.png"], ids["d/b.png"])
        assert int(geometry.config) == 3 and len(geometry.inlier_matches) == 15
        assert database.num_verified_image_pairs() == 1
    finally:
        database.close()
    assert not list(tmp_path.glob("*.partial"))


def test_write_database_without_geometries_and_missing_pairs(tmp_path, caplog):
    features, matches, _, _, pair_matches = _files(tmp_path)
    summary = write_database(
        tmp_path / "raw.db", features, matches, list(pair_matches) + [("c.png", "d/b.png")]
    )
    assert summary.num_cameras == 3 and summary.num_matched_pairs == 2 and summary.num_verified_pairs == 0
    assert "no matches for c.png, d/b.png" in caplog.text
    with pytest.raises(FileNotFoundError):
        write_database(tmp_path / "x.db", tmp_path / "missing.h5", matches, [])


def test_two_view_geometry_from_record():
    record = {
        "config": 2,
        "inlier_matches": np.array([[0, 1], [2, 3]]),
        "E": np.eye(3),
        "cam2_from_cam1": np.c_[np.eye(3), [1.0, 0, 0]],
    }
    geometry = two_view_geometry(record)
    assert int(geometry.config) == 2
    np.testing.assert_array_equal(geometry.inlier_matches, [[0, 1], [2, 3]])
    np.testing.assert_allclose(geometry.cam2_from_cam1.translation, [1, 0, 0])

"""COLMAP databases written through pycolmap: cameras, images, keypoints, matches, two-view geometries."""

from __future__ import annotations

from types import SimpleNamespace

import h5py
import numpy as np
import pycolmap
import pytest
from PIL import Image

from tiepoint.errors import OptionError
from tiepoint.io.colmap import (
    CameraOptions,
    camera_descriptions,
    database_focal_priors,
    implausible_cameras,
    implausible_intrinsics,
    read_exif,
    two_view_geometry,
    write_database,
)
from tiepoint.io.h5 import open_for_update, write_features, write_group, write_matches
from tiepoint.io.image import CameraExif, read_camera_exif
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
    # three images of one size without EXIF: one shared camera (camera mode "auto")
    assert summary.num_cameras == 1 and summary.num_matched_pairs == 2 and summary.num_verified_pairs == 0
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


def _photo(path, size, make=None, model=None, focal=None, focal_35mm=None, plane=None):
    """A small JPEG (PNG without EXIF) of ``size`` with the given EXIF camera tags; ``plane``:
    ``(FocalPlaneXResolution, unit, PixelXDimension)``."""
    exif = Image.Exif()
    if make is not None:
        exif[0x010F], exif[0x0110] = make, model
    sub = exif.get_ifd(0x8769)
    if focal is not None:
        sub[0x920A] = float(focal)
    if focal_35mm is not None:
        sub[0xA405] = int(focal_35mm)
    if plane is not None:
        sub[0xA20E], sub[0xA210], sub[0xA002] = float(plane[0]), int(plane[1]), int(plane[2])
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8))
    if path.suffix == ".png":
        pixels.save(path)
    else:
        pixels.save(path, "JPEG", exif=exif)


def test_camera_modes():
    assert CameraOptions().mode == "auto" and not CameraOptions().single
    assert CameraOptions(single=True).mode == "single"  # the older option, kept
    assert CameraOptions(mode="single").single and CameraOptions(mode="per-image").mode == "per_image"
    with pytest.raises(OptionError, match="camera mode"):
        CameraOptions(mode="per_rig")
    with pytest.raises(OptionError, match="contradict"):
        CameraOptions(single=True, mode="per_image")


def test_cameras_grouped_by_exif_camera_and_size(tmp_path):
    _photo(tmp_path / "canon1.jpg", (64, 48), "Canon", "EOS 5D", focal=50, focal_35mm=50)
    _photo(tmp_path / "canon2.jpg", (64, 48), "Canon", "EOS 5D", focal=50, focal_35mm=50)
    _photo(tmp_path / "sony.jpg", (64, 48), "Sony", "A7", focal=24, focal_35mm=24)
    _photo(tmp_path / "plain1.png", (64, 48))
    _photo(tmp_path / "d/plain2.png", (64, 48))
    _photo(tmp_path / "small.png", (32, 24))
    names = ["canon1.jpg", "plain1.png", "sony.jpg", "canon2.jpg", "d/plain2.png", "small.png"]
    sizes = {name: (32, 24) if name == "small.png" else (64, 48) for name in names}
    exif = read_exif(tmp_path, names)
    assert exif["plain1.png"] == CameraExif(64, 48) and not exif["plain1.png"].has_camera

    cameras, camera_of = camera_descriptions(sizes, CameraOptions(), exif)
    # two devices -> two cameras; no EXIF, same size -> one camera; another size -> another camera
    assert len(cameras) == 4
    assert camera_of["canon1.jpg"] == camera_of["canon2.jpg"] != camera_of["sony.jpg"]
    assert camera_of["plain1.png"] == camera_of["d/plain2.png"] != camera_of["small.png"]
    canon, sony, plain = (cameras[camera_of[n]] for n in ("canon1.jpg", "sony.jpg", "plain1.png"))
    # FocalLengthIn35mmFilm: the same diagonal angle of view as on a 36 x 24 mm frame (diagonal 43.27 mm)
    assert canon["prior_focal"] and canon["params"][0] == pytest.approx(50 * 80 / 43.27, abs=0.01)
    assert sony["params"][0] == pytest.approx(24 * 80 / 43.27, abs=0.01)
    assert not plain["prior_focal"] and plain["params"][0] == pytest.approx(1.2 * 64)

    assert len(camera_descriptions(sizes, CameraOptions(mode="per_image"), exif)[0]) == 6
    assert len(camera_descriptions(sizes, CameraOptions(), None)[0]) == 2  # no EXIF known: by size
    folders = {name: size for name, size in sizes.items() if name != "small.png"}
    assert len(camera_descriptions(folders, CameraOptions(mode="per_folder"), exif)[0]) == 2
    with pytest.raises(OptionError, match="one size"):
        camera_descriptions(sizes, CameraOptions(mode="single"), exif)
    # known intrinsics win over EXIF
    known = camera_descriptions(sizes, CameraOptions("PINHOLE", (70, 70, 31.5, 23.5)), exif)[0]
    assert all(c["params"][0] == 70 for c in known)


def test_focal_prior_from_the_focal_plane_resolution(tmp_path):
    # a 4000 px wide, 6.4 mm wide sensor (6250 px/cm), a 4 mm lens, the photo shrunk to 64 px wide
    _photo(tmp_path / "phone.jpg", (64, 48), "Phone", "X", focal=4.0, plane=(6250, 3, 4000))
    tags = read_camera_exif(tmp_path / "phone.jpg")
    assert tags.focal_plane_px_per_mm == pytest.approx(625) and tags.exif_width == 4000
    assert tags.focal_pixels == pytest.approx(4.0 / 6.4 * 64)
    assert CameraExif(64, 48, "Phone", "X", focal_length_mm=4.0).focal_pixels is None  # no sensor size
    assert read_camera_exif(tmp_path / "missing.jpg") is None


def test_write_database_with_exif_priors(tmp_path):
    features, matches, geometries, _, pair_matches = _files(tmp_path)
    images = tmp_path / "images"
    for name in ("a.png", "c.png"):  # the same EXIF camera (written as JPEG under a .png name)
        _photo(images / name.replace(".png", ".jpg"), (120, 100), "Canon", "EOS", focal=50, focal_35mm=50)
        (images / name.replace(".png", ".jpg")).rename(images / name)
    _photo(images / "d/b.png", (120, 100))
    summary = write_database(
        tmp_path / "db.db", features, matches, list(pair_matches), geometries, image_root=images
    )
    assert summary.num_cameras == 2
    by_images = {tuple(c["images"]): c for c in summary.cameras}
    exif_camera = by_images[("a.png", "c.png")]
    assert exif_camera["prior_focal"] and not by_images[("d/b.png",)]["prior_focal"]
    priors = database_focal_priors(tmp_path / "db.db")
    assert priors[exif_camera["camera_id"]] == pytest.approx(50 * np.hypot(120, 100) / 43.27, abs=0.01)
    assert priors[by_images[("d/b.png",)]["camera_id"]] is None


def _camera(model, params, size=(640, 480)):
    return pycolmap.Camera(model=model, width=size[0], height=size[1], params=params)


def test_implausible_intrinsics():
    # plausible: the default focal, a moderate distortion, a known telephoto focal
    assert implausible_intrinsics(_camera("SIMPLE_RADIAL", [768, 320, 240, -0.3])) is None
    assert implausible_intrinsics(_camera("SIMPLE_RADIAL", [2000, 320, 240, 1.0])) is None
    assert implausible_intrinsics(_camera("PINHOLE", [1500, 1500, 320, 240]), prior_focal=1520) is None
    # a long focal with a strong distortion: -10 at r = 0.2 moves the corners by 40%
    flagged = implausible_intrinsics(_camera("SIMPLE_RADIAL", [2000, 320, 240, -10]))
    assert flagged["corner_distortion"] == pytest.approx(10 * (400 / 2000) ** 2, rel=1e-3)
    assert "distortion" in flagged["reason"] and "focal" not in flagged["reason"]
    assert flagged["k"] == [-10] and flagged["prior_focal_px"] is None
    # the focal length: beyond 3 x the default without a prior, beyond 2 x a prior
    assert (
        "focal length 3000 px"
        in implausible_intrinsics(_camera("SIMPLE_PINHOLE", [3000, 320, 240]))["reason"]
    )
    flagged = implausible_intrinsics(_camera("RADIAL", [2500, 320, 240, 0, 0]), prior_focal=1000)
    assert flagged["focal_ratio"] == 2.5 and flagged["prior_focal_px"] == 1000
    assert implausible_intrinsics(_camera("OPENCV_FISHEYE", [300, 300, 320, 240, 0, 0, 0, 0])) is None


def test_implausible_cameras_of_a_model():
    cameras = {
        1: _camera("SIMPLE_RADIAL", [760, 320, 240, 0.01]),
        2: _camera("SIMPLE_RADIAL", [1957, 320, 240, -7]),
    }
    images = {i: SimpleNamespace(name=f"view{i}.png", camera_id=1 if i < 3 else 2) for i in range(1, 6)}
    model = SimpleNamespace(cameras=cameras, reg_image_ids=lambda: [1, 2, 3, 4], image=images.__getitem__)
    flagged = implausible_cameras(model, {1: None, 2: None})
    assert [(c["camera_id"], c["images"], c["num_images"]) for c in flagged] == [
        (2, ["view3.png", "view4.png"], 2)
    ]
    assert implausible_cameras(model, {2: 4000.0})[0]["reason"].startswith("focal length 1957 px is 0.49 x")

"""The training photo corpus: list parsing, carving, splits, the evaluation guard, building and resuming."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tiepoint.errors import DatasetError, ImageError
from tiepoint_lab.data.photos import (
    MANIFEST,
    PhotoSource,
    build_photo_corpus,
    carve_largest_jpeg,
    decode_image,
    is_evaluation_name,
    list_photos,
    read_photo_list,
    scene_key,
    split_of,
)

HEADER = "source\tlicense\tinstalled_path\tw\th\tbytes\n"


def _jpeg(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()


def test_read_photo_list_and_names(tmp_path):
    tsv = tmp_path / "photos.tsv"
    tsv.write_text(
        HEADER
        + "deb:plasma-workspace-wallpapers\tLGPL-3\t"
        + "/usr/share/wallpapers/Kite/contents/images/2560x1440.jpg\t2560\t1440\t9\n"
        + "pypi:scikit-image (wheel)\tCC0\t/skimage/data/camera.png\t512\t512\t9\n"
    )
    photos = read_photo_list(tsv)
    assert [p.name for p in photos] == ["plasma-workspace-wallpapers__Kite.jpg", "scikit-image__camera.jpg"]
    assert [p.kind for p in photos] == ["deb", "pypi"]
    assert photos[1].package == "scikit-image"


def test_read_photo_list_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_photo_list(tmp_path / "missing.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(DatasetError, match="columns"):
        read_photo_list(bad)
    bad.write_text(HEADER + "deb:x\tGPL\t/a.jpg\twide\t1\t1\n")
    with pytest.raises(DatasetError, match="line 2"):
        read_photo_list(bad)
    bad.write_text(HEADER + "http:x\tGPL\t/a.jpg\t1\t1\t1\n")
    with pytest.raises(DatasetError, match="source kind"):
        read_photo_list(bad)


def test_carve_largest_jpeg_picks_the_biggest_stream():
    small, large = _jpeg(40, 30, 1), _jpeg(120, 90, 2)
    blob = b"EET header \xff\xd8 junk" + small + b"\x00" * 17 + large + b"trailer"
    carved = carve_largest_jpeg(blob)
    assert Image.open(io.BytesIO(carved)).size == (120, 90)
    assert decode_image(carved, "x").shape == (90, 120, 3)
    with pytest.raises(ImageError, match="no JPEG"):
        carve_largest_jpeg(b"\x00" * 100, "empty.edj")


def test_decode_image_16_bit_and_garbage():
    array = np.full((20, 30), 65535, np.uint16)
    decoded = decode_image(_png(array), "deep.png")
    assert decoded.shape == (20, 30, 3) and decoded.dtype == np.uint8 and decoded.max() == 255
    with pytest.raises(ImageError, match="garbage.png"):
        decode_image(b"not an image at all", "garbage.png")


def test_scene_key_keeps_stereo_pairs_together():
    assert scene_key("opencv-doc__left07.jpg") == scene_key("opencv-doc__right07.jpg")
    assert scene_key("opencv-doc__aloeL.jpg") == scene_key("opencv-doc__aloeR.jpg") == "opencv-doc__aloe"
    assert scene_key("opencv-doc__basketball1.jpg") == scene_key("opencv-doc__basketball2.jpg")
    assert scene_key("mate-backgrounds__Garden.jpg") != scene_key("mate-backgrounds__Wood.jpg")


def test_split_is_deterministic_and_about_ten_percent():
    names = [f"pkg__photo{chr(97 + i)}{chr(97 + j)}.jpg" for i in range(26) for j in range(26)]
    splits = [split_of(n) for n in names]
    assert splits == [split_of(n) for n in names]
    assert 0.06 < splits.count("val") / len(names) < 0.14
    assert split_of("x__a.jpg", val_percent=0) == "train" and split_of("x__a.jpg", val_percent=100) == "val"


@pytest.mark.parametrize(
    "path",
    [
        "/usr/share/doc/opencv-doc/examples/data/graf1.png",
        "/x/leuvenA.jpg",
        "/d/oxford_affine/bark/img1.png",
        "/m/templeSR0001.png",
        "/skimage/data/motorcycle_left.png",
        "boat/img6.pgm",
    ],
)
def test_evaluation_names_are_refused(path):
    assert is_evaluation_name(path)


@pytest.mark.parametrize(
    "path", ["/usr/share/backgrounds/Wood.jpg", "/x/wallpaper.png", "/x/grafitti.jpg", "/x/boats.jpg"]
)
def test_other_names_pass(path):
    assert not is_evaluation_name(path)


def _skimage_tsv(tmp_path: Path, names: list[str]) -> Path:
    tsv = tmp_path / "photos.tsv"
    lines = [f"pypi:scikit-image (wheel)\tCC0\t/skimage/data/{n}\t512\t512\t1\n" for n in names]
    tsv.write_text(HEADER + "".join(lines))
    return tsv


def test_build_from_wheel_refuses_evaluation_images_and_resumes(tmp_path):
    tsv = _skimage_tsv(tmp_path, ["camera.png", "coins.png", "motorcycle_left.png", "no_such_file.png"])
    out = tmp_path / "corpus"
    lines = []
    summary = build_photo_corpus(tsv, out, max_edge=200, progress=lines.append)
    assert sorted(summary.written) == ["scikit-image__camera.jpg", "scikit-image__coins.jpg"]
    reasons = dict(summary.skipped)
    assert "evaluation" in reasons["/skimage/data/motorcycle_left.png"]
    assert "not in package" in reasons["/skimage/data/no_such_file.png"]
    manifest = json.loads((out / MANIFEST).read_text())
    entry = next(e for e in manifest["photos"] if e["file"] == "scikit-image__camera.jpg")
    assert entry["original_size"] == [512, 512] and entry["size"] == [200, 200]
    assert (
        entry["license"] == "CC0"
        and entry["package"] == "scikit-image"
        and entry["split"] in ("train", "val")
    )
    assert max(Image.open(out / "scikit-image__coins.jpg").size) == 200
    assert not list(out.glob("*.partial")) and len(lines) == 4

    again = build_photo_corpus(tsv, out, max_edge=200)
    assert again.written == [] and sorted(again.existing) == sorted(summary.written)
    everything = list_photos(out, "train") + list_photos(out, "val")
    assert sorted(p.name for p in everything) == sorted(summary.written)


def test_content_guard_refuses_a_renamed_evaluation_image(tmp_path):
    import skimage.data

    evaluation = tmp_path / "eval" / "seq"
    evaluation.mkdir(parents=True)
    cv2.imwrite(str(evaluation / "img1.png"), skimage.data.camera())
    tsv = _skimage_tsv(tmp_path, ["camera.png", "coins.png"])
    summary = build_photo_corpus(tsv, tmp_path / "corpus", max_edge=128, evaluation_root=tmp_path / "eval")
    assert summary.written == ["scikit-image__coins.jpg"]
    assert "same content as evaluation image" in dict(summary.skipped)["/skimage/data/camera.png"]


def test_list_photos_errors(tmp_path):
    with pytest.raises(DatasetError, match="no photo corpus"):
        list_photos(tmp_path)
    with pytest.raises(DatasetError, match="split"):
        list_photos(tmp_path, "test")
    (tmp_path / MANIFEST).write_text(
        json.dumps({"photos": [{"file": "opencv-doc__graf1.jpg", "split": "train"}]})
    )
    with pytest.raises(DatasetError, match="evaluation image"):
        list_photos(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(DatasetError, match="corrupt"):
        list_photos(tmp_path)


@pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="dpkg-deb not available (not a Debian-based system)"
)
def test_build_from_a_cached_deb_with_edj_and_wallpaper_folder(tmp_path):
    """A local .deb in the cache stands in for `apt-get download`: nothing is fetched."""
    root = tmp_path / "pkgroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: tiepoint-test-photos\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: test\n"
    )
    edj = root / "usr/share/themes/Bg.edj"
    edj.parent.mkdir(parents=True)
    edj.write_bytes(b"edje" + _jpeg(48, 32, 3) + b"\x01\x02" + _jpeg(160, 100, 4) + b"end")
    images = root / "usr/share/wallpapers/Kite/contents/images"
    images.mkdir(parents=True)
    (images / "640x400.jpg").write_bytes(_jpeg(64, 40, 5))
    (images / "2560x1600.jpg").write_bytes(_jpeg(256, 160, 6))
    cache = tmp_path / "cache"
    cache.mkdir()
    subprocess.run(
        ["dpkg-deb", "--build", str(root), str(cache / "tiepoint-test-photos_1.0_all.deb")],
        check=True,
        capture_output=True,
    )
    tsv = tmp_path / "photos.tsv"
    tsv.write_text(
        HEADER
        + "deb:tiepoint-test-photos (JPEG extracted from .edj)\tBSD-2\t"
        + "/usr/share/themes/Bg.edj\t160\t100\t1\n"
        + "deb:tiepoint-test-photos\tLGPL-3\t"
        + "/usr/share/wallpapers/Kite/contents/images/640x400.jpg\t64\t40\t1\n"
    )
    summary = build_photo_corpus(tsv, tmp_path / "corpus", cache=cache)
    assert sorted(summary.written) == ["tiepoint-test-photos__Bg.jpg", "tiepoint-test-photos__Kite.jpg"]
    assert Image.open(tmp_path / "corpus" / "tiepoint-test-photos__Bg.jpg").size == (160, 100)
    assert Image.open(tmp_path / "corpus" / "tiepoint-test-photos__Kite.jpg").size == (
        256,
        160,
    )  # the largest file


def test_photo_source_name_of_plain_file():
    photo = PhotoSource(
        "deb:mate-backgrounds", "GPL-2+", "/usr/share/backgrounds/mate/nature/Wood.jpg", 1, 1, 1
    )
    assert photo.name == "mate-backgrounds__Wood.jpg"

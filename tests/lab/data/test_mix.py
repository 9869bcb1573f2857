"""The mixed training stream and the benchmark sets written from it: sources, determinism, ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tiepoint.errors import OptionError
from tiepoint.evaluation.datasets import Dataset, Pair, load_dataset, oxford_affine
from tiepoint.types import Camera
from tiepoint_lab.data.benchmarks import (
    optical_axis_angle_deg,
    write_relit_homographies,
    write_relit_pairs,
)
from tiepoint_lab.data.homography import HomographyPairs, warp_points
from tiepoint_lab.data.mix import MixedPairs, correspond, make_stream, stream_spec


def test_stream_specs_are_checked():
    assert stream_spec("mix")["scenes"]["weight"] == 0.5
    assert stream_spec("homography", rotation_deg=30)["homography"]["rotation_deg"] == 30
    with pytest.raises(OptionError, match="unknown stream"):
        stream_spec("everything")
    with pytest.raises(OptionError, match="weight"):
        stream_spec({"homography": {"weight": 0}})
    with pytest.raises(OptionError, match="sources"):
        stream_spec({"video": {"weight": 1}})


def test_items_come_from_their_sources_in_proportion_and_repeat(photos):
    sources = {
        "a": HomographyPairs(photos, size=(32, 32), seed=1, photometric=False),
        "b": HomographyPairs(photos, size=(32, 32), seed=2, photometric=False),
    }
    mixed = MixedPairs(sources, {"a": 3, "b": 1}, seed=5, length=400)
    names = [mixed.source_of(i) for i in range(400)]
    assert 0.65 < names.count("a") / 400 < 0.85
    item = mixed[7]
    expected = sources[item["source"]][7 % 4]
    torch.testing.assert_close(item["image1"], expected["image1"])
    mixed.set_epoch(1)
    assert [mixed.source_of(i) for i in range(400)] != names  # a new epoch draws again
    mixed.set_epoch(0)
    assert [mixed.source_of(i) for i in range(400)] == names
    with pytest.raises(IndexError):
        mixed[400]


def test_homography_correspondences_are_the_warp_inside_image_one():
    H = torch.tensor([[1.0, 0.0, 10.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    item = {"image1": torch.zeros(3, 20, 30), "H_0to1": H}
    points = torch.tensor([[0.0, 0.0], [25.0, 5.0]])
    mapped, visible = correspond(item, points)
    torch.testing.assert_close(mapped, warp_points(points, H))
    assert visible.tolist() == [True, False]  # x = 35 lies beyond the 30 px wide image 1
    with pytest.raises(OptionError, match="ground truth"):
        correspond({"image1": item["image1"]}, points)


def test_relit_photos_change_image_one_only(photos):
    plain = make_stream("homography", photos, size=(48, 48), seed=3)
    relit = make_stream({"relit": {"weight": 1.0}}, photos, size=(48, 48), seed=3)
    changed = 0
    for index in range(4):
        a, b = plain[index], relit[index]
        torch.testing.assert_close(a["H_0to1"], b["H_0to1"])  # the same geometry
        assert b["source"] == "relit" and b["clean1"].shape == b["image1"].shape
        changed += float((b["image1"] - b["clean1"]).abs().mean()) > 0.01
    assert changed >= 2


def _write(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def test_relit_pairs_keep_the_ground_truth(tmp_path, textured_image):
    image = np.ascontiguousarray(textured_image[:64, :80])
    _write(tmp_path / "src" / "a.png", image)
    _write(tmp_path / "src" / "b.png", image[:, ::-1].copy())
    camera = Camera.from_K(np.array([[70.0, 0, 40], [0, 70.0, 32], [0, 0, 1]]), 80, 64)
    R = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    pair = Pair(
        "a-b",
        tmp_path / "src/a.png",
        tmp_path / "src/b.png",
        camera0=camera,
        camera1=camera,
        R=R,
        t=[1, 0, 0],
    )
    dataset = Dataset("tiny", "relative_pose", [pair])
    written = write_relit_pairs(dataset, tmp_path / "relit", seed=1)
    loaded = load_dataset(f"pairs:{written}")
    (copy,) = loaded.pairs
    np.testing.assert_allclose(copy.R, R)
    np.testing.assert_allclose(copy.camera1.K, camera.K)
    first, second = copy.load()
    assert np.array_equal(first, image)  # image 0 as it was
    assert np.abs(second.astype(float) - image[:, ::-1]).mean() > 1  # image 1 relit
    record = json.loads((tmp_path / "relit" / "benchmark.json").read_text())
    assert record["pairs"][0]["pair"] == "a-b" and "shading" in record["pairs"][0]["appearance"]
    write_relit_pairs(dataset, tmp_path / "relit", seed=1)  # the same settings: written again
    with pytest.raises(OptionError, match="other settings"):
        write_relit_pairs(dataset, tmp_path / "relit", seed=2)


def test_relit_homographies_keep_the_layout(tmp_path, textured_image):
    from tiepoint.evaluation.datasets import OXFORD_SEQUENCES

    for sequence in OXFORD_SEQUENCES:
        for k in range(1, 7):
            _write(
                tmp_path / "oxford" / sequence / f"img{k}.png", np.ascontiguousarray(textured_image[:40, :50])
            )
            if k > 1:
                (tmp_path / "oxford" / sequence / f"H1to{k}p").write_text(f"1 0 {k}\n0 1 3\n0 0 1\n")
    out = write_relit_homographies(tmp_path / "oxford", tmp_path / "relit", seed=1)
    original, relit = oxford_affine(tmp_path / "oxford"), oxford_affine(out)
    assert len(relit) == len(original) == 40
    np.testing.assert_allclose(relit.pairs[3].H, original.pairs[3].H)
    first, second = relit.pairs[3].load()
    assert np.array_equal(first, original.pairs[3].load()[0])
    assert not np.array_equal(second, original.pairs[3].load()[1])


def test_optical_axis_angle_ignores_roll():
    def rotation(axis, degrees):
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        if axis == "z":
            return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])

    T = np.eye(4)
    T[:3, :3] = rotation("z", 170) @ rotation("y", 30)
    assert optical_axis_angle_deg(T) == pytest.approx(30)


def test_homography_sources_take_the_ranges_of_their_homographies(photos):
    shape = {"rotation_deg": 10.0, "perspective": 0.15, "scale": [0.5, 2.0]}
    stream = make_stream({"homography": {"weight": 1.0, **shape}}, photos, size=(48, 48), seed=3)
    plain = HomographyPairs(
        photos, size=(48, 48), seed=3, rotation_deg=10.0, perspective=0.15, scale=(0.5, 2.0)
    )
    for index in range(2):
        for key in ("image0", "image1", "H_0to1"):
            torch.testing.assert_close(stream[index][key], plain[index][key])

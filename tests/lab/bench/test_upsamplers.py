"""Upsampler benchmark: the consistency views' geometry, the consistency score, the table."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
from PIL import Image

from tiepoint_lab.bench.upsamplers import consistency, consistency_views, format_upsampler_table


@pytest.fixture
def photo_files(tmp_path, textured_image):
    paths = []
    for index in range(2):
        path = tmp_path / f"p{index}.png"
        Image.fromarray(cv2.resize(np.rot90(textured_image, index).copy(), (224, 160))).save(path)
        paths.append(path)
    return paths


def test_views_points_map_to_their_preimages(photo_files):
    views = consistency_views(photo_files, views=2, max_edge=160, points=100)
    assert len(views) == 4
    for photo, warped, points, preimages in views:
        assert photo.shape == warped.shape and len(points) == len(preimages) > 50
        assert np.all((preimages >= 8) & (preimages <= np.array(photo.shape[1::-1]) - 9))
        # the warped image at a point shows the photo at its preimage
        x, y = np.round(points[:20]).astype(int).T
        u, v = np.round(preimages[:20]).astype(int).T
        assert np.mean(np.abs(warped[y, x].astype(int) - photo[v, u].astype(int))) < 40


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None,
    reason="EfficientNet-Lite wheels not installed",
)
def test_consistency_scores(photo_files):
    scores = consistency("effl0", ["bilinear"], photo_files, views=1, max_edge=160, points=200)
    assert 0.3 < scores["bilinear"]["cosine"] <= 1.0 and scores["bilinear"]["views"] == 2


def test_table():
    data = {
        "environment": {},
        "effl0": {
            "consistency": {"bilinear": {"cosine": 0.8}},
            "correspondence": {
                "bilinear": {"oxford_mma@3px": 0.5, "oxford_mha@3px": 0.6, "middlebury_auc@10deg": 0.1}
            },
            "cost": {
                "bilinear": {
                    "backbone_ms": 500.0,
                    "full_map_ms": 800.0,
                    "keypoints_ms": 20.0,
                    "full_map_peak_extra_mb": 90.0,
                }
            },
        },
    }
    table = format_upsampler_table(data).splitlines()
    assert table[2] == "| effl0 | bilinear | 0.8000 | 50.0 | 60.0 | 10.0 | 500 | 800 | 20 | 90 |"
    assert len(table) == 3 and table[1].count("|") == table[0].count("|")


def test_cli_rejects_an_unknown_part(tmp_path, capsys):
    from tiepoint_lab.cli import main

    assert main(["bench", "upsamplers", "--output", str(tmp_path), "--parts", "speed"]) == 2
    assert "unknown part(s) ['speed']" in capsys.readouterr().err

"""Synthetic extreme-viewpoint pairs: the view homography's known cases, and images that fit their H."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from tiepoint_lab.data import extreme
from tiepoint_lab.data.homography import inside_mask, warp_points


def test_a_frontal_view_at_scale_one_is_the_identity():
    assert np.allclose(extreme.view_homography(0.0, 0.0, 0.0, 1.0), np.eye(3), atol=1e-12)


def test_scale_and_roll_turn_and_zoom_about_the_centre():
    H = extreme.view_homography(0.0, 0.0, 90.0, 2.0)
    width, height = extreme.SIZE
    centre = np.array([[(width - 1) / 2, (height - 1) / 2]])
    assert np.allclose(warp_points(centre, H), centre)
    step = warp_points(centre + [[10.0, 0.0]], H) - centre
    assert np.allclose(np.abs(step), [[0.0, 20.0]], atol=1e-9)  # a quarter turn, twice as large


@pytest.mark.parametrize("azimuth", [0.0, 90.0, 30.0])
def test_a_tilt_compresses_across_its_axis_by_its_cosine(azimuth):
    H = extreme.view_homography(60.0, azimuth, 0.0, 1.0)
    width, height = extreme.SIZE
    centre = np.array([[(width - 1) / 2, (height - 1) / 2]])
    along = np.array([[math.cos(math.radians(azimuth)), math.sin(math.radians(azimuth))]])
    across = along[:, ::-1] * [[-1.0, 1.0]]
    lengths = [np.linalg.norm(warp_points(centre + 0.01 * d, H) - centre) / 0.01 for d in (along, across)]
    assert lengths == pytest.approx([1.0, 0.5], rel=1e-3)  # the axis keeps its length; t = 1 / cos(60°) = 2


@pytest.fixture
def pairs(monkeypatch, photos):
    monkeypatch.setattr(extreme, "list_photos", lambda root, split: photos if split == "val" else [])
    return extreme.extreme_pairs("unused", pairs_per_band=2, seed=3)


def test_pairs_fall_in_their_bands_with_both_orders(pairs):
    assert [pair.group for pair in pairs] == [band for band in extreme.BANDS for _ in range(2)]
    for pair in pairs:
        band = extreme.BANDS[pair.group]
        assert band.tilt_deg[0] <= pair.info["tilt_deg"] <= band.tilt_deg[1]
    assert {pair.info["frontal"] for pair in pairs} == {0, 1}


def test_each_image_pair_fits_its_homography(pairs):
    for pair in pairs:
        image0, image1 = pair.load()
        assert image0.shape == image1.shape == (extreme.SIZE[1], extreme.SIZE[0], 3)
        mapped = cv2.warpPerspective(image0, pair.H, extreme.SIZE).astype(np.float64)
        inside = inside_mask(pair.H, extreme.SIZE, extreme.SIZE)
        inside &= cv2.erode(inside.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        a, b = mapped[inside].mean(axis=1), image1.astype(np.float64)[inside].mean(axis=1)
        assert np.corrcoef(a, b)[0, 1] > 0.8, pair.name  # the same content, up to the photometric change


def test_the_same_seed_gives_the_same_images(pairs, monkeypatch, photos):
    again = extreme.extreme_pairs("unused", pairs_per_band=2, seed=3)
    for first, second in zip(pairs.pairs[:3], again.pairs[:3], strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(first.load(), second.load(), strict=True))

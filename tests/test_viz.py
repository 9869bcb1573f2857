"""Figures: returned, written as valid PNGs, robust to zero matches and images of different sizes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from PIL import Image

from tiepoint.viz import plot_keypoints, plot_matches, plot_mma_curves, plot_reconstruction


def random_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def random_points(count: int, width: int, height: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((count, 2)) * [width - 1, height - 1]).astype(np.float32)


def assert_png(path) -> None:
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 0 and image.size[1] > 0
    assert not list(path.parent.glob(".*.partial"))


def drawn_lines(figure: Figure) -> int:
    return sum(len(c.get_segments()) for c in figure.axes[0].collections if isinstance(c, LineCollection))


def test_plot_matches_different_sizes_with_inliers(tmp_path):
    image0, image1 = random_image(64, 80, 0), random_image(40, 100, 1)
    k0, k1 = random_points(30, 80, 64, 2), random_points(30, 100, 40, 3)
    inliers = np.arange(30) % 3 != 0
    path = tmp_path / "figs" / "matches.png"
    figure = plot_matches(image0, image1, k0, k1, inliers=inliers, path=path, title="pair")
    assert isinstance(figure, Figure)
    assert_png(path)
    assert drawn_lines(figure) == 30
    title = figure.axes[0].get_title()
    assert "pair" in title and "30 matches" in title and "20 inliers" in title
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == ["inliers: 20", "outliers: 10"]
    # the canvas holds both images side by side, tops aligned
    canvas = figure.axes[0].images[0].get_array()
    assert canvas.shape[0] == 64 and canvas.shape[1] > 80 + 100
    np.testing.assert_array_equal(canvas[:40, -100:], image1)


def test_plot_matches_subsamples_lines_but_counts_all(tmp_path):
    image = random_image(64, 80, 0)
    k = random_points(1000, 80, 64, 1)
    figure = plot_matches(image, image, k, k, max_lines=100)
    assert drawn_lines(figure) == 100
    assert "1000 matches" in figure.axes[0].get_title()
    again = plot_matches(image, image, k, k, max_lines=100)
    np.testing.assert_array_equal(
        figure.axes[0].collections[0].get_segments(), again.axes[0].collections[0].get_segments()
    )


def test_plot_matches_zero_matches_from_files(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), random_image(64, 80, 0))
    cv2.imwrite(str(tmp_path / "b.png"), random_image(70, 50, 1))
    empty = np.zeros((0, 2), np.float32)
    path = tmp_path / "zero.png"
    no_inliers = np.zeros(0, bool)
    image0, image1 = tmp_path / "a.png", str(tmp_path / "b.png")
    figure = plot_matches(image0, image1, empty, empty, inliers=no_inliers, path=path)
    assert drawn_lines(figure) == 0
    assert "0 matches" in figure.axes[0].get_title()
    assert_png(path)


def test_plot_matches_rejects_mismatched_input():
    image = random_image(64, 80, 0)
    with pytest.raises(ValueError, match="keypoints1 has 2"):
        plot_matches(image, image, np.zeros((3, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="inliers"):
        plot_matches(image, image, np.zeros((3, 2)), np.zeros((3, 2)), inliers=np.ones(2, bool))


def test_figures_are_not_kept_by_pyplot(tmp_path):
    before = plt.get_fignums()
    image = random_image(64, 80, 0)
    for i in range(5):
        plot_matches(image, image, np.zeros((0, 2)), np.zeros((0, 2)), path=tmp_path / f"{i}.png")
    assert plt.get_fignums() == before


def test_plot_keypoints(tmp_path):
    path = tmp_path / "keypoints.png"
    figure = plot_keypoints(random_image(64, 80, 0), random_points(25, 80, 64, 1), path=path, title="sift")
    assert isinstance(figure, Figure)
    assert "25 keypoints" in figure.axes[0].get_title()
    assert_png(path)
    assert isinstance(plot_keypoints(random_image(20, 30, 0)[:, :, 0], np.zeros((0, 2))), Figure)


def test_plot_mma_curves(tmp_path):
    thresholds = np.arange(1, 11)
    curves = {"sift": (thresholds, thresholds / 12), "orb": (thresholds, thresholds / 20)}
    path = tmp_path / "mma.png"
    figure = plot_mma_curves(curves, path, title="HPatches")
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["sift", "orb"]
    assert_png(path)
    with pytest.raises(ValueError, match="sift"):
        plot_mma_curves({"sift": ([1, 2], [0.5])}, None)


def test_plot_reconstruction(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3))
    points[0] = 1e6  # a far outlier does not set the axis limits
    centres = np.array([[5.0, 0, 0], [0, 5, 0], [-5, 0, 0]])
    rotations = np.stack([np.eye(3)] * 3)
    figure = plot_reconstruction(
        points,
        centres,
        rotations,
        (rng.random((500, 3)) * 255).astype(np.uint8),
        path=tmp_path / "r.png",
        title="test",
        reference_centres=centres + 0.1,
    )
    axes = figure.axes[0]
    assert axes.get_xlim()[1] < 100 and "3 cameras, 500 points" in axes.get_title()
    assert Image.open(tmp_path / "r.png").size[0] > 100
    empty = plot_reconstruction(np.zeros((0, 3)), centres, rotations)
    assert "0 points" in empty.axes[0].get_title()
    with pytest.raises(ValueError, match="rotations"):
        plot_reconstruction(points, centres, rotations[:2])

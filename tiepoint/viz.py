"""Figures: matches between two images, keypoints on an image, and matching-accuracy curves.

Figures are made with matplotlib's object interface and rendered by Agg: no window is ever opened, the
pyplot backend of the caller is left alone, and no figure is registered with pyplot, so figures made in a
loop are freed as soon as they are no longer referenced (there is nothing to ``plt.close``).
Every function returns the :class:`~matplotlib.figure.Figure` and, given ``path``, also writes it as a PNG
(atomically: the file is complete or absent).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .io.files import atomic_path
from .io.image import ImageLike, as_image

INLIER_COLOUR = "#22c55e"
OUTLIER_COLOUR = "#ef4444"
MATCH_COLOUR = "#38bdf8"
"""Line colour when inliers are not known."""

GAP = 10
"""Pixels of white space between the two images of :func:`plot_matches`."""

DPI = 100
FIGURE_WIDTH = 12.0
"""Figure width in inches (the height follows the images' aspect ratio)."""


def plot_matches(
    image0: ImageLike,
    image1: ImageLike,
    keypoints0: np.ndarray,
    keypoints1: np.ndarray,
    inliers: np.ndarray | None = None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    max_lines: int = 500,
) -> Figure:
    """Draw two images side by side, tops aligned, with a line for each match.

    Args:
        image0, image1: anything :func:`~tiepoint.io.image.as_image` accepts; sizes may differ.
        keypoints0, keypoints1: ``(M, 2)`` matched pixel coordinates in each image (``M`` may be 0).
        inliers: ``(M,)`` bool; inliers are drawn green and outliers red. ``None`` draws all in one colour.
        path: where to write the figure as PNG, or ``None``.
        title: a first title line; a second line counts the matches (and inliers).
        max_lines: draw at most this many lines, an evenly spaced (deterministic) subsample; the counts in
            the title and legend are of all matches.

    Returns:
        The figure.

    Raises:
        ValueError: keypoint or inlier arrays of the wrong shape, or a negative ``max_lines``.
    """
    array0, array1 = as_image(image0, "image0"), as_image(image1, "image1")
    keypoints0 = _points(keypoints0, "keypoints0")
    keypoints1 = _points(keypoints1, "keypoints1")
    count = len(keypoints0)
    if len(keypoints1) != count:
        raise ValueError(f"keypoints0 has {count} points but keypoints1 has {len(keypoints1)}")
    if inliers is not None:
        inliers = np.asarray(inliers)
        if inliers.shape != (count,) or inliers.dtype != bool:
            raise ValueError(f"inliers must be a ({count},) bool array, got {inliers.shape} {inliers.dtype}")
    if max_lines < 0:
        raise ValueError(f"max_lines must be at least 0, got {max_lines}")

    offset = array0.shape[1] + GAP
    canvas = _side_by_side(array0, array1)
    figure, axes = _image_figure(canvas)

    shown = _subsample(count, max_lines)
    starts, ends = keypoints0[shown], keypoints1[shown] + [offset, 0.0]
    if inliers is None:
        colours = np.full(len(shown), MATCH_COLOUR)
    else:
        colours = np.where(inliers[shown], INLIER_COLOUR, OUTLIER_COLOUR)
    if len(shown):
        lines = LineCollection(np.stack([starts, ends], axis=1), colors=colours, linewidths=0.8, alpha=0.8)
        axes.add_collection(lines)
        ends_colours = np.concatenate([colours, colours])
        axes.scatter(*np.concatenate([starts, ends]).T, s=4, c=ends_colours, linewidths=0)

    counts = f"{count} matches"
    if inliers is not None:
        num_inliers = int(inliers.sum())
        counts += f", {num_inliers} inliers ({100.0 * num_inliers / max(count, 1):.1f}%)"
        axes.legend(
            handles=[
                Line2D([], [], color=INLIER_COLOUR, label=f"inliers: {num_inliers}"),
                Line2D([], [], color=OUTLIER_COLOUR, label=f"outliers: {count - num_inliers}"),
            ],
            loc="lower right",
            fontsize="small",
            framealpha=0.8,
        )
    if len(shown) < count:
        counts += f" (showing {len(shown)})"
    axes.set_title(counts if title is None else f"{title}\n{counts}", fontsize="medium")
    _save(figure, path)
    return figure


def plot_keypoints(
    image: ImageLike,
    keypoints: np.ndarray,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Draw keypoints as dots on an image.

    Args:
        image: anything :func:`~tiepoint.io.image.as_image` accepts.
        keypoints: ``(N, 2)`` pixel coordinates (``N`` may be 0).
        path: where to write the figure as PNG, or ``None``.
        title: a first title line; a second line counts the keypoints.

    Returns:
        The figure.
    """
    keypoints = _points(keypoints, "keypoints")
    figure, axes = _image_figure(as_image(image))
    if len(keypoints):
        axes.scatter(*keypoints.T, s=6, c=INLIER_COLOUR, edgecolors="black", linewidths=0.3)
    counts = f"{len(keypoints)} keypoints"
    axes.set_title(counts if title is None else f"{title}\n{counts}", fontsize="medium")
    _save(figure, path)
    return figure


def plot_mma_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Plot mean matching accuracy against the error threshold, one line per method.

    Args:
        curves: for each method name, ``(thresholds, values)``: ``(T,)`` thresholds in pixels and ``(T,)``
            MMA values, fractions in ``[0, 1]``.
        path: where to write the figure as PNG, or ``None``.
        title: the figure title.

    Returns:
        The figure.

    Raises:
        ValueError: thresholds and values of different shapes.
    """
    figure = Figure(figsize=(6.0, 4.5), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    top = 1.0
    for name, (thresholds, values) in curves.items():
        thresholds, values = np.asarray(thresholds, float), np.asarray(values, float)
        if thresholds.ndim != 1 or thresholds.shape != values.shape:
            raise ValueError(
                f"curve {name!r}: thresholds and values must be (T,) arrays of one length, "
                f"got {thresholds.shape} and {values.shape}"
            )
        axes.plot(thresholds, values, marker="o", markersize=3, label=name)
        if len(values):
            top = max(top, float(np.nanmax(values)))
    axes.set_xlabel("threshold [px]")
    axes.set_ylabel("MMA")
    axes.set_ylim(0.0, top * 1.02)
    axes.grid(True, alpha=0.3)
    if curves:
        axes.legend(fontsize="small")
    if title:
        axes.set_title(title)
    _save(figure, path)
    return figure


def plot_reconstruction(
    points: np.ndarray,
    centres: np.ndarray,
    rotations: np.ndarray,
    colours: np.ndarray | None = None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    max_points: int = 20_000,
    reference_centres: np.ndarray | None = None,
) -> Figure:
    """Draw a sparse 3D reconstruction: its points and its cameras (centre and viewing direction), in 3D.

    Args:
        points: ``(P, 3)`` 3D points in world coordinates (``P`` may be 0).
        centres: ``(M, 3)`` camera centres in world coordinates.
        rotations: ``(M, 3, 3)`` world-to-camera rotations (``x_cam = R @ (X - C)``); the third row is the
            viewing direction.
        colours: ``(P, 3)`` uint8 RGB point colours, or ``None`` for grey.
        path: where to write the figure as PNG, or ``None``.
        title: a first title line; a second counts cameras and points.
        max_points: draw at most this many points (an evenly spaced, deterministic subsample).
        reference_centres: optional ``(M', 3)`` ground-truth camera centres (already aligned), drawn as
            hollow markers.

    Returns:
        The figure. Axis limits span the cameras and the central 98% of the points, so a few far outliers
        do not shrink the scene.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    centres = np.asarray(centres, np.float64).reshape(-1, 3)
    rotations = np.asarray(rotations, np.float64).reshape(-1, 3, 3)
    if len(rotations) != len(centres):
        raise ValueError(f"got {len(rotations)} rotations for {len(centres)} camera centres")
    keep = _subsample(len(points), max_points)
    figure = Figure(figsize=(8.0, 7.0), dpi=DPI, layout="constrained")
    axes = figure.add_subplot(projection="3d")
    if len(keep):
        shown = points[keep]
        colour = "0.5" if colours is None else np.asarray(colours)[keep].reshape(-1, 3) / 255.0
        axes.scatter(shown[:, 0], shown[:, 1], shown[:, 2], s=1.0, c=colour, depthshade=False, linewidths=0)
    extent = np.concatenate([centres, np.percentile(points, [1, 99], axis=0)]) if len(points) else centres
    span = float(np.ptp(extent, axis=0).max()) if len(extent) else 1.0
    length = 0.08 * (span or 1.0)
    for centre, rotation in zip(centres, rotations):
        tip = centre + length * rotation[2]
        axes.plot(*np.stack([centre, tip]).T, color="#dc2626", linewidth=1.2)
    if len(centres):
        axes.scatter(*centres.T, s=14, c="#dc2626", depthshade=False, label="cameras")
    if reference_centres is not None and len(reference_centres):
        reference = np.asarray(reference_centres, np.float64).reshape(-1, 3)
        axes.scatter(
            *reference.T,
            s=40,
            facecolors="none",
            edgecolors="#2563eb",
            depthshade=False,
            label="ground-truth cameras",
        )
        extent = np.concatenate([extent, reference])
    if len(extent):
        middle = (extent.max(0) + extent.min(0)) / 2
        half = max(float(np.ptp(extent, axis=0).max()), 1e-9) / 2
        for setter, centre in zip((axes.set_xlim, axes.set_ylim, axes.set_zlim), middle):
            setter(centre - half, centre + half)
    axes.set_box_aspect((1, 1, 1))
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_zlabel("z")
    axes.legend(loc="upper right")
    summary = f"{len(centres)} cameras, {len(points)} points"
    axes.set_title(f"{title}\n{summary}" if title else summary)
    _save(figure, path)
    return figure


def _points(points: np.ndarray, name: str) -> np.ndarray:
    """``(N, 2)`` float64 coordinates, accepting an empty array of any shape as ``N = 0``."""
    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {points.shape}")
    return points


def _subsample(count: int, limit: int) -> np.ndarray:
    """At most ``limit`` indices out of ``count``, evenly spaced and in order."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64))


def _side_by_side(image0: np.ndarray, image1: np.ndarray) -> np.ndarray:
    """Two ``(H, W, 3)`` images on one white canvas, tops aligned, :data:`GAP` pixels apart."""
    height = max(image0.shape[0], image1.shape[0])
    canvas = np.full((height, image0.shape[1] + GAP + image1.shape[1], 3), 255, np.uint8)
    canvas[: image0.shape[0], : image0.shape[1]] = image0
    canvas[: image1.shape[0], image0.shape[1] + GAP :] = image1
    return canvas


def _image_figure(image: np.ndarray) -> tuple[Figure, Axes]:
    """A figure with one axes showing ``image`` in pixel coordinates (pixel centres at integers)."""
    height, width = image.shape[:2]
    figure = Figure(
        figsize=(FIGURE_WIDTH, min(max(FIGURE_WIDTH * height / width, 2.0), 2 * FIGURE_WIDTH)),
        dpi=DPI,
        layout="constrained",
    )
    axes = figure.add_subplot()
    axes.imshow(image, interpolation="nearest" if max(height, width) < 600 else "antialiased")
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)
    axes.set_axis_off()
    return figure, axes


def _save(figure: Figure, path: str | os.PathLike | None) -> None:
    if path is not None:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=DPI)

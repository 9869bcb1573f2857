"""Figure of ray-cast scene pairs and their ground truth: `python benchmarks/scenes_figure.py [CORPUS] [OUT]`.

Renders six pairs (320x240, default options, no appearance changes) of the four scene kinds from the train
split of CORPUS (default data/photos) and writes them side by side, with 30 ground-truth correspondences per
pair drawn as lines: green where the point of image 0 is visible in image 1, red where it projects inside
image 1 but is hidden there (the occlusion test of `project_with_depth`). Each pair is captioned with its
scene kind, relative rotation (roll included) and overlap. Default output: docs/images/scene_pairs.jpg.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from tiepoint_lab.data.photos import list_photos
from tiepoint_lab.data.scenes import ScenePair, ScenePairs, project_with_depth, relative_angle_deg

SIZE = (240, 320)
PAIRS = [("room", 0), ("corridor", 0), ("street", 0), ("objects", 0), ("room", 1), ("street", 1)]
LINES = 30
GAP = 6
CAPTION = 22
GREEN, RED = (40, 200, 40), (40, 40, 230)  # BGR


def correspondences(pair: ScenePair, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``LINES`` random points of image 0 that have a depth and project inside image 1: points ``(n, 2)``
    in both images and whether each is visible (about two thirds drawn among the visible ones)."""
    cameras = pair.cameras
    H, W = SIZE
    ys, xs = np.mgrid[0:H, 0:W]
    grid = torch.tensor(np.stack([xs, ys], -1).reshape(-1, 2), dtype=torch.float32)
    tensors = [torch.tensor(m, dtype=torch.float32) for m in (cameras.K0, cameras.K1, cameras.T_0to1)]
    points1, visible = project_with_depth(
        grid, torch.from_numpy(pair.view0.depth), torch.from_numpy(pair.view1.depth), *tensors
    )
    points1, visible = points1.numpy(), visible.numpy()
    inside = (
        (pair.view0.depth.reshape(-1) > 0)
        & (points1[:, 0] >= 0)
        & (points1[:, 0] <= W - 1)
        & (points1[:, 1] >= 0)
        & (points1[:, 1] <= H - 1)
    )
    hidden = np.flatnonzero(inside & ~visible)
    seen = np.flatnonzero(visible)
    n_hidden = min(len(hidden), LINES // 3)
    chosen = np.concatenate(
        [
            rng.choice(seen, min(len(seen), LINES - n_hidden), replace=False),
            rng.choice(hidden, n_hidden, replace=False),
        ]
    ).astype(np.int64)
    return grid.numpy()[chosen], points1[chosen], visible[chosen]


def _fixed(x: float, y: float) -> tuple[int, int]:
    """Pixel coordinates as OpenCV's drawing functions take them with ``shift=4`` (1/16 pixel)."""
    return round(float(x) * 16), round(float(y) * 16)


def panel(pair: ScenePair, rng: np.random.Generator) -> np.ndarray:
    """One pair side by side (BGR uint8) with its correspondences and a caption."""
    H, W = SIZE
    images = [np.round(view.image[:, :, ::-1] * 255).astype(np.uint8) for view in (pair.view0, pair.view1)]
    canvas = np.full((H + CAPTION, 2 * W + GAP, 3), 255, np.uint8)
    canvas[CAPTION:, :W] = images[0]
    canvas[CAPTION:, W + GAP :] = images[1]
    points0, points1, visible = correspondences(pair, rng)
    for p0, p1, ok in zip(points0, points1, visible):
        a = _fixed(p0[0], p0[1] + CAPTION)
        b = _fixed(p1[0] + W + GAP, p1[1] + CAPTION)
        colour = GREEN if ok else RED
        cv2.line(canvas, a, b, colour, 1, cv2.LINE_AA, shift=4)
        cv2.circle(canvas, a, 2 * 16, colour, -1, cv2.LINE_AA, shift=4)
        cv2.circle(canvas, b, 2 * 16, colour, -1, cv2.LINE_AA, shift=4)
    angle = relative_angle_deg(pair.cameras.T_0to1)
    caption = f"{pair.scene.kind}: rotation {angle:.0f} deg, overlap {pair.overlap:.2f}"
    cv2.putText(canvas, caption, (4, CAPTION - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def main() -> None:
    corpus = sys.argv[1] if len(sys.argv) > 1 else "data/photos"
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/images/scene_pairs.jpg")
    photos = list_photos(corpus, split="train")
    rng = np.random.default_rng(0)
    panels = []
    for kind, index in PAIRS:
        pairs = ScenePairs(photos, size=SIZE, seed=11, length=index + 1, kinds=(kind,))
        panels.append(panel(pairs.pair(index), rng))
    blank = np.full((panels[0].shape[0], 2 * GAP, 3), 255, np.uint8)
    rows = [np.concatenate([panels[i], blank, panels[i + 1]], 1) for i in range(0, len(panels), 2)]
    figure = np.concatenate(
        [np.concatenate([row, np.full((GAP, row.shape[1], 3), 255, np.uint8)]) for row in rows]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), figure[:-GAP], [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {out}: {figure.shape[1]}x{figure.shape[0] - GAP}, {out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()

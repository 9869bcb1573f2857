"""A figure of the appearance-change model: one training photo under each effect and under random draws.

    python benchmarks/appearance_figure.py [--photos data/photos] [--out docs/images/appearance.jpg]

The first photo of the training split, shown as it is, under five draws of the default ``Appearance()`` and
six of ``Appearance.strong()``, then under each effect alone (:meth:`Appearance.only`) at strengths 0.5 and 1
with the same random state, and under the three sensor conversions. Photos have no normals, so shading is the
smooth illumination field. The JPEG is kept under 250 KB by lowering its quality.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from tiepoint.io.image import load_image
from tiepoint_lab.data.appearance import EFFECTS, Appearance
from tiepoint_lab.data.photos import list_photos

COLUMNS = 6
MAX_BYTES = 250_000


def cells(image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(label, (H, W, 3) float32 image)`` for every cell of the figure, in reading order."""
    out = [("photo", image)]
    for seed in range(5):
        out.append((f"default #{seed}", Appearance()(image, np.random.default_rng(seed))))
    for seed in range(6):
        out.append((f"strong #{seed}", Appearance.strong()(image, np.random.default_rng(100 + seed))))
    for name in EFFECTS:
        base = Appearance(sensor_modes=("thermal",)) if name == "sensor" else Appearance()
        for strength in (0.5, 1.0):
            changed = base.only(name, strength=strength)(image, np.random.default_rng(7))
            out.append((f"{name} {strength:g}", changed))
    for mode in ("grey", "inverted"):
        sensor = Appearance(sensor_modes=(mode,)).only("sensor", strength=1.0)
        out.append((f"sensor {mode}", sensor(image, np.random.default_rng(7))))
    return out


def tile(labelled: list[tuple[str, np.ndarray]], columns: int = COLUMNS) -> np.ndarray:
    """The cells in a grid, each labelled in its top-left corner: ``(rows * h, columns * w, 3)`` uint8 RGB."""
    h, w = labelled[0][1].shape[:2]
    rows = -(-len(labelled) // columns)
    canvas = np.full((rows * h, columns * w, 3), 255, np.uint8)
    for index, (label, image) in enumerate(labelled):
        cell = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        cv2.rectangle(cell, (0, 0), (tw + 8, th + 10), (0, 0, 0), -1)
        cv2.putText(cell, label, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        row, column = divmod(index, columns)
        canvas[row * h : (row + 1) * h, column * w : (column + 1) * w] = cell
    return canvas


def write_jpeg(path: Path, rgb: np.ndarray, max_bytes: int = MAX_BYTES) -> int:
    """Write ``rgb`` as JPEG at the highest quality (from 85 down) that stays under ``max_bytes``."""
    for quality in range(85, 29, -5):
        ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(data) < max_bytes:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())
    return len(data)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", default="data/photos", help="the photo corpus")
    parser.add_argument("--out", default="docs/images/appearance.jpg", type=Path)
    parser.add_argument("--width", type=int, default=240, help="width of one cell, pixels")
    args = parser.parse_args()
    photo = load_image(list_photos(args.photos, split="train")[0])
    height = round(photo.shape[0] * args.width / photo.shape[1])
    image = cv2.resize(photo, (args.width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    size = write_jpeg(args.out, tile(cells(image)))
    print(f"wrote {args.out} ({size / 1000:.0f} KB)")


if __name__ == "__main__":
    main()

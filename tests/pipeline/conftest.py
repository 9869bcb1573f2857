"""A small synthetic multi-view scene with known cameras, rendered exactly by ray casting.

The scene is the inside of a corner: three textured unit squares on the planes x = 0, y = 0 and z = 0,
seen by cameras on an arc in the positive octant, all looking at (0.3, 0.3, 0.3). Every pixel's ray is
intersected with the three squares and takes the texture of the nearest hit, so the images are exact
perspective views with a non-planar scene: enough for a real structure-from-motion run in a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

SIZE = (320, 240)
K = np.array([[300.0, 0.0, 159.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])


@dataclass
class Scene:
    folder: Path
    poses: dict[str, tuple[np.ndarray, np.ndarray]]  # world-to-camera (R, t)
    K: np.ndarray


def _texture(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    image = np.zeros((size, size), np.float32)
    for cells in (8, 16, 32, 64, 128):
        noise = rng.random((cells, cells)).astype(np.float32)
        image += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC) / cells**0.3
    image -= image.min()
    return (255 * image / image.max()).astype(np.uint8)


def _look_at(centre: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, (0.0, 0.0, 1.0))
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return R, -R @ centre


def render(R: np.ndarray, t: np.ndarray, textures: list[np.ndarray]) -> np.ndarray:
    """The ``(H, W)`` uint8 view of the corner from the camera ``x = R X + t`` with intrinsics :data:`K`."""
    width, height = SIZE
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays = R.T @ (np.linalg.inv(K) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)]))
    centre = -R.T @ t
    nearest = np.full(u.size, np.inf)
    image = np.zeros(u.size, np.float32)
    for axis, texture in enumerate(textures):
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = -centre[axis] / rays[axis]
        points = centre[:, None] + depth * rays
        a, b = (points[i] for i in range(3) if i != axis)
        hit = (depth > 0) & (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1) & (depth < nearest)
        scale = texture.shape[0] - 1
        map_x = np.nan_to_num(a * scale, nan=-1).astype(np.float32).reshape(height, width)
        map_y = np.nan_to_num(b * scale, nan=-1).astype(np.float32).reshape(height, width)
        values = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR).ravel()
        image[hit], nearest[hit] = values[hit], depth[hit]
    return image.reshape(height, width).astype(np.uint8)


def make_scene(folder: Path, count: int = 6, seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    textures = [_texture(rng) for _ in range(3)]
    folder.mkdir(parents=True, exist_ok=True)
    poses = {}
    for i, angle in enumerate(np.linspace(0.15, 1.35, count)):
        centre = np.array([1.6 * np.cos(angle), 1.6 * np.sin(angle), 0.9])
        R, t = _look_at(centre, np.array([0.3, 0.3, 0.3]))
        name = f"view{i}.png"
        assert cv2.imwrite(str(folder / name), render(R, t, textures))
        poses[name] = (R, t)
    return Scene(folder, poses, K)


@pytest.fixture(scope="session")
def corner_scene(tmp_path_factory) -> Scene:
    """Six 320x240 views of the textured corner, with their true poses."""
    return make_scene(tmp_path_factory.mktemp("corner") / "images")


@pytest.fixture(scope="session")
def corner_features(corner_scene, tmp_path_factory) -> Path:
    """SIFT features of :func:`corner_scene`'s views (session-wide; copy before changing)."""
    from tiepoint.pipeline.extract import extract_features

    path = tmp_path_factory.mktemp("corner-features") / "features.h5"
    extract_features(corner_scene.folder, path, method="sift", progress=False)
    return path


@pytest.fixture(scope="session")
def corner_matches(corner_features, tmp_path_factory) -> tuple[list[tuple[str, str]], Path]:
    """Exhaustive pairs of the first four views and their SIFT matches (session-wide)."""
    from tiepoint.pipeline.matching import match_pairs
    from tiepoint.pipeline.pairs import exhaustive_pairs

    pairs = exhaustive_pairs([f"view{i}.png" for i in range(4)])
    path = tmp_path_factory.mktemp("corner-matches") / "matches.h5"
    match_pairs(pairs, corner_features, path, progress=False)
    return pairs, path


# --- the fault suite's tally (tests/pipeline/test_faults.py) ------------------------------------------------

FAULT_OUTCOMES = ("clear error", "traceback", "silent wrong", "data loss", "OK")
"""How a fault case ended: exit status not 0 with a one-line message naming the file or parameter; a
traceback (or an error that does not say what is wrong); exit 0 with a wrong or incomplete result; results of
an earlier run destroyed; the right result."""

_fault_log: list[tuple[str, str]] = []


@pytest.fixture(scope="session")
def fault_log():
    """``record(case, outcome)``: add a fault case's outcome (one of :data:`FAULT_OUTCOMES`) to the table
    printed at the end of the session."""

    def record(case: str, outcome: str) -> str:
        assert outcome in FAULT_OUTCOMES, outcome
        _fault_log.append((case, outcome))
        return outcome

    return record


def pytest_terminal_summary(terminalreporter):
    if not _fault_log:
        return
    counts = {outcome: sum(o == outcome for _, o in _fault_log) for outcome in FAULT_OUTCOMES}
    terminalreporter.section("fault suite")
    terminalreporter.write_line(" / ".join(("tried", *FAULT_OUTCOMES)))
    terminalreporter.write_line(" / ".join(str(n) for n in (len(_fault_log), *counts.values())))
    for case, outcome in _fault_log:
        if outcome != "OK":
            terminalreporter.write_line(f"  {outcome}: {case}")

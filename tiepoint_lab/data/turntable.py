"""Synthetic turntable rings: a small object on a black background seen from a ring of cameras, rendered
with exact poses, written in the Middlebury layout (``*.png`` and ``NAME_par.txt``) so that the temple
ring's tools read them.

They stand in for the temple ring when choosing reconstruction options (the temple ring is an evaluation
set): the same kind of capture (16 views 22.5 degrees apart, a 24 degree field of view, an object that
fills about 70 % of the image width, nothing behind it), with objects and textures drawn at random::

    truth = render_ring("outputs/rings/ring-0", photos, seed=0)

The object is a plinth with columns (faceted cylinders) and a roof slab, like a small temple, plus a few
boxes; each surface is a photo of the corpus's held-out split or a flat colour with faint noise (the weak
texture of plaster), drawn by :class:`tiepoint_lab.data.scenes` 's builder and rendered by its ray caster.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .scenes import Scene, TexturePyramid, _Builder, _rotation_z, render_view

SIZE = (480, 640)
"""``(height, width)`` of the views (the temple ring's)."""

FOV_DEG = 24.0
"""Horizontal field of view (the temple ring's: f = 1520 px at 640 px)."""

AMBIENT = 0.35
"""Share of the light that reaches surfaces facing away from the light."""


def make_turntable(rng: np.random.Generator, n_photos: int, photo_share: float = 0.6) -> Scene:
    """A temple-like object about the origin, about 1 m across, z up, on a black background.

    Args:
        rng: the random generator.
        n_photos: photos the textures may use (0: flat colours only).
        photo_share: chance that a surface is a photo rather than a flat colour.
    """
    b = _Builder(rng, n_photos)

    def texture(name: str = "") -> object:
        # a photo's short side covers 0.5-1.5 m: little mirrored repetition on an object of about 1 m (it
        # makes views ambiguous, which the temple's plaster is not)
        return b.surface(photo_share, metres=(0.5, 1.5))

    width, depth = rng.uniform(0.8, 1.2), rng.uniform(0.5, 0.8)
    b.box(
        [0, 0, 0.05], [width, depth, 0.1], _rotation_z(0.0), lambda name: texture(), faces="+x -x +y -y top"
    )
    height = rng.uniform(0.4, 0.7)
    columns = int(rng.integers(3, 6))
    for x in np.linspace(-width / 2 + 0.1, width / 2 - 0.1, columns):
        for y in (-depth / 2 + 0.1, depth / 2 - 0.1):
            b.cylinder(np.array([x, y, 0.1]), 0.05, height, 8, texture(), texture())
    roof = [width * 1.05, depth * 1.05, 0.12]
    b.box(
        [0, 0, 0.1 + height + 0.06], roof, _rotation_z(0.0), lambda name: texture(), faces="+x -x +y -y top"
    )
    for _ in range(int(rng.integers(0, 3))):  # a few boxes inside, seen between the columns
        size = rng.uniform([0.1, 0.1, 0.1], [0.3, 0.3, 0.4])
        centre = [rng.uniform(-width / 4, width / 4), rng.uniform(-depth / 6, depth / 6), 0.1 + size[2] / 2]
        b.box(centre, size, _rotation_z(rng.uniform(0, np.pi)), lambda name: texture())
    scene = b.scene("turntable", np.array([[-5.0, -5, -5], [5, 5, 5]]), (2.0, 6.0))
    scene.sky = np.zeros((2, 3))
    return scene


def ring_poses(
    count: int,
    radius: float,
    elevation_deg: float,
    target: np.ndarray,
    jitter_deg: float,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``(4, 4)`` world-to-camera poses on a horizontal ring about ``target``, looking at it, ``360 / count``
    degrees apart (each moved by up to ``jitter_deg`` along the ring)."""
    poses = []
    elevation = np.radians(elevation_deg)
    for i in range(count):
        angle = np.radians(360.0 * i / count + rng.uniform(-jitter_deg, jitter_deg))
        centre = target + radius * np.array(
            [np.cos(angle) * np.cos(elevation), np.sin(angle) * np.cos(elevation), np.sin(elevation)]
        )
        forward = (target - centre) / np.linalg.norm(target - centre)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        R = np.stack([right, np.cross(forward, right), forward])  # rows: camera axes in the world
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = R, -R @ centre
        poses.append(pose)
    return poses


def render_ring(
    folder: str | Path,
    photos: Sequence[np.ndarray],
    seed: int,
    count: int = 16,
    size: tuple[int, int] = SIZE,
    fov_deg: float = FOV_DEG,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Render one random turntable ring into ``folder`` (``ring_NNNN.png`` and ``ring_par.txt``, Middlebury's
    format: ``name k11..k33 r11..r33 t1 t2 t3`` with ``P = K [R | t]``); returns ``{name: (R, t)}``.

    Args:
        folder: where the views go.
        photos: ``(h, w, 3)`` uint8 texture photos (held-out photos when choosing options).
        seed: seeds the object, the textures and the ring.
        count: views on the ring.
        size: ``(height, width)``.
        fov_deg: horizontal field of view.
    """
    rng = np.random.default_rng(seed)
    scene = make_turntable(rng, len(photos))
    height, width = size
    focal = width / 2 / np.tan(np.radians(fov_deg) / 2)
    K = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]])
    textures = [TexturePyramid(photo) for photo in photos]
    target = np.array([0.0, 0.0, 0.4])
    # the object (about 1.2 m) fills about 70 % of the width of the view
    radius = 1.6 / np.tan(np.radians(fov_deg) / 2) / 2 * rng.uniform(0.9, 1.1)
    poses = ring_poses(count, radius, rng.uniform(15, 35), target, 2.0, rng)
    light = -np.array([0.3, 0.5, -1.0]) / np.linalg.norm([0.3, 0.5, -1.0])  # towards the light, above
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truth, lines = {}, [str(count)]
    for i, pose in enumerate(poses):
        name = f"ring_{i + 1:04d}.png"
        view = render_view(scene, textures, K, pose, size)
        R, t = pose[:3, :3], pose[:3, 3]
        # Lambertian shading under one light fixed in the world (the albedo alone would look flat)
        shade = AMBIENT + (1 - AMBIENT) * np.clip(np.asarray(view.normals) @ (R @ light), 0, 1)
        image = np.clip(np.asarray(view.image) * shade[..., None] * 255, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        truth[name] = (R, t)
        lines.append(" ".join([name, *(f"{v:.9g}" for v in (*K.ravel(), *R.ravel(), *t))]))
    (folder / "ring_par.txt").write_text("\n".join(lines) + "\n")
    return truth

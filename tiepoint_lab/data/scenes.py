"""Training pairs with real 3D structure: textured planar scenes rendered by ray casting on the CPU.

Method:

* A :class:`Scene` is a list of planar textured :class:`Quad` s (parallelograms, or triangles for fans such
  as the cap of a cylinder) in a world frame with z up, in metres. :func:`make_scene` builds one of
  :data:`KINDS` at random: a room, a corridor, a street or a group of objects on the ground. A quad is
  coloured by a photo (tiled by mirroring beyond its borders) or by a flat colour with faint noise and a
  gradient, which gives the large low-texture areas of real indoor scenes. Rays that hit nothing see a sky
  gradient and have depth 0.
* :func:`render_view` casts one ray through every pixel centre. Each quad is projected first, quads outside
  the view are culled and the others are intersected only with the rays of their bounding box; the nearest
  hit wins (a z-buffer), so parallax, occlusion and intersecting surfaces are exact. Textures are
  anti-aliased: each photo has an image pyramid (:class:`TexturePyramid`) and every pixel reads the two levels
  around its footprint (from depth, focal length and slant) with bilinear interpolation, blended (trilinear
  filtering). Images hold albedo only: no lighting, so an ``appearance`` callable can add it.
* :func:`sample_cameras` puts camera 0 in free space looking at a point of a surface, and camera 1 on an
  orbit about that point (relative rotation up to ``max_rotation_deg``), moved further by a small translation
  so that there is parallax beyond the orbit, at a distance and focal length that change the scale by a
  factor in ``scale``, and rolled about its optical axis by up to ``roll_deg``.
* Ground truth comes from the two depth maps alone (:func:`project_with_depth`,
  :func:`flow_and_visibility`): a point of image 0 is lifted with the depth of its nearest pixel along its
  exact ray, moved into camera 1, projected, and declared visible where it lands inside image 1 at a depth
  that agrees with image 1's depth map (the occlusion test).

Conventions (:mod:`tiepoint.types`): pixel ``(x, y)``, the centre of the top-left pixel at ``(0, 0)``;
cameras are pinhole, ``K = [[f, 0, cx], [0, f, cy], [0, 0, 1]]``, looking down +z with x right and y down;
depth is z in the camera frame; ``world_to_camera`` is a 4x4 ``[[R, t], [0, 0, 0, 1]]`` with
``X_cam = R @ X_world + t``, and the relative pose ``T_0to1 = world_to_camera1 @ inv(world_to_camera0)``
maps camera 0 coordinates to camera 1's (``X1 = R @ X0 + t``). Image sizes are given as
``(height, width)`` here, like the tensors.

Example:
    >>> from tiepoint_lab.data.photos import list_photos
    >>> pairs = ScenePairs(list_photos("data/photos"), size=(240, 320), seed=0)  # doctest: +SKIP
    >>> item = pairs[0]; item["image0"].shape, item["T_0to1"].shape, item["kind"]  # doctest: +SKIP
    (torch.Size([3, 240, 320]), torch.Size([4, 4]), 'street')
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from tiepoint.errors import OptionError
from tiepoint.io.image import load_image

KINDS = ("room", "corridor", "street", "objects")
"""The scene kinds :func:`make_scene` builds."""

MAX_PHOTO_EDGE = 640
"""Photos are shrunk to this longer side when loaded (the textures rarely need more)."""

NEAR = 1e-3
"""Nearest depth a ray hits, metres."""

_EDGE = 1e-4  # quads are widened by this share of their edges so that rays along shared edges leave no cracks
_ATTEMPTS = 20  # camera pairs drawn per item until one overlaps enough
_TRIES = 100  # camera placements drawn per attempt until one lies in free space
_UP = np.array([0.0, 0.0, 1.0])


# ----------------------------------------------------------------------------------------------------------
# Scene description


@dataclass
class Texture:
    """How a quad is coloured.

    Texture coordinates come from the quad's local metric coordinates ``(x, y)`` (metres from its origin along
    ``u`` and across it towards ``v``) through ``affine``; they are in units of the photo's shorter side
    (``(1, 1)`` is one short side right and down of its top-left corner), and the photo repeats mirrored.

    Attributes:
        photo: index of the photo, or -1 for a flat colour.
        affine: ``(2, 3)`` map from ``(x, y, 1)`` of the quad to texture coordinates.
        colour: ``(3,)`` RGB: the flat colour, or a tint that multiplies the photo (default white).
        noise: amplitude of the faint noise on a flat colour (a relative change, e.g. 0.03).
        gradient: ``(2,)`` change of a flat colour per metre along ``x`` and ``y`` (zero at the quad's
            centre).
    """

    photo: int = -1
    affine: np.ndarray = field(default_factory=lambda: np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    colour: np.ndarray = field(default_factory=lambda: np.ones(3))
    noise: float = 0.0
    gradient: np.ndarray = field(default_factory=lambda: np.zeros(2))


@dataclass
class Quad:
    """A planar textured parallelogram ``origin + a * u + b * v`` with ``a, b`` in ``[0, 1]`` (or the triangle
    ``a, b >= 0, a + b <= 1``).

    Seen from the front, ``u`` points right and ``v`` down, so the front normal is ``v x u``; both sides
    render.

    Attributes:
        origin: ``(3,)`` a corner, world coordinates, metres.
        u, v: ``(3,)`` the two edges from ``origin``.
        texture: how it is coloured.
        triangle: only the half ``a + b <= 1``.
        target: weight of the quad when camera 0 picks the surface it looks at (0: never).
    """

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    texture: Texture = field(default_factory=Texture)
    triangle: bool = False
    target: float = 1.0


@dataclass
class Scene:
    """Planar textured surfaces and where cameras may stand.

    Attributes:
        kind: the scene kind (one of :data:`KINDS`, or any name for a hand-built scene).
        quads: the surfaces. Do not change them after the first render (their arrays are cached).
        camera_box: ``(2, 3)`` min and max corner of the box cameras stay in, world coordinates.
        obstacles: ``(M, 2, 3)`` boxes (min, max corners) cameras stay out of, e.g. furniture.
        distance: ``(low, high)`` distance of camera 0 to the point it looks at, metres.
        sky: ``(2, 3)`` RGB of the sky at the horizon and at the zenith, for rays that hit nothing.
    """

    kind: str
    quads: list[Quad]
    camera_box: np.ndarray = field(default_factory=lambda: np.array([[-1.0, -1, -1], [1, 1, 1]]))
    obstacles: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 3)))
    distance: tuple[float, float] = (1.0, 10.0)
    sky: np.ndarray = field(default_factory=lambda: np.array([[0.78, 0.84, 0.9], [0.36, 0.56, 0.86]]))

    @functools.cached_property
    def arrays(self) -> _QuadArrays:
        """The quads stacked into arrays for rendering (computed once)."""
        return _QuadArrays(self.quads)


class _QuadArrays:
    """Quads as stacked float arrays: geometry ``(Q, 3)``, local frames, texture parameters."""

    def __init__(self, quads: Sequence[Quad]) -> None:
        if not quads:
            raise OptionError("scene: a scene needs at least one quad")
        self.origin = np.array([q.origin for q in quads], np.float64).reshape(-1, 3)
        self.u = np.array([q.u for q in quads], np.float64).reshape(-1, 3)
        self.v = np.array([q.v for q in quads], np.float64).reshape(-1, 3)
        cross = np.cross(self.v, self.u)
        area = np.linalg.norm(cross, axis=1)
        if np.any(area <= 1e-12):
            raise OptionError("scene: a quad has parallel or zero edges")
        self.triangle = np.array([q.triangle for q in quads], bool)
        self.area = area * np.where(self.triangle, 0.5, 1.0)
        self.normal = cross / area[:, None]
        self.e1 = self.u / np.linalg.norm(self.u, axis=1, keepdims=True)
        self.e2 = np.cross(self.e1, self.normal)  # in the plane, perpendicular to u, on v's side
        n = np.cross(self.u, self.v)
        nn = (n * n).sum(1, keepdims=True)
        # a point P of the plane is origin + a u + b v with a = (P - origin).A, b = (P - origin).B
        self.n, self.A, self.B = n, np.cross(self.v, n) / nn, np.cross(n, self.u) / nn
        self.photo = np.array([q.texture.photo for q in quads], np.int64)
        self.affine = np.array([q.texture.affine for q in quads], np.float64).reshape(-1, 2, 3)
        self.colour = np.array([q.texture.colour for q in quads], np.float32).reshape(-1, 3)
        self.noise = np.array([q.texture.noise for q in quads], np.float32)
        self.gradient = np.array([q.texture.gradient for q in quads], np.float32).reshape(-1, 2)
        centre = (self.u + self.v) * np.where(self.triangle, 1 / 3, 1 / 2)[:, None]
        local_centre = np.stack([(centre * self.e1).sum(1), (centre * self.e2).sum(1)], 1)
        self.gradient_offset = -(self.gradient * local_centre).sum(1).astype(np.float32)
        self.texel_density = np.sqrt(np.abs(np.linalg.det(self.affine[:, :, :2])))  # texture units per metre
        # local metric coordinates from the quad coordinates (a, b): x = a |u| + b v.e1, y = b v.e2
        to_local = np.zeros((len(quads), 3, 3))
        to_local[:, 0, 0] = np.linalg.norm(self.u, axis=1)
        to_local[:, 0, 1] = (self.v * self.e1).sum(1)
        to_local[:, 1, 1] = (self.v * self.e2).sum(1)
        to_local[:, 2, 2] = 1
        shade = np.concatenate([self.gradient, self.gradient_offset[:, None]], 1)[:, None]
        linear = np.concatenate([self.affine, shade], 1)  # (Q, 3, 3): texture u, v and shade of (x, y, 1)
        self.coefficients = (linear @ to_local).reshape(-1, 9)  # the same of (a, b, 1)
        self.target = np.array([q.target for q in quads], np.float64)
        # colour * (mix0 + mix1 * texel): a tinted photo, or a flat colour modulated by noise
        flat = self.photo < 0
        self.mix = np.stack([np.where(flat, 1 - self.noise, 0), np.where(flat, 2 * self.noise, 1)], 1)

    def __len__(self) -> int:
        return len(self.origin)


# ----------------------------------------------------------------------------------------------------------
# Scene kinds


def make_scene(kind: str, rng: np.random.Generator, n_photos: int) -> Scene:
    """A random scene of one kind.

    Args:
        kind: one of :data:`KINDS`: ``"room"`` (a box interior with flat-ish walls, pictures, doors and
            furniture), ``"corridor"`` (a long narrow box with doors and panels), ``"street"`` (ground, two
            rows of facades at varying set-backs with balconies, sky) or ``"objects"`` (ground with boxes,
            slabs and faceted cylinders).
        rng: the random generator (the same state gives the same scene).
        n_photos: number of photos textures may use (indices ``0 .. n_photos - 1``); 0 for flat colours only.

    Returns:
        The scene, with the box cameras stay in and the obstacles they avoid.
    """
    if kind not in _BUILDERS:
        raise OptionError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if int(n_photos) < 0:
        raise OptionError(f"n_photos must be >= 0, got {n_photos}")
    return _BUILDERS[kind](_Builder(rng, int(n_photos)))


class _Builder:
    """Draws textures and adds faces, boxes and cylinders to a list of quads."""

    def __init__(self, rng: np.random.Generator, n_photos: int) -> None:
        self.rng = rng
        self.n_photos = n_photos
        self.quads: list[Quad] = []
        self.obstacles: list[np.ndarray] = []

    # textures

    def photo(
        self, metres: tuple[float, float] = (1.0, 3.0), offset: float = 3.0, turn: bool = False
    ) -> Texture:
        """A photo texture whose short side covers ``metres`` (log-uniform), at a random offset."""
        if self.n_photos == 0:
            return self.flat()
        rng = self.rng
        index = int(rng.integers(self.n_photos))
        density = 1.0 / float(np.exp(rng.uniform(np.log(metres[0]), np.log(metres[1]))))
        angle = rng.uniform(-np.pi, np.pi) if turn else 0.0
        c, s = density * np.cos(angle), density * np.sin(angle)
        affine = np.array([[c, -s, rng.uniform(0, offset)], [s, c, rng.uniform(0, offset)]])
        tint = np.ones(3) if rng.random() < 0.6 else rng.uniform(0.8, 1.15, 3)
        return Texture(index, affine, tint)

    def flat(self, light: tuple[float, float] = (0.35, 0.9), saturation: float = 0.08) -> Texture:
        """A flat colour with faint noise and a gentle gradient."""
        rng = self.rng
        colour = rng.uniform(*light) + rng.uniform(-saturation, saturation, 3)
        density = 1.0 / rng.uniform(0.3, 2.0)  # noise features of a few centimetres to a few decimetres
        affine = np.array([[density, 0.0, rng.uniform(0, 3)], [0.0, density, rng.uniform(0, 3)]])
        gradient = rng.normal(size=2) * rng.uniform(0.0, 0.04)
        return Texture(-1, affine, np.clip(colour, 0.02, 0.98), float(rng.uniform(0.01, 0.06)), gradient)

    def surface(self, photo_share: float, **photo_options: Any) -> Texture:
        """A photo texture with probability ``photo_share``, else a flat colour."""
        return self.photo(**photo_options) if self.rng.random() < photo_share else self.flat()

    # geometry

    def face(
        self,
        centre: np.ndarray,
        normal: np.ndarray,
        up: np.ndarray,
        width: float,
        height: float,
        texture: Texture,
        target: float = 1.0,
    ) -> Quad:
        """Add a rectangle facing ``normal`` (its front) with its top edge towards ``up``."""
        normal = _unit(np.asarray(normal, np.float64))
        right = _unit(_cross(np.asarray(up, np.float64), normal))
        down = _cross(right, normal)
        quad = Quad(
            np.asarray(centre) - right * width / 2 - down * height / 2,
            right * width,
            down * height,
            texture,
            target=target,
        )
        self.quads.append(quad)
        return quad

    def box(
        self,
        centre: np.ndarray,
        size: Sequence[float],
        rotation: np.ndarray,
        texture: Callable[[str], Texture],
        faces: str = "+x -x +y -y top",
        obstacle: float = 0.3,
        target: float = 1.0,
    ) -> None:
        """Add the outward faces of a box (``size`` along its own axes, the columns of ``rotation``).

        ``texture(face)`` gives each face's texture (face names ``+x -x +y -y top bottom``); ``obstacle`` is
        the margin of the box cameras keep out of (negative: none).
        """
        centre = np.asarray(centre, np.float64)
        half = np.asarray(size, np.float64) / 2
        X, Y, Z = rotation[:, 0], rotation[:, 1], rotation[:, 2]
        specs = {
            "+x": (X, Z, half[0], 2 * half[1], 2 * half[2]),
            "-x": (-X, Z, half[0], 2 * half[1], 2 * half[2]),
            "+y": (Y, Z, half[1], 2 * half[0], 2 * half[2]),
            "-y": (-Y, Z, half[1], 2 * half[0], 2 * half[2]),
            "top": (Z, Y, half[2], 2 * half[0], 2 * half[1]),
            "bottom": (-Z, Y, half[2], 2 * half[0], 2 * half[1]),
        }
        for name in faces.split():
            normal, up, distance, width, height = specs[name]
            self.face(centre + normal * distance, normal, up, width, height, texture(name), target)
        if obstacle >= 0:
            corners = centre + (np.array(np.meshgrid(*[[-1, 1]] * 3)).reshape(3, -1).T * half) @ rotation.T
            self.obstacles.append(np.stack([corners.min(0) - obstacle, corners.max(0) + obstacle]))

    def cylinder(
        self, base: np.ndarray, radius: float, height: float, facets: int, texture: Texture, cap: Texture
    ) -> None:
        """Add a cylinder of ``facets`` vertical faces (the texture continues around it) and a top cap."""
        step = 2 * np.pi / facets
        width = 2 * radius * np.sin(step / 2)
        apothem = radius * np.cos(step / 2)
        start = self.rng.uniform(0, step)
        for i in range(facets):
            angle = start + (i + 0.5) * step
            normal = np.array([np.cos(angle), np.sin(angle), 0.0])
            affine = texture.affine.copy()
            affine[:, 2] += affine[:, 0] * width * i  # unrolled: facet i starts where facet i - 1 ended
            facet = Texture(texture.photo, affine, texture.colour, texture.noise, texture.gradient)
            self.face(base + normal * apothem + _UP * height / 2, normal, _UP, width, height, facet)
        top = base + _UP * height
        ring = [
            top + radius * np.array([np.cos(start + i * step), np.sin(start + i * step), 0])
            for i in range(facets)
        ]
        frame = (top, np.array([1.0, 0, 0]), np.array([0, -1.0, 0]))  # one planar mapping for the whole cap
        for i in range(facets):
            u, v = ring[(i + 1) % facets] - top, ring[i] - top  # v x u points up
            quad = Quad(top, u, v, cap, triangle=True, target=0.3)
            quad.texture = _planar_texture(quad, cap, *frame)
            self.quads.append(quad)
        self.obstacles.append(
            np.stack([base - [radius + 0.3, radius + 0.3, 0.3], top + [radius + 0.3, radius + 0.3, 0.3]])
        )

    def scene(self, kind: str, camera_box: np.ndarray, distance: tuple[float, float]) -> Scene:
        rng = self.rng
        horizon = np.clip(np.array([0.78, 0.84, 0.9]) + rng.uniform(-0.08, 0.08, 3), 0, 1)
        zenith = np.clip(np.array([0.36, 0.56, 0.86]) + rng.uniform(-0.1, 0.1, 3), 0, 1)
        obstacles = np.array(self.obstacles).reshape(-1, 2, 3)
        return Scene(
            kind,
            self.quads,
            np.asarray(camera_box, np.float64),
            obstacles,
            distance,
            np.stack([horizon, zenith]),
        )


def _planar_texture(
    quad: Quad, texture: Texture, origin: np.ndarray, f1: np.ndarray, f2: np.ndarray
) -> Texture:
    """``texture`` mapped through the world frame ``(origin, f1, f2)`` instead of the quad's own, so that
    coplanar quads sharing the frame show one continuous texture."""
    e1 = _unit(quad.u)
    e2 = _cross(e1, _unit(_cross(quad.v, quad.u)))
    # world point P = o + x e1 + y e2; frame coordinates ((P - origin).f1, (P - origin).f2)
    M = np.array(
        [[e1 @ f1, e2 @ f1, (quad.origin - origin) @ f1], [e1 @ f2, e2 @ f2, (quad.origin - origin) @ f2]]
    )
    affine = texture.affine[:, :2] @ M
    affine[:, 2] += texture.affine[:, 2]
    return Texture(texture.photo, affine, texture.colour, texture.noise, texture.gradient)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two ``(3,)`` vectors (np.cross is slow on single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / math.sqrt(float(v @ v))


def _rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _wall_items(
    b: _Builder, length: float, height: float, place: Callable[[float, float, float, float], None]
) -> None:
    """Pictures, panels and doors along one wall: ``place(along, z, width, height)`` adds one."""
    along = b.rng.uniform(0.2, 1.5)
    while along < length - 0.6:
        width = min(b.rng.uniform(0.4, 2.0), length - along - 0.2)
        if b.rng.random() < 0.3 and width >= 0.8:  # a door, from the floor
            place(along + 0.45, 1.025, 0.9, 2.05)
            along += 0.9
        elif b.rng.random() < 0.85:
            tall = min(b.rng.uniform(0.4, 1.4), height - 0.8)
            place(along + width / 2, b.rng.uniform(1.0, height - 0.3 - tall / 2), width, tall)
            along += width
        along += b.rng.uniform(0.2, 1.5)


def _room(b: _Builder) -> Scene:
    rng = b.rng
    W, D, H = rng.uniform(4, 10), rng.uniform(4, 10), rng.uniform(2.5, 4.0)
    b.face([W / 2, D / 2, 0], _UP, [0, 1, 0], W, D, b.surface(0.75, metres=(1.0, 4.0)), target=1.0)
    b.face([W / 2, D / 2, H], -_UP, [0, 1, 0], W, D, b.flat((0.7, 0.95), 0.03), target=0.2)
    walls = [  # (centre, inward normal, length)
        ([W / 2, 0, H / 2], [0, 1, 0], W),
        ([W / 2, D, H / 2], [0, -1, 0], W),
        ([0, D / 2, H / 2], [1, 0, 0], D),
        ([W, D / 2, H / 2], [-1, 0, 0], D),
    ]
    for wall_centre, normal, length in walls:
        normal = np.array(normal, np.float64)
        b.face(wall_centre, normal, _UP, length, H, b.surface(0.35, metres=(0.4, 2.0)), target=0.7)
        right = np.cross(_UP, normal)
        start = np.array(wall_centre) - right * length / 2 + normal * rng.uniform(0.005, 0.03)

        def place(
            along: float, z: float, width: float, tall: float, start=start, normal=normal, right=right
        ) -> None:
            item_centre = start + right * along
            item_centre[2] = z
            texture = (
                b.flat((0.2, 0.7), 0.15) if tall > 2 else b.photo(metres=(tall * 0.8, tall * 1.5), offset=0.5)
            )
            b.face(item_centre, normal, _UP, width, tall, texture, target=5.0)

        _wall_items(b, length, H, place)
    for _ in range(rng.integers(1, 5)):
        size = rng.uniform([0.4, 0.4, 0.3], [2.0, 1.2, 2.0])
        xy = rng.uniform([1.0, 1.0], [W - 1.0, D - 1.0])
        textures = {"photo": b.photo(metres=(0.3, 2.0)), "flat": b.flat((0.15, 0.8), 0.15)}
        choice = "photo" if rng.random() < 0.6 else "flat"
        b.box(
            [*xy, size[2] / 2],
            size,
            _rotation_z(rng.uniform(0, np.pi)),
            lambda _, t=textures[choice]: t,
            target=2.0,
        )
    box = np.array([[0.3, 0.3, 0.4], [W - 0.3, D - 0.3, min(2.2, H - 0.3)]])
    return b.scene("room", box, (0.8, 6.0))


def _corridor(b: _Builder) -> Scene:
    rng = b.rng
    L, Wd, H = rng.uniform(15, 40), rng.uniform(1.8, 3.5), rng.uniform(2.4, 3.5)
    b.face([L / 2, Wd / 2, 0], _UP, [1, 0, 0], Wd, L, b.surface(0.8, metres=(0.5, 2.0)), target=1.0)
    b.face([L / 2, Wd / 2, H], -_UP, [1, 0, 0], Wd, L, b.flat((0.7, 0.95), 0.03), target=0.2)
    wall_texture = b.flat((0.5, 0.9), 0.06)
    for y, normal in ((0.0, [0, 1, 0]), (Wd, [0, -1, 0])):
        normal = np.array(normal, np.float64)
        texture = wall_texture if rng.random() < 0.7 else b.surface(0.5, metres=(0.5, 2.0))
        b.face([L / 2, y, H / 2], normal, _UP, L, H, texture, target=1.0)
        right = np.cross(_UP, normal)
        start = np.array([L / 2, y, 0]) - right * L / 2 + normal * rng.uniform(0.005, 0.03)
        door = b.flat((0.15, 0.7), 0.2)

        def place(
            along: float,
            z: float,
            width: float,
            tall: float,
            start=start,
            normal=normal,
            right=right,
            door=door,
        ) -> None:
            item_centre = start + right * along
            item_centre[2] = z
            texture = door if tall > 2 else b.photo(metres=(tall * 0.8, tall * 1.5), offset=0.5)
            b.face(item_centre, normal, _UP, width, tall, texture, target=3.0)

        _wall_items(b, L, H, place)
    for x, normal in ((0.0, [1, 0, 0]), (L, [-1, 0, 0])):
        b.face([x, Wd / 2, H / 2], normal, _UP, Wd, H, b.surface(0.6, metres=(0.8, 3.0)), target=3.0)
    lights = b.flat((0.9, 1.0), 0.02)
    for x in np.arange(rng.uniform(1, 3), L - 1, rng.uniform(2.5, 5)):
        b.face([x, Wd / 2, H - 0.01], -_UP, [1, 0, 0], min(1.2, Wd - 0.4), 0.6, lights, target=0.2)
    box = np.array([[0.5, 0.4, 0.8], [L - 0.5, Wd - 0.4, min(2.0, H - 0.3)]])
    return b.scene("corridor", box, (0.8, 12.0))


def _street(b: _Builder) -> Scene:
    rng = b.rng
    half_street, half_length = rng.uniform(4, 11), rng.uniform(40, 70)
    b.face(
        [0, 0, 0],
        _UP,
        [0, 1, 0],
        2 * half_length + 100,
        2 * half_street + 80,
        b.surface(0.8, metres=(3.0, 12.0)),
        target=0.3,
    )
    for side in (-1.0, 1.0):
        x = -half_length
        while x < half_length:
            width = rng.uniform(6, 20)
            setback, height, depth = rng.uniform(0, 4), rng.uniform(6, 28), rng.uniform(8, 15)
            front = b.photo(metres=(4.0, 14.0), offset=1.0)
            sides = b.surface(0.4, metres=(3.0, 10.0))
            y0 = side * (half_street + setback)
            facing = "-y" if side > 0 else "+y"
            b.box(
                [x + width / 2, y0 + side * depth / 2, height / 2],
                [width, depth, height],
                np.eye(3),
                lambda name, front=front, sides=sides, facing=facing: front if name == facing else sides,
                obstacle=-1,
                target=1.0,
            )
            for _ in range(rng.integers(0, 4) if height > 8 else 0):
                bw, protrude, thick = rng.uniform(1.5, 4.0), rng.uniform(0.8, 1.6), rng.uniform(0.15, 1.0)
                bx = rng.uniform(x + bw / 2 + 0.3, max(x + bw / 2 + 0.4, x + width - bw / 2 - 0.3))
                floor = 3.0 * rng.integers(1, max(2, int((height - 2) // 3)))
                texture = b.surface(0.5, metres=(0.5, 3.0))
                faces = "+x -x top bottom " + ("-y" if side > 0 else "+y")
                b.box(
                    [bx, y0 - side * protrude / 2, floor + thick / 2],
                    [bw, protrude, thick],
                    np.eye(3),
                    lambda _, t=texture: t,
                    faces=faces,
                    obstacle=0.5,
                    target=2.0,
                )
            x += width
    box = np.array([[-half_length + 8, -half_street + 0.5, 1.2], [half_length - 8, half_street - 0.5, 15.0]])
    return b.scene("street", box, (3.0, 30.0))


def _objects(b: _Builder) -> Scene:
    rng = b.rng
    b.face([0, 0, 0], _UP, [0, 1, 0], 80, 80, b.surface(0.75, metres=(2.0, 8.0)), target=0.5)
    for _ in range(rng.integers(4, 11)):
        xy = rng.uniform(-1, 1, 2) * rng.uniform(0, 4.5)
        shape = rng.choice(["box", "slab", "cylinder"])
        photo_share = 0.75
        if shape == "cylinder":
            radius, height = rng.uniform(0.2, 1.0), rng.uniform(0.3, 2.5)
            texture = b.surface(photo_share, metres=(0.3, 2.0))
            b.cylinder(
                np.array([*xy, 0.0]), radius, height, int(rng.integers(8, 17)), texture, b.surface(0.5)
            )
            continue
        if shape == "box":
            size = rng.uniform([0.3, 0.3, 0.3], [2.0, 2.0, 2.0])
            rotation = _rotation_z(rng.uniform(0, np.pi))
        else:  # a thin slab, upright or leaning
            size = np.array([rng.uniform(0.5, 2.5), rng.uniform(0.03, 0.15), rng.uniform(0.5, 2.0)])
            rotation = _rotation_z(rng.uniform(0, np.pi)) @ _rotation_x(rng.uniform(-0.5, 0.5))
        half = np.abs(rotation) @ (size / 2)  # half extent along world axes
        textures = {
            name: b.surface(photo_share, metres=(0.3, 2.0)) for name in ("+x", "-x", "+y", "-y", "top")
        }
        b.box([*xy, half[2]], size, rotation, lambda name, t=textures: t[name], target=3.0)
    if rng.random() < 0.5:  # a ring of distant panels behind the objects
        count = int(rng.integers(4, 9))
        radius = rng.uniform(15, 25)
        for i in range(count):
            angle = 2 * np.pi * (i + rng.uniform(-0.2, 0.2)) / count
            normal = -np.array([np.cos(angle), np.sin(angle), 0.0])
            height = rng.uniform(4, 12)
            width = 2 * radius * np.tan(np.pi / count) * rng.uniform(0.6, 1.0)
            b.face(
                -normal * radius + _UP * height / 2,
                normal,
                _UP,
                width,
                height,
                b.photo(metres=(3.0, 10.0)),
                target=0.5,
            )
    box = np.array([[-12.0, -12.0, 0.3], [12.0, 12.0, 6.0]])
    return b.scene("objects", box, (1.5, 10.0))


_BUILDERS: dict[str, Callable[[_Builder], Scene]] = {
    "room": _room,
    "corridor": _corridor,
    "street": _street,
    "objects": _objects,
}


# ----------------------------------------------------------------------------------------------------------
# Textures


class TexturePyramid:
    """An image and its halvings (area interpolation), as uint8, for anti-aliased texture lookups.

    All levels are packed into one atlas image (level 0 on the left, the others stacked on its right, each
    framed by a one-pixel mirrored border), so that one lookup reads any mix of levels.

    Args:
        image: ``(h, w, C)`` or ``(h, w)`` uint8 array, or float in ``[0, 1]``.
        min_size: stop halving when the shorter side would fall below this.

    Attributes:
        levels: the images, ``levels[0]`` the original (kept as ``(h, w, C)``, C = 1 or 3).
        width, height: size of level 0, pixels; ``short``: the shorter of both (a texture unit).
        atlas: ``(ha, wa, C)`` uint8, all levels; ``offsets``: ``(L, 2)`` float32 atlas position of each
            level's pixel ``(0, 0)``; ``scales``: ``(L, 2)`` float32 size of each level relative to level 0.
    """

    def __init__(self, image: np.ndarray, min_size: int = 4) -> None:
        image = np.asarray(image)
        if image.dtype != np.uint8:
            image = np.clip(np.round(image.astype(np.float32) * 255), 0, 255).astype(np.uint8)
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or min(image.shape[:2]) < 1:
            raise OptionError(f"photos: a texture must be an (h, w, C) image, got shape {image.shape}")
        self.levels = [np.ascontiguousarray(image)]
        while min(self.levels[-1].shape[:2]) // 2 >= min_size:
            h, w = self.levels[-1].shape[:2]
            level = cv2.resize(self.levels[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            self.levels.append(level.reshape(h // 2, w // 2, -1))
        self.height, self.width = image.shape[:2]
        self.short = min(self.width, self.height)
        self.channels = image.shape[2]
        self._pack()

    def _pack(self) -> None:
        h0, w0 = self.height, self.width
        rest = self.levels[1:]
        height = max(h0 + 2, sum(level.shape[0] + 2 for level in rest))
        width = w0 + 2 + (rest[0].shape[1] + 2 if rest else 0)
        self.atlas = np.zeros((height, width, self.channels), np.uint8)
        offsets, x, y = [], 0, 0
        for index, level in enumerate(self.levels):
            h, w = level.shape[:2]
            framed = cv2.copyMakeBorder(level, 1, 1, 1, 1, cv2.BORDER_REFLECT).reshape(h + 2, w + 2, -1)
            self.atlas[y : y + h + 2, x : x + w + 2] = framed
            offsets.append((x + 1, y + 1))
            if index == 0:
                x = w0 + 2
            else:
                y += h + 2
        self.offsets = np.array(offsets, np.float32)
        self.scales = np.array([(lv.shape[1] / w0, lv.shape[0] / h0) for lv in self.levels], np.float32)
        self.offsets, self.scales = np.asfortranarray(self.offsets), np.asfortranarray(self.scales)


@functools.lru_cache(maxsize=1)
def _noise_texture() -> TexturePyramid:
    """A fixed grey noise texture of several octaves, in ``[0, 1]``, for the faint noise of flat colours."""
    rng = np.random.default_rng(20240607)
    size = 256
    noise = np.zeros((size, size), np.float32)
    for cells, weight in ((8, 0.4), (32, 0.35), (128, 0.25)):
        coarse = rng.random((cells, cells)).astype(np.float32)
        noise += weight * cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return TexturePyramid(noise)


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at pixel coordinates ``x, y`` (``(N,)``); returns ``(N, C)`` float32."""
    n = len(x)
    cols = 1024  # cv2.remap wants maps shorter than 32767 along both sides
    rows = -(-n // cols)
    mx = np.zeros(rows * cols, np.float32)
    my = np.zeros(rows * cols, np.float32)
    mx[:n], my[:n] = x, y
    out = cv2.remap(
        image, mx.reshape(rows, cols), my.reshape(rows, cols), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return out.reshape(rows * cols, -1)[:n].astype(np.float32)


def _mirror(u: np.ndarray, period: float) -> np.ndarray:
    """Continuous coordinate ``u`` folded into ``[0, period]`` by mirror repetition."""
    period = np.float32(period)
    wrapped = u - np.floor(u * (0.5 / period)) * (2 * period)  # in [0, 2 period)
    return period - np.abs(wrapped - period)


def _lookup(pyramid: TexturePyramid, u: np.ndarray, v: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Trilinear lookup: ``(N,)`` continuous coordinates ``u, v`` of level 0 (pixel edges at integers; the
    texture repeats mirrored), read at the fractional pyramid ``level`` of each sample, bilinear within the
    two levels around it and linear between them. Returns ``(N, C)`` float32 in ``[0, 1]``."""
    u, v = _mirror(u, pyramid.width), _mirror(v, pyramid.height)
    top = len(pyramid.levels) - 1
    level = np.clip(level, 0, top)
    low = level.astype(np.intp)
    half = np.float32(0.5)

    def at(index: np.ndarray) -> np.ndarray:
        x = u * pyramid.scales[:, 0].take(index) + (pyramid.offsets[:, 0].take(index) - half)
        y = v * pyramid.scales[:, 1].take(index) + (pyramid.offsets[:, 1].take(index) - half)
        return _sample(pyramid.atlas, x, y)

    values = at(low)
    if top > 0:
        frac = (level - low)[:, None]
        values += (at(np.minimum(low + 1, top)) - values) * frac
    return values * np.float32(1 / 255)


# ----------------------------------------------------------------------------------------------------------
# Rendering


@dataclass
class RenderedView:
    """One rendered view.

    Attributes:
        image: ``(H, W, 3)`` float32 RGB in ``[0, 1]`` (albedo: textures only, no lighting).
        depth: ``(H, W)`` float32, z of the surface in the camera frame, 0 where a ray hits nothing.
        surface: ``(H, W)`` int32 index of the quad seen, -1 where none.
        normals: ``(H, W, 3)`` float32 unit normals in the camera frame, facing the camera (0 where none).
    """

    image: np.ndarray
    depth: np.ndarray
    surface: np.ndarray
    normals: np.ndarray


class _CameraQuads:
    """The quads of a scene in one camera's frame: intersection vectors, facing normals, pixel boxes."""

    def __init__(
        self, arrays: _QuadArrays, K: np.ndarray, world_to_camera: np.ndarray, size: tuple[int, int]
    ) -> None:
        R, t = world_to_camera[:3, :3], world_to_camera[:3, 3]
        self.origin = arrays.origin @ R.T + t
        u, v = arrays.u @ R.T, arrays.v @ R.T
        # a ray s * d (d = K^-1 (x, y, 1), so s is the depth) meets the plane at s = n.o / n.d, where
        # s * d - o = a u + b v with a = (s d - o).A and b = (s d - o).B
        self.n, self.A, self.B = arrays.n @ R.T, arrays.A @ R.T, arrays.B @ R.T
        self.n_o = (self.n * self.origin).sum(1)
        self.o_A, self.o_B = (self.origin * self.A).sum(1), (self.origin * self.B).sum(1)
        normal = arrays.normal @ R.T
        self.facing = np.where((normal * self.origin).sum(1, keepdims=True) > 0, -normal, normal)
        corners = self.origin[:, None] + np.stack([np.zeros_like(u), u, u + v, v], 1)
        corners[arrays.triangle, 2] = corners[arrays.triangle, 3]
        self.boxes = _pixel_boxes(corners, K, size)


def _pixel_boxes(corners: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(Q, 4)`` int ``x0, x1, y0, y1`` (slices) of the pixels each polygon ``(Q, 4, 3)`` may cover; empty
    (``x0 >= x1``) for polygons behind the camera or outside the image. Polygons crossing the near plane are
    clipped first."""
    H, W = size
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    boxes = np.zeros((len(corners), 4), np.int64)
    z = corners[..., 2]
    front = (z > 2 * NEAR).all(1)
    lo = np.full((len(corners), 2), np.inf)
    hi = np.full((len(corners), 2), -np.inf)
    if front.any():
        p = corners[front]
        xy = np.stack([fx * p[..., 0] / p[..., 2] + cx, fy * p[..., 1] / p[..., 2] + cy], -1)
        lo[front], hi[front] = xy.min(1), xy.max(1)
    for q in np.flatnonzero(~front & (z > 2 * NEAR).any(1)):  # crossing the near plane: clip it
        poly = _clip_near(corners[q])
        xy = np.stack([fx * poly[:, 0] / poly[:, 2] + cx, fy * poly[:, 1] / poly[:, 2] + cy], -1)
        lo[q], hi[q] = xy.min(0), xy.max(0)
    with np.errstate(invalid="ignore"):
        boxes[:, 0] = np.clip(np.floor(lo[:, 0]) - 1, 0, W)
        boxes[:, 1] = np.clip(np.ceil(hi[:, 0]) + 2, 0, W)
        boxes[:, 2] = np.clip(np.floor(lo[:, 1]) - 1, 0, H)
        boxes[:, 3] = np.clip(np.ceil(hi[:, 1]) + 2, 0, H)
    boxes[~np.isfinite(lo).all(1)] = 0
    return boxes


def _clip_near(polygon: np.ndarray) -> np.ndarray:
    """The part of a planar polygon ``(n, 3)`` in front of the plane ``z = 2 * NEAR`` (Sutherland-Hodgman)."""
    plane = 2 * NEAR
    out = []
    for i in range(len(polygon)):
        a, b = polygon[i], polygon[(i + 1) % len(polygon)]
        if a[2] >= plane:
            out.append(a)
        if (a[2] >= plane) != (b[2] >= plane):
            out.append(a + (b - a) * (plane - a[2]) / (b[2] - a[2]))
    return np.array(out)


def _cast(
    arrays: _QuadArrays, cq: _CameraQuads, K: np.ndarray, size: tuple[int, int], coordinates: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Ray casting: depth ``(H, W)`` float32 (0: no hit), surface ``(H, W)`` int32 (-1: none) and, with
    ``coordinates``, the ``(H, W)`` float32 coordinates ``a, b`` of each hit on its quad (else ``None``)."""
    H, W = size
    xs = ((np.arange(W) - K[0, 2]) / K[0, 0]).astype(np.float32)
    ys = ((np.arange(H) - K[1, 2]) / K[1, 1]).astype(np.float32)
    zbuf = np.full((H, W), np.inf, np.float32)
    surface = np.full((H, W), -1, np.int32)
    abuf = np.zeros((H, W), np.float32) if coordinates else None
    bbuf = np.zeros((H, W), np.float32) if coordinates else None
    f32 = {name: getattr(cq, name).astype(np.float32) for name in ("n", "A", "B", "n_o", "o_A", "o_B")}
    low, high = np.float32(-_EDGE), np.float32(1 + _EDGE)
    boxes = cq.boxes
    for q in np.flatnonzero((boxes[:, 1] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 2])):
        x0, x1, y0, y1 = boxes[q]
        xq, yq = xs[x0:x1], ys[y0:y1]
        n, A, B = f32["n"][q], f32["A"][q], f32["B"][q]
        nd = (n[0] * xq)[None, :] + (n[1] * yq + n[2])[:, None]
        zb = zbuf[y0:y1, x0:x1]
        with np.errstate(all="ignore"):  # rays parallel to the plane give inf and nan, which hit nothing
            s = f32["n_o"][q] / nd
            a = s * ((A[0] * xq)[None, :] + (A[1] * yq + A[2])[:, None]) - f32["o_A"][q]
            b = s * ((B[0] * xq)[None, :] + (B[1] * yq + B[2])[:, None]) - f32["o_B"][q]
            hit = (s > NEAR) & (s < zb) & (a >= low) & (b >= low)
            hit &= (a + b <= high) if arrays.triangle[q] else ((a <= high) & (b <= high))
        np.copyto(zb, s, where=hit)
        np.copyto(surface[y0:y1, x0:x1], np.int32(q), where=hit)
        if coordinates:
            np.copyto(abuf[y0:y1, x0:x1], a, where=hit)
            np.copyto(bbuf[y0:y1, x0:x1], b, where=hit)
    depth = np.where(surface >= 0, zbuf, np.float32(0))
    return depth, surface, abuf, bbuf


def _shade(
    scene: Scene,
    textures: Mapping[int, Any] | Sequence[Any],
    cq: _CameraQuads,
    K: np.ndarray,
    world_to_camera: np.ndarray,
    cast: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Image ``(H, W, 3)`` float32 in ``[0, 1]`` and normals ``(H, W, 3)`` of a cast view."""
    arrays = scene.arrays
    depth, surface, a, b = cast
    H, W = depth.shape
    flat_surface = surface.ravel()
    idx = np.flatnonzero(flat_surface >= 0)
    image = np.empty((H * W, 3), np.float32)
    normals = np.zeros((H * W, 3), np.float32)
    if len(idx) < H * W:
        image[:] = _sky(scene, K, world_to_camera, (H, W)).reshape(-1, 3)
    if not len(idx):
        return image.reshape(H, W, 3), normals.reshape(H, W, 3)
    q = flat_surface[idx]
    seen = np.flatnonzero(np.bincount(q, minlength=len(arrays)))
    photos = np.unique(arrays.photo[seen])  # -1 (flat colours) first when present
    pyramids = [_noise_texture() if p < 0 else _texture(textures, int(p)) for p in photos]
    slot = np.searchsorted(photos, arrays.photo).clip(0, len(photos) - 1)
    short = np.array([pyramid.short for pyramid in pyramids], np.float64)[slot]
    f = np.sqrt(K[0, 0] * K[1, 1])
    table = np.concatenate(
        [
            arrays.coefficients,  # 0-8: texture u, v and flat shade as a * c0 + b * c1 + c2
            cq.facing,  # 9-11
            np.log2(arrays.texel_density * short / f)[:, None],  # 12: level offset
            short[:, None],  # 13
            arrays.mix,  # 14-15: colour * (mix0 + mix1 * texel)
            arrays.colour,  # 16-18
        ],
        1,
    ).astype(np.float32)
    t = np.take(np.ascontiguousarray(table.T), q, axis=1)  # (19, N), rows contiguous
    A, B, z = a.ravel()[idx], b.ravel()[idx], depth.ravel()[idx]
    xn = np.take(((np.arange(W) - K[0, 2]) / K[0, 0]).astype(np.float32), idx % W)
    yn = np.take(((np.arange(H) - K[1, 2]) / K[1, 1]).astype(np.float32), idx // W)
    normals[idx] = t[9:12].T
    # pyramid level: log2 of texels per pixel footprint; footprint = sqrt(area) with half the slant anisotropy
    dd = xn * xn + yn * yn + 1
    cos = np.abs(t[9] * xn + t[10] * yn + t[11]) / np.sqrt(dd)
    level = np.log2(z) + t[12] - 0.25 * np.log2(dd) - 0.75 * np.log2(np.maximum(cos, np.float32(0.05)))
    tu = (t[0] * A + t[1] * B + t[2]) * t[13]
    tv = (t[3] * A + t[4] * B + t[5]) * t[13]
    texel = np.empty((len(idx), 3), np.float32)
    key = slot.astype(np.int16)[q]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], len(order)]):
        chosen = order[start:stop]
        texel[chosen] = _lookup(pyramids[sorted_key[start]], tu[chosen], tv[chosen], level[chosen])
    shade = t[6] * A + t[7] * B + t[8]
    texel = t[16:19].T * (t[14, :, None] + t[15, :, None] * texel) + shade[:, None]
    image[idx] = np.clip(texel, 0, 1)
    return image.reshape(H, W, 3), normals.reshape(H, W, 3)


def _sky(scene: Scene, K: np.ndarray, world_to_camera: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3)`` float32 sky gradient by the elevation of each pixel's ray in the world."""
    H, W = size
    R = world_to_camera[:3, :3]
    xs = (np.arange(W) - K[0, 2]) / K[0, 0]
    ys = (np.arange(H) - K[1, 2]) / K[1, 1]
    # the world z of the ray (x, y, 1) is R^T's third row dotted with it: R[:, 2]
    up = R[0, 2] * xs[None, :] + R[1, 2] * ys[:, None] + R[2, 2]
    norm = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2 + 1)
    elevation = np.clip(up / norm, 0, 1).astype(np.float32)[:, :, None]
    horizon, zenith = scene.sky.astype(np.float32)
    return horizon + (zenith - horizon) * np.sqrt(elevation)


def _texture(textures: Mapping[int, Any] | Sequence[Any], index: int) -> TexturePyramid:
    try:
        texture = textures[index]
    except (IndexError, KeyError):
        raise OptionError(f"photos_or_textures: the scene uses photo {index}, which is not given") from None
    return texture if isinstance(texture, TexturePyramid) else TexturePyramid(texture)


def _check_camera(
    K: np.ndarray, world_to_camera: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    K = np.asarray(K, np.float64)
    world_to_camera = np.asarray(world_to_camera, np.float64)
    if K.shape != (3, 3) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise OptionError(f"K must be a (3, 3) pinhole matrix with positive focal lengths, got {K.tolist()}")
    if world_to_camera.shape != (4, 4):
        raise OptionError(f"world_to_camera must be (4, 4), got shape {world_to_camera.shape}")
    if len(size) != 2 or min(size) < 1:
        raise OptionError(f"size must be (height, width) >= 1, got {size}")
    return K, world_to_camera, (int(size[0]), int(size[1]))


def render_view(
    scene: Scene,
    photos_or_textures: Mapping[int, Any] | Sequence[Any],
    K: np.ndarray,
    world_to_camera: np.ndarray,
    size: tuple[int, int] = (256, 256),
) -> RenderedView:
    """Render a scene through a pinhole camera by casting one ray through every pixel centre.

    Args:
        scene: the scene.
        photos_or_textures: the photos by index (a sequence, or a mapping holding at least the indices the
            scene uses): ``(h, w, 3)`` uint8 arrays (float in ``[0, 1]`` is accepted) or
            :class:`TexturePyramid` s (pass these when rendering many views: arrays are turned into pyramids
            on every call).
        K: ``(3, 3)`` intrinsics (no skew).
        world_to_camera: ``(4, 4)`` pose, ``X_cam = R @ X_world + t``.
        size: ``(height, width)`` of the image.

    Returns:
        The :class:`RenderedView`.
    """
    K, world_to_camera, size = _check_camera(K, world_to_camera, size)
    cq = _CameraQuads(scene.arrays, K, world_to_camera, size)
    cast = _cast(scene.arrays, cq, K, size)
    image, normals = _shade(scene, photos_or_textures, cq, K, world_to_camera, cast)
    return RenderedView(image, cast[0], cast[1], normals)


def render_depth(
    scene: Scene, K: np.ndarray, world_to_camera: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Only the ``(H, W)`` float32 depth of a view (0 where a ray hits nothing), cheaper than
    :func:`render_view`."""
    K, world_to_camera, size = _check_camera(K, world_to_camera, size)
    cq = _CameraQuads(scene.arrays, K, world_to_camera, size)
    return _cast(scene.arrays, cq, K, size, coordinates=False)[0]


# ----------------------------------------------------------------------------------------------------------
# Ground truth


def _batched(x: Any, dims: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    x = torch.as_tensor(x)
    if dtype is not None:
        x = x.to(dtype)
    return x[None] if x.dim() == dims else x


def _gather(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``image (B, H, W)`` at the nearest pixels of ``x, y`` ``(B, N)`` (clamped to the image)."""
    H, W = image.shape[-2:]
    ix = torch.floor(x + 0.5).clamp(0, W - 1).long()
    iy = torch.floor(y + 0.5).clamp(0, H - 1).long()
    return image.reshape(image.shape[0], -1).gather(1, iy * W + ix)


def _inside(x: torch.Tensor, y: torch.Tensor, H: int, W: int) -> torch.Tensor:
    return (x >= -0.5) & (x <= W - 0.5) & (y >= -0.5) & (y <= H - 0.5)


def project_with_depth(
    points0: torch.Tensor,
    depth0: torch.Tensor,
    depth1: torch.Tensor,
    K0: torch.Tensor,
    K1: torch.Tensor,
    T_0to1: torch.Tensor,
    tolerance: float = 0.02,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where points of image 0 are in image 1, and whether they are seen there, from the two depth maps.

    Each point is lifted along its exact ray with the depth of its nearest pixel, moved into camera 1 and
    projected. It is visible where it has a depth in image 0, lies in front of camera 1, lands inside image 1
    (``[-0.5, W - 0.5] x [-0.5, H - 0.5]``) and its depth in camera 1 agrees with the depth map of image 1 at
    its nearest pixel within ``tolerance`` (relative): otherwise something hides it.

    Args:
        points0: ``(N, 2)`` or ``(B, N, 2)`` pixel coordinates in image 0 (subpixel).
        depth0, depth1: ``(H, W)`` or ``(B, H, W)`` depth maps (0 where there is no surface).
        K0, K1: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics.
        T_0to1: ``(4, 4)`` or ``(B, 4, 4)`` pose of camera 1 relative to camera 0.
        tolerance: largest relative depth difference of a visible point.

    Returns:
        ``points1`` ``(..., N, 2)`` in image 1 (always finite; meaningful where ``visible``, or at least where
        the point has a depth and lies in front of camera 1) and ``visible`` ``(..., N)`` bool; batched
        exactly when ``points0`` is.
    """
    points0 = torch.as_tensor(points0)
    batched = points0.dim() == 3
    dtype = points0.dtype if points0.is_floating_point() else torch.float32
    points0 = _batched(points0, 2, dtype)
    depth0, depth1 = _batched(depth0, 2, dtype), _batched(depth1, 2, dtype)
    K0, K1, T_0to1 = _batched(K0, 2, dtype), _batched(K1, 2, dtype), _batched(T_0to1, 2, dtype)
    B = max(points0.shape[0], depth0.shape[0], K0.shape[0], T_0to1.shape[0])
    points0 = points0.expand(B, -1, -1)
    depth0, depth1 = depth0.expand(B, -1, -1), depth1.expand(B, -1, -1)
    K0, K1, T_0to1 = K0.expand(B, 3, 3), K1.expand(B, 3, 3), T_0to1.expand(B, 4, 4)
    x, y = points0[..., 0], points0[..., 1]
    H0, W0 = depth0.shape[-2:]
    H1, W1 = depth1.shape[-2:]
    z0 = torch.where(_inside(x, y, H0, W0), _gather(depth0, x, y), torch.zeros_like(x))
    homogeneous = torch.stack([x, y, torch.ones_like(x)], -1)
    X0 = (homogeneous @ torch.linalg.inv(K0).transpose(-1, -2)) * z0[..., None]
    X1 = X0 @ T_0to1[:, :3, :3].transpose(-1, -2) + T_0to1[:, None, :3, 3]
    z1 = X1[..., 2]
    projected = X1 @ K1.transpose(-1, -2)
    points1 = projected[..., :2] / z1.clamp(min=1e-6)[..., None]
    x1, y1 = points1[..., 0], points1[..., 1]
    d1 = _gather(depth1, x1, y1)
    visible = (z0 > 0) & (z1 > 0) & _inside(x1, y1, H1, W1) & (d1 > 0) & ((z1 - d1).abs() <= tolerance * z1)
    if not batched:
        points1, visible = points1[0], visible[0]
    return points1, visible


def flow_and_visibility(
    depth0: torch.Tensor,
    depth1: torch.Tensor,
    K0: torch.Tensor,
    K1: torch.Tensor,
    T_0to1: torch.Tensor,
    tolerance: float = 0.02,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense ground truth: where every pixel of image 0 is in image 1, and whether it is seen there.

    Args:
        depth0, depth1: ``(H, W)`` or ``(B, H, W)`` depth maps.
        K0, K1, T_0to1: as for :func:`project_with_depth`.
        tolerance: largest relative depth difference of a visible point.

    Returns:
        ``flow`` ``(..., H, W, 2)``: the position in image 1 (not a displacement) of each pixel centre of
        image 0, and ``visible`` ``(..., H, W)`` bool.
    """
    depth0 = torch.as_tensor(depth0)
    dtype = depth0.dtype if depth0.is_floating_point() else torch.float32
    H, W = depth0.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(H, dtype=dtype), torch.arange(W, dtype=dtype), indexing="ij")
    grid = torch.stack([xs, ys], -1).reshape(-1, 2)
    if depth0.dim() == 3:
        grid = grid.expand(depth0.shape[0], -1, -1)
    points1, visible = project_with_depth(grid, depth0, depth1, K0, K1, T_0to1, tolerance)
    return points1.reshape(*depth0.shape, 2), visible.reshape(depth0.shape)


def relative_angle_deg(T_0to1: np.ndarray | torch.Tensor) -> float:
    """The rotation angle of a relative pose ``(4, 4)`` (or of a rotation ``(3, 3)``), degrees, in
    ``[0, 180]``."""
    R = np.asarray(T_0to1.detach().cpu() if isinstance(T_0to1, torch.Tensor) else T_0to1, np.float64)[:3, :3]
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0))))


# ----------------------------------------------------------------------------------------------------------
# Cameras


@dataclass
class CameraPair:
    """Two pinhole cameras.

    Attributes:
        K0, K1: ``(3, 3)`` float64 intrinsics.
        world_to_camera0, world_to_camera1: ``(4, 4)`` float64 poses.
        target: ``(3,)`` the world point camera 0 looks at.
    """

    K0: np.ndarray
    K1: np.ndarray
    world_to_camera0: np.ndarray
    world_to_camera1: np.ndarray
    target: np.ndarray

    @property
    def T_0to1(self) -> np.ndarray:
        """``(4, 4)`` relative pose, camera 0 coordinates to camera 1's."""
        return self.world_to_camera1 @ np.linalg.inv(self.world_to_camera0)


def intrinsics(rng: np.random.Generator, size: tuple[int, int], fov_deg: tuple[float, float]) -> np.ndarray:
    """``(3, 3)`` K with a horizontal field of view uniform in ``fov_deg`` and the principal point centred."""
    H, W = size
    fov = np.radians(rng.uniform(*fov_deg))
    f = W / 2 / np.tan(fov / 2)
    return np.array([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])


def _pose(centre: np.ndarray, camera_to_world: np.ndarray) -> np.ndarray:
    """``(4, 4)`` world_to_camera from a camera centre and its axes (columns of ``camera_to_world``)."""
    T = np.eye(4)
    T[:3, :3] = camera_to_world.T
    T[:3, 3] = -camera_to_world.T @ centre
    return T


def _look_at(centre: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """Axes (columns: right, down, forward) of a camera at ``centre`` looking at ``target``, z up, rolled."""
    forward = _unit(target - centre)
    up = _UP if abs(forward @ _UP) < 0.95 else np.array([0.0, 1.0, 0.0])
    right = _unit(_cross(forward, up))
    axes = np.stack([right, _cross(forward, right), forward], 1)
    return axes @ _rotation_z(roll)


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    rotation, _ = cv2.Rodrigues((axis / np.linalg.norm(axis) * angle).reshape(3, 1))
    return rotation


def _free(scene: Scene, centre: np.ndarray) -> bool:
    """Whether a camera centre lies in the scene's camera box and outside its obstacles."""
    low, high = scene.camera_box
    if np.any(centre < low) or np.any(centre > high):
        return False
    obstacles = scene.obstacles
    return not np.any(np.all((centre >= obstacles[:, 0]) & (centre <= obstacles[:, 1]), axis=1))


def _nearest_hit(arrays: _QuadArrays, origin: np.ndarray, direction: np.ndarray) -> float:
    """Distance along a unit ray to the nearest quad it hits (inf when none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = ((arrays.origin - origin) * arrays.n).sum(1) / (arrays.n @ direction)
        rel = origin + s[:, None] * direction - arrays.origin
        a, b = (rel * arrays.A).sum(1), (rel * arrays.B).sum(1)
    hit = (s > NEAR) & (a >= 0) & (b >= 0) & np.where(arrays.triangle, a + b <= 1, (a <= 1) & (b <= 1))
    return float(s[hit].min()) if hit.any() else math.inf


def _sees(scene: Scene, centre: np.ndarray, target: np.ndarray) -> bool:
    """Whether nothing hides ``target`` from ``centre`` (up to 2 % before it)."""
    distance = float(np.linalg.norm(target - centre))
    return _nearest_hit(scene.arrays, centre, (target - centre) / distance) >= 0.98 * distance


def _camera0(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Centre of camera 0 and the surface point it looks at, in free space with a clear line of sight."""
    arrays = scene.arrays
    weights = arrays.target * np.sqrt(arrays.area)
    weights = weights / weights.sum()
    low, high = np.log(scene.distance[0]), np.log(scene.distance[1])
    for _ in range(_TRIES):
        q = int(rng.choice(len(arrays), p=weights))
        a, b = rng.random(2)
        if arrays.triangle[q] and a + b > 1:
            a, b = 1 - a, 1 - b
        target = arrays.origin[q] + a * arrays.u[q] + b * arrays.v[q]
        direction = _cone(rng, arrays.normal[q], np.radians(80))
        centre = target + direction * np.exp(rng.uniform(low, high))
        if _free(scene, centre) and _sees(scene, centre, target):
            return centre, target
    centre = scene.camera_box.mean(0)  # a fallback: the middle of the camera box, looking at a random point
    return centre, centre + rng.normal(size=3)


def _cone(rng: np.random.Generator, axis: np.ndarray, half_angle: float) -> np.ndarray:
    """A random unit vector within ``half_angle`` of ``axis`` (uniform on the spherical cap)."""
    cos = rng.uniform(np.cos(half_angle), 1.0)
    phi = rng.uniform(0, 2 * np.pi)
    helper = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
    e1 = _unit(_cross(axis, helper))
    e2 = _cross(axis, e1)
    sin = np.sqrt(1 - cos * cos)
    return cos * axis + sin * (np.cos(phi) * e1 + np.sin(phi) * e2)


def sample_cameras(
    scene: Scene,
    rng: np.random.Generator,
    size: tuple[int, int],
    max_rotation_deg: float = 60.0,
    roll_deg: float = 180.0,
    scale: tuple[float, float] = (0.5, 2.0),
    fov_deg: tuple[float, float] = (40.0, 90.0),
) -> CameraPair:
    """A random pair of cameras in a scene (no overlap check: :class:`ScenePairs` redraws for that).

    Camera 0 stands in free space looking at a random surface point (roll within +-10 degrees). Camera 1
    orbits that point: its axes are camera 0's turned by an angle uniform in ``[0, max_rotation_deg]`` about a
    random axis (mostly vertical), its centre turns with them about the point, is moved by a small random
    translation, and its distance and focal length make the point's image scale ``s`` times camera 0's, ``s``
    log-uniform in ``scale``; it is then rolled about its optical axis by an angle uniform in ``+-roll_deg``.
    The relative rotation angle is at most ``max_rotation_deg + roll_deg``, and at most ``max_rotation_deg``
    without roll.
    Focal lengths come from a horizontal field of view uniform in ``fov_deg``, drawn per camera.

    Args:
        scene: where the cameras stand.
        rng: the random generator.
        size: ``(height, width)`` of both images.
        max_rotation_deg, roll_deg, scale, fov_deg: as for :class:`ScenePairs`.

    Returns:
        The cameras.
    """
    centre0, target = _camera0(scene, rng)
    K0 = intrinsics(rng, size, fov_deg)
    axes0 = _look_at(centre0, target, np.radians(rng.uniform(-10, 10)))
    K1 = intrinsics(rng, size, fov_deg)
    d0 = float(np.linalg.norm(centre0 - target))
    centre1, axes1 = centre0, axes0
    for _ in range(_TRIES):
        axis = _UP * rng.choice([-1.0, 1.0]) + rng.normal(size=3) * 0.7
        turn = _axis_angle(axis, np.radians(rng.uniform(0, max_rotation_deg)))
        zoom = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
        d1 = d0 * (K1[0, 0] / K0[0, 0]) / zoom
        shift = rng.normal(size=3) * 0.08 * d1
        candidate = target + turn @ (centre0 - target) * (d1 / d0) + shift
        if d1 >= 0.5 * scene.distance[0] and _free(scene, candidate) and _sees(scene, candidate, target):
            centre1, axes1 = candidate, turn @ axes0
            break
    else:  # no free place: zoom from camera 0's place
        K1[:2, :2] = K0[:2, :2] * float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    axes1 = axes1 @ _rotation_z(np.radians(rng.uniform(-roll_deg, roll_deg)))
    return CameraPair(K0, K1, _pose(centre0, axes0), _pose(centre1, axes1), target)


def _overlap(depth0: np.ndarray, depth1: np.ndarray, cameras: CameraPair, points: int = 32) -> float:
    """Share of a grid of about ``points x points`` view-0 pixels that are visible in view 1."""
    H, W = depth0.shape
    ys, xs = np.meshgrid(np.linspace(0, H - 1, points), np.linspace(0, W - 1, points), indexing="ij")
    grid = torch.from_numpy(np.stack([xs, ys], -1).reshape(-1, 2).round().astype(np.float32))
    K0, K1 = (torch.from_numpy(K.astype(np.float32)) for K in (cameras.K0, cameras.K1))
    T = torch.from_numpy(cameras.T_0to1.astype(np.float32))
    _, visible = project_with_depth(grid, torch.from_numpy(depth0), torch.from_numpy(depth1), K0, K1, T)
    return float(visible.float().mean())


def _scaled(K: np.ndarray, factor: float) -> np.ndarray:
    """K of the same camera with images scaled by ``factor`` (pixel-centre convention)."""
    S = np.array([[factor, 0, 0.5 * factor - 0.5], [0, factor, 0.5 * factor - 0.5], [0, 0, 1.0]])
    return S @ K


# ----------------------------------------------------------------------------------------------------------
# The dataset


@dataclass
class ScenePair:
    """A rendered pair with everything known about it.

    Attributes:
        scene: the scene; ``cameras``: the cameras; ``view0``, ``view1``: the rendered views (before any
        ``appearance`` change); ``overlap``: share of a grid of view-0 pixels visible in view 1;
        ``attempts``: camera pairs drawn until this one.
    """

    scene: Scene
    cameras: CameraPair
    view0: RenderedView
    view1: RenderedView
    overlap: float
    attempts: int


class ScenePairs(torch.utils.data.Dataset):
    """Pairs of views of random 3D scenes with exact depth, pose and visibility, for training matchers.

    Item ``i`` of epoch ``e`` is drawn from a random state seeded by ``(seed, e, i)``: the scene kind (from
    ``kinds``), the scene (:func:`make_scene`), the cameras (:func:`sample_cameras`, redrawn up to 20 times
    until ``min_overlap`` of a grid of view-0 pixels is visible in view 1, checked on depth maps 48 pixels
    wide first), then the renders and ``appearance``. The same arguments, epoch and index always give the same
    pair (:meth:`set_epoch` changes the epoch).

    Args:
        photos: photo paths (e.g. from :func:`tiepoint_lab.data.photos.list_photos`); loaded with
            :func:`tiepoint.io.image.load_image` and shrunk to a longer side of :data:`MAX_PHOTO_EDGE`.
        size: ``(height, width)`` of both images.
        seed: the base seed.
        length: items per epoch (default: one per photo).
        kinds: the scene kinds to draw from (:data:`KINDS`).
        max_rotation_deg: largest relative rotation of camera 1 before its roll, degrees.
        roll_deg: largest roll of camera 1 about its optical axis, degrees.
        scale: ``(low, high)`` change of scale from image 0 to image 1 at the point camera 0 looks at.
        fov_deg: ``(low, high)`` horizontal field of view of each camera, degrees.
        min_overlap: least share of view-0 grid pixels visible in view 1 (the best of 20 draws is kept when
            none reaches it).
        appearance: ``None``, or ``appearance(image, rng, normals=..., valid=..., view=0 | 1) -> image``
            applied to each view (float32 ``(H, W, 3)`` in ``[0, 1]`` in and out; ``normals``
            ``(H, W, 3)`` in the camera frame, ``valid`` ``(H, W)`` bool where depth > 0), with the item's
            random generator.
        cache: keep loaded photos (as texture pyramids) in memory, per process.

    Each item is a dict:
        ``image0``, ``image1``: ``(3, H, W)`` float32 in ``[0, 1]``; ``depth0``, ``depth1``: ``(H, W)``
        float32, 0 where there is no surface (sky); ``K0``, ``K1``: ``(3, 3)`` float32; ``T_0to1``: ``(4, 4)``
        float32, camera 0 to camera 1; ``index``: int; ``kind``: str; ``angle_deg``: float, the relative
        rotation angle (roll included); ``overlap``: float, share of a 32x32 grid of view-0 pixels visible in
        view 1; with an ``appearance``, ``clean1``: ``(3, H, W)``, view 1 before it (unlit, for a teacher).
    """

    def __init__(
        self,
        photos: Sequence[str | os.PathLike],
        size: tuple[int, int] = (256, 256),
        seed: int = 0,
        length: int | None = None,
        kinds: Sequence[str] = KINDS,
        max_rotation_deg: float = 60.0,
        roll_deg: float = 180.0,
        scale: tuple[float, float] = (0.5, 2.0),
        fov_deg: tuple[float, float] = (40.0, 90.0),
        min_overlap: float = 0.25,
        appearance: Callable[..., np.ndarray] | None = None,
        cache: bool = True,
    ) -> None:
        self.photos = [Path(p) for p in photos]
        if not self.photos:
            raise OptionError("photos: ScenePairs needs at least one photo")
        if len(size) != 2 or min(size) < 16:
            raise OptionError(f"size must be (height, width) with both >= 16, got {size}")
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        if not kinds or any(kind not in KINDS for kind in kinds):
            raise OptionError(f"kinds must be a non-empty selection of {', '.join(KINDS)}, got {kinds}")
        if not 0 <= max_rotation_deg <= 180:
            raise OptionError(f"max_rotation_deg must be in [0, 180], got {max_rotation_deg}")
        if not 0 <= roll_deg <= 180:
            raise OptionError(f"roll_deg must be in [0, 180], got {roll_deg}")
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise OptionError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
        if len(fov_deg) != 2 or not 0 < fov_deg[0] <= fov_deg[1] < 180:
            raise OptionError(f"fov_deg must be (low, high) with 0 < low <= high < 180, got {fov_deg}")
        if not 0 <= min_overlap < 1:
            raise OptionError(f"min_overlap must be in [0, 1), got {min_overlap}")
        if appearance is not None and not callable(appearance):
            raise OptionError(f"appearance must be None or a callable, got {type(appearance).__name__}")
        if length is not None and int(length) < 0:
            raise OptionError(f"length must be >= 0, got {length}")
        self.size = (int(size[0]), int(size[1]))
        self.seed = seed
        self.length = len(self.photos) if length is None else int(length)
        self.kinds = kinds
        self.max_rotation_deg = float(max_rotation_deg)
        self.roll_deg = float(roll_deg)
        self.scale = (float(scale[0]), float(scale[1]))
        self.fov_deg = (float(fov_deg[0]), float(fov_deg[1]))
        self.min_overlap = float(min_overlap)
        self.appearance = appearance
        self.cache = cache
        self.epoch = 0
        self._textures: dict[int, TexturePyramid] = {}

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Use the random pairs of this epoch (epoch 0 is the default; a validation set keeps it fixed)."""
        self.epoch = int(epoch)

    def texture(self, index: int) -> TexturePyramid:
        """The texture pyramid of the photo with this index (longer side at most :data:`MAX_PHOTO_EDGE`)."""
        if index in self._textures:
            return self._textures[index]
        image = load_image(self.photos[index])
        h, w = image.shape[:2]
        if max(h, w) > MAX_PHOTO_EDGE:
            factor = MAX_PHOTO_EDGE / max(h, w)
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        texture = TexturePyramid(image)
        if self.cache:
            self._textures[index] = texture
        return texture

    def pair(self, index: int, rng: np.random.Generator | None = None) -> ScenePair:
        """The scene, cameras and rendered views of item ``index`` (before ``appearance``)."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pairs")
        rng = np.random.default_rng([self.seed, self.epoch, index]) if rng is None else rng
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        scene = make_scene(kind, rng, len(self.photos))
        cameras, attempts = self._cameras(scene, rng)
        used = {int(i) for i in np.unique(scene.arrays.photo) if i >= 0}
        textures = {i: self.texture(i) for i in sorted(used)}
        view0 = render_view(scene, textures, cameras.K0, cameras.world_to_camera0, self.size)
        view1 = render_view(scene, textures, cameras.K1, cameras.world_to_camera1, self.size)
        return ScenePair(scene, cameras, view0, view1, _overlap(view0.depth, view1.depth, cameras), attempts)

    def _cameras(self, scene: Scene, rng: np.random.Generator) -> tuple[CameraPair, int]:
        """Cameras drawn until the overlap on small depth maps reaches ``min_overlap`` (else the best)."""
        factor = min(1.0, 48 / max(self.size))
        small = (max(4, round(self.size[0] * factor)), max(4, round(self.size[1] * factor)))
        best, best_overlap = None, -1.0
        for attempt in range(1, _ATTEMPTS + 1):
            cameras = sample_cameras(
                scene, rng, self.size, self.max_rotation_deg, self.roll_deg, self.scale, self.fov_deg
            )
            if self.min_overlap <= 0:
                return cameras, attempt
            K0, K1 = (
                _scaled(cameras.K0, small[1] / self.size[1]),
                _scaled(cameras.K1, small[1] / self.size[1]),
            )
            depth0 = render_depth(scene, K0, cameras.world_to_camera0, small)
            depth1 = render_depth(scene, K1, cameras.world_to_camera1, small)
            small_pair = CameraPair(
                K0, K1, cameras.world_to_camera0, cameras.world_to_camera1, cameras.target
            )
            overlap = _overlap(depth0, depth1, small_pair, points=min(small))
            if overlap >= self.min_overlap:
                return cameras, attempt
            if overlap > best_overlap:
                best, best_overlap = cameras, overlap
        return best, _ATTEMPTS

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index]) if 0 <= index < self.length else None
        pair = self.pair(index, rng)
        images = []
        for number, view in enumerate((pair.view0, pair.view1)):
            image = view.image
            if self.appearance is not None:
                image = self.appearance(image, rng, normals=view.normals, valid=view.depth > 0, view=number)
                image = np.clip(np.asarray(image, np.float32), 0, 1)
            images.append(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
        cameras = pair.cameras
        T = cameras.T_0to1
        item = {
            "image0": images[0],
            "image1": images[1],
            "depth0": torch.from_numpy(pair.view0.depth),
            "depth1": torch.from_numpy(pair.view1.depth),
            "K0": torch.from_numpy(cameras.K0.astype(np.float32)),
            "K1": torch.from_numpy(cameras.K1.astype(np.float32)),
            "T_0to1": torch.from_numpy(T.astype(np.float32)),
            "index": index,
            "kind": pair.scene.kind,
            "angle_deg": relative_angle_deg(T),
            "overlap": pair.overlap,
        }
        if self.appearance is not None:  # view 1 unlit and unchanged, for a teacher
            item["clean1"] = torch.from_numpy(np.ascontiguousarray(pair.view1.image.transpose(2, 0, 1)))
        return item

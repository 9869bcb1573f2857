"""PLY files of a reconstruction for point-cloud viewers (MeshLab, CloudCompare, Blender): the 3D points
with their colours, and each camera as a small pyramid of edges pointing along its viewing direction.

    write_ply("out/sparse.ply", points, colours, centres, rotations)

Binary little-endian PLY: ``vertex`` (x, y, z float32; red, green, blue uint8) then ``edge`` (vertex1,
vertex2 int32). The points come first, then five vertices per camera (its centre and the four corners of its
pyramid, drawn in red), written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import atomic_path

CAMERA_COLOUR = (255, 0, 0)
"""Colour of the camera pyramids."""


def camera_pyramids(centres: np.ndarray, rotations: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(5 M, 3)`` and edges ``(8 M, 2)`` of a pyramid per camera: apex at the centre, base
    ``size`` ahead along the optical axis, ``size`` wide (4:3).

    Args:
        centres: ``(M, 3)`` camera centres.
        rotations: ``(M, 3, 3)`` world-to-camera rotations.
        size: pyramid depth in world units.
    """
    corners = np.array([[-0.5, -0.375, 1.0], [0.5, -0.375, 1.0], [0.5, 0.375, 1.0], [-0.5, 0.375, 1.0]])
    vertices, edges = [], []
    for index, (centre, rotation) in enumerate(zip(centres, rotations)):
        base = (rotation.T @ (corners * size).T).T + centre
        vertices += [centre, *base]
        first = 5 * index
        edges += [(first, first + k) for k in range(1, 5)]
        edges += [(first + k, first + 1 + k % 4) for k in range(1, 5)]
    return np.array(vertices, np.float64).reshape(-1, 3), np.array(edges, np.int32).reshape(-1, 2)


def write_ply(
    path: str | Path,
    points: np.ndarray,
    colours: np.ndarray,
    centres: np.ndarray,
    rotations: np.ndarray,
    camera_size: float | None = None,
) -> Path:
    """Write points ``(P, 3)`` with colours ``(P, 3)`` uint8 and cameras (centres ``(M, 3)``, world-to-camera
    rotations ``(M, 3, 3)``) to a binary PLY file, atomically.

    Args:
        camera_size: pyramid depth; default 5 % of the spread (90th percentile distance from the median)
            of the points, or 1 without points.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if camera_size is None:
        spread = (
            np.percentile(np.linalg.norm(points - np.median(points, 0), axis=1), 90) if len(points) else 0
        )
        camera_size = 0.05 * float(spread) if spread > 0 else 1.0
    apexes, edges = camera_pyramids(np.asarray(centres).reshape(-1, 3), np.asarray(rotations), camera_size)
    vertices = np.concatenate([points, apexes]).astype("<f4")
    rgb = np.concatenate(
        [np.asarray(colours, np.uint8).reshape(-1, 3), np.tile(np.uint8(CAMERA_COLOUR), (len(apexes), 1))]
    )
    rows = np.empty(len(vertices), [("xyz", "<f4", 3), ("rgb", "u1", 3)])
    rows["xyz"], rows["rgb"] = vertices, rgb
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment tiepoint reconstruction: points, then 5 vertices per "
        f"camera\nelement vertex {len(rows)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element edge {len(edges)}\nproperty int vertex1\nproperty int vertex2\nend_header\n"
    )
    offset = len(points)
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        file.write(header.encode("ascii"))
        file.write(rows.tobytes())
        file.write((edges + offset).astype("<i4").tobytes())
    return Path(path)

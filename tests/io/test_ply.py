"""write_ply: points and camera pyramids in a binary PLY that reads back exactly."""

from __future__ import annotations

import numpy as np

from tiepoint.io.ply import camera_pyramids, write_ply


def read_ply(path):
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith("element")}
    rows = np.frombuffer(data, [("xyz", "<f4", 3), ("rgb", "u1", 3)], counts["vertex"], end)
    edges = np.frombuffer(data, "<i4", 2 * counts["edge"], end + rows.nbytes).reshape(-1, 2)
    assert end + rows.nbytes + edges.nbytes == len(data)
    return header, rows, edges


def test_points_and_cameras_read_back(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 3))
    colours = rng.integers(0, 256, (50, 3), dtype=np.uint8)
    centres = np.array([[0.0, 0, -5], [5.0, 0, 0]])
    rotations = np.stack([np.eye(3), np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]])])
    path = write_ply(tmp_path / "model.ply", points, colours, centres, rotations, camera_size=0.5)
    header, rows, edges = read_ply(path)
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    assert len(rows) == 50 + 10 and len(edges) == 16
    assert np.allclose(rows["xyz"][:50], points, atol=1e-6) and np.array_equal(rows["rgb"][:50], colours)
    assert (rows["rgb"][50:] == (255, 0, 0)).all()
    # each camera's apex is its centre; its base lies 0.5 ahead along its optical axis (the third row of R)
    for index, (centre, rotation) in enumerate(zip(centres, rotations)):
        apex, base = rows["xyz"][50 + 5 * index], rows["xyz"][51 + 5 * index : 55 + 5 * index]
        assert np.allclose(apex, centre)
        assert np.allclose((base - centre) @ rotation[2], 0.5, atol=1e-6)
    assert edges.min() == 50 and edges.max() == 59
    assert not list(tmp_path.glob("*.partial"))


def test_pyramid_edges_close_each_base():
    vertices, edges = camera_pyramids(np.zeros((1, 3)), np.eye(3)[None], 1.0)
    assert vertices.shape == (5, 3) and edges.shape == (8, 2)
    assert sorted(map(tuple, edges[4:])) == [(1, 2), (2, 3), (3, 4), (4, 1)]

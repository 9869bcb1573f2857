"""Reconstruction benchmark helpers: similarity alignment errors, view neighbours, retrieval precision."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tiepoint.errors import DatasetError, OptionError
from tiepoint_lab.bench.reconstruction import (
    pose_errors,
    retrieval_precision,
    temple_benchmark,
    temple_ground_truth,
    view_neighbours,
)


def _ring(count: int = 8) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    poses = {}
    for i, angle in enumerate(np.linspace(0, 2 * np.pi, count, endpoint=False)):
        centre = np.array([np.cos(angle), np.sin(angle), 0.3])
        z = -centre / np.linalg.norm(centre)
        x = np.cross(z, [0, 0, 1.0])
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        poses[f"{i}.png"] = (R, -R @ centre)
    return poses


def _transformed(poses, scale, S, shift):
    """The same cameras in a world ``X' = scale S X + shift`` (what a reconstruction returns)."""
    moved = {}
    for name, (R, t) in poses.items():
        centre = scale * S @ (-R.T @ t) + shift
        R_new = R @ S.T
        moved[name] = (R_new, -R_new @ centre)
    return moved


def test_pose_errors_undo_a_similarity():
    truth = _ring()
    S = Rotation.from_euler("xyz", [20, -40, 75], degrees=True).as_matrix()
    estimated = _transformed(truth, 0.37, S, np.array([3.0, -1.0, 2.0]))
    errors = pose_errors(estimated, truth)
    assert errors["rotation_error_deg"]["max"] < 1e-4 and errors["centre_error"]["max"] < 1e-9
    assert errors["scale"] == pytest.approx(1 / 0.37)
    assert errors["ring_radius"] == pytest.approx(1.0)

    R, t = estimated["3.png"]
    tilt = Rotation.from_euler("x", 2, degrees=True).as_matrix()
    estimated["3.png"] = (tilt @ R, tilt @ t)  # rotate camera 3 by 2 degrees about its own centre
    errors = pose_errors(estimated, truth)
    assert errors["rotation_error_deg"]["max"] == pytest.approx(2, abs=1e-6)
    assert errors["per_image"]["3.png"]["rotation_error_deg"] == pytest.approx(2, abs=1e-6)
    assert errors["rotation_error_deg"]["median"] < 1e-4


def test_pose_errors_refuse_bad_input():
    truth = _ring()
    with pytest.raises(DatasetError, match="no ground truth"):
        pose_errors({"other.png": truth["0.png"], **truth}, truth)
    with pytest.raises(DatasetError, match="at least 3"):
        pose_errors({k: truth[k] for k in ("0.png", "1.png")}, truth)


def test_view_neighbours_on_a_ring():
    neighbours = view_neighbours(_ring(8))
    assert set(neighbours["0.png"][:2]) == {"1.png", "7.png"}
    assert neighbours["0.png"][-1] == "4.png"


def test_true_neighbour_pairs_on_a_ring(tmp_path):
    from tiepoint.pipeline.pairs import read_pairs
    from tiepoint_lab.bench.reconstruction import true_neighbour_pairs

    path = true_neighbour_pairs(_ring(8), 2, tmp_path / "pairs.txt")
    pairs = read_pairs(path)
    assert len(pairs) == 8 and len(set(pairs)) == 8  # each image with the next, once
    assert all((int(b[0]) - int(a[0])) % 8 in (1, 7) for a, b in pairs)


@pytest.mark.slow
def test_vlad_retrieval_finds_temple_neighbours(data_root, tmp_path):
    from tiepoint.pipeline.extract import extract_features

    root = data_root / "middlebury" / "templeSparseRing"
    truth, K = temple_ground_truth(root)
    assert len(truth) == 16 and K[0, 0] == pytest.approx(1520.4)
    extract_features(root, tmp_path / "f.h5", progress=False)
    neighbours = view_neighbours(truth)
    vlad = retrieval_precision(tmp_path / "f.h5", neighbours, 2)
    mean = retrieval_precision(tmp_path / "f.h5", neighbours, 2, aggregation="mean")
    assert vlad >= 0.8 and vlad > mean + 0.2  # measured: 0.875 and 0.44 (random: 0.13)


def test_temple_benchmark_names_unknown_variants(tmp_path):
    with pytest.raises(OptionError, match="unknown temple variants nope; variants: exhaustive"):
        temple_benchmark(tmp_path, tmp_path / "out", tmp_path / "work", variants=["retrieval-5", "nope"])
    assert not (tmp_path / "out").exists()

"""The ring benchmark's pieces: ring order, windows, scores, and COLMAP's own pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from tiepoint_lab.bench.reconstruction import temple_ground_truth
from tiepoint_lab.bench.rings import (
    colmap_database,
    colmap_reconstruct,
    relative_rotation_errors,
    ring_order,
    ring_windows,
    score_views,
    synthetic_ring_runs,
)
from tiepoint_lab.data.turntable import render_ring


def _rotation_z(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def test_windows_wrap_around_the_ring():
    assert ring_windows(["a", "b", "c"], 2) == [["a", "b"], ["b", "c"], ["c", "a"]]


def test_ring_order_follows_the_angle_of_the_centres():
    # cameras on a circle about the z axis, named out of order
    names = ["v3", "v0", "v2", "v1"]
    angles = {"v0": 0, "v1": 90, "v2": 180, "v3": 270}
    truth = {}
    for name in names:
        R = _rotation_z(angles[name])
        centre = R @ np.array([1.0, 0, 0])
        truth[name] = (R.T, -R.T @ centre)
    order = ring_order(truth)
    start = order.index("v0")
    assert order[start:] + order[:start] in (["v0", "v1", "v2", "v3"], ["v0", "v3", "v2", "v1"])


def test_relative_rotation_errors_ignore_a_common_rotation():
    truth = {n: (_rotation_z(a), np.zeros(3)) for n, a in (("a", 0), ("b", 30), ("c", 70))}
    turned = {n: (R @ _rotation_z(12).T, t) for n, (R, t) in truth.items()}
    assert np.allclose(relative_rotation_errors(turned, truth), 0, atol=1e-6)
    wrong = {**turned, "c": (_rotation_z(75) @ _rotation_z(12).T, np.zeros(3))}
    errors = relative_rotation_errors(wrong, truth)
    assert max(errors) == pytest.approx(5, abs=1e-6)
    assert score_views([], truth, list(truth)) == {
        "views": 3,
        "registered": 0,
        "relative_rotation_error_deg": None,
        "max_relative_rotation_error_deg": None,
    }


@pytest.mark.slow
def test_colmap_pipeline_on_a_small_turntable(tmp_path, textured_image):
    photos = [np.rot90(textured_image, k).copy() for k in range(4)]
    folder = tmp_path / "ring"
    truth = render_ring(folder, photos, seed=0, size=(240, 320))
    assert temple_ground_truth(folder)[0].keys() == truth.keys()
    names = ring_order(truth)[:6]
    times = colmap_database(folder, names, tmp_path / "work")
    assert set(times) == {"extract", "match"} and all(t >= 0 for t in times.values())
    for mapper in ("incremental", "global"):
        run = colmap_reconstruct(folder, names, tmp_path / "work", mapper)
        summary = run.summary
        assert summary["num_images"] == 6 and summary["status"] == "unchecked"
        unregistered = {entry["image"] for entry in summary["unregistered_images"]}
        assert summary["registered_images"] + len(unregistered) == 6 and unregistered <= set(names)
        assert summary["num_verified_pairs"] >= 5
        scores = score_views(run.models, truth, names)
        assert scores["registered"] == summary["registered_images"]
        if scores["registered"] >= 2:  # COLMAP's defaults are not seeded: no accuracy is asserted
            assert scores["relative_rotation_error_deg"] is not None


@pytest.mark.slow
def test_synthetic_ring_runs_render_once_and_list_every_window(tmp_path, textured_image):
    photos = [np.rot90(textured_image, k).copy() for k in range(4)]
    runs = list(synthetic_ring_runs(tmp_path, photos, rings=1))
    assert [name for name, *_ in runs] == ["ring-0/full"] + [f"ring-0/window-{i:02d}" for i in range(16)]
    _, folder, truth, order = runs[0]
    assert sorted(order) == sorted(truth) and len(order) == 16
    assert runs[1][3] == order[:6] and runs[16][3] == order[15:] + order[:5]
    stamp = (folder / "ring_par.txt").stat().st_mtime_ns
    again = next(synthetic_ring_runs(tmp_path, photos, rings=1))
    assert again[3] == order and (folder / "ring_par.txt").stat().st_mtime_ns == stamp

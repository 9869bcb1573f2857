"""RaCo benchmark helpers: the rotated pairs carry the right homography, the table and plots are written."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tiepoint_lab.bench.raco import _plots, _table, rotation_pairs


def test_rotated_pairs_are_related_by_their_homography(tmp_path, textured_image):
    path = tmp_path / "photo.png"
    Image.fromarray(np.repeat(np.repeat(textured_image, 3, 0), 3, 1)).save(path)
    ((image0, image1, H),) = rotation_pairs([path], 90, size=96, photometric=False)
    assert image0.shape == image1.shape == (96, 96, 3)
    grid = np.stack(np.meshgrid(np.arange(30, 66), np.arange(30, 66)), -1).reshape(-1, 2).astype(np.float64)
    mapped = grid @ H[:2, :2].T + H[:2, 2]
    inside = (mapped >= 0).all(1) & (mapped <= 95).all(1)
    a = image0[grid[inside, 1].astype(int), grid[inside, 0].astype(int)].astype(float)
    b = image1[np.round(mapped[inside, 1]).astype(int), np.round(mapped[inside, 0]).astype(int)].astype(float)
    assert np.abs(a - b).mean() < 3.0  # the same scene point, up to interpolation


def test_table_and_plots(tmp_path):
    results = {
        "environment": {"cpu": "test cpu"},
        "budgets": [128, 256],
        "angles": [0, 90],
        "budget": {"sift": {"score": [0.3, 0.4], "ranker": [0.35, 0.42]}},
        "rotation": {"sift": [0.6, 0.5]},
        "calibration": {
            "slope": 1.1,
            "whitened": 1.2,
            "count": 100,
            "predicted": [0.5, 1.0],
            "observed": [0.6, 1.1],
        },
        "estimation": {"oxford": {"poselib": {"auc@3px": 0.5}, "weighted": {"auc@3px": 0.55}}},
    }
    table = _table(results)
    assert "sift (ranker)" in table and "35.0" in table and "slope 1.1" in table and "auc@3px=0.55" in table
    paths = _plots(tmp_path, results)
    assert [p.name for p in paths] == ["budget.png", "rotation.png", "calibration.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_a_report_is_rerun_when_the_weights_it_depends_on_change(tmp_path, monkeypatch):
    import json

    from tiepoint_lab.bench import raco

    calls = []
    fake = {"raco": {mode: [0.5] for mode in raco.MODES}}
    monkeypatch.setattr(raco, "load_dataset", lambda name, root: None)
    monkeypatch.setattr(raco, "budget_report", lambda *args: calls.append(1) or fake)
    options = {"reports": ["budget", "calibration"], "budgets": [256], "progress": lambda message: None}
    shipped = raco.weights_fingerprint()
    calibration = {
        "slope": 1.0,
        "affine_slope": 0.5,
        "whitened": 1.0,
        "count": 1,
        "predicted": [1.0],
        "observed": [1.0],
    }
    (tmp_path / "results.json").write_text(json.dumps({"weights": shipped, "calibration": calibration}))
    raco.run_raco_benchmark(tmp_path, **options)
    raco.run_raco_benchmark(tmp_path, **options)  # resumed: both reports are there
    assert len(calls) == 1
    monkeypatch.setattr(raco, "weights_fingerprint", lambda: {**shipped, "raco_ranker": "retrained"})
    raco.run_raco_benchmark(tmp_path, **options)  # the budget report uses the ranker, calibration does not
    assert len(calls) == 2
    assert json.loads((tmp_path / "results.json").read_text())["calibration"] == calibration

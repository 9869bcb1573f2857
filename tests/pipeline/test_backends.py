"""Backends: local chunks and failures; the Ray backend gives the same files as the local one."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from tiepoint.errors import OptionError
from tiepoint.io.h5 import list_feature_names, read_features, read_matches
from tiepoint.pipeline.backends import LocalBackend, chunked, get_backend
from tiepoint.pipeline.extract import extract_features
from tiepoint.pipeline.matching import match_pairs
from tiepoint.pipeline.pairs import exhaustive_pairs


def _square_or_fail(x):
    if x == 3:
        raise ValueError("three is bad")
    return x * x


def test_local_backend_reports_failed_chunks():
    results = list(LocalBackend().run(_square_or_fail, [(1,), (3,), (4,)]))
    assert [(r.index, r.value) for r in results] == [(0, 1), (1, None), (2, 16)]
    assert results[1].error == "ValueError: three is bad"


def test_chunked_and_get_backend():
    assert chunked([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    with pytest.raises(OptionError, match="chunk_size"):
        chunked([1], 0)
    assert isinstance(get_backend(None), LocalBackend)
    with pytest.raises(OptionError, match="unknown backend 'dask'"):
        get_backend("dask")
    with pytest.raises(OptionError, match="address"):
        get_backend("local", address="auto")


def _exit_worker(x):
    os._exit(1)  # a worker that dies


@pytest.mark.slow
def test_ray_gives_the_same_files_as_local(corner_scene, tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from tiepoint.pipeline.backends import RayBackend

    names = [f"view{i}.png" for i in range(4)]
    images = [corner_scene.folder / name for name in names]
    pairs = exhaustive_pairs(names)
    extract_features(images, tmp_path / "local" / "features.h5", progress=False)
    with RayBackend(num_workers=2, max_retries=0) as backend:
        assert backend.workers == 2
        summary = extract_features(
            images, tmp_path / "ray" / "features.h5", backend=backend, chunk_size=1, progress=False
        )
        assert sorted(summary.extracted) == names
        matched = match_pairs(
            pairs,
            tmp_path / "ray" / "features.h5",
            tmp_path / "ray" / "matches.h5",
            backend=backend,
            chunk_size=2,
            progress=False,
        )
        assert sorted(matched.done) == sorted(pairs)
        # a dead worker loses its chunk only; the others come back
        results = sorted(backend.run(_exit_worker, [(1,)]), key=lambda r: r.index)
        assert results[0].value is None and results[0].error
    match_pairs(pairs, tmp_path / "local" / "features.h5", tmp_path / "local" / "matches.h5", progress=False)
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert list_feature_names(local / "features.h5") == list_feature_names(ray / "features.h5") == names
    for name in names:
        a, b = read_features(local / "features.h5", name), read_features(ray / "features.h5", name)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_array_equal(a.descriptors, b.descriptors)
    for pair in pairs:
        (ia, sa), (ib, sb) = (
            read_matches(local / "matches.h5", *pair),
            read_matches(ray / "matches.h5", *pair),
        )
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_allclose(sa, sb, rtol=1e-6)
    with h5py.File(ray / "features.h5", "r") as file:
        assert all(file[name].attrs["complete"] for name in names)

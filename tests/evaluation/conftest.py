"""Fixtures of the evaluation tests: the real datasets in the shared data (a test needing one is skipped
without it)."""

from __future__ import annotations

from pathlib import Path

import pytest


def _dataset_folder(data_root: Path, relative: str) -> Path:
    folder = data_root / relative
    if not folder.is_dir():
        pytest.skip(f"{relative} not found under {data_root}")
    return folder


@pytest.fixture(scope="session")
def oxford_root(data_root) -> Path:
    """The Oxford affine dataset folder."""
    return _dataset_folder(data_root, "oxford_affine")


@pytest.fixture(scope="session")
def temple_root(data_root) -> Path:
    """The Middlebury templeSparseRing folder."""
    return _dataset_folder(data_root, "middlebury/templeSparseRing")

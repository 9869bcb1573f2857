"""Shared fixtures: small real images and the location of the shared evaluation data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def shared_data_root() -> Path | None:
    """``$TIEPOINT_DATA`` or ``../shared/data`` beside the repository, if present."""
    candidates = [os.environ.get("TIEPOINT_DATA"), Path(__file__).resolve().parents[2] / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip(
            "shared evaluation data not found (set TIEPOINT_DATA or place ../shared/data beside the repo)"
        )
    return root


@pytest.fixture(scope="session")
def stereo_pair():
    """The bundled Middlebury 2014 'Motorcycle' pair with ground truth."""
    from tiepoint.demo import motorcycle_pair

    return motorcycle_pair()


@pytest.fixture
def textured_image() -> np.ndarray:
    """A deterministic 120x160 RGB image with blob texture that classical detectors find keypoints in."""
    rng = np.random.default_rng(0)
    import cv2

    noise = rng.random((30, 40)).astype(np.float32)
    image = cv2.resize(noise, (160, 120), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image * 255, 0, 255).astype(np.uint8)
    return np.repeat(image[:, :, None], 3, axis=2)

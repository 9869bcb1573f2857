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


@pytest.fixture(scope="session")
def graf_1_2(data_root):
    """Oxford affine ``graf`` images 1 and 2 (RGB uint8) and the homography ``H1to2p`` from image 1 to 2."""
    import cv2

    folder = data_root / "oxford_affine" / "graf"
    files = [folder / "img1.png", folder / "img2.png", folder / "H1to2p"]
    if not all(path.is_file() for path in files):
        pytest.skip(f"Oxford graf img1, img2 and H1to2p not found under {folder}")
    images = [cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].copy() for path in files[:2]]
    return images[0], images[1], np.loadtxt(files[2])

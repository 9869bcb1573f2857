"""Fixtures of the lab tests (training and data preparation)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def photos(tmp_path, textured_image):
    """Four small photo files (the textured image in four orientations)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for index in range(4):
        path = folder / f"photo{index}.png"
        Image.fromarray(np.rot90(textured_image, index).copy()).save(path)
        paths.append(path)
    return paths

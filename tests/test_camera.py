"""A camera that cannot be (zero or negative focal length, no pixels, NaN) is refused when it is made."""

from __future__ import annotations

import numpy as np
import pytest

from tiepoint.errors import OptionError
from tiepoint.types import Camera

K = np.array([[500.0, 0.0, 319.5], [0.0, 500.0, 239.5], [0.0, 0.0, 1.0]])


def test_a_valid_camera():
    camera = Camera.from_K(K, 640, 480)
    assert (camera.width, camera.height) == (640, 480)
    np.testing.assert_array_equal(camera.K, K)


@pytest.mark.parametrize(
    "k, width, height, message",
    [
        (K, 0, 0, "width must be a positive number of pixels, got 0"),
        (K, 640, -1, "height must be a positive number of pixels"),
        (np.diag([0.0, 500.0, 1.0]), 640, 480, "focal lengths must be positive"),
        (np.diag([-500.0, 500.0, 1.0]), 640, 480, "focal lengths must be positive"),
        (np.where(K == 319.5, np.nan, K), 640, 480, "finite numbers"),
    ],
)
def test_impossible_cameras_are_refused(k, width, height, message):
    with pytest.raises(OptionError, match=message):
        Camera.from_K(k, width, height)


def test_direct_construction_is_checked_too():
    with pytest.raises(OptionError, match="width"):
        Camera(500.0, 500.0, 320.0, 240.0, True, 480)
    with pytest.raises(OptionError, match="finite"):
        Camera(float("inf"), 500.0, 320.0, 240.0, 640, 480)


def test_scaling_down_keeps_at_least_one_pixel():
    assert Camera.from_K(K, 640, 480).scaled(0.0001).width == 1

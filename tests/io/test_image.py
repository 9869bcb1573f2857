"""Images in every supported form, and every kind of bad image, give one canonical array or a clear error."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tiepoint.errors import ImageError
from tiepoint.io.image import MIN_SIDE, Resize, as_image, load_image, resize_to_max_edge


def test_load_png_gives_uint8_rgb(tmp_path, textured_image):
    rgb = textured_image.copy()
    rgb[..., 0] = 0  # make channels differ so that a BGR/RGB swap is caught
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    image = load_image(tmp_path / "a.png")
    assert image.dtype == np.uint8 and image.shape == (120, 160, 3)
    np.testing.assert_array_equal(image, rgb)


def test_sixteen_bit_greyscale_is_scaled(tmp_path):
    grey16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    image = load_image(tmp_path / "g16.png")
    assert image.shape == (64, 64, 3)
    np.testing.assert_array_equal(image[..., 0], np.round(grey16 / 257.0).astype(np.uint8))
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_rgba_drops_alpha(tmp_path, textured_image):
    rgba = np.concatenate([textured_image, np.full((120, 160, 1), 7, np.uint8)], axis=2)
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), textured_image)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((32, 48), np.uint8),
        np.zeros((32, 48, 1), np.uint8),
        np.zeros((32, 48, 4), np.uint8),
        np.zeros((32, 48, 3), np.float32),
        np.zeros((32, 48), np.uint16),
    ],
)
def test_arrays_of_each_layout(array):
    image = as_image(array)
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8


def test_tensors_follow_kornia_convention():
    tensor = torch.linspace(0, 1, 3 * 20 * 30).reshape(1, 3, 20, 30)
    image = as_image(tensor)
    assert image.shape == (20, 30, 3)
    assert image[0, 0, 0] == 0 and image[-1, -1, -1] == 255
    assert as_image(torch.zeros(20, 30, dtype=torch.uint8)).shape == (20, 30, 3)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((1, 1, 3), np.uint8), "at least"),
        (np.zeros((MIN_SIDE - 1, 100), np.uint8), "at least"),
        (np.zeros((32, 32, 3), np.int64), "dtype"),
        (np.zeros((32, 32, 2), np.uint8), "shape"),
        (np.full((32, 32), 255.0, np.float32), r"\[0, 1\]"),
        (np.full((32, 32), np.nan, np.float32), "NaN"),
        ([[0, 1], [2, 3]], "expected a path"),
        (torch.zeros(2, 3, 20, 20), "one image"),
    ],
)
def test_bad_arrays_give_clear_errors(bad, message):
    with pytest.raises(ImageError, match=message):
        as_image(bad)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="not found: .*missing.png"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty .*empty.png"):
        load_image(tmp_path / "empty.png")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 3)
    with pytest.raises(ImageError, match="corrupt.jpg"):
        load_image(tmp_path / "corrupt.jpg")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageError, match="text.png"):
        load_image(tmp_path / "text.png")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_huge_image_rejected_from_header(tmp_path, monkeypatch):
    import tiepoint.io.image as image_module

    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((100, 100), np.uint8))
    monkeypatch.setattr(image_module, "MAX_PIXELS", 5000)
    with pytest.raises(ImageError, match="megapixels"):
        load_image(tmp_path / "big.png")


def test_resize_maps_coordinates_back():
    image = np.zeros((400, 1000, 3), np.uint8)
    small, resize = resize_to_max_edge(image, 500)
    assert small.shape == (200, 500, 3) and resize == Resize(2.0, 2.0)
    # the centre of the top-left pixel and of the bottom-right pixel map to the same in the original
    np.testing.assert_allclose(
        resize.to_original(np.array([[-0.5, -0.5], [499.5, 199.5]])), [[-0.5, -0.5], [999.5, 399.5]]
    )
    same, identity = resize_to_max_edge(image, 2000)
    assert same is image and identity == Resize()
    cov = resize.covariances_to_original(np.eye(2)[None])
    np.testing.assert_allclose(cov[0], 4 * np.eye(2))


def test_resize_for_network_gives_multiples_and_maps_back():
    from tiepoint.io.image import resize_for_network

    image = np.zeros((700, 1000, 3), np.uint8)
    resized, resize = resize_for_network(image, 640, 32)
    assert resized.shape[:2] == (448, 640)
    assert resize.to_original(np.array([[639.5, 447.5]])) == pytest.approx(np.array([[999.5, 699.5]]))
    odd = np.zeros((50, 70), np.uint8)
    resized, resize = resize_for_network(odd, None, 32)  # no shrinking, sides rounded to the nearest multiple
    assert resized.shape == (64, 64) and resize.scale_x == pytest.approx(70 / 64)
    same = np.zeros((64, 96), np.uint8)
    assert resize_for_network(same, 640, 32)[0] is same


def test_resize_for_network_upsamples_after_shrinking():
    from tiepoint.io.image import resize_for_network

    resized, resize = resize_for_network(np.zeros((700, 1000), np.uint8), 640, 32, upsample=2.0)
    assert resized.shape == (896, 1280)
    assert resize.to_original(np.array([[1279.5, 895.5]])) == pytest.approx(np.array([[999.5, 699.5]]))
    resized, resize = resize_for_network(np.zeros((480, 640), np.uint8), 640, 32, upsample=1.5)
    assert resized.shape == (704, 960) and resize.scale_x == pytest.approx(640 / 960)
    with pytest.raises(ValueError, match="upsample"):
        resize_for_network(np.zeros((480, 640), np.uint8), 640, 32, upsample=0.5)

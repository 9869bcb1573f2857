import numpy as np
import pytest
import torch

from tiepoint.nn.image import LUMA, box_sum, gray, gray_input, local_contrast


def test_gray_weights_rgb_channels_and_keeps_one_channel():
    rgb = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    expected = LUMA[0] * rgb[:, 0] + LUMA[1] * rgb[:, 1] + LUMA[2] * rgb[:, 2]
    assert torch.allclose(gray(rgb)[:, 0], expected)
    one = torch.rand(2, 1, 5, 7)
    assert gray(one) is one


def test_gray_input_matches_the_array_conversion():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    tensor = gray_input(image)
    assert tensor.shape == (1, 1, 6, 9) and tensor.dtype == torch.float32
    # OpenCV rounds to uint8 on the way: within half a grey level of the float luma
    luma = (image.astype(np.float64) @ np.array(LUMA)) / 255.0
    assert np.abs(tensor[0, 0].numpy() - luma).max() <= 0.5 / 255 + 1e-6


def test_local_contrast_is_the_window_standard_deviation():
    image = torch.rand(2, 1, 16, 24, dtype=torch.float64)
    cells = local_contrast(image, 8, 8)
    assert cells.shape == (2, 1, 2, 3)
    expected = image[:, :, 8:16, 16:24].flatten(1).std(1, unbiased=False)
    assert torch.allclose(cells[:, 0, 1, 2].double(), expected, atol=1e-6)
    centred = local_contrast(image, 3)
    assert centred.shape == image.shape
    assert torch.allclose(
        centred[:, 0, 4, 5].double(), image[:, :, 3:6, 4:7].flatten(1).std(1, unbiased=False), atol=1e-6
    )
    # a window cut by the border counts only the pixels inside
    assert torch.allclose(
        centred[:, 0, 0, 0].double(), image[:, :, :2, :2].flatten(1).std(1, unbiased=False), atol=1e-6
    )
    assert local_contrast(torch.full((1, 1, 8, 8), 0.7), 3).max() < 1e-3 / 255  # flat, up to rounding


def test_local_contrast_rejects_windows_it_cannot_centre_or_tile():
    image = torch.rand(1, 1, 8, 8)
    for size, stride in ((4, 1), (3, 2)):
        with pytest.raises(ValueError):
            local_contrast(image, size, stride)


def test_box_sum_is_the_zero_padded_window_sum():
    x = torch.rand(2, 3, 11, 17, dtype=torch.float64)
    for size in (1, 3, 9):
        expected = torch.nn.functional.avg_pool2d(x, size, 1, size // 2, count_include_pad=True) * size**2
        assert torch.allclose(box_sum(x, size), expected)

import numpy as np
import torch

from tiepoint.nn.image import LUMA, gray, gray_input


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

"""Keypoint selection from score maps."""

import torch
import torch.nn.functional as F

from tiepoint.nn.detection import CONTRAST_WINDOW, detect_keypoints, local_maximum, textured


def test_local_maximum_equals_max_pool():
    scores = torch.randn(2, 1, 37, 53, generator=torch.Generator().manual_seed(0))
    for radius in (1, 2, 4):
        expected = F.max_pool2d(scores, 2 * radius + 1, stride=1, padding=radius)
        torch.testing.assert_close(local_maximum(scores, radius), expected)


def _peaks(height=40, width=60):
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    logits = (-10.0 - 0.01 * (x + y).float()).view(1, 1, height, width)  # no maxima away from the corner
    logits[0, 0, 10, 20] = 5.0  # a clean peak
    logits[0, 0, 30, 40] = 4.0  # a peak with a strong right neighbour: sub-pixel shift to the right
    logits[0, 0, 30, 41] = 4.0 - 1.0
    logits[0, 0, 1, 1] = 9.0  # inside the border: dropped
    return logits


def test_detect_finds_peaks_in_score_order_with_subpixel_refinement():
    keypoints, scores = detect_keypoints(_peaks(), max_keypoints=10, nms_radius=2, border=4)
    assert keypoints.shape == (1, 2, 2)
    assert torch.all(scores[0, :-1] >= scores[0, 1:])
    torch.testing.assert_close(keypoints[0, 0], torch.tensor([20.0, 10.0]), atol=1e-3, rtol=0)
    assert 40.0 < float(keypoints[0, 1, 0]) < 40.5 and abs(float(keypoints[0, 1, 1]) - 30.0) < 1e-3


def test_detect_threshold_and_budget():
    keypoints, scores = detect_keypoints(_peaks(), max_keypoints=10, threshold=0.5)
    assert keypoints.shape[1] == 2 and bool((scores > 0.5).all())
    keypoints, _ = detect_keypoints(_peaks(), max_keypoints=1)
    assert keypoints.shape == (1, 1, 2)


def test_no_keypoints_where_the_image_is_flat():
    image = torch.full((1, 1, 40, 60), 0.5)
    image[..., 32:] = torch.rand(
        1, 1, 40, 28, generator=torch.Generator().manual_seed(0)
    )  # right part textured
    allowed = textured(image)
    assert allowed.shape == image.shape
    # textured within the window's half side of the textured part, flat beyond
    assert (
        allowed[..., 32 - CONTRAST_WINDOW // 2 :].all()
        and not allowed[..., : 32 - CONTRAST_WINDOW // 2].any()
    )
    assert textured(image, min_contrast=0) is None
    keypoints, _ = detect_keypoints(_peaks(), max_keypoints=10, allowed=allowed)  # peaks at x = 20 and 40
    assert keypoints.shape == (1, 1, 2) and float(keypoints[0, 0, 0]) > 40
    blank, _ = detect_keypoints(_peaks(), max_keypoints=10, allowed=textured(torch.zeros(1, 3, 40, 60)))
    assert blank.shape == (1, 0, 2)

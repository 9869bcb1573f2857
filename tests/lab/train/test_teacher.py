"""The ALIKED distillation teacher: outputs, describe at given points, covariance under shifts and
rotations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tiepoint.errors import OptionError, WeightsError
from tiepoint.features.aliked import find_weights
from tiepoint_lab.data.homography import warp_points

try:
    find_weights("n32")
except WeightsError as error:
    pytest.skip(f"ALIKED weights not installed: {error}", allow_module_level=True)

from tiepoint_lab.train.teacher import AlikedTeacher

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def teacher() -> AlikedTeacher:
    return AlikedTeacher("n32", max_keypoints=300, detection_threshold=-1)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()  # 512 x 512 RGB, CC0


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0


def _repeated(points: np.ndarray, others: np.ndarray, tolerance: float) -> float:
    return float((np.linalg.norm(points[:, None] - others[None], axis=-1).min(1) < tolerance).mean())


def test_outputs(teacher, photo):
    images = torch.cat([_tensor(photo[:128, :160]), _tensor(photo[200:328, 100:260])])
    out = teacher(images)
    assert out["score_map"].shape == (2, 1, 128, 160) and not out["score_map"].requires_grad
    for keypoints, scores, descriptors in zip(out["keypoints"], out["scores"], out["descriptors"]):
        assert keypoints.shape == (300, 2) and scores.shape == (300,) and descriptors.shape == (300, 128)
        torch.testing.assert_close(descriptors.norm(dim=1), torch.ones(300))
        assert (keypoints >= 0).all() and (keypoints[:, 0] <= 159).all() and (keypoints[:, 1] <= 127).all()
    assert teacher.descriptor_dim == 128 and not any(p.requires_grad for p in teacher.net.parameters())


def test_describe_at_given_points(teacher, photo):
    image = _tensor(photo[:128, :128])
    out = teacher(image)
    again = teacher.describe(image, out["keypoints"])[0]
    torch.testing.assert_close(again, out["descriptors"][0])
    points = torch.tensor([[5.5, 7.25], [64.0, 64.0], [127.0, 0.0]])
    descriptors = teacher.describe(image, [points])[0]
    assert descriptors.shape == (3, 128)
    torch.testing.assert_close(descriptors.norm(dim=1), torch.ones(3))


def test_keypoints_and_descriptors_follow_a_shift(teacher, photo):
    """Crops 32 px apart (a multiple of the network's stride) see the same points at the same descriptors."""
    a, b = _tensor(photo[100:356, 100:356]), _tensor(photo[132:388, 116:372])
    shift = np.array([16.0, 32.0])
    ka = teacher(a)["keypoints"][0].numpy() - shift
    kb = teacher(b)["keypoints"][0].numpy()
    inner = ((ka > 40) & (ka < 216)).all(1)
    assert inner.sum() > 50 and _repeated(ka[inner], kb, 1.0) > 0.85
    da = teacher.describe(a, [torch.from_numpy(ka[inner] + shift)])[0]
    db = teacher.describe(b, [torch.from_numpy(ka[inner])])[0]
    assert float((da * db).sum(1).mean()) > 0.9


def test_keypoints_follow_a_small_rotation(teacher, photo):
    """ALIKED-N32 is trained on upright images: its keypoints repeat under small rotations (not under 90°)."""
    crop = photo[:256, :256]
    M = np.vstack([cv2.getRotationMatrix2D((127.5, 127.5), 10, 1.0), [0, 0, 1]])
    rotated = cv2.warpAffine(crop, M[:2], (256, 256), flags=cv2.INTER_LINEAR)
    ka = warp_points(teacher(_tensor(crop))["keypoints"][0].numpy(), M)
    kb = teacher(_tensor(rotated))["keypoints"][0].numpy()
    inner = ((ka > 24) & (ka < 232)).all(1)
    assert _repeated(ka[inner], kb, 2.0) > 0.6


def test_bad_input(teacher):
    with pytest.raises(OptionError, match="images"):
        teacher(torch.rand(3, 32, 32))
    with pytest.raises(OptionError, match="images"):
        teacher(torch.randint(0, 255, (1, 3, 32, 32)))
    with pytest.raises(OptionError, match="keypoints"):
        teacher.describe(torch.rand(2, 3, 32, 32), [torch.zeros(3, 2)])
    with pytest.raises(OptionError, match="max_keypoints"):
        AlikedTeacher(max_keypoints=0)

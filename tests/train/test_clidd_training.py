"""The CLIDD recipe and the trainer: losses fall, runs resume exactly, shipped weights load."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tiepoint.features.clidd import CLIDDModel
from tiepoint.nn.sampler import grid_sample_points
from tiepoint.train.clidd import CLIDDLoss, correspondences, ship, validation_scores
from tiepoint.train.homography import HomographyPairs, warp_points
from tiepoint.train.trainer import TrainConfig, Trainer


class GradientTeacher:
    """A fixed, hand-made teacher for tests: corners of the image gradient and a random projection of a
    local patch as the descriptor (the real teacher, ALIKED-N32, needs its wheel)."""

    def __init__(self, dim: int = 64) -> None:
        self.filters = torch.randn(dim, 1, 5, 5, generator=torch.Generator().manual_seed(0))

    def _dense(self, images):
        gray = images.mean(1, keepdim=True)
        return F.normalize(F.conv2d(gray, self.filters, padding=2), dim=1)

    def __call__(self, images):
        gray = images.mean(1, keepdim=True)
        gy, gx = torch.gradient(gray, dim=(2, 3))
        response = F.avg_pool2d(gx * gx, 5, 1, 2) * F.avg_pool2d(gy * gy, 5, 1, 2) - F.avg_pool2d(gx * gy, 5, 1, 2) ** 2
        keypoints, scores = [], []
        for r in response[:, 0]:
            values, index = r.flatten().topk(64)
            keypoints.append(torch.stack([index % r.shape[1], index // r.shape[1]], -1).float())
            scores.append(values / values.max().clamp(min=1e-12))
        return {"keypoints": keypoints, "scores": scores}

    def describe(self, images, keypoints):
        dense = self._dense(images)
        return [grid_sample_points(dense[i : i + 1], k[None, :, None])[0, :, :, 0].T for i, k in enumerate(keypoints)]


@pytest.fixture
def photos(tmp_path, textured_image):
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for index in range(4):
        path = folder / f"photo{index}.png"
        Image.fromarray(np.rot90(textured_image, index).copy()).save(path)
        paths.append(path)
    return paths


def test_correspondences_lie_inside_both_images():
    homography = torch.tensor([[[0.9, 0.1, 5.0], [-0.1, 0.9, 3.0], [0.0, 0.0, 1.0]]])
    seeds = [torch.tensor([[30.0, 30.0], [500.0, 500.0]])]
    points0, points1 = correspondences(seeds, homography, (64, 64), 20, torch.Generator().manual_seed(0))
    assert points0.shape == points1.shape == (1, 20, 2)
    torch.testing.assert_close(points0[0, 0], torch.tensor([30.0, 30.0]))  # the seed inside comes first
    torch.testing.assert_close(points1, warp_points(points0, homography))
    for points in (points0, points1):
        assert bool(((points >= 8) & (points <= 55)).all())


def test_training_lowers_the_loss_and_resumes_exactly(photos, tmp_path):
    torch.manual_seed(0)
    dataset = HomographyPairs(photos, size=(64, 64), rotation_deg=30, seed=0, length=16)
    loss = CLIDDLoss("A48", GradientTeacher(), points=32)
    torch.manual_seed(0)
    config = TrainConfig(steps=6, batch_size=2, learning_rate=1e-2, workers=0, log_every=2, validate_every=3, checkpoint_every=3, warmup_steps=1)
    held_out = HomographyPairs(photos[:2], size=(64, 64), rotation_deg=30, seed=1, photometric=False)
    scores = Trainer(CLIDDModel("A48"), dataset, loss, lambda m: validation_scores(m, held_out, max_keypoints=50), config, tmp_path / "run", {"model": "clidd-A48"}).run()
    assert set(scores) == {"mma@3px", "matches", "score"}
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    totals = [r["total"] for r in log if "total" in r]
    assert len(totals) == 3 and all(np.isfinite(totals))

    # interrupt after 3 steps, resume to 6: the same weights as the uninterrupted run
    loss = CLIDDLoss("A48", GradientTeacher(), points=32)
    torch.manual_seed(0)
    Trainer(CLIDDModel("A48"), dataset, loss, None, config, tmp_path / "split", {"model": "clidd-A48"}).run(until=3)
    torch.manual_seed(123)  # the resumed run must not depend on the global state
    Trainer(CLIDDModel("A48"), dataset, loss, None, config, tmp_path / "split", {"model": "clidd-A48"}).run()
    whole = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    split = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["model"]
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], msg=name)

    shipped = ship(tmp_path / "run", "A48", destination=tmp_path / "clidd_a48.pt")
    record = json.loads(shipped.with_suffix(".json").read_text())
    assert record["steps"] == 6 and record["model"] == "clidd-A48"
    CLIDDModel.from_pretrained("A48", shipped)

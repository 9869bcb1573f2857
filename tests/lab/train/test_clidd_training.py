"""The CLIDD recipe and the trainer: losses fall, runs resume exactly, shipped weights load."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tiepoint.features.clidd import CLIDDModel
from tiepoint.nn.sampler import grid_sample_points
from tiepoint_lab.data.homography import HomographyPairs, warp_points
from tiepoint_lab.train.clidd import CLIDDLoss, ship, validation_scores
from tiepoint_lab.train.targets import TeacherTargetPairs, build_teacher_targets, correspondences
from tiepoint_lab.train.trainer import TrainConfig, Trainer


class GradientNet:
    """A fixed, hand-made stand-in for the teacher network in tests (the real teacher, ALIKED-N32, needs its
    wheel and is slow): corners of the image gradient as keypoints, a random projection of the local
    patch as the dense descriptor."""

    def __init__(self, dim: int = 64) -> None:
        self.filters = torch.randn(dim, 1, 5, 5, generator=torch.Generator().manual_seed(0))

    def dense(self, images):
        gray = images.mean(1, keepdim=True)
        gy, gx = torch.gradient(gray, dim=(2, 3))
        response = (
            F.avg_pool2d(gx * gx, 5, 1, 2) * F.avg_pool2d(gy * gy, 5, 1, 2)
            - F.avg_pool2d(gx * gy, 5, 1, 2) ** 2
        )
        return F.normalize(F.conv2d(gray, self.filters, padding=2), dim=1), response / response.amax(
            (2, 3), keepdim=True
        )

    @staticmethod
    def detect(scores, max_keypoints, threshold, radius):
        keypoints, values = [], []
        for r in scores[:, 0]:
            top, index = r.flatten().topk(min(64, max_keypoints))
            keypoints.append(torch.stack([index % r.shape[1], index // r.shape[1]], -1).float())
            values.append(top)
        return keypoints, values

    @staticmethod
    def describe(features, keypoints):
        return [
            grid_sample_points(f[None], k[None, :, None])[0, :, :, 0].T for f, k in zip(features, keypoints)
        ]


class GradientTeacher:
    net = GradientNet()
    device = torch.device("cpu")
    detection_threshold = 0.0
    nms_radius = 2


def _build_targets(photos, folder, pairs=4, points=8, **options):
    """Teacher targets of :class:`GradientTeacher` for ``pairs`` 64x64 pairs of ``photos`` in ``folder``."""
    return build_teacher_targets(
        photos,
        folder,
        GradientTeacher(),
        pairs=pairs,
        size=(64, 64),
        points=points,
        shard_size=4,
        progress=None,
        **options,
    )


def test_correspondences_lie_inside_both_images():
    homography = torch.tensor([[[0.9, 0.1, 5.0], [-0.1, 0.9, 3.0], [0.0, 0.0, 1.0]]])
    seeds = [torch.tensor([[30.0, 30.0], [500.0, 500.0]])]
    items = [{"image1": torch.zeros(3, 64, 64), "H_0to1": homography[0]}]
    points0, points1 = correspondences(seeds, items, (64, 64), 20, torch.Generator().manual_seed(0))
    assert points0.shape == points1.shape == (1, 20, 2)
    torch.testing.assert_close(points0[0, 0], torch.tensor([30.0, 30.0]))  # the seed inside comes first
    torch.testing.assert_close(points1, warp_points(points0, homography))
    for points in (points0, points1):
        assert bool(((points >= 8) & (points <= 55)).all())


@pytest.mark.slow
def test_training_lowers_the_loss_and_resumes_exactly(photos, tmp_path):
    targets = _build_targets(photos, tmp_path / "targets", pairs=10, points=32, batch_size=3)
    dataset = TeacherTargetPairs(targets)
    item = dataset[9]
    assert item["points"].shape == (2, 32, 2) and item["teacher_descriptors"].shape == (2, 32, 64)
    assert item["source"] == "homography" and "H_0to1" not in item  # the keys every source has
    torch.testing.assert_close(warp_points(item["points"][0], dataset.pair(9)["H_0to1"]), item["points"][1])
    loss = CLIDDLoss("A48")
    torch.manual_seed(0)
    config = TrainConfig(
        steps=6,
        batch_size=3,
        learning_rate=1e-2,
        workers=0,
        log_every=2,
        validate_every=3,
        checkpoint_every=3,
        warmup_steps=1,
    )
    held_out = HomographyPairs(photos[:2], size=(64, 64), rotation_deg=30, seed=1, photometric=False)
    scores = Trainer(
        CLIDDModel("A48"),
        dataset,
        loss,
        lambda m: validation_scores(m, held_out, max_keypoints=50),
        config,
        tmp_path / "run",
        {"model": "clidd-A48"},
    ).run()
    assert set(scores) == {"mma@3px", "matches", "score"}
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    totals = [r["total"] for r in log if "total" in r]
    assert len(totals) == 3 and all(np.isfinite(totals))

    # interrupt after 3 steps, resume to 6: the same weights as the uninterrupted run
    torch.manual_seed(0)
    Trainer(CLIDDModel("A48"), dataset, loss, None, config, tmp_path / "split", {"model": "clidd-A48"}).run(
        until=3
    )
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


def test_targets_keep_the_rotation_range_of_their_pairs(photos, tmp_path):
    import math

    from tiepoint.errors import DatasetError

    def angle(H):
        return abs(math.degrees(math.atan2(float(H[1, 0] - H[0, 1]), float(H[0, 0] + H[1, 1]))))

    folder = _build_targets(photos, tmp_path / "rot10", rotation_deg=10.0)
    assert json.loads((folder / "meta.json").read_text())["rotation_deg"] == 10.0
    stored = TeacherTargetPairs(folder)
    assert stored.rotation_deg == 10.0
    assert all(angle(stored.pair(i)["H_0to1"]) < 15 for i in range(4))  # 10 degrees plus perspective
    upright = _build_targets(photos, tmp_path / "default")
    assert "rotation_deg" not in json.loads(
        (upright / "meta.json").read_text()
    )  # folders made before the option
    assert TeacherTargetPairs(upright).rotation_deg == 180.0
    with pytest.raises(DatasetError, match="other settings"):
        _build_targets(photos, folder)


def test_targets_of_a_mixed_stream_hold_visible_correspondences(photos, tmp_path):
    from tiepoint_lab.data.mix import correspond

    folder = _build_targets(photos, tmp_path / "mix", pairs=8, stream="mix")
    stored = TeacherTargetPairs(folder)
    assert json.loads((folder / "meta.json").read_text())["stream"] == stored.stream
    sources = set()
    for index in range(8):
        item, pair = stored[index], stored.pair(index)
        sources.add(item["source"])
        assert set(item) == {
            "image0",
            "image1",
            "index",
            "source",
            "teacher_keypoints",
            "teacher_scores",
            "points",
            "teacher_descriptors",
        }
        mapped, visible = correspond(pair, item["points"][0])
        assert bool(visible.all())
        torch.testing.assert_close(mapped, item["points"][1])
    assert "scenes" in sources
    torch.utils.data.default_collate([stored[i] for i in range(8)])  # any mix of sources makes a batch


def test_targets_refuse_pairs_that_render_differently(photos, tmp_path):
    from tiepoint.errors import DatasetError

    folder = _build_targets(photos, tmp_path / "check")
    record = json.loads((folder / "check.json").read_text())
    assert len(record["thumbnail"]) == 32
    TeacherTargetPairs(folder)  # renders as stored
    record["thumbnail"][0] += 0.1  # as if the generator had changed since
    (folder / "check.json").write_text(json.dumps(record))
    with pytest.raises(DatasetError, match="generator changed"):
        TeacherTargetPairs(folder)
    with pytest.raises(DatasetError, match="generator changed"):
        _build_targets(photos, folder)

"""RaCo recipe: the detector and ranker losses give finite gradients, soft ranks approach hard ranks, a short
run trains, resumes and ships loadable weights."""

from __future__ import annotations

import json

import pytest
import torch

from tiepoint.features.raco import RaCoModel
from tiepoint.features.ranker import RankerModel
from tiepoint_lab.data.homography import HomographyPairs
from tiepoint_lab.train.raco import (
    DetectorLoss,
    RankerLoss,
    homography_jacobian,
    ship_raco,
    soft_ranks,
    train_raco,
)


def _batch(paths):
    pairs = HomographyPairs(paths, size=(64, 64), seed=0)
    return torch.utils.data.default_collate([pairs[i] for i in range(2)])


def test_soft_ranks_approach_hard_ranks():
    scores = torch.tensor([0.3, 2.0, -1.0, 0.9])
    assert torch.allclose(soft_ranks(scores, 1e-3), torch.tensor([3.0, 1.0, 4.0, 2.0]), atol=1e-3)
    smooth = soft_ranks(scores.requires_grad_(), 1.0)
    smooth.sum().backward()  # differentiable
    assert scores.grad is not None


def test_homography_jacobian_matches_finite_differences():
    H = torch.tensor([[[1.1, 0.2, 3.0], [-0.1, 0.9, 2.0], [1e-3, 2e-3, 1.0]]], dtype=torch.float64)
    point = torch.tensor([[[30.0, 40.0]]], dtype=torch.float64)
    J = homography_jacobian(point, H)[0, 0]
    numeric = torch.autograd.functional.jacobian(
        lambda p: (H[0, :2, :2] @ p + H[0, :2, 2]) / (H[0, 2, :2] @ p + H[0, 2, 2]), point[0, 0]
    )
    assert torch.allclose(J, numeric, atol=1e-9)


def test_detector_loss_trains_both_heads(photos):
    torch.manual_seed(0)
    model = RaCoModel()
    losses = DetectorLoss(keypoints=32)(model, _batch(photos))
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    assert model.score_head[-1].weight.grad.abs().sum() > 0
    assert model.covariance_head[-1].weight.grad.abs().sum() > 0


def test_ranker_loss_has_gradients(photos):
    torch.manual_seed(0)
    ranker = RankerModel()
    losses = RankerLoss(RaCoModel().eval(), keypoints=48, extra=16)(ranker, _batch(photos))
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    assert ranker.head.weight.grad.abs().sum() > 0


BRIEF = {"batch_size": 2, "crop": 64, "validation_pairs": 2, "workers": 0, "validate_every": 2}
"""Small crops and batches: a run of a few steps."""


def _train_briefly(stage, tmp_path, run, steps, **options):
    """``steps`` steps of a RaCo stage on small crops, into ``tmp_path / run``."""
    return train_raco(stage, tmp_path, tmp_path / run, steps=steps, keypoints=16, **BRIEF, **options)


@pytest.mark.slow
def test_short_runs_resume_and_ship(tmp_path, photos, monkeypatch):
    import tiepoint_lab.train.raco as recipe

    monkeypatch.setattr(recipe, "list_photos", lambda root, split: photos)
    scores = _train_briefly("detector", tmp_path, "det", steps=4)
    assert 0 <= scores["score"] <= 1
    weights = ship_raco(tmp_path / "det", "detector", destination=tmp_path / "raco.pt")
    assert RaCoModel.from_pretrained(weights) is not None
    record = json.loads(weights.with_suffix(".json").read_text())
    assert record["steps"] == 4 and "command" in record and record["data"]["crop"] == 64
    scores = _train_briefly("ranker", tmp_path, "rank", steps=2, detector=weights)
    assert set(scores) == {"score", "detector"}
    ranker = ship_raco(tmp_path / "rank", "ranker", destination=tmp_path / "raco_ranker.pt")
    assert RankerModel.from_pretrained(ranker) is not None
    with pytest.raises(Exception, match="stage"):
        train_raco("other", tmp_path, tmp_path / "x")


def _mixed_batch(paths):
    """A batch of a homography pair and a scene pair of the ``mix`` stream."""
    from tiepoint_lab.data.batching import collate_pairs
    from tiepoint_lab.data.mix import make_stream

    stream = make_stream("mix", paths, size=(64, 64), seed=0, length=16)
    sources = [stream.source_of(i) for i in range(16)]
    return collate_pairs([stream[sources.index("homography")], stream[sources.index("scenes")]])


def test_the_losses_take_a_mixed_batch(photos):
    torch.manual_seed(0)
    batch = _mixed_batch(photos)
    model = RaCoModel()
    losses = DetectorLoss(keypoints=32)(model, batch)
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    assert model.score_head[-1].weight.grad.abs().sum() > 0
    losses = RankerLoss(RaCoModel().eval(), keypoints=48, extra=16)(RankerModel(), batch)
    assert all(torch.isfinite(v) for v in losses.values())


def test_repeatability_of_a_scene_pair_counts_visible_keypoints_only(photos):
    from tiepoint_lab.data.mix import correspond
    from tiepoint_lab.train.raco import pair_repeatability

    batch = _mixed_batch(photos)
    item = {key: batch[key][1] for key in ("image0", "image1")} | batch["truth"][1]
    keypoints0 = torch.rand(100, 2, generator=torch.Generator().manual_seed(0)) * 63
    keypoints1, visible = correspond(item, keypoints0)
    assert 0 < visible.sum() < 100  # keypoints hidden in image 1 do not count
    repeatable = pair_repeatability(item, keypoints0.numpy(), keypoints1[visible].numpy(), threshold=1.0)
    assert repeatable > 0.95
    moved = keypoints1[visible].numpy() + 5.0
    assert pair_repeatability(item, keypoints0.numpy(), moved, threshold=1.0) < 0.2


def test_a_short_run_on_the_mixed_stream_records_it(tmp_path, photos, monkeypatch):
    import tiepoint_lab.train.raco as recipe
    from tiepoint_lab.data.mix import stream_spec

    monkeypatch.setattr(recipe, "list_photos", lambda root, split: photos)
    scores = _train_briefly("detector", tmp_path, "det", steps=2, stream="mix")
    assert 0 <= scores["score"] <= 1
    record = json.loads((tmp_path / "det" / "config.json").read_text())
    assert record["data"]["stream"] == stream_spec("mix")
    log = [json.loads(line) for line in (tmp_path / "det" / "log.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(entry["total"])) for entry in log if "total" in entry)

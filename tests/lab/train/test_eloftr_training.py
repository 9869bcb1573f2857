"""Efficient LoFTR training: ground truth from homographies, the three losses, a short resumable run."""

import math

import numpy as np
import pytest
import torch

from tiepoint.matchers.eloftr import EfficientLoFTR, ELoFTRConfig
from tiepoint_lab.train.eloftr import ELoFTRLoss, coarse_ground_truth, validation_scores

TINY = ELoFTRConfig(widths=(8, 8, 16, 32), blocks=(1, 1, 1, 1), heads=2, layers=1, fine_widths=(16, 8, 8))


def test_coarse_ground_truth_of_a_shift():
    H = torch.tensor([[[1.0, 0, 8], [0, 1, 16], [0, 0, 1]]])  # one cell right, two down
    valid, index1 = coarse_ground_truth(H, (32, 64), (32, 64))  # 4 x 8 cells
    assert valid.shape == (1, 32)
    cells = torch.arange(32).reshape(4, 8)
    assert valid[0].reshape(4, 8)[:2, :7].all() and not valid[0].reshape(4, 8)[2:].any()
    assert not valid[0].reshape(4, 8)[:, 7].any()
    assert torch.equal(index1[0].reshape(4, 8)[:2, :7], cells[2:, 1:])


def _batch(shift=(3.3, 5.6)):
    rng = np.random.default_rng(0)
    base = torch.from_numpy(rng.random((3, 96, 96)).astype(np.float32))
    base = torch.nn.functional.avg_pool2d(base[None], 3, 1, 1)[0]
    dx, dy = shift
    image0 = base[:, :64, :64]
    # image1(x, y) = base(x - dx, y - dy) by bilinear resampling, so H maps image 0 to image 1 by +shift
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    grid = torch.stack([(xs - dx) / 95 * 2 - 1, (ys - dy) / 95 * 2 - 1], -1)[None]
    image1 = torch.nn.functional.grid_sample(base[None], grid * 95 / 95, align_corners=True)[0]
    H = torch.tensor([[1.0, 0, dx], [0, 1, dy], [0, 0, 1]])
    return {
        "image0": image0[None].repeat(2, 1, 1, 1),
        "image1": image1[None].repeat(2, 1, 1, 1),
        "H_0to1": H[None].repeat(2, 1, 1),
    }


@pytest.mark.slow
def test_losses_are_finite_and_training_reduces_them():
    torch.manual_seed(0)
    model = EfficientLoFTR(TINY)
    loss = ELoFTRLoss(fine_matches=16)
    batch = _batch()
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    first = None
    for _ in range(25):
        losses = loss(model, batch)
        assert all(math.isfinite(float(v.detach())) for v in losses.values())
        first = first or {k: float(v.detach()) for k, v in losses.items()}
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    last = {k: float(v) for k, v in loss(model, batch).items()}
    assert last["coarse"] < first["coarse"] - 0.5 and last["fine1"] < first["fine1"]
    expected_total = last["coarse"] + last["fine1"] + 0.25 * last["fine2"]
    assert last["total"] == pytest.approx(expected_total, rel=1e-4)


def test_losses_stay_float32_under_mixed_precision():
    torch.manual_seed(0)
    model, loss, batch = EfficientLoFTR(TINY), ELoFTRLoss(fine_matches=16), _batch()
    torch.manual_seed(1)
    full = loss(model, batch)
    torch.manual_seed(1)  # the same fine matches are sampled
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what the trainer does on a GPU, there with CUDA
        mixed = loss(model, batch)
    for name, value in mixed.items():
        assert value.dtype == torch.float32, name
        assert float(value) == pytest.approx(float(full[name]), rel=0.02), name
    mixed["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_validation_scores_count_matches_within_three_pixels():
    torch.manual_seed(0)
    model = EfficientLoFTR(TINY).eval()
    batch = _batch()
    pairs = [{"image0": batch["image0"][0], "image1": batch["image1"][0], "H_0to1": batch["H_0to1"][0]}]
    with torch.no_grad():
        scores = validation_scores(model, pairs)
    assert set(scores) == {"precision@3px", "matches", "score"}
    assert 0 <= scores["precision@3px"] <= 1 and scores["score"] <= 1


@pytest.mark.slow
def test_short_run_records_its_augmentation_and_resumes(tmp_path, photos, monkeypatch):
    import json

    from tiepoint_lab.train import eloftr as recipe

    monkeypatch.setattr(recipe, "list_photos", lambda root, split: photos)
    options = {
        "crop": 64,
        "batch_size": 1,
        "validation_pairs": 1,
        "workers": 0,
        "validate_every": 2,
        "scale": (0.5, 2.0),
        "rotation": 10.0,
    }
    recipe.train_eloftr(tmp_path, tmp_path / "run", steps=2, **options)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["data"]["scale"] == [0.5, 2.0] and record["data"]["rotation_deg"] == 10.0
    recipe.train_eloftr(tmp_path, tmp_path / "run", steps=3, **options)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 3


def test_losses_on_a_mixed_batch_supervise_only_visible_points(photos):
    from tiepoint_lab.data.batching import collate_pairs, correspond_batch
    from tiepoint_lab.data.mix import make_stream
    from tiepoint_lab.train.eloftr import coarse_matches

    stream = make_stream("mix", photos, size=(64, 64), seed=0, length=16)
    sources = [stream.source_of(i) for i in range(16)]
    chosen = [sources.index("homography"), sources.index("scenes")]
    batch = collate_pairs([stream[i] for i in chosen])
    valid, index1 = coarse_matches(batch, (64, 64), (64, 64))
    centres = torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="xy"), -1)
    centres = centres.reshape(1, -1, 2).expand(2, -1, -1) * 8 + 3.5
    _, visible = correspond_batch(batch, centres)
    assert valid.any(1).all() and not (valid & ~visible).any()  # hidden centres have no match
    H = batch["truth"][0]["H_0to1"][None]
    expected_valid, expected_index = coarse_ground_truth(H, (64, 64), (64, 64))
    assert torch.equal(valid[0], expected_valid[0]) and torch.equal(
        index1[0][valid[0]], expected_index[0][valid[0]]
    )
    torch.manual_seed(0)
    losses = ELoFTRLoss(fine_matches=16)(EfficientLoFTR(TINY), batch)
    assert all(math.isfinite(float(v.detach())) for v in losses.values())


def test_fine_targets_use_each_pairs_own_homography():
    torch.manual_seed(0)
    model = EfficientLoFTR(TINY)
    a, b = _batch(), _batch(shift=(-6.2, 9.1))
    ab = {k: torch.stack([a[k][0], b[k][0]]) for k in a}
    ba = {k: torch.stack([b[k][0], a[k][0]]) for k in a}
    loss = ELoFTRLoss(fine_matches=64)  # every true coarse match: the same fine matches in either order
    first, second = loss(model, ab), loss(model, ba)
    for name in first:
        assert float(first[name].detach()) == pytest.approx(float(second[name].detach()), rel=1e-4), name


@pytest.mark.slow
def test_a_short_run_on_the_mixed_stream_records_it(tmp_path, photos, monkeypatch):
    import json

    from tiepoint_lab.data.mix import stream_spec
    from tiepoint_lab.train import eloftr as recipe

    monkeypatch.setattr(recipe, "list_photos", lambda root, split: photos)
    monkeypatch.setattr(recipe, "EfficientLoFTR", lambda config: EfficientLoFTR(TINY))
    options = {"crop": 64, "batch_size": 2, "validation_pairs": 2, "workers": 0, "validate_every": 2}
    scores = recipe.train_eloftr(tmp_path, tmp_path / "run", steps=2, stream="mix", **options)
    assert set(scores) == {"precision@3px", "matches", "score"}
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    stream = record["data"]["stream"]
    assert set(stream) == set(stream_spec("mix")) and stream["scenes"]["rotation_deg"] == 45.0
    assert stream["homography"]["perspective"] == 0.15 and stream["relit"]["scale"] == [0.6, 1.6]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(entry["total"]) for entry in log if "total" in entry)

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

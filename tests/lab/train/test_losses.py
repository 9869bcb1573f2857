"""Training losses: known answers and the properties each loss is meant to have."""

import math

import pytest
import torch
import torch.nn.functional as F

from tiepoint_lab.train.losses import (
    dual_softmax_loss,
    keypoint_cell_targets,
    procrustes_distillation_loss,
    unfold_softmax_loss,
)


def _descriptors(n=32, d=16, seed=0):
    return F.normalize(torch.randn(2, n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_dual_softmax_prefers_true_pairs():
    a = _descriptors()
    same = dual_softmax_loss(a, a)
    shuffled = dual_softmax_loss(a, a[:, torch.randperm(32, generator=torch.Generator().manual_seed(1))])
    assert same < 0.1 < shuffled


def test_dual_softmax_uniform_similarity_known_answer():
    a = F.normalize(torch.ones(1, 4, 3), dim=-1)
    # all similarities equal: each softmax is 1/4, so -log P = 2 log 4
    assert float(dual_softmax_loss(a, a)) == pytest.approx(2 * math.log(4), rel=1e-5)


def test_dual_softmax_ignores_invalid_rows():
    a, b = _descriptors(), _descriptors(seed=3)
    mixed = a.clone()
    mixed[:, 16:] = b[:, 16:]  # rows 16.. no longer correspond
    valid = torch.zeros(2, 32, dtype=torch.bool)
    valid[:, :16] = True
    assert dual_softmax_loss(a, mixed, valid) == pytest.approx(
        float(dual_softmax_loss(a[:, :16], a[:, :16])), rel=1e-5
    )


def test_procrustes_zero_for_rotated_low_rank_teacher():
    generator = torch.Generator().manual_seed(0)
    teacher = F.normalize(
        torch.randn(200, 8, generator=generator) @ torch.randn(8, 64, generator=generator), dim=1
    )
    _, _, vh = torch.linalg.svd(teacher, full_matrices=False)
    reduced = F.normalize(teacher @ vh[:8].T, dim=1)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    assert float(procrustes_distillation_loss(reduced @ rotation, teacher)) < 1e-8
    unrelated = F.normalize(torch.randn(200, 8, generator=generator), dim=1)
    assert float(procrustes_distillation_loss(unrelated, teacher)) > 0.5


def test_procrustes_rejects_small_teacher():
    with pytest.raises(ValueError, match="teacher dimension"):
        procrustes_distillation_loss(torch.randn(10, 16), torch.randn(10, 8))


def test_cell_targets_and_unfold_softmax():
    keypoints = [torch.tensor([[3.0, 2.0], [12.2, 9.9], [13.0, 10.0]])]
    scores = [torch.tensor([0.5, 0.9, 0.1])]
    targets = keypoint_cell_targets(keypoints, scores, (16, 16))
    # cell (0, 0): pixel (3, 2) -> 2 * 8 + 3; cell (1, 1): the higher-scored (12, 10) -> 2 * 8 + 4
    assert targets.tolist() == [[[19, 64], [64, 20]]]
    logits = torch.full((1, 1, 16, 16), -20.0)
    logits[0, 0, 2, 3] = logits[0, 0, 10, 12] = 20.0
    assert float(unfold_softmax_loss(logits, targets)) < 1e-6
    assert float(unfold_softmax_loss(torch.zeros(1, 1, 16, 16), targets)) == pytest.approx(
        math.log(65), rel=1e-5
    )

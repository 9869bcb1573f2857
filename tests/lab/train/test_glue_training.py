"""Glue's recipe: ground-truth assignments, the start as descriptor matching, the loss, the cache and a short
run that ships weights the matcher loads."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import tiepoint_lab.train.glue as recipe
from tiepoint.errors import OptionError
from tiepoint.matchers.glue import Glue, GlueConfig, GlueMatcher
from tiepoint.types import Features
from tiepoint_lab.train.glue import (
    IGNORE,
    UNMATCHED,
    GluePairs,
    build_cache,
    glue_loss,
    keypoint_truth,
    start_as_descriptor_matching,
)

SMALL = GlueConfig(input_dim=16, dim=16, heads=2, layers=3)


def test_truth_of_a_shift_matches_moved_points_and_labels_the_rest():
    item = {
        "image0": torch.zeros(3, 48, 64),
        "image1": torch.zeros(3, 48, 64),
        "H_0to1": torch.tensor([[1.0, 0, 2], [0, 1, 0], [0, 0, 1]]),
    }
    keypoints0 = torch.tensor([[10.0, 10], [30, 20], [63, 5], [40, 40], [50, 30]])
    # 0 and 1 move by +2 px in x; 2 leaves the image; 3 has a keypoint 4 px from its projection; 4 has none
    keypoints1 = torch.tensor([[12.0, 10.5], [32, 20], [46, 40], [5, 45]])
    truth0, truth1 = keypoint_truth(item, keypoints0, keypoints1)
    assert truth0.tolist() == [0, 1, UNMATCHED, IGNORE, UNMATCHED]
    assert truth1.tolist() == [0, 1, IGNORE, UNMATCHED]


def test_start_as_descriptor_matching_predicts_mutual_nearest_neighbours():
    torch.manual_seed(0)
    model = start_as_descriptor_matching(Glue(SMALL))
    d0 = torch.nn.functional.normalize(torch.randn(1, 30, 16), dim=-1)
    d1 = torch.nn.functional.normalize(torch.randn(1, 25, 16), dim=-1)
    keypoints0, keypoints1 = torch.rand(1, 30, 2) * 64, torch.rand(1, 25, 2) * 64
    size = torch.tensor([[64.0, 48.0]])
    log_assignment = model.layer_scores(keypoints0, keypoints1, d0, d1, size, size)[-1].log_assignment
    sim = d0 @ d1.transpose(1, 2)
    best0, best1 = sim.argmax(2)[0], sim.argmax(1)[0]
    mutual = best1[best0] == torch.arange(30)
    assert torch.equal(log_assignment.argmax(2)[0][mutual], best0[mutual])
    with pytest.raises(OptionError, match="as wide as the descriptors"):
        start_as_descriptor_matching(Glue(GlueConfig(input_dim=16, dim=32, heads=2, layers=1)))


def _batch():
    """Two pairs: image 1 holds image 0's points shifted with perturbed descriptors, and unmatched extras."""
    generator = torch.Generator().manual_seed(1)
    batch = {key: [] for key in ("keypoints", "descriptors", "truth", "mask", "size")}
    batch = {f"{key}{side}": [] for key in batch for side in "01"}
    for _ in range(2):
        keypoints0 = torch.rand(24, 2, generator=generator) * 64
        d0 = torch.nn.functional.normalize(torch.randn(24, 16, generator=generator), dim=-1)
        keypoints1 = torch.cat([keypoints0[:16] + 1, torch.rand(8, 2, generator=generator) * 64])
        d1 = torch.cat([d0[:16] + 0.6 * torch.randn(16, 16, generator=generator), torch.randn(8, 16)])
        truth0 = torch.cat([torch.arange(16), torch.full((8,), UNMATCHED)])
        for side, (k, d) in enumerate(
            ((keypoints0, d0), (keypoints1, torch.nn.functional.normalize(d1, dim=-1)))
        ):
            batch[f"keypoints{side}"].append(k)
            batch[f"descriptors{side}"].append(d)
            batch[f"truth{side}"].append(truth0)
            batch[f"mask{side}"].append(torch.ones(24, dtype=torch.bool))
            batch[f"size{side}"].append(torch.tensor([64.0, 64.0]))
    return {key: torch.stack(value) for key, value in batch.items()}


def test_training_on_a_batch_lowers_the_loss_and_trains_the_confidence_heads():
    torch.manual_seed(0)
    model = start_as_descriptor_matching(Glue(SMALL)).train()
    batch = _batch()
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    first = {key: float(value.detach()) for key, value in glue_loss(model, batch).items()}
    assert all(math.isfinite(value) for value in first.values())
    for _ in range(30):
        losses = glue_loss(model, batch)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    last = {key: float(value.detach()) for key, value in glue_loss(model, batch).items()}
    assert last["assignment"] < 0.7 * first["assignment"]
    assert last["confidence"] < first["confidence"]
    assert model.confidence[0].weight.grad is not None


@pytest.mark.slow
def test_cache_resumes_refuses_other_settings_and_loads(tmp_path, photos):
    folder = tmp_path / "cache"
    build_cache(folder, photos, "sift", 3, "mix", size=(96, 128), keypoints=64, workers=0)
    shard = folder / "shard_00000.npz"
    written = shard.stat().st_mtime_ns
    build_cache(folder, photos, "sift", 3, "mix", size=(96, 128), keypoints=64, workers=0)
    assert shard.stat().st_mtime_ns == written
    with pytest.raises(OptionError, match="other settings"):
        build_cache(folder, photos, "sift", 3, "mix", size=(96, 128), keypoints=32, workers=0)
    pairs = GluePairs(folder, swap=False)
    assert len(pairs) == 3
    item = pairs[0]
    assert item["keypoints0"].shape == (64, 2) and item["descriptors0"].shape == (64, 128)
    padded = ~item["mask0"]
    assert (item["truth0"][padded] == IGNORE).all()
    matched = item["truth0"] >= 0
    assert (item["truth1"][item["truth0"][matched]] == torch.nonzero(matched).flatten()).all()
    assert json.loads((folder / "cache.json").read_text())["keypoints"] == 64


@pytest.mark.slow
def test_a_short_run_ships_weights_the_matcher_loads(tmp_path, photos, monkeypatch):
    monkeypatch.setattr(recipe, "list_photos", lambda root, split: photos)
    monkeypatch.setitem(recipe.ARCHITECTURES, "sift", GlueConfig(input_dim=128, dim=128, heads=4, layers=2))
    options = {"steps": 2, "batch_size": 2, "learning_rate": 1e-3, "seed": 0, "validate_every": 2, "pairs": 4}
    options.update(keypoints=64, cache=tmp_path / "cache", validation_pairs=2, workers=0)
    scores = recipe.train_glue("sift", tmp_path, tmp_path / "run", **options)
    assert {"precision", "recall", "score", "mnn_score"} <= set(scores)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["data"]["stream"]["scenes"]["weight"] == 0.5 and record["architecture"]["layers"] == 2
    path = recipe.ship(tmp_path / "run", "sift", destination=tmp_path / "glue_sift.pt")
    assert json.loads(path.with_suffix(".json").read_text())["steps"] == 2
    matcher = GlueMatcher(features="sift", weights=str(path))
    rng = np.random.default_rng(0)
    descriptors = rng.random((20, 128)).astype(np.float32)
    features = Features(
        keypoints=(rng.random((20, 2)) * 64).astype(np.float32),
        descriptors=descriptors / np.linalg.norm(descriptors, axis=1, keepdims=True),
        scores=np.ones(20, np.float32),
        image_size=(64, 64),
    )
    indices, probabilities = matcher.match(features, features)
    assert indices.shape[1] == 2 and len(indices) == len(probabilities)
    # a second run starts from the shipped weights, on pairs of another size
    options.update(size=(64, 96), init=path, cache=tmp_path / "cache2")
    recipe.train_glue("sift", tmp_path, tmp_path / "run2", **options)
    record = json.loads((tmp_path / "run2" / "config.json").read_text())
    assert record["init"] == str(path) and record["data"]["size"] == [64, 96]

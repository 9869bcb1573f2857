"""Upsampler training: the feature cache, LoftUp's pseudo-ground truth, the losses, a short resumable run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tiepoint.errors import OptionError
from tiepoint.upsamplers import build_upsampler
from tiepoint_lab.train.trainer import TrainConfig, Trainer
from tiepoint_lab.train.upsampler import (
    ALPHA,
    CachedCrops,
    LoftUpStage1Loss,
    LoftUpStage2Loss,
    affinity_loss,
    build_feature_cache,
    consistency_loss,
    mask_refined_targets,
    validation_scores,
)


class PoolBackbone:
    """A stand-in backbone: 4x4 mean colour and gradient energy (stride 4, 6 channels)."""

    name, stride, dim = "pool", 4, 6

    def __call__(self, images):
        gradient = (images[..., 1:, :] - images[..., :-1, :]).abs()
        gradient = F.pad(gradient, (0, 0, 0, 1))
        return torch.cat([F.avg_pool2d(images, 4), F.avg_pool2d(gradient, 4)], 1)


def _train(model, dataset, loss, config, run_dir, name, until=None):
    """Train ``model`` on the cached crops, validated on the same crops; returns the last validation."""
    validate = lambda m: validation_scores(m, dataset)
    return Trainer(model, dataset, loss, validate, config, run_dir, {"model": name}).run(until=until)


@pytest.fixture
def cache(tmp_path, photos):
    return build_feature_cache(PoolBackbone(), photos, tmp_path / "cache", crops=2, side=32, seed=0)


def test_cache_layout_and_resume(cache, photos):
    files = sorted(cache.glob("*.pt"))
    assert len(files) == len(photos)
    stamp = files[0].stat().st_mtime_ns
    build_feature_cache(PoolBackbone(), photos, cache, crops=2, side=32, seed=0)  # resumes: nothing redone
    assert files[0].stat().st_mtime_ns == stamp
    item = CachedCrops(cache)[0]
    assert item["image"].shape == (3, 32, 32) and item["image2x"].shape == (3, 64, 64)
    assert item["features"].shape == (6, 8, 8)
    assert item["features2x"].shape == item["tiled"].shape == (6, 16, 16)
    assert item["segments"].shape == (32, 32)
    assert torch.allclose(
        item["features"], PoolBackbone()(item["image"][None])[0], atol=2e-3
    )  # float16 storage


def test_mask_refined_targets():
    features = torch.randn(1, 3, 4, 4)
    side = 16
    points = torch.tensor([[[0.0, 0.0], [5.0, 9.0], [15.0, 15.0]]])
    bicubic = F.interpolate(features, size=(side, side), mode="bicubic", align_corners=False)
    at_points = bicubic[0, :, points[0, :, 1].long(), points[0, :, 0].long()].T
    one_segment = torch.zeros(1, side, side, dtype=torch.long)
    target = mask_refined_targets(features, one_segment, points, side)
    mean = bicubic[0, :, ::2, ::2].mean((1, 2))  # the mean over every second pixel
    assert torch.allclose(target[0], ALPHA * mean + (1 - ALPHA) * at_points, atol=1e-5)
    own_segment = torch.arange(side * side).reshape(1, side, side)  # odd pixels' segments are never sampled
    target = mask_refined_targets(features, own_segment, points, side)
    assert torch.allclose(target[0], at_points, atol=1e-5)


def test_affinity_loss():
    a = torch.randn(2, 10, 5)
    assert float(affinity_loss(a, 3 * a)) < 1e-10  # scale-free
    assert float(affinity_loss(a, torch.randn(2, 10, 5))) > 0.01


@pytest.mark.slow
@pytest.mark.parametrize("method", ["jbu", "featsharp", "loftup"])
def test_short_training_lowers_the_loss_and_resumes(cache, tmp_path, method):
    torch.manual_seed(0)
    dataset = CachedCrops(cache)
    model = build_upsampler(method, 6)
    loss = LoftUpStage1Loss(points=64) if method == "loftup" else consistency_loss
    batch = {k: torch.stack([dataset[i][k] for i in range(4)]) for k in dataset[0]}
    with torch.no_grad():
        before = float(loss(model, batch)["total"])
    config = TrainConfig(
        steps=30, batch_size=4, learning_rate=1e-2, workers=0, warmup_steps=5, validate_every=30, log_every=10
    )
    _train(model, dataset, loss, config, tmp_path / "run", method, until=20)
    resumed = build_upsampler(method, 6)
    scores = _train(resumed, dataset, loss, config, tmp_path / "run", method)
    assert set(scores) == {"score", "relative_l2"}
    with torch.no_grad():
        assert float(loss(resumed, batch)["total"]) < before
    if method == "loftup":
        distil = LoftUpStage2Loss(resumed, points=32)(resumed, batch)["total"]
        distil.backward()  # the student learns, the teacher is frozen
        assert torch.isfinite(distil) and resumed.query_encoder[0].weight.grad is not None


def test_ship_loftup_records_both_stages(cache, tmp_path, monkeypatch):
    import json

    import tiepoint_lab.train.upsampler as recipe

    monkeypatch.setattr(
        recipe, "weights_path", lambda backbone, method: tmp_path / "shipped" / f"{backbone}_{method}.pt"
    )
    dataset = CachedCrops(cache)
    config = TrainConfig(steps=2, batch_size=4, workers=0, warmup_steps=1, validate_every=2, log_every=1)
    model = build_upsampler("loftup", 6)
    _train(model, dataset, LoftUpStage1Loss(points=16), config, tmp_path / "run" / "stage1", "x")
    _train(model, dataset, LoftUpStage2Loss(model, points=16), config, tmp_path / "run" / "stage2", "x")
    path = recipe.ship_upsampler(tmp_path / "run", "pool", "loftup", benchmark={"oxford_mma@3px": 0.5})
    record = json.loads(path.with_suffix(".json").read_text())
    assert (
        record["steps"] == 2
        and record["stage1"]["steps"] == 2
        and record["benchmark"] == {"oxford_mma@3px": 0.5}
    )
    assert "score" in record["stage1"]["last_validation"]["validation"]
    shipped = build_upsampler("loftup", 6)
    shipped.load_state_dict(torch.load(path, weights_only=True)["model"])


def test_a_stream_cache_holds_both_views_of_its_pairs(tmp_path, photos):
    folder = build_feature_cache(
        PoolBackbone(), photos, tmp_path / "mix", crops=2, side=32, seed=0, stream="mix"
    )
    files = sorted(folder.glob("*.pt"))
    assert [f.name for f in files] == [f"pair_{i:05d}.pt" for i in range(4)]  # 2 crops x 4 photos / 2 views
    crops = CachedCrops(folder)
    assert len(crops) == 8 and crops[0]["image2x"].shape == (3, 64, 64)
    with pytest.raises(OptionError, match="another cache folder"):
        build_feature_cache(PoolBackbone(), photos, folder, crops=2, side=32, seed=0, stream="scenes")
    with pytest.raises(OptionError, match="another cache folder"):
        build_feature_cache(PoolBackbone(), photos, folder, crops=2, side=32, seed=0)


def test_a_short_run_on_a_stream_records_it(tmp_path, photos, monkeypatch):
    import json

    import tiepoint_lab.train.upsampler as recipe
    from tiepoint_lab.data.mix import stream_spec

    monkeypatch.setattr(recipe, "list_photos", lambda root, split: photos)
    monkeypatch.setattr(recipe, "build_backbone", lambda name, layer: PoolBackbone())
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)  # the recipe's, for this process only
    options = {"crops": 2, "side": 32, "steps": 2, "batch_size": 4, "validate_every": 2}
    scores = recipe.train_upsampler(
        "pool", "jbu", tmp_path, tmp_path / "run", tmp_path / "cache", stream="mix", **options
    )
    assert set(scores) == {"score", "relative_l2"} and all(map(math.isfinite, scores.values()))
    assert (tmp_path / "cache" / "train" / "stream.json").is_file()
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["data"]["stream"] == stream_spec("mix")

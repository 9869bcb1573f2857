"""The ranker: dense scores sampled at keypoints, reranking, and the wrapper that ``ranker=True`` puts around
any extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tiepoint.errors import WeightsError
from tiepoint.features.ranker import POOL_FACTOR, Ranked, RankerModel, rerank
from tiepoint.types import Features


def test_scores_are_the_map_at_the_keypoints():
    torch.manual_seed(0)
    model = RankerModel().eval()
    image = torch.rand(1, 1, 40, 60)
    with torch.no_grad():
        dense = model(image)
        points = torch.tensor([[[5.0, 7.0], [30.0, 20.0]]])
        scores = model.score(image, points)
    assert dense.shape == (1, 1, 40, 60)
    assert torch.allclose(scores[0], torch.stack([dense[0, 0, 7, 5], dense[0, 0, 20, 30]]), atol=1e-6)


def test_rerank_orders_by_ranker_and_truncates(textured_image):
    torch.manual_seed(0)
    model = RankerModel().eval()
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(5, 100, (40, 2)).astype(np.float32)
    features = Features(
        keypoints, np.arange(40, 0, -1).astype(np.float32), np.eye(40, dtype=np.float32), (160, 120)
    )
    ranked = rerank(textured_image, features, 10, model, detector_weight=0.0)
    assert len(ranked) == 10 and np.all(np.diff(ranked.scores) <= 0)
    # the descriptors travel with their keypoints
    rows = ranked.descriptors.argmax(1)
    assert np.allclose(features.keypoints[rows], ranked.keypoints)


def test_ranker_plugin_on_any_extractor(textured_image, tmp_path, monkeypatch):
    from tiepoint.features import ranker
    from tiepoint.registry import build_extractor

    torch.manual_seed(0)
    path = tmp_path / "raco_ranker.pt"
    torch.save({"model": RankerModel().state_dict()}, path)
    monkeypatch.setattr(ranker, "load_ranker", lambda path=str(path): RankerModel.from_pretrained(path))
    plain = build_extractor("sift", max_keypoints=20).extract(textured_image)
    extractor = build_extractor("sift", max_keypoints=20, ranker=True)
    assert isinstance(extractor, Ranked) and extractor.config.max_keypoints == 20
    assert not isinstance(build_extractor("sift", ranker=False), Ranked)
    ranked = extractor.extract(textured_image)
    assert len(ranked) <= 20 and np.all(np.diff(ranked.scores) <= 0)
    pool = build_extractor("sift", max_keypoints=20 * POOL_FACTOR).extract(textured_image)
    # the ranked keypoints come from the larger pool, not necessarily from the plain top 20
    pool_set = {tuple(k) for k in np.round(pool.keypoints, 3)}
    assert all(tuple(k) in pool_set for k in np.round(ranked.keypoints, 3))
    assert len(plain) <= 20


def test_missing_ranker_weights(tmp_path):
    with pytest.raises(WeightsError):
        RankerModel.from_pretrained(tmp_path / "none.pt")


def test_fused_order_moves_from_the_ranker_to_the_detector():
    from tiepoint.features.ranker import fused_order

    ranker = np.array([0.1, 0.9, 0.5, 0.3])
    assert fused_order(ranker, 0.0).tolist() == [1, 2, 3, 0]
    assert fused_order(ranker, 1.0).tolist() == [0, 1, 2, 3]
    assert fused_order(ranker, 0.5).tolist()[0] == 1  # best by ranker and second by detector

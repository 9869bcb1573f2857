"""Aggregated attention and its 2D rotary position encoding."""

import pytest
import torch

from tiepoint.nn.attention import AggregatedAttention, rope_2d, rope_angles


def test_rope_scores_depend_only_on_the_offset():
    torch.manual_seed(0)
    dim = 16
    cos, sin = rope_angles(6, 7, dim)
    q, k = torch.randn(dim), torch.randn(dim)
    rotated_q = rope_2d(q.expand(42, dim), cos, sin)
    rotated_k = rope_2d(k.expand(42, dim), cos, sin)
    scores = rotated_q @ rotated_k.T  # (42, 42)
    index = lambda x, y: y * 7 + x
    # the same offset (+2, +1) from two different places gives the same score
    assert scores[index(0, 0), index(2, 1)] == pytest.approx(
        float(scores[index(3, 4), index(5, 5)]), abs=1e-5
    )
    assert scores[index(0, 0), index(2, 1)] != pytest.approx(
        float(scores[index(0, 0), index(1, 2)]), abs=1e-3
    )
    # no offset: the rotation preserves the dot product
    assert scores[index(4, 2), index(4, 2)] == pytest.approx(float(q @ k), abs=1e-5)


def test_rope_needs_blocks_of_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        rope_angles(2, 2, 6)


def test_aggregated_attention_shapes_and_cross_sizes():
    torch.manual_seed(0)
    layer = AggregatedAttention(32, heads=2, aggregation=4, rope=True).eval()
    x = torch.randn(2, 32, 8, 12)
    y = layer(x, x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    cross = AggregatedAttention(32, heads=2, aggregation=4, rope=False).eval()
    assert cross(x, torch.randn(2, 32, 16, 4)).shape == x.shape  # keys of another size


def test_aggregated_attention_reduces_tokens_by_s_squared():
    layer = AggregatedAttention(16, heads=2, aggregation=4)
    x = torch.randn(1, 16, 8, 8)
    assert layer.aggregate(x).shape[-2:] == (2, 2) and layer.pool(x).shape[-2:] == (2, 2)
    with pytest.raises(ValueError, match="heads"):
        AggregatedAttention(18, heads=4, rope=True)

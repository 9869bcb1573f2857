"""What the training recipes share: their :class:`TrainConfig`, the fixed held-out pairs they validate on, the
score of matches on those pairs, and the facts each run records in its ``config.json``."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tiepoint_lab.data.homography import HomographyPairs
from tiepoint_lab.data.mix import make_stream
from tiepoint_lab.train.trainer import TrainConfig

__all__ = ["command_line", "corpus_record", "held_out_pairs", "match_scores", "recipe_config"]


def recipe_config(
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    validate_every: int,
    workers: int,
    device: str = "cpu",
    **settings: Any,
) -> TrainConfig:
    """The :class:`TrainConfig` of the options every recipe takes; ``settings`` are the other fields the
    recipe sets (``warmup_steps``, ``checkpoint_every``, ...)."""
    return TrainConfig(
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        validate_every=validate_every,
        workers=workers,
        device=device,
        **settings,
    )


def held_out_pairs(
    photos: Sequence[str | Path],
    crop: int,
    seed: int,
    count: int,
    stream: str | dict | None = None,
    **options: Any,
) -> torch.utils.data.Subset:
    """The first ``count`` (at most) pairs of :class:`HomographyPairs` on the val ``photos``, at epoch 0:
    views of ``crop + 64`` pixels, seeded ``seed + 1``; ``options`` go to :class:`HomographyPairs`
    (``length``, the homographies' ranges). With ``stream`` (see :mod:`tiepoint_lab.data.mix`) the pairs are
    that stream's instead, ``count`` of them (``options``: ``rotation_deg``)."""
    size = (crop + 64, crop + 64)
    if stream is None:
        pairs = HomographyPairs(photos, size=size, seed=seed + 1, **options)
    else:
        pairs = make_stream(stream, photos, size=size, seed=seed + 1, length=count, **options)
    pairs.set_epoch(0)
    return torch.utils.data.Subset(pairs, range(min(count, len(pairs))))


def match_scores(pairs: Iterable[tuple[Tensor, float]], threshold: float, precision: str) -> dict[str, float]:
    """Match quality over held-out pairs, from each pair's match errors (pixels) and its budget.

    Returns:
        ``precision`` (the share of matches within ``threshold`` px), ``matches`` (mean matches per pair) and
        ``score`` (the mean of correct matches per budget).
    """
    correct_total, matched_total, score_total, count = 0.0, 0.0, 0.0, 0
    for errors, budget in pairs:
        correct = float((errors < threshold).sum())
        correct_total += correct
        matched_total += len(errors)
        score_total += correct / budget
        count += 1
    count = max(1, count)
    return {
        precision: correct_total / max(1.0, matched_total),
        "matches": matched_total / count,
        "score": score_total / count,
    }


def command_line() -> str:
    """The command that started this process, quoted as a shell takes it."""
    return " ".join([Path(sys.argv[0]).name, *(shlex.quote(arg) for arg in sys.argv[1:])])


def corpus_record(photos: str | Path, train_photos: Sequence, val_photos: Sequence, **facts: Any) -> dict:
    """The ``data`` entry of a run on the photo corpus: the corpus, the size of each split, then ``facts``."""
    return {"photos": str(photos), "train_photos": len(train_photos), "val_photos": len(val_photos), **facts}

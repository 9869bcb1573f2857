"""Glue's recipe: feature pairs cached with their ground-truth assignment, the assignment loss with deep
supervision, and validation by the precision and recall of the matches.

Training needs the same keypoints and descriptors many times, while rendering a pair and running the
extractor cost more than a training step; so pairs of a stream (:mod:`tiepoint_lab.data.mix`) are rendered
once, their features extracted and their assignment computed, and stored in shards (``cache/shard_*.npz``,
resumable). A keypoint of image 0 is *matched* to one of image 1 when each is the other's nearest neighbour by
reprojection error (both ways, through the homography or the depths) within :data:`MATCH_PX`; it is
*unmatched* when its projection is hidden or out of image 1, or no keypoint lies within :data:`UNMATCHED_PX`;
other keypoints are ignored by the loss.

The network starts as dual-softmax matching of the descriptors (:func:`start_as_descriptor_matching`): the
input projection and the final projections are identities and every update starts at zero, so training
improves on the descriptors' own matching from the first step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tiepoint.errors import OptionError
from tiepoint.io.files import atomic_path, write_json
from tiepoint.matchers.glue import Glue, GlueConfig, LayerScores, mutual_best, weights_name
from tiepoint.matchers.nearest import mutual_nearest_neighbours, similarity_matrix
from tiepoint.registry import build_extractor
from tiepoint.weights import WEIGHTS_DIR
from tiepoint_lab.data.batching import reverse_pair
from tiepoint_lab.data.mix import correspond, make_stream, stream_spec
from tiepoint_lab.data.photos import list_photos
from tiepoint_lab.train.recipe import command_line, corpus_record, recipe_config
from tiepoint_lab.train.trainer import Trainer, seed_all, ship_run

__all__ = [
    "GluePairs",
    "build_cache",
    "glue_loss",
    "keypoint_truth",
    "ship",
    "start_as_descriptor_matching",
    "train_glue",
    "validation_scores",
]

MATCH_PX = 3.0
"""Largest reprojection error (both ways) of a ground-truth match, pixels."""
UNMATCHED_PX = 5.0
"""A keypoint with no keypoint of the other image within this distance of its projection is unmatched."""
IGNORE, UNMATCHED = -2, -1
"""Labels of the ground-truth assignment besides the index of the match."""
SHARD_PAIRS = 64
"""Pairs per cache shard."""
ARCHITECTURES = {
    "clidd-s96": GlueConfig(input_dim=96, dim=96, heads=4, layers=5),
    "sift": GlueConfig(input_dim=128, dim=128, heads=4, layers=5),
}
"""The shipped architecture per extractor: as wide as the descriptors (so the network can start as descriptor
matching), few layers (CPU time)."""


# --- ground truth and cache ---------------------------------------------------------------------------------


def keypoint_truth(item: Mapping[str, Any], keypoints0: Tensor, keypoints1: Tensor) -> tuple[Tensor, Tensor]:
    """The ground-truth assignment of two keypoint sets of a pair (see the module docstring).

    Args:
        item: a pair of a stream (unbatched): ``image1`` and a homography or depths, intrinsics and pose.
        keypoints0: ``(N, 2)`` pixels of image 0.
        keypoints1: ``(M, 2)`` pixels of image 1.

    Returns:
        ``(N,)`` and ``(M,)`` int64: the index of the match in the other image, :data:`UNMATCHED` or
        :data:`IGNORE`.
    """
    n, m = len(keypoints0), len(keypoints1)
    truth0 = torch.full((n,), IGNORE, dtype=torch.long)
    truth1 = torch.full((m,), IGNORE, dtype=torch.long)
    if n == 0 or m == 0:
        return truth0.fill_(UNMATCHED), truth1.fill_(UNMATCHED)
    projected0, visible0 = correspond(item, keypoints0.float())
    projected1, visible1 = correspond(reverse_pair(item), keypoints1.float())
    forward = torch.cdist(projected0, keypoints1.float()).masked_fill(~visible0[:, None], math.inf)
    backward = torch.cdist(keypoints0.float(), projected1).masked_fill(~visible1[None, :], math.inf)
    truth0[forward.min(1).values > UNMATCHED_PX] = UNMATCHED
    truth1[backward.min(0).values > UNMATCHED_PX] = UNMATCHED
    error = torch.maximum(forward, backward)
    nearest0, nearest1 = error.argmin(1), error.argmin(0)
    index0 = torch.arange(n)
    matched = (nearest1[nearest0] == index0) & (error[index0, nearest0] < MATCH_PX)
    truth0[matched] = nearest0[matched]
    truth1[nearest0[matched]] = index0[matched]
    return truth0, truth1


def _uint8(image: Tensor) -> np.ndarray:
    """``(3, H, W)`` float in ``[0, 1]`` -> ``(H, W, 3)`` uint8."""
    return np.round(image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)


class _FeaturePairs(torch.utils.data.Dataset):
    """Pairs of a stream with their features and assignment, computed on demand (in loader workers)."""

    def __init__(self, stream: torch.utils.data.Dataset, extractor: str, keypoints: int) -> None:
        self.stream, self.extractor_name, self.keypoints = stream, extractor, keypoints
        self.extractor = None

    def __len__(self) -> int:
        return len(self.stream)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if self.extractor is None:
            self.extractor = build_extractor(self.extractor_name, max_keypoints=self.keypoints)
        item = self.stream[index]
        features0 = self.extractor.extract(_uint8(item["image0"]))
        features1 = self.extractor.extract(_uint8(item["image1"]))
        keypoints0 = torch.from_numpy(features0.keypoints.astype(np.float32))
        keypoints1 = torch.from_numpy(features1.keypoints.astype(np.float32))
        truth0, truth1 = keypoint_truth(item, keypoints0, keypoints1)
        height, width = item["image0"].shape[-2:]
        return {
            "keypoints0": keypoints0.numpy(),
            "keypoints1": keypoints1.numpy(),
            "descriptors0": features0.descriptors.astype(np.float16),
            "descriptors1": features1.descriptors.astype(np.float16),
            "truth0": truth0.numpy().astype(np.int16),
            "truth1": truth1.numpy().astype(np.int16),
            "size": np.array([width, height], np.float32),
            "source": item.get("source", ""),
        }


def _pad(arrays: Sequence[np.ndarray], length: int, fill: float) -> np.ndarray:
    out = np.full((len(arrays), length, *arrays[0].shape[1:]), fill, dtype=arrays[0].dtype)
    for row, array in enumerate(arrays):
        out[row, : len(array)] = array
    return out


def _write_shard(path: Path, items: Sequence[Mapping[str, Any]], keypoints: int) -> None:
    arrays: dict[str, np.ndarray] = {}
    for side in "01":
        arrays[f"count{side}"] = np.array([len(item[f"keypoints{side}"]) for item in items], np.int32)
        for name, fill in (("keypoints", 0.0), ("descriptors", 0.0), ("truth", IGNORE)):
            arrays[f"{name}{side}"] = _pad([item[f"{name}{side}"] for item in items], keypoints, fill)
    arrays["size"] = np.stack([item["size"] for item in items])
    arrays["source"] = np.array([item["source"] for item in items])
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        np.savez(file, **arrays)


def _one_thread(worker: int) -> None:
    torch.set_num_threads(1)


def _as_is(item: Any) -> Any:
    return item


def build_cache(
    folder: str | Path,
    photos: Sequence[str | Path],
    extractor: str,
    pairs: int,
    stream: str = "mix",
    size: tuple[int, int] = (240, 320),
    keypoints: int = 512,
    seed: int = 0,
    workers: int = 2,
) -> Path:
    """Render ``pairs`` pairs of ``stream`` on ``photos`` (``size`` is ``(H, W)``), extract at most
    ``keypoints`` features per image with ``extractor`` and store them with their assignment in ``folder``.

    Resumable: shards already written are kept; ``folder/cache.json`` records the settings, and a folder made
    with other settings is refused.
    """
    folder = Path(folder)
    settings = {
        "extractor": extractor,
        "pairs": pairs,
        "stream": stream_spec(stream),
        "size": list(size),
        "keypoints": keypoints,
        "seed": seed,
        "photos": len(photos),
        "match_px": MATCH_PX,
        "unmatched_px": UNMATCHED_PX,
    }
    record = folder / "cache.json"
    if record.is_file() and json.loads(record.read_text()) != settings:
        raise OptionError(f"{folder} holds a feature cache made with other settings; choose another folder")
    folder.mkdir(parents=True, exist_ok=True)
    write_json(record, settings)
    source = make_stream(stream, photos, size=size, seed=seed, length=pairs)
    source.set_epoch(0)
    dataset = _FeaturePairs(source, extractor, keypoints)
    for start in range(0, pairs, SHARD_PAIRS):
        path = folder / f"shard_{start // SHARD_PAIRS:05d}.npz"
        if path.is_file():
            continue
        indices = list(range(start, min(pairs, start + SHARD_PAIRS)))
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(dataset, indices),
            batch_size=None,
            num_workers=workers,
            worker_init_fn=_one_thread,
            collate_fn=_as_is,
        )
        _write_shard(path, list(loader), keypoints)
        print(f"{path}: {len(indices)} pairs", flush=True)
    return folder


class GluePairs(torch.utils.data.Dataset):
    """The cached pairs of a :func:`build_cache` folder, as padded tensors; in training, half of the pairs
    are seen swapped (image 1 first), chosen per epoch."""

    def __init__(self, folder: str | Path, swap: bool = True, seed: int = 0) -> None:
        shards = sorted(Path(folder).glob("shard_*.npz"))
        if not shards:
            raise OptionError(f"no feature cache in {folder}: build it with build_cache")
        loaded = [dict(np.load(path)) for path in shards]
        self.arrays = {key: np.concatenate([shard[key] for shard in loaded]) for key in loaded[0]}
        self.swap, self.seed, self.epoch = swap, seed, 0

    def __len__(self) -> int:
        return len(self.arrays["size"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        a = self.arrays
        first, second = "0", "1"
        if self.swap and np.random.default_rng([self.seed, self.epoch, index]).random() < 0.5:
            first, second = "1", "0"
        item = {}
        for new, old in (("0", first), ("1", second)):
            count = int(a[f"count{old}"][index])
            item[f"keypoints{new}"] = torch.from_numpy(a[f"keypoints{old}"][index].astype(np.float32))
            item[f"descriptors{new}"] = torch.from_numpy(a[f"descriptors{old}"][index].astype(np.float32))
            item[f"truth{new}"] = torch.from_numpy(a[f"truth{old}"][index].astype(np.int64))
            item[f"mask{new}"] = torch.arange(len(item[f"truth{new}"])) < count
            item[f"size{new}"] = torch.from_numpy(a["size"][index])
        return item


# --- model, loss and validation -----------------------------------------------------------------------------


def start_as_descriptor_matching(model: Glue, temperature: float = 0.1) -> Glue:
    """Make ``model`` (``dim == input_dim``) match like dual-softmax on the descriptors: identity input and
    final projections (scaled so that the similarity is the cosine over ``temperature``) and zero updates."""
    c = model.config
    if c.dim != c.input_dim:
        raise OptionError(f"the network must be as wide as the descriptors ({c.input_dim}), not {c.dim}")
    scale = (math.sqrt(c.dim) / temperature) ** 0.5
    with torch.no_grad():
        model.input_proj.weight.copy_(torch.eye(c.dim))
        model.input_proj.bias.zero_()
        for layer in model.layers:
            for attention in (layer.self_attn, layer.cross_attn):
                attention.ffn[-1].weight.zero_()
                attention.ffn[-1].bias.zero_()
        for assignment in model.assignment:
            assignment.project.weight.copy_(torch.eye(c.dim) * scale)
            assignment.project.bias.zero_()
    return model


def _pair_mean(values: Tensor, rows: Tensor, batch: int) -> tuple[Tensor, Tensor]:
    """Per-pair mean of ``values`` ``(K,)`` grouped by ``rows`` ``(K,)``, and which pairs have any."""
    total = values.new_zeros(batch).index_add_(0, rows, values)
    count = values.new_zeros(batch).index_add_(0, rows, torch.ones_like(values))
    return total / count.clamp(min=1), count > 0


def _layer_loss(scores: LayerScores, truth0: Tensor, truth1: Tensor, mask0: Tensor, mask1: Tensor) -> Tensor:
    """Negative log-likelihood of the assignment: half from the matches, half from the unmatched points,
    each averaged per pair."""
    batch = truth0.shape[0]
    rows, index0 = (truth0 >= 0).nonzero(as_tuple=True)
    positive, has_positive = _pair_mean(
        -scores.log_assignment[rows, index0, truth0[rows, index0]], rows, batch
    )
    unmatched0 = (truth0 == UNMATCHED) & mask0
    unmatched1 = (truth1 == UNMATCHED) & mask1
    r0, i0 = unmatched0.nonzero(as_tuple=True)
    r1, i1 = unmatched1.nonzero(as_tuple=True)
    negative, has_negative = _pair_mean(
        torch.cat([-scores.unmatched0[r0, i0], -scores.unmatched1[r1, i1]]), torch.cat([r0, r1]), batch
    )
    weight_positive = has_positive.float() * torch.where(has_negative, 0.5, 1.0)
    weight_negative = has_negative.float() * torch.where(has_positive, 0.5, 1.0)
    return (weight_positive * positive + weight_negative * negative).sum() / batch


def _predicted(scores: LayerScores, mask0: Tensor, mask1: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """The matches a layer's scores predict, ``(B, N)`` and ``(B, M)`` (-1: none), as inference keeps them."""
    (best0, _, valid0), (best1, _, valid1) = mutual_best(scores.log_assignment, mask0, mask1, threshold)
    return torch.where(valid0, best0, -1), torch.where(valid1, best1, -1)


def glue_loss(model: Glue, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The mean over layers of the assignment loss, plus the confidence heads' binary cross-entropy (does
    the layer's prediction already equal the last layer's?), which trains them on detached features."""
    args = [batch[f"{name}{side}"] for name in ("keypoints", "descriptors") for side in "01"]
    scores = model.layer_scores(
        args[0], args[1], args[2], args[3], batch["size0"], batch["size1"], batch["mask0"], batch["mask1"]
    )
    truth = (batch["truth0"], batch["truth1"], batch["mask0"], batch["mask1"])
    assignment = torch.stack([_layer_loss(layer, *truth) for layer in scores]).mean()
    predict = partial(
        _predicted, mask0=batch["mask0"], mask1=batch["mask1"], threshold=model.config.filter_threshold
    )
    with torch.no_grad():
        final0, final1 = predict(scores[-1])
    confidence = assignment.new_zeros(())
    for layer in scores[:-1]:
        with torch.no_grad():
            predicted0, predicted1 = predict(layer)
            same0, same1 = (predicted0 == final0).float(), (predicted1 == final1).float()
        confidence = (
            confidence
            + F.binary_cross_entropy(layer.confidence0[batch["mask0"]], same0[batch["mask0"]])
            + F.binary_cross_entropy(layer.confidence1[batch["mask1"]], same1[batch["mask1"]])
        )
    confidence = confidence / max(1, len(scores) - 1)
    return {"total": assignment + confidence, "assignment": assignment, "confidence": confidence}


def _count_correct(matches0: Tensor, truth0: Tensor, mask0: Tensor) -> tuple[int, int, int]:
    """Matches judged (not on ignored points), correct ones, and ground-truth matches."""
    judged = (matches0 >= 0) & (truth0 != IGNORE) & mask0
    correct = judged & (matches0 == truth0)
    return int(judged.sum()), int(correct.sum()), int(((truth0 >= 0) & mask0).sum())


def validation_scores(model: Glue, pairs: GluePairs, batch_size: int = 16) -> dict[str, float]:
    """Precision and recall of the final matches on held-out cached pairs (every layer run, no pruning), and
    their harmonic mean as ``score``; the same for mutual nearest neighbours of the descriptors."""
    full = Glue(replace(model.config, depth_confidence=-1, width_confidence=-1))
    full.load_state_dict(model.state_dict())
    full.eval()
    totals = np.zeros((2, 3))
    for start in range(0, len(pairs), batch_size):
        items = [pairs[i] for i in range(start, min(len(pairs), start + batch_size))]
        batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
        output = full(
            batch["keypoints0"], batch["keypoints1"], batch["descriptors0"], batch["descriptors1"],
            batch["size0"], batch["size1"], batch["mask0"], batch["mask1"],
        )  # fmt: skip
        sim = similarity_matrix(batch["descriptors0"], batch["descriptors1"])
        nearest, _ = mutual_nearest_neighbours(sim, batch["mask0"], batch["mask1"])
        for row, matches0 in enumerate((output["matches0"], nearest)):
            totals[row] += _count_correct(matches0, batch["truth0"], batch["mask0"])
    scores = {}
    for row, prefix in enumerate(("", "mnn_")):
        judged, correct, truth = totals[row]
        precision, recall = float(correct / max(1, judged)), float(correct / max(1, truth))
        scores[f"{prefix}precision"] = precision
        scores[f"{prefix}recall"] = recall
        scores[f"{prefix}score"] = 2 * precision * recall / max(1e-9, precision + recall)
    return scores


# --- commands -----------------------------------------------------------------------------------------------


def train_glue(
    features: str,
    photos: str | Path,
    out: str | Path | None,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    validate_every: int,
    device: str = "cpu",
    pairs: int = 4096,
    stream: str = "mix",
    keypoints: int = 512,
    cache: str | Path | None = None,
    minutes: float | None = None,
    workers: int = 2,
    validation_pairs: int = 128,
    size: tuple[int, int] = (240, 320),
    init: str | Path | None = None,
) -> dict[str, float]:
    """Train Glue on ``features``' descriptors (resumes a run in ``out``); returns the last validation.

    The feature caches of ``pairs`` training pairs and of ``validation_pairs`` held-out pairs (from the val
    photos), rendered at ``size`` ``(H, W)``, are built first where missing (resumable, with ``workers``
    processes). ``init``: start from these Glue weights (e.g. the shipped ones, to adapt them to another
    keypoint density) instead of descriptor matching.
    """
    if features not in ARCHITECTURES:
        raise OptionError(f"Glue trains for {', '.join(ARCHITECTURES)}, not {features!r}")
    if minutes is not None and minutes <= 0:
        raise OptionError(f"minutes must be positive, got {minutes}")
    train_photos, val_photos = list_photos(photos, "train"), list_photos(photos, "val")
    size = (int(size[0]), int(size[1]))
    default_cache = f"{features}-{stream}-{keypoints}" + (
        "" if size == (240, 320) else f"-{size[1]}x{size[0]}"
    )
    cache = Path(cache) if cache else Path("runs") / "glue-cache" / default_cache
    for split, split_photos, count, split_seed in (
        ("train", train_photos, pairs, seed),
        ("val", val_photos, validation_pairs, seed + 1),
    ):
        build_cache(
            cache / split,
            split_photos,
            features,
            count,
            stream,
            size=size,
            keypoints=keypoints,
            seed=split_seed,
            workers=workers,
        )
    dataset, held_out = GluePairs(cache / "train", seed=seed), GluePairs(cache / "val", swap=False)
    architecture = ARCHITECTURES[features]
    out = Path(out) if out else Path("runs") / weights_name(features)
    config = recipe_config(steps, batch_size, learning_rate, seed, validate_every, 0, device)
    describe = {
        "model": f"glue-{features}",
        "architecture": architecture.architecture(),
        "data": corpus_record(
            photos,
            train_photos,
            val_photos,
            pairs=len(dataset),
            stream=stream_spec(stream),
            keypoints=keypoints,
            size=list(size),
            cache=str(cache),
            match_px=MATCH_PX,
            unmatched_px=UNMATCHED_PX,
        ),
        "init": "dual-softmax matching of the descriptors (start_as_descriptor_matching)",
        "command": command_line(),
    }
    seed_all(seed)
    if init is None:
        model = start_as_descriptor_matching(Glue(architecture))
    else:  # shipped weights or a run's best.pt, checked against the architecture
        model = Glue.from_pretrained(features, init).train()
        describe["init"] = str(init)
    trainer = Trainer(
        model, dataset, glue_loss, lambda m: validation_scores(m, held_out), config, out, describe
    )
    return trainer.run(seconds=None if minutes is None else 60.0 * minutes)


def ship(
    run: str | Path, features: str, benchmark: dict[str, Any] | None = None, destination: Path | None = None
) -> Path:
    """Copy a run's best weights into the package (``glue_<features>.pt``, with the architecture) and its
    training record beside them."""
    if features not in ARCHITECTURES:
        raise OptionError(f"Glue trains for {', '.join(ARCHITECTURES)}, not {features!r}")
    destination = destination or WEIGHTS_DIR / f"{weights_name(features)}.pt"
    return ship_run(run, destination, benchmark, architecture=ARCHITECTURES[features].architecture())
